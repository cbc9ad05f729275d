"""Does the start latency the app reports agree with a plain stdlib measurement on this machine?

One small program starts STARTS processes one after another; each child sends ``time.perf_counter_ns()`` from
the first line of its target, the parent took it just before ``start()``: the stdlib's way to measure "start()
called to the child's first line".  For each start method, in ROUNDS rounds that alternate the variants:

* ``stdlib``: the program with the standard library's multiprocessing, untraced (the reference);
* ``app``: the same program written with core, run traced by the runner, and its start latency as the app
  reports it: ``mpgui.compare``'s ``start_latency_ms_p50`` from the run file (the comparison's figure, from
  ``start()`` called to the child's first instruction, as recorded);
* ``own``: the program's own measurement inside that traced run (so ``app / own`` checks the definition:
  same run, same processes, the app's records against the program's clock readings);
* ``core``: the core program untraced (so ``core / stdlib`` is what importing core costs a child, and
  ``app / core`` what tracing costs it).

Each figure is the median over every start of every round (STARTS x ROUNDS).  ``app_vs_stdlib`` is the
ratio the app must keep within 25% of 1.  Prints one JSON line, last.
Run: .venv/bin/python tests/bench/compare.py [METHOD ...]   (default: every method the platform has)
"""
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import report  # noqa: E402

from core.trace.runner import RunSpec, TracedRun  # noqa: E402
from mpgui.compare import read_run, started_children  # noqa: E402

STARTS = 10
ROUNDS = 3
#: The agreement the app's figure must keep with the stdlib's: within this fraction.
TOLERANCE = 0.25

#: The environment variable that says which library the program uses (its children, and the forkserver that
#: preloads its main module, read the same).
LIB_ENV = "MPGUI_BENCH_LIB"
PROGRAM = textwrap.dedent('''
    import json, os, sys, time
    if os.environ.get("%s") == "core":
        import core as multiprocessing
    else:
        import multiprocessing

    def first_line(conn):
        conn.send(time.perf_counter_ns())
        conn.close()

    if __name__ == "__main__":
        ctx = multiprocessing.get_context(sys.argv[1])
        out = []
        for _ in range(int(sys.argv[2])):
            r, w = ctx.Pipe(duplex=False)
            p = ctx.Process(target=first_line, args=(w,))
            t0 = time.perf_counter_ns()
            p.start()
            w.close()
            began = r.recv()
            p.join()
            out.append((began - t0) / 1e6)
        print(json.dumps(out))
''' % LIB_ENV)


def plain(script, method, lib):
    """Latencies (ms) the program measures itself, run untraced."""
    r = subprocess.run([sys.executable, script, method, str(STARTS)], capture_output=True, text=True,
                       check=True, timeout=300, env=dict(os.environ, **{LIB_ENV: lib}))
    return json.loads(r.stdout.strip().splitlines()[-1])


def traced(script, method, out):
    """Of a traced run of the core program: the app's figure (its p50), every start latency the run file
    holds (ms), and the program's own measurements."""
    run = TracedRun(RunSpec([sys.executable, script, method, str(STARTS)], out, kind="trace",
                            title="start latency", start_method=method, echo_output=(), replace=True,
                            env={LIB_ENV: "core"}))
    run.start()
    status = run.wait()
    if status != "done":
        raise RuntimeError("the traced run ended %s" % status)
    figures, model = read_run(out)
    recorded = [p.start_latency / 1e6 for p in started_children(model)]
    lines = [text for _, kind, text in _log(out) if kind == "stdout"]
    return figures.figures["start_latency_ms_p50"], recorded, json.loads(lines[-1])


def _log(path):
    from core.trace.store import RunFile
    with RunFile(path) as rf:
        return rf.read_all()[3]


def main(methods=()):
    out = {"starts_per_round": STARTS, "rounds": ROUNDS, "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as d:
        script = os.path.join(d, "first_line.py")
        with open(script, "w") as f:
            f.write(PROGRAM)
        for method in [m for m in multiprocessing.get_all_start_methods() if not methods or m in methods]:
            stdlib, core_plain, own, app, per_run = [], [], [], [], []
            for k in range(ROUNDS):
                stdlib += plain(script, method, "multiprocessing")
                p50, recorded, mine = traced(script, method, os.path.join(d, "%s-%d.mpgrun" % (method, k)))
                per_run.append(round(p50, 2))
                app += recorded
                own += mine
                core_plain += plain(script, method, "core")
            fig = {"stdlib_ms": statistics.median(stdlib), "app_ms": statistics.median(app),
                   "own_ms": statistics.median(own), "core_ms": statistics.median(core_plain),
                   "app_p50_per_run_ms": per_run}
            fig["app_vs_stdlib"] = fig["app_ms"] / fig["stdlib_ms"]
            fig["app_vs_own"] = fig["app_ms"] / fig["own_ms"]
            fig["core_vs_stdlib"] = fig["core_ms"] / fig["stdlib_ms"]
            fig["app_vs_core"] = fig["app_ms"] / fig["core_ms"]
            fig["within_25pct"] = abs(fig["app_vs_stdlib"] - 1) <= TOLERANCE
            fig["children_recorded"] = len(app)
            for key, value in fig.items():
                out["%s_%s" % (method, key)] = value
            print("%-10s stdlib %.1f ms, app %.1f ms (x%.2f), the program's own in the traced run %.1f ms "
                  "(app x%.2f), core untraced %.1f ms (x%.2f of stdlib)"
                  % (method, fig["stdlib_ms"], fig["app_ms"], fig["app_vs_stdlib"], fig["own_ms"],
                     fig["app_vs_own"], fig["core_ms"], fig["core_vs_stdlib"]), file=sys.stderr)
    report(out)


if __name__ == "__main__":
    main(sys.argv[1:])
