"""The spare collector process (``collect_process.start_spare``): started before a command knows its run, so
that it loads its modules meanwhile; the run takes it, an unused one ends with its starter; and the trace
directory's ownership it shares keeps the directory from being taken for stale while either owner lives."""
import os
import signal
import subprocess
import sys
import textwrap

import psutil

from core.trace import collect_process, tracedir
from core.trace.events import Kind
from core.trace.runner import RunSpec, TracedRun
from core.trace.store import RunFile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROGRAM = textwrap.dedent('''
    import core as multiprocessing

    if __name__ == "__main__":
        lock = multiprocessing.Lock()
        for _ in range(300):
            with lock:
                pass
        print("done")
''')


def _gone(pid):
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_next_run_takes_the_spare_and_records_everything(tmp_path):
    script = tmp_path / "prog.py"
    script.write_text(PROGRAM)
    collect_process.start_spare()
    spare = collect_process._spare
    assert spare is not None and spare.poll() is None
    run = TracedRun(RunSpec([sys.executable, str(script)], str(tmp_path / "r.mpgrun"), echo_output=()))
    try:
        run.start()
        assert run.collector.proc is spare                  # the spare drains this run
        assert collect_process._spare is None               # and is no one else's
        assert run.wait() == "done"
    finally:
        if not run.finalized:
            run.cancel()
            run.wait()
    assert spare.poll() is not None                         # ended and reaped with the run
    with RunFile(tmp_path / "r.mpgrun") as rf:
        events = rf.read_all()[0]
        meta = rf.meta()
    assert (events["kind"] == Kind.RELEASE).sum() == 300
    assert meta["events"] == len(events) and meta["dropped"] == 0


def test_an_unused_spare_ends_with_the_process_that_started_it():
    code = ("import sys; from core.trace import collect_process as c; c.start_spare(); print(c._spare.pid); "
            "sys.stdout.flush()")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert _gone(int(r.stdout))


def _holder(code, *args):
    """A process that runs ``code`` (which prints one line), then waits to be killed."""
    return subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom core.trace import tracedir\n" + code
                             + "\nsys.stdout.flush()\ntime.sleep(120)", *args], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)


def _kill(p):
    if p.poll() is None:
        p.kill()
    p.wait(10)
    p.stdout.close()


def test_a_trace_dir_is_stale_only_once_every_owner_is_gone():
    """The runner makes the directory, its collector holds it too: with the runner killed, the directory is
    the collector's still; with both gone, the next runner removes it."""
    runner = _holder("print(tracedir.make_trace_dir())")
    collector = None
    try:
        d = runner.stdout.readline().strip()
        assert os.path.isdir(d)
        collector = _holder("print(tracedir.hold_trace_dir(sys.argv[1]))", d)
        assert collector.stdout.readline().strip() == "True"
        runner.send_signal(signal.SIGKILL)
        runner.wait(10)
        tracedir.remove_stale_trace_dirs(os.path.dirname(d))
        assert os.path.isdir(d), "a directory its collector still drains was taken for stale"
        _kill(collector)
        tracedir.remove_stale_trace_dirs(os.path.dirname(d))
        assert not os.path.exists(d)
    finally:
        _kill(runner)
        if collector is not None:
            _kill(collector)
