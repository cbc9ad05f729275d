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
