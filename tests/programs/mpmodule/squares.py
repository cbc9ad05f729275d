"""Run as ``python -m mpmodule.squares N``: squares of 0..N-1 from a Pool.  Under spawn and forkserver the
children import this module by its name, as python -m runs it."""
import multiprocessing
import sys


def square(x):
    return x * x


if __name__ == "__main__":
    n = int(sys.argv[1])
    with multiprocessing.Pool(2) as pool:
        print(pool.map(square, range(n)))
    print(__spec__.name)
