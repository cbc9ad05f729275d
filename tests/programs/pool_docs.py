"""The Pool examples of the Python documentation (multiprocessing, "Using a pool of workers"), printing only
what is the same on every run: pids become a comparison, imap_unordered's order is sorted, and the task the
example gives up on sleeps 3 s instead of 10 (the pool is terminated under it either way)."""
import os
import time
from multiprocessing import Pool, TimeoutError


def f(x):
    return x * x


if __name__ == '__main__':
    with Pool(5) as p:
        print(p.map(f, [1, 2, 3]))

    # start 4 worker processes
    with Pool(processes=4) as pool:

        # print "[0, 1, 4,..., 81]"
        print(pool.map(f, range(10)))

        # print same numbers in arbitrary order
        print(sorted(pool.imap_unordered(f, range(10))))

        # evaluate "f(20)" asynchronously
        res = pool.apply_async(f, (20,))      # runs in *only* one process
        print(res.get(timeout=10))            # prints "400"

        # evaluate "os.getpid()" asynchronously
        res = pool.apply_async(os.getpid, ())  # runs in *only* one process
        print(res.get(timeout=10) != os.getpid())  # the pid of a worker, not ours

        # launching multiple evaluations asynchronously *may* use more processes
        multiple_results = [pool.apply_async(os.getpid, ()) for i in range(4)]
        print(len([res.get(timeout=10) for res in multiple_results]))

        # make a single worker sleep for 3 seconds
        res = pool.apply_async(time.sleep, (3,))
        try:
            print(res.get(timeout=0.2))
        except TimeoutError:
            print("We lacked patience and got a multiprocessing.TimeoutError")

        print("For the moment, the pool remains available for more work")

    # exiting the 'with'-block has stopped the pool
    print("Now the pool is closed and no longer available")
