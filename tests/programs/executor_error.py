"""concurrent.futures: the ProcessPoolExecutor example of the Python documentation (is_prime), submits,
then a map over an input one of whose elements makes the function raise: the exception escapes the program,
which exits with code 1 and Python's traceback."""
import concurrent.futures
import math

PRIMES = [112272535095293, 112582705942171, 112272535095293, 115280095190773, 115797848077099,
          1099726899285419]


def is_prime(n):
    if n < 2:
        return False
    if n == 2:
        return True
    if n % 2 == 0:
        return False

    sqrt_n = int(math.floor(math.sqrt(n)))
    for i in range(3, sqrt_n + 1, 2):
        if n % i == 0:
            return False
    return True


def inverse(x):
    return 1 / x


def main():
    with concurrent.futures.ProcessPoolExecutor(max_workers=2) as executor:
        for number, prime in zip(PRIMES, executor.map(is_prime, PRIMES)):
            print('%d is prime: %s' % (number, prime))
        print(executor.submit(pow, 2, 10).result())
        print([f.result() for f in [executor.submit(pow, 3, k) for k in range(3)]])
        for x in executor.map(inverse, [1, 2, 4, 0, 5], chunksize=2):
            print(x)


if __name__ == '__main__':
    main()
