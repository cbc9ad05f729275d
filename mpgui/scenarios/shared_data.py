"""Bulk data between processes: through a Queue (pickled copies) or in shared memory (no copies).

Lessons 4 and 9: pass as little data between processes as possible, and put data that maps to ctypes in
shared memory.  The main process hands an array of N float64 to a worker process, which sums it, with each
method in turn:

* Queue: ``put`` pickles the array and a feeder thread writes it through a pipe; the worker reads and
  unpickles its own copy: the whole array crosses between the processes every time;
* Array (synchronized: a lock guards it), RawArray (no lock) and SharedMemory: the main process writes the
  numbers into memory both processes map (numpy views, no pickling), tells the worker over a small pipe, and
  the worker sums them where they are.

Every worker's sum comes back through a Value.  The run times each method (the data's way in, and the
worker's signal-and-sum), counts the bytes that went through a pipe, checks every sum, and unlinks the
shared memory at the end.
"""
import pickle
import time

import numpy as np

from core.shared_memory import SharedMemory
from .base import Param, Result, Scenario

#: A safety bound on every blocking wait (nothing here should wait this long).
WAIT_LIMIT = 120.0
METHODS = ("Queue", "Array", "RawArray", "SharedMemory")


def summer(ctl, data_q, arr, raw, shm_name, n, result):
    """Sum the numbers where each method put them; answer every command over ``ctl``."""
    shm = SharedMemory(name=shm_name)
    views = {"RawArray": np.frombuffer(raw, dtype=np.float64, count=n),
             "SharedMemory": np.ndarray((n,), dtype=np.float64, buffer=shm.buf)}
    try:
        while True:
            method = ctl.recv()
            if method is None:
                break
            if method == "Queue":
                total = float(data_q.get(timeout=WAIT_LIMIT).sum())   # this process's unpickled copy
            elif method == "Array":
                with arr.get_lock():                                  # one acquire for the whole sum
                    total = float(np.frombuffer(arr.get_obj(), dtype=np.float64, count=n).sum())
            else:
                total = float(views[method].sum())
            result.value = total
            ctl.send(method)
    finally:
        views.clear()                           # numpy views first: close() refuses while they exist
        shm.close()


