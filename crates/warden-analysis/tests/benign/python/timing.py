"""Times two ways of summing a list: timeit with callables, profile-free."""
import timeit


def by_loop(values):
    total = 0
    for v in values:
        total += v
    return total


values = list(range(1000))
loop = timeit.timeit(lambda: by_loop(values), number=50)
builtin = timeit.repeat(lambda: sum(values), number=50, repeat=3)
timer = timeit.Timer(lambda: sorted(values))
print(loop > 0, min(builtin) > 0, timer.timeit(number=5) > 0)
