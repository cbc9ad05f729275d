"""Tracing at scale: what ``main.py trace`` does with a hot program and how quickly it ends.

One function per figure (each returns a dict of figures); ``main`` runs them all and prints one JSON object
as its last line, so a figure is added by writing its function and listing it in ``FIGURES``.

* ``hot``: 4 processes each doing ``HOT_PAIRS`` ``with lock: pass`` on one traced core.Lock, recorded by
  ``main.py trace`` with the default ring size.  ``hot_drop_ratio`` = dropped / produced (recorded +
  dropped); goal <= 0.001.  Also the command's wall time, the program's own time (it prints it), the largest
  resident set of any process of the command's tree (the runner, before this issue), the run file's size.
* ``end``: a program that makes and unlinks one SharedMemory segment (so the stdlib's resource tracker
  starts), traced.  ``end_overhead_s`` = the command's wall time minus the program's own wall time run
  untraced (best of ``END_REPEAT`` each); goal <= 0.3 s.

Runs on whatever the machine is doing: other load shows in the figures (the drop ratio most of all).
"""
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ROOT, report  # noqa: E402

MAIN = os.path.join(ROOT, "main.py")
HOT_PROCESSES = 4
HOT_PAIRS = 250_000
END_REPEAT = 3

HOT_PROGRAM = textwrap.dedent('''
    import sys, time
    import core as multiprocessing

    def work(lock, n):
        for _ in range(n):
            with lock:
                pass

    if __name__ == "__main__":
        lock = multiprocessing.Lock()
        t0 = time.perf_counter()
        ps = [multiprocessing.Process(target=work, args=(lock, %d)) for _ in range(%d)]
        for p in ps:
            p.start()
        for p in ps:
            p.join()
        print("program_s", time.perf_counter() - t0)
''') % (HOT_PAIRS, HOT_PROCESSES)

SHM_PROGRAM = textwrap.dedent('''
    import core as multiprocessing
    from core import shared_memory

    if __name__ == "__main__":
        segment = shared_memory.SharedMemory(create=True, size=4096)
        segment.buf[0] = 1
        segment.close()
        segment.unlink()
''')


def _timed_command(argv, env=None):
    """Run ``argv``; (wall seconds, stdout, largest resident set in MiB of any process of its tree)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                         env=env, text=True)
    out = p.stdout.read()
    # wait4's resource usage covers the child and every descendant it waited for: its maxrss is the largest
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(argv), p.returncode, out[-2000:]))
    return wall, out, usage.ru_maxrss / 1024.0


def _trace(script, out, home):
    return _timed_command([sys.executable, MAIN, "--home", home, "trace", script, "--out", out, "--force"])


def _run_figures(path):
    from core.trace.store import RunFile
    with RunFile(path) as rf:
        meta = rf.meta()
        return int(meta.get("events") or 0), int(meta.get("dropped") or 0)


def hot(tmp):
    script = os.path.join(tmp, "hot.py")
    with open(script, "w") as f:
        f.write(HOT_PROGRAM)
    out = os.path.join(tmp, "hot.mpgrun")
    wall, stdout, rss = _trace(script, out, os.path.join(tmp, "home"))
    recorded, dropped = _run_figures(out)
    program = float(re.search(r"program_s (\S+)", stdout).group(1))
    return {"hot_drop_ratio": dropped / max(1, recorded + dropped), "hot_recorded": recorded,
            "hot_dropped": dropped, "hot_wall_s": wall, "hot_program_s": program, "hot_peak_rss_mb": rss,
            "hot_run_file_mb": os.path.getsize(out) / 2 ** 20}


def end(tmp):
    script = os.path.join(tmp, "shm.py")
    with open(script, "w") as f:
        f.write(SHM_PROGRAM)
    env = dict(os.environ, PYTHONPATH=ROOT)
    untraced = min(_timed_command([sys.executable, script], env)[0] for _ in range(END_REPEAT))
    traced = min(_trace(script, os.path.join(tmp, "shm.mpgrun"), os.path.join(tmp, "home"))[0]
                 for _ in range(END_REPEAT))
    return {"end_overhead_s": traced - untraced, "end_traced_s": traced, "end_untraced_s": untraced}


#: The figures, in the order they run.
FIGURES = [hot, end]


def main():
    figures = {}
    with tempfile.TemporaryDirectory(prefix="mpgui-bench-scale-") as tmp:
        for fn in FIGURES:
            figures.update(fn(tmp))
    report(figures)


if __name__ == "__main__":
    main()
