"""The app controls a run only through its runner (``main.py run ... --control-stdin``): ``kill PID`` and
``term PID`` reach processes of the run's own tree and nothing else, and each request is answered and kept in
the run file's log."""
import os
import subprocess
import sys
import time

import psutil

from core.trace.store import RunFile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAIN = os.path.join(ROOT, "main.py")


def wait_for(cond, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s" % what)


def _workers(runner_pid):
    """The scenario's worker processes (children of its main process, the runner's child)."""
    try:
        out = []
        for host in psutil.Process(runner_pid).children():
            if "_scenario-host" in " ".join(host.cmdline()):
                out += [c for c in host.children() if "resource_tracker" not in " ".join(c.cmdline())]
        return out
    except psutil.Error:
        return []


def test_kill_requests_reach_only_the_runs_own_processes(tmp_path):
    out = tmp_path / "c.mpgrun"
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    runner = subprocess.Popen([sys.executable, MAIN, "run", "pool_methods", "--set", "tasks=8", "--set",
                               "unit=1.0", "--out", str(out), "--quiet", "--control-stdin"],
                              env=dict(os.environ, MPGUI_HOME=str(tmp_path)), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(_workers(runner.pid)) >= 2 or runner.poll() is not None, what="the pool's workers")
        assert runner.poll() is None, runner.communicate()
        victim = _workers(runner.pid)[0].pid
        runner.stdin.write("kill %d\n" % bystander.pid)       # not the run's: refused
        runner.stdin.write("kill %d\n" % victim)              # a worker: killed
        runner.stdin.flush()
        # the pool notices (it reaps the dead worker, and records how it ended) before the run is cancelled: a
        # cancel right after the kill can end the pool first (on a busy machine it did), and then nothing
        # recorded the worker's end
        wait_for(lambda: victim not in {w.pid for w in _workers(runner.pid)},
                 what="the pool to reap its killed worker")
        runner.stdin.write("cancel\n")
        runner.stdin.flush()
        _, err = runner.communicate(timeout=60)
        assert bystander.poll() is None, "a process outside the run was signalled"
        assert "pid %d is not a process of this run: nothing was signalled." % bystander.pid in err
        assert "SIGKILL sent to pid %d at the user's request." % victim in err
        with RunFile(out) as rf:
            logs = [text for t, kind, text in rf.read_all()[3] if kind == "control"]
            model = rf.model()
        assert logs == ["pid %d is not a process of this run: nothing was signalled." % bystander.pid,
                        "SIGKILL sent to pid %d at the user's request." % victim]
        assert model.procs[victim].exit_text().startswith("killed by SIGKILL")
    finally:
        bystander.kill()
        bystander.wait()
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
