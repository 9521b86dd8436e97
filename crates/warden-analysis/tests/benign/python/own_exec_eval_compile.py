# A program's own names that are also builtins': an executor, a score, a tiny compiler.
import re
from concurrent.futures import ThreadPoolExecutor

TOKEN_RE = re.compile(r"\w+")


def square(x):
    return x * x


def evaluate(preds, gold):
    return sum(p == g for p, g in zip(preds, gold)) / len(gold)


def compile(src):
    return [t.upper() for t in TOKEN_RE.findall(src)]


with ThreadPoolExecutor(4) as exec:
    print(list(exec.map(square, range(10))))

eval = evaluate([1, 2, 3], [1, 2, 4])
print("accuracy:", eval)
print(compile("the quick brown fox"))
