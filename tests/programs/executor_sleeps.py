"""concurrent.futures: N tasks of S seconds each on two worker processes, printing each result as it comes
(python executor_sleeps.py N S).  Long enough to watch live and to stop."""
import concurrent.futures
import sys
import time


def nap(i, seconds):
    time.sleep(seconds)
    return i


if __name__ == "__main__":
    n, seconds = int(sys.argv[1]), float(sys.argv[2])
    with concurrent.futures.ProcessPoolExecutor(max_workers=2) as executor:
        for i in executor.map(nap, range(n), [seconds] * n):
            print("task", i, "done", flush=True)
