"""A program that chooses its own start method (spawn): a start method given to the tracer must not change it."""
import multiprocessing


def square(x):
    return x * x


if __name__ == "__main__":
    multiprocessing.set_start_method("spawn")
    print(multiprocessing.get_start_method())
    with multiprocessing.get_context().Pool(2) as pool:
        print(pool.map(square, range(6)))
