"""Worker-side functions for the Pool tests (tests/core/test_pool*.py).

Children started with spawn or forkserver import these by name (``tests/`` is on their PYTHONPATH), so
every function a pool task, initializer or callback-in-a-worker runs lives here.  They work the same under
the stdlib's Pool and core's.
"""
import gc
import os
import signal
import sys
import threading
import time
import tracemalloc
import weakref

# -- plain tasks --------------------------------------------------------------------------------------------

def square(x):
    return x * x


def add(a, b):
    return a + b


def identity(x):
    return x


def noop(x):
    return None


def make_bytes(n):
    return b"z" * n


def kwargs_echo(*args, **kwds):
    return (args, sorted(kwds.items()))


def pid_of(x):
    """The worker's pid (with a short pause so tasks spread over the workers)."""
    time.sleep(0.01)
    return os.getpid()


def interval(seconds):
    """(pid, start, end) of a task that sleeps: to count how many tasks ran at once."""
    t0 = time.monotonic()
    time.sleep(seconds)
    return (os.getpid(), t0, time.monotonic())


def sleep_for(seconds):
    time.sleep(seconds)
    return seconds


def spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    return seconds


def fail_on_three(x):
    if x == 3:
        raise ValueError("task %r failed" % (x,))
    return x * 10


def always_fail(x):
    raise KeyError(x)


def star_fail(a, b):
    if a == b:
        raise ZeroDivisionError("same %r" % (a,))
    return a - b


# -- unpicklable things --------------------------------------------------------------------------------------

def return_lock(x):
    return threading.Lock()


def return_lock_on_two(x):
    if x == 2:
        return threading.Lock()
    return x


class UnpicklableError(Exception):
    def __init__(self, msg):
        super().__init__(msg)
        self.lock = threading.Lock()


def raise_unpicklable(x):
    raise UnpicklableError("carries a lock")


class NeedsTwoArgs(Exception):
    """Pickles fine, but cannot be rebuilt (its __init__ needs two arguments): the stdlib's result
    handler thread dies on it and its pool hangs."""

    def __init__(self, a, b):
        super().__init__(a)
        self.b = b


def raise_needs_two_args(x):
    raise NeedsTwoArgs("first", "second")


# -- faults -----------------------------------------------------------------------------------------------------

def kill_self_on(x, target=3):
    if x == target:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def kill_on_three(x):
    return kill_self_on(x, 3)


def exit_on_two(x):
    if x == 2:
        os._exit(3)
    return x


def sys_exit_task(x):
    sys.exit(7)


def segfault(x):
    import ctypes
    import faulthandler
    faulthandler.disable()
    ctypes.string_at(0)


def touch_then_sleep(path, seconds):
    """Say the task started (create the file ``path``), then sleep."""
    touch(path)
    time.sleep(seconds)
    return seconds


def sleep_then_kill(x):
    """Task 0 sleeps and then kills its worker, the others are quick."""
    if x == 0:
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.01)
    return x


# -- initializers -----------------------------------------------------------------------------------------------

_init_calls = 0
_init_value = None


def init_count(value):
    global _init_calls, _init_value
    _init_calls += 1
    _init_value = value


def init_report(x):
    time.sleep(0.01)
    return (os.getpid(), _init_calls, _init_value)


def init_fail():
    raise RuntimeError("initializer failed on purpose")


def init_sigint_check(x):
    return signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def fail_on_777(x):
    if x == 777:
        raise ValueError("777 fails")
    return x


# -- payload lifetimes (what a process keeps alive after a task) ---------------------------------------------

_markers = weakref.WeakSet()


class Marker:
    """A weakref-able object that counts itself: every Marker built in a process (by a test, or by
    unpickling one sent to a worker) is in that process's ``_markers`` until it is garbage."""

    def __init__(self, i):
        self.i = i
        _markers.add(self)

    def __reduce__(self):
        return (Marker, (self.i,))


def marker_index(m):
    return m.i


def make_marker(i):
    return Marker(i)


def markers_alive(_=None):
    """How many Markers this process still holds, after a garbage collection."""
    gc.collect()
    return len(_markers)


def start_tracing_memory(_=None):
    """Start tracemalloc in this worker; ``traced_memory_growth`` reports the growth since."""
    global _memory_base
    gc.collect()
    tracemalloc.start()
    _memory_base = tracemalloc.get_traced_memory()[0]
    return os.getpid()


_memory_base = 0


def traced_memory_growth(_=None):
    """Bytes of Python memory this worker holds now beyond what it held at ``start_tracing_memory``
    (after a garbage collection); stops tracemalloc."""
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - _memory_base
    tracemalloc.stop()
    return grown


def touch(path):
    """Create the file ``path`` (so a test can see which tasks ran) and return its name."""
    with open(path, "w"):
        pass
    return os.path.basename(path)
