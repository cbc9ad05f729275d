"""Three processes take turns on a manager-served lock (Manager().Lock()), each holding it HOLD_S."""
import multiprocessing as mp
import time

HOLD_S = 0.005
TURNS = 10
WORKERS = 3


def work(lock):
    for _ in range(TURNS):
        with lock:
            time.sleep(HOLD_S)


if __name__ == "__main__":
    with mp.Manager() as m:
        lock = m.Lock()
        ps = [mp.Process(target=work, args=(lock,)) for _ in range(WORKERS)]
        for p in ps:
            p.start()
        for p in ps:
            p.join()
