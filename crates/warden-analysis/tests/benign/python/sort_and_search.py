"""Reads numbers from stdin, sorts them with merge sort and answers membership queries."""
import sys
from bisect import bisect_left


def merge_sort(items):
    if len(items) <= 1:
        return items
    mid = len(items) // 2
    left, right = merge_sort(items[:mid]), merge_sort(items[mid:])
    merged, i, j = [], 0, 0
    while i < len(left) and j < len(right):
        if left[i] <= right[j]:
            merged.append(left[i])
            i += 1
        else:
            merged.append(right[j])
            j += 1
    return merged + left[i:] + right[j:]


def contains(sorted_items, value):
    k = bisect_left(sorted_items, value)
    return k < len(sorted_items) and sorted_items[k] == value


def main():
    data = sys.stdin.read().split()
    n = int(data[0]) if data else 0
    numbers = merge_sort([int(x) for x in data[1:n + 1]])
    print(" ".join(map(str, numbers)))
    for q in data[n + 1:]:
        print("yes" if contains(numbers, int(q)) else "no")


if __name__ == "__main__":
    main()
