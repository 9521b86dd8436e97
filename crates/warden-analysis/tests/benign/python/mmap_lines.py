"""Count the lines of a large input without reading it into memory."""
import mmap
import sys


def count_lines(path):
    with open(path, "rb") as f:
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            lines = 0
            pos = mm.find(b"\n")
            while pos != -1:
                lines += 1
                pos = mm.find(b"\n", pos + 1)
            return lines


if __name__ == "__main__":
    print(count_lines(sys.argv[1] if len(sys.argv) > 1 else "input.txt"))
