"""Three producers take a Lock to put into a Queue once an Event says go; the main process holds the lock
while a fourth process tries for it, so that one waits and gives up (a lock wait that is certain)."""
import multiprocessing as mp
import sys


def producer(lock, queue, go, n, who):
    go.wait()
    for i in range(n):
        with lock:
            queue.put((who, i))


def impatient(lock, answers):
    answers.put(lock.acquire(timeout=0.05))


if __name__ == "__main__":
    lock = mp.Lock()
    queue = mp.Queue()
    go = mp.Event()
    answers = mp.SimpleQueue()
    with lock:
        p = mp.Process(target=impatient, args=(lock, answers))
        p.start()
        print("got the lock the main process held:", answers.get())
        p.join()
    producers = [mp.Process(target=producer, args=(lock, queue, go, 50, w), name="producer-%d" % w)
                 for w in range(3)]
    for p in producers:
        p.start()
    go.set()
    got = [queue.get() for _ in range(150)]
    for p in producers:
        p.join()
    print(len(got), sorted(set(w for w, _ in got)), sum(i for _, i in got))
    print([p.exitcode for p in producers])
    sys.exit(3)
