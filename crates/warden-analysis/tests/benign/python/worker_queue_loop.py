# Reads lines until EOF and hands each to a thread; the loop ends at EOF.
import sys
import threading

results = []
lock = threading.Lock()


def count_words(line):
    with lock:
        results.append(len(line.split()))


threads = []
while True:
    line = sys.stdin.readline()
    if not line:
        break
    t = threading.Thread(target=count_words, args=(line,))
    t.start()
    threads.append(t)

for t in threads:
    t.join()
print(sum(results))
