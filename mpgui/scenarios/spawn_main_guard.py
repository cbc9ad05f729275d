"""Why process creation must sit under ``if __name__ == "__main__":`` with spawn (and forkserver).

Lesson 3 of the notes: a spawned child starts a fresh interpreter and re-imports the parent's main module
(as ``__mp_main__``) to find the target.  Code at the module's top level runs again in the child; if that
code starts a process, the child would start one too, and so on.  multiprocessing stops it: the child raises
``RuntimeError: An attempt has been made to start a new process before the current process has finished its
bootstrapping phase`` and exits with code 1.

Shown safely, in a separate program: the scenario writes a tiny script into a temporary directory, once
without the guard and once with it, runs each with ``sys.executable`` (with a timeout; the script's whole
process tree is killed if it runs over) and reports what happened: the script's and its child's exit codes,
the error the child printed, how many processes ran the script's top level, and the time.  The scripts use
the run's start method (spawn or forkserver: fork does not re-import the main module, so it has no such
failure).  They import core from this source tree (its root is put on their PYTHONPATH) and are not traced:
they are separate programs, not part of this run.  A packaged (frozen) app has no ``python``: there its own
executable runs them (``mpgui _run-script SCRIPT``, mpgui.script_host), as ``python SCRIPT`` would.
"""
import os
import re
import subprocess
import sys
import tempfile
import time

import core
from core.trace.procs import kill_tree

from .base import Param, Result, Scenario

BODY = '''\
"""A tiny program: start one process with the {method} start method{what}."""
import os

import core as multiprocessing

print("top level of the script ran in pid", os.getpid(), "as", __name__, flush=True)


def square(x):
    print("child: %d squared is %d" % (x, x * x), flush=True)

'''

START = '''\
ctx = multiprocessing.get_context("{method}")
p = ctx.Process(target=square, args=(7,), name="square")
p.start()
p.join()
print("parent: child exit code", p.exitcode, flush=True)
'''

BOOTSTRAP_ERROR = "An attempt has been made to start a new process before the current process has finished " \
                  "its bootstrapping phase"


def script_text(method, guarded):
    body = BODY.format(method=method, what=", under the main guard" if guarded else ", without the main guard")
    start = START.format(method=method)
    if guarded:
        return body + 'if __name__ == "__main__":\n' + "".join("    " + ln + "\n" for ln in start.splitlines())
    return body + start


def script_env():
    """The scripts import core from this tree and are not traced (they are not part of this run)."""
    from core.trace import recorder
    env = dict(os.environ)
    env.pop(recorder.TRACE_ENV, None)
    env.pop(recorder.RING_ENV, None)
    root = os.path.dirname(os.path.dirname(os.path.abspath(core.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def script_command(path):
    """``python SCRIPT``; in the packaged app, whose executable is no Python, its stand-in for it."""
    if getattr(sys, "frozen", False):
        from ..script_host import SCRIPT_COMMAND
        return [sys.executable, SCRIPT_COMMAND, path]
    return [sys.executable, path]


def run_script(path, timeout):
    """Run one script; (exit code or None if it timed out, stdout, stderr, seconds)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(script_command(path), cwd=os.path.dirname(path), env=script_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:               # it overran: end it and every process it started
        kill_tree(proc.pid, grace=0.2, child=proc)
        out, err = proc.communicate()
        code = None
    except BaseException:                           # cancelled: leave nothing behind
        kill_tree(proc.pid, grace=0.2, child=proc)
        proc.communicate()
        raise
    return code, out, err, time.perf_counter() - t0


def outcome(code, out, err, secs):
    m = re.search(r"parent: child exit code (-?\d+)", out)
    error = ""
    if "RuntimeError" in err:
        tail = err[err.rindex("RuntimeError"):]
        text = " ".join(tail.split())
        error = text[:text.index(".") + 1] if "." in text else text
    return {"script_exit": code, "timed_out": code is None, "child_exitcode": int(m.group(1)) if m else None,
            "child_ran": "child: 7 squared is 49" in out, "top_level_runs": out.count("top level of the script ran"),
            "names": sorted(set(re.findall(r"ran in pid \d+ as (\S+)", out))),
            "bootstrap_error": BOOTSTRAP_ERROR in " ".join(err.split()), "error": error, "seconds": secs,
            "stdout": out[-2000:], "stderr": err[-4000:]}


def run(ctx, p, report):
    method = ctx.get_start_method()
    figures = {"method": method}
    rows = []
    with tempfile.TemporaryDirectory(prefix="mpgui-guard-") as tmp:
        for i, (key, guarded, label) in enumerate((("unguarded", False, "without the guard"),
                                                   ("guarded", True, "with the guard"))):
            report.phase(label)
            path = os.path.join(tmp, "%s.py" % key)
            with open(path, "w") as fh:
                fh.write(script_text(method, guarded))
            f = figures[key] = outcome(*run_script(path, p["timeout_s"]))
            report.progress(i + 1, 2)
            if f["timed_out"]:
                what = "timed out after %.0f s and was killed" % p["timeout_s"]
            elif f["child_ran"]:
                what = "the child ran its target"
            elif f["error"]:
                what = "the child failed: %s" % f["error"]
            else:
                what = "the child did not run its target"
            report.line("%s: script exit %s, child exit code %s, top level ran %d times (%s); %s (%.2f s)"
                        % (label, f["script_exit"], f["child_exitcode"], f["top_level_runs"],
                           ", ".join(f["names"]), what, f["seconds"]))
            rows.append((label, f["script_exit"], f["child_exitcode"], f["top_level_runs"],
                         "yes" if f["child_ran"] else "no", f["error"] or "-", "%.2f s" % f["seconds"]))
    u, g = figures["unguarded"], figures["guarded"]
    if u["bootstrap_error"]:
        first = ("Without the main guard the %s child re-imported the script (its top level ran in %d processes, "
                 "as %s), reached p.start() again and failed with RuntimeError: \"%s...\", child exit code %s "
                 "(%.2f s)." % (method, u["top_level_runs"], " and ".join(u["names"]), BOOTSTRAP_ERROR,
                                u["child_exitcode"], u["seconds"]))
    else:
        first = ("Without the main guard the %s child did not fail as expected: child exit code %s, script exit %s "
                 "(%.2f s)." % (method, u["child_exitcode"], u["script_exit"], u["seconds"]))
    second = ("With `if __name__ == \"__main__\":` the child re-imported it too but skipped the guarded part, ran "
              "square(7) and exited with code %s (%.2f s)." % (g["child_exitcode"], g["seconds"])
              if g["child_ran"] else "With the guard the child still did not run its target (exit code %s)."
              % g["child_exitcode"])
    return Result(first + " " + second, figures,
                  ("script", "script exit", "child exit", "top level ran", "target ran", "error", "time"), rows)


SCENARIO = Scenario(
    name="spawn_main_guard",
    title="spawn needs if __name__ == \"__main__\"",
    description="A tiny script that starts a process is run twice as a separate program: without the main "
                "guard (the child re-imports it and fails) and with it (it works).",
    lesson="With spawn (and forkserver), process creation must sit under if __name__ == \"__main__\": the "
           "child re-imports the main module.",
    params=(
        Param("timeout_s", "float", 30.0, "Longest either script may run before it is killed", 1.0, 600.0,
              unit="s"),
    ),
    run=run,
    start_methods=("spawn", "forkserver"),
    category="Start methods",
)
