"""Task functions shared by scenarios: module-level, so spawned workers can import them by name."""
import os
import time


def spin(seconds):
    """CPU-bound work: keep a core busy for ``seconds``."""
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


def wait(seconds):
    """I/O-like work: block for ``seconds`` without using the CPU."""
    time.sleep(seconds)
    return seconds


def timed_task(index, seconds, cpu):
    """One task of a scenario: (index, seconds, pid) after ``seconds`` of CPU or waiting."""
    (spin if cpu else wait)(seconds)
    return index, seconds, os.getpid()


def timed_task_args(args):
    return timed_task(*args)


def noop(x):
    return x


def burn(iterations):
    """CPU-bound work of a fixed size (not a fixed time): ``iterations`` additions in pure Python.  Threads
    sharing the GIL take turns on it, so unlike ``spin`` it shows that threads do not compute in parallel."""
    x = 0
    for i in range(iterations):
        x += i
    return x


def burn_rate(sample=1_000_000, repeat=3):
    """Iterations of ``burn`` per second on this machine (the best of ``repeat`` short samples)."""
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        burn(sample)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return sample / max(best, 1e-9)


def signal_ready(queue):
    """A Pool initializer: tell the parent this worker is up (puts its pid on ``queue``)."""
    queue.put(os.getpid())


def wait_until_ready(queue, n, timeout=60.0):
    """Wait for ``n`` ``signal_ready`` messages; the pids of the workers that are up."""
    deadline = time.monotonic() + timeout
    pids = []
    while len(pids) < n:
        pids.append(queue.get(timeout=max(0.01, deadline - time.monotonic())))
    return pids
