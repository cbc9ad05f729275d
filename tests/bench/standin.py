"""What tracing an unmodified program costs (``main.py trace``, core standing in for multiprocessing).

* startup_ms_plain / startup_ms_standin: the median wall time of ``python -c pass`` without and with the
  stand-in's bootstrap on the path (a program that never imports multiprocessing pays only this); the
  modules the bootstrap adds to that interpreter are listed (``extra_modules``: should be empty);
* import_mp_ms_plain / import_mp_ms_standin: ``import multiprocessing`` alone, in a fresh interpreter (with
  the stand-in, core is imported then too);
* for each start method, the wall time of a Pool program and of a ProcessPoolExecutor program (the
  documentation's examples, made a little heavier): untraced (``python PROG``), traced by the stand-in in the
  program's own process tree (the program's environment as ``trace`` gives it, a collector draining the
  rings: the cost inside the program), and the whole ``main.py trace`` command (its own start-up, the
  collector, the run file and the summary included).

Every figure is the median of REPEAT runs, measured in this session, alternating between the variants.
Prints one JSON line, last.  Run: .venv/bin/python tests/bench/standin.py
"""
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ROOT, report  # noqa: E402

from core import standin  # noqa: E402
from core.trace import collector, tracedir  # noqa: E402
from core.trace.runner import child_env  # noqa: E402

REPEAT = 5
STARTUP_REPEAT = 30

POOL_PROGRAM = textwrap.dedent('''
    import sys
    from multiprocessing import Pool, set_start_method

    def f(x):
        return x * x

    if __name__ == "__main__":
        set_start_method(sys.argv[1])
        with Pool(processes=4) as pool:
            print(sum(pool.map(f, range(20000))))
            print(sum(pool.imap_unordered(f, range(2000))))
            print(sum(pool.apply_async(f, (i,)).get() for i in range(200)))
''')

EXECUTOR_PROGRAM = textwrap.dedent('''
    import concurrent.futures, math, multiprocessing, sys

    def is_prime(n):
        if n % 2 == 0:
            return n == 2
        return all(n % i for i in range(3, int(math.isqrt(n)) + 1, 2))

    if __name__ == "__main__":
        ctx = multiprocessing.get_context(sys.argv[1])
        with concurrent.futures.ProcessPoolExecutor(4, mp_context=ctx) as ex:
            print(sum(ex.map(is_prime, range(10**6, 10**6 + 20000), chunksize=200)))
            print(sum(f.result() for f in [ex.submit(is_prime, 10**9 + i) for i in range(500)]))
''')


def _wall(cmd, env=None, cwd=None):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    took = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError("%s failed: %s" % (cmd, r.stderr[-2000:]))
    return took


def _median_ms(samples):
    return round(1000 * statistics.median(samples), 1)


def startup(figures):
    plain_env = dict(os.environ)
    standin_env = standin.environment(dict(os.environ))
    cmd = [sys.executable, "-c", "pass"]
    plain, stood = [], []
    for _ in range(STARTUP_REPEAT):
        plain.append(_wall(cmd, plain_env))
        stood.append(_wall(cmd, standin_env))
    figures["startup_ms_plain"] = _median_ms(plain)
    figures["startup_ms_standin"] = _median_ms(stood)
    probe = [sys.executable, "-c", "import sys, json; print(json.dumps(sorted(sys.modules)))"]
    seen = [set(json.loads(subprocess.run(probe, env=env, capture_output=True, text=True).stdout))
            for env in (plain_env, standin_env)]
    figures["extra_modules"] = sorted(seen[1] - seen[0] - {"json", "json.decoder", "json.scanner", "json.encoder"})
    imp = [sys.executable, "-c", "import time; t = time.perf_counter(); import multiprocessing; "
           "print(time.perf_counter() - t)"]
    for name, env in (("plain", plain_env), ("standin", standin_env)):
        took = [float(subprocess.run(imp, env=env, capture_output=True, text=True).stdout) for _ in range(REPEAT)]
        figures["import_mp_ms_%s" % name] = _median_ms(took)


def programs(figures, folder):
    main = os.path.join(ROOT, "main.py")
    for label, source in (("pool", POOL_PROGRAM), ("executor", EXECUTOR_PROGRAM)):
        path = os.path.join(folder, "%s.py" % label)
        with open(path, "w") as f:
            f.write(source)
        for method in multiprocessing.get_all_start_methods():
            plain, traced, command = [], [], []
            for i in range(REPEAT):
                plain.append(_wall([sys.executable, path, method], cwd=folder))
                trace_dir = tracedir.make_trace_dir()
                col = collector.Collector(trace_dir, lambda batch: None).start()
                try:
                    traced.append(_wall([sys.executable, path, method], cwd=folder,
                                        env=child_env(trace_dir, stand_in=True)))
                finally:
                    col.stop()
                out = os.path.join(folder, "run-%s-%s-%d.mpgrun" % (label, method, i))
                command.append(_wall([sys.executable, main, "--home", folder, "trace", "--quiet", path, method,
                                      "--out", out], cwd=folder))
            key = "%s_%s" % (label, method)
            figures[key + "_s_plain"] = round(statistics.median(plain), 3)
            figures[key + "_s_traced"] = round(statistics.median(traced), 3)
            figures[key + "_s_trace_command"] = round(statistics.median(command), 3)
            figures[key + "_traced_ratio"] = round(statistics.median(traced) / statistics.median(plain), 2)


def main():
    figures = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    startup(figures)
    with tempfile.TemporaryDirectory() as folder:
        programs(figures, folder)
    report(figures)


if __name__ == "__main__":
    main()