def run(ctx, p, report):
    n, repeats = p["n"], p["repeats"]
    nbytes = n * 8
    report.phase("prepare")
    data = np.random.default_rng(p["seed"]).random(n)
    expected = float(data.sum())
    pickled = len(pickle.dumps(data, protocol=pickle.DEFAULT_PROTOCOL))
    report.line("%d float64 = %.1f MB; pickled for a Queue: %d bytes" % (n, nbytes / 1e6, pickled))

    data_q = ctx.Queue(name="data queue")
    arr = ctx.Array("d", n, name="shared Array")
    raw = ctx.RawArray("d", n)
    result = ctx.Value("d", 0.0, name="sum result")
    ctl, peer = ctx.Pipe(name="commands")
    shm = SharedMemory(create=True, size=nbytes)
    worker = into = None
    figures = {"n": n, "bytes": nbytes, "pickled_bytes": pickled, "expected_sum": expected, "methods": {}}
    try:
        worker = ctx.Process(target=summer, args=(peer, data_q, arr, raw, shm.name, n, result), name="summer")
        worker.start()
        peer.close()
        into = {"Array": None, "RawArray": np.frombuffer(raw, dtype=np.float64, count=n),
                "SharedMemory": np.ndarray((n,), dtype=np.float64, buffer=shm.buf)}
        steps, done = len(METHODS) * repeats, 0
        for method in METHODS:
            report.phase(method)
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                if method == "Queue":
                    data_q.put(data)                  # pickled by the feeder thread, then through the pipe
                elif method == "Array":
                    with arr.get_lock():
                        np.frombuffer(arr.get_obj(), dtype=np.float64, count=n)[:] = data
                else:
                    into[method][:] = data            # one copy into memory both processes map
                t1 = time.perf_counter()
                ctl.send(method)
                if not ctl.poll(WAIT_LIMIT) or ctl.recv() != method:
                    raise RuntimeError("the summer did not answer for %s" % method)
                total = result.value
                t2 = time.perf_counter()
                times.append((t2 - t0, t1 - t0, t2 - t1, total))
                done += 1
                report.progress(done, steps)
            best = min(times)
            through_pipe = pickled if method == "Queue" else 0
            f = figures["methods"][method] = {
                "seconds": best[0], "move_s": best[1], "signal_and_sum_s": best[2],
                "all_seconds": [t[0] for t in times], "sum": best[3],
                "sum_ok": all(abs(t[3] - expected) <= 1e-9 * abs(expected) for t in times),
                "bytes_through_pipe": through_pipe, "bytes_into_shared_memory": 0 if method == "Queue" else nbytes,
                "mb_per_s": nbytes / best[0] / 1e6}
            report.line("%-12s best of %d: %.4f s (data in %.4f s, signal and sum %.4f s), %.0f MB/s; %d bytes "
                        "through a pipe; sum %s" % (method, repeats, f["seconds"], f["move_s"],
                                                    f["signal_and_sum_s"], f["mb_per_s"], through_pipe,
                                                    "correct" if f["sum_ok"] else "WRONG"))
        ctl.send(None)
        worker.join(WAIT_LIMIT)
    finally:
        into = None                             # release the numpy views before closing the segment
        if worker is not None and worker.is_alive():
            ctl.close()                         # the worker sees EOF
            worker.join(5.0)
            if worker.is_alive():
                worker.terminate()
                worker.join()
        ctl.close()
        data_q.close()
        data_q.join_thread()
        shm.close()
        shm.unlink()
    if worker.exitcode != 0:
        raise RuntimeError("the summer ended with exit code %s" % worker.exitcode)

    m = figures["methods"]
    rows = [(k, "%.4f s" % f["seconds"], "%.4f s" % f["move_s"], "%.4f s" % f["signal_and_sum_s"],
             "%d" % f["bytes_through_pipe"], "%d" % f["bytes_into_shared_memory"],
             "yes" if f["sum_ok"] else "NO") for k, f in m.items()]
    q = m["Queue"]
    fastest = min((k for k in METHODS if k != "Queue"), key=lambda k: m[k]["seconds"])
    lesson = ("Handing %d float64 (%.1f MB) to another process to sum: through a Queue %.4f s, the whole array "
              "pickled and %d bytes through a pipe every time; in shared memory (no bytes through a pipe, one "
              "local copy in) Array %.4f s, RawArray %.4f s, SharedMemory %.4f s. %s was %.1fx faster than the "
              "Queue; every sum was %s. Pass as little data as possible between processes; put bulk numbers in "
              "shared memory." % (n, nbytes / 1e6, q["seconds"], q["bytes_through_pipe"], m["Array"]["seconds"],
                                  m["RawArray"]["seconds"], m["SharedMemory"]["seconds"], fastest,
                                  q["seconds"] / m[fastest]["seconds"],
                                  "correct" if all(f["sum_ok"] for f in m.values()) else "NOT all correct"))
    return Result(lesson, figures, ("method", "best time", "data in", "signal + sum", "bytes through a pipe",
                                    "bytes into shared memory", "sum correct"), rows)


SCENARIO = Scenario(
    name="shared_data",
    title="Bulk data: Queue vs Array, RawArray and SharedMemory",
    description="An array of N float64 goes to a worker that sums it: pickled through a Queue, or written into "
                "an Array, a RawArray or a SharedMemory block both processes map (numpy views). Times, bytes "
                "through a pipe, and the sums are compared.",
    lesson="Pass as little data as possible between processes: bulk numbers belong in shared memory.",
    params=(
        Param("n", "int", 5_000_000, "Number of float64 elements", 1, 20_000_000),
        Param("repeats", "int", 3, "Repeats per method (the best counts)", 1, 100),
        Param("seed", "int", 1, "Random seed of the data", 0, 2**31 - 1),
    ),
    run=run,
    category="Sharing data",
)
