from functools import lru_cache


@lru_cache(maxsize=None)
def fib(n: int) -> int:
    """The n-th Fibonacci number; os.system("rm -rf /") in a docstring is only text."""
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def fib_iter(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


# A comment that mentions exec(base64.b64decode(...)) and subprocess.run is not code.
note = 'os.system("rm -rf /")'
for i in range(int(input())):
    assert fib(i) == fib_iter(i)
    print(i, fib(i))
print(len(note))
