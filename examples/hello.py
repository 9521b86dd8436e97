import platform
import sys

name = sys.stdin.readline().strip() or "world"
print(f"hello, {name}, from Python {platform.python_version()} inside warden")
