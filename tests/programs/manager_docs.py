"""The Manager example of the Python documentation (multiprocessing, "Server process"), with the dict's
items sorted for printing, plus a Namespace and a managed Lock."""
from multiprocessing import Manager, Process


def f(d, numbers, ns, lock):
    d[1] = '1'
    d['2'] = 2
    d[0.25] = None
    numbers.reverse()
    with lock:
        ns.count += 1


if __name__ == '__main__':
    with Manager() as manager:
        d = manager.dict()
        numbers = manager.list(range(10))
        ns = manager.Namespace()
        ns.count = 0
        lock = manager.Lock()

        p = Process(target=f, args=(d, numbers, ns, lock))
        p.start()
        p.join()

        print(sorted(d.items(), key=repr))
        print(numbers)
        print(ns.count)
