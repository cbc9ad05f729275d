"""Traced runs at scale, end to end: a run ends when its program ends, a hot program loses no events, a run
file stops growing at its size cap, and the summary comes from one streaming pass over the run."""
import ctypes
import os
import subprocess
import sys
import textwrap

import pytest

from core.trace.events import Kind
from core.trace.runner import ORPHAN_GRACE
from core.trace.store import RunFile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAIN = os.path.join(ROOT, "main.py")


def run_cli(args, home, timeout=180, preexec_fn=None, env=None):
    full_env = dict(os.environ, MPGUI_HOME=str(home))
    full_env.update(env or {})
    return subprocess.run([sys.executable, MAIN] + [str(a) for a in args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, preexec_fn=preexec_fn, stdin=subprocess.DEVNULL)


# ----------------------------------------------------------------------------------------------------------
# no dead time: the run ends when the program ends
# ----------------------------------------------------------------------------------------------------------

HELPERS = {
    # the stdlib's resource tracker: started by the first SharedMemory, outlives the main process briefly
    "resource tracker": textwrap.dedent('''
        import core as multiprocessing
        from core import shared_memory

        if __name__ == "__main__":
            segment = shared_memory.SharedMemory(create=True, size=4096)
            segment.close()
            segment.unlink()
    '''),
    # the forkserver: ends once the main process is gone
    "forkserver": textwrap.dedent('''
        import core as multiprocessing

        def nothing():
            pass

        if __name__ == "__main__":
            p = multiprocessing.get_context("forkserver").Process(target=nothing)
            p.start()
            p.join()
    '''),
}


def _become_subreaper():
    """Orphans of the command's tree become its children, and it reaps none but its own: as under a
    container's first process that does not reap, every helper that outlives the program's main process stays
    a zombie.  (Kept across exec.)"""
    PR_SET_CHILD_SUBREAPER = 36
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        os._exit(99)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="child subreapers are Linux's")
@pytest.mark.parametrize("helper", sorted(HELPERS))
def test_a_run_ends_when_its_program_ends(tmp_path, helper):
    """Helpers that end after the main process (and are not reaped at once) add no time to the run: the
    recorded end of the run (its last sample or event, and its end) is the end of the program's main process,
    in the trace's own clock."""
    import multiprocessing
    if helper == "forkserver" and "forkserver" not in multiprocessing.get_all_start_methods():
        pytest.skip("no forkserver here")
    script = tmp_path / "helper.py"
    script.write_text(HELPERS[helper])
    out = tmp_path / "run.mpgrun"
    r = run_cli(["trace", "--quiet", script, "--out", out], tmp_path / "home", preexec_fn=_become_subreaper)
    assert r.returncode == 0, r.stderr
    with RunFile(out) as rf:
        meta = rf.meta()
        model = rf.model()
        (main_exit,) = [reg["time"] for reg in rf.read_all()[1] if reg.get("t") == "exit"]
    # Before, the runner waited ORPHAN_GRACE for the zombies to go, then tried to kill them.
    assert meta["ended_perf"] - main_exit < ORPHAN_GRACE * 1e9 / 2, (meta["ended_perf"] - main_exit) / 1e9
    assert model.t_last - main_exit < ORPHAN_GRACE * 1e9 / 2, (model.t_last - main_exit) / 1e9


# ----------------------------------------------------------------------------------------------------------
# a hot program loses nothing, even while its runner does not run
# ----------------------------------------------------------------------------------------------------------

HOT = textwrap.dedent('''
    import os, sys
    import core as multiprocessing

    def work(lock, n):
        for _ in range(n):
            with lock:
                pass

    if __name__ == "__main__":
        lock = multiprocessing.Lock(name="hot")
        ps = [multiprocessing.Process(target=work, args=(lock, int(sys.argv[2]))) for _ in range(2)]
        for p in ps:
            p.start()
        with open(sys.argv[1] + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(sys.argv[1] + ".tmp", sys.argv[1])
        for p in ps:
            p.join()
''')
#: Lock pairs per process: each process records more than its rings hold (a thread's rings, grown to the
#: largest, hold about 218,000 records), so nothing must wait for the runner to drain them.
HOT_PAIRS = 150_000


def wait_for(cond, timeout=120.0, what="condition"):
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for %s" % what)


def ended(pid):
    import psutil
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


@pytest.mark.skipif(os.name != "posix", reason="stops the runner with SIGSTOP")
def test_a_hot_program_loses_no_events_while_its_runner_is_stalled(tmp_path):
    """The runner stops (SIGSTOP: as when its threads cannot get the CPU or the GIL) while the program records
    at full speed, from when its workers start until its main process ended: every event is kept, because
    draining the rings does not wait for the runner."""
    import signal
    script = tmp_path / "hot.py"
    script.write_text(HOT)
    started = tmp_path / "started"
    out = tmp_path / "hot.mpgrun"
    runner = subprocess.Popen([sys.executable, MAIN, "trace", "--quiet", str(script), str(started), str(HOT_PAIRS),
                               "--out", str(out)], env=dict(os.environ, MPGUI_HOME=str(tmp_path / "home")),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(started.exists, what="the program's workers to start")
        os.kill(runner.pid, signal.SIGSTOP)
        try:
            main_pid = int(started.read_text())
            wait_for(lambda: ended(main_pid), what="the program to end")
        finally:
            os.kill(runner.pid, signal.SIGCONT)
        stdout, stderr = runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
    assert runner.returncode == 0, stderr
    with RunFile(out) as rf:
        meta = rf.meta()
    assert meta["dropped"] == 0
    assert meta["events"] >= 2 * 2 * HOT_PAIRS


GROUP_PROBE = textwrap.dedent('''
    import os
    import core as multiprocessing

    def where():
        return "%d,%d" % (os.getsid(0), os.getpgid(0))

    if __name__ == "__main__":
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            print("main", where(), "worker", pool.apply(where), flush=True)
''')


@pytest.mark.skipif(os.name != "posix", reason="sessions and process groups are POSIX's")
def test_a_traced_program_shares_the_session_of_its_command_in_a_group_of_its_own(tmp_path):
    """The program's processes are in a process group of their own (a Ctrl+C at the terminal is for the
    command, which then stops the run) but in the command's session: on Linux one scheduling group with the
    collector, which then gets a CPU within milliseconds when the program keeps every core busy, while the
    program competes with the machine's other work as before (see procs.own_group)."""
    script = tmp_path / "probe.py"
    script.write_text(GROUP_PROBE)
    p = run_cli(["trace", str(script), "--out", tmp_path / "probe.mpgrun"], tmp_path / "home")
    assert p.returncode == 0, p.stderr
    line = next(x for x in p.stdout.splitlines() if x.startswith("main "))
    _, main_at, _, worker_at = line.split()
    sid, pgid = (int(x) for x in main_at.split(","))
    assert worker_at == main_at, "the program's processes share its session and group"
    assert sid == os.getsid(0), "the command's session"
    assert pgid not in (os.getpgid(0), sid), "a group of its own"


ECHO = textwrap.dedent('''
    import core as multiprocessing

    if __name__ == "__main__":
        print("got", input(), flush=True)
''')


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a controlling terminal made by ioctl (Linux)")
def test_a_program_traced_from_a_terminal_reads_it(tmp_path):
    """``trace`` from a shell hands the program the terminal: the program reads it (a program in a background
    group of the terminal's session would be stopped by the first read)."""
    import fcntl
    import pty
    import termios
    script = tmp_path / "echo.py"
    script.write_text(ECHO)
    master, slave = pty.openpty()

    def terminal():                     # a session whose controlling terminal is the pty, as a shell's
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    p = subprocess.Popen([sys.executable, MAIN, "trace", str(script), "--out", str(tmp_path / "e.mpgrun")],
                         env=dict(os.environ, MPGUI_HOME=str(tmp_path / "home")), stdin=slave,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=terminal)
    os.close(slave)
    try:
        os.write(master, b"hello\n")
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
        os.close(master)
    assert p.returncode == 0, err
    assert "got hello" in out


# ----------------------------------------------------------------------------------------------------------
# the summary: one streaming pass, the model's figures
# ----------------------------------------------------------------------------------------------------------

SCENARIOS = {
    "pool_methods": {"unit": 0.1, "review": 0.05, "tasks": 4, "processes": 4},
    "maxtasksperchild": {"processes": 2, "tasks": 12, "maxtasksperchild": 3, "task_ms": 10},
    "process_lifecycle": {"unit_s": 0.1, "exit_code": 7},
    "rlock": {"processes": 2, "depth": 12, "rounds": 20, "hold_ms": 0.5, "timeout": 0.3},
    "semaphore": {"processes": 3, "slots": 2, "rounds": 4, "hold_ms": 20, "extra": 2},
    "chunksize": {"processes": 2, "tasks": 8, "long_tasks": 2, "short_ms": 5, "long_ms": 100, "big_chunksize": 4,
                  "tiny_tasks": 2000, "tiny_chunksize": 200},
}


def figures_of_summary(summary):
    return {"events": summary.events, "dropped": summary.dropped, "tasks": summary.tasks,
            "duration_s": summary.duration_s,
            "processes": [(p.pid, p.role, p.name, p.method, p.start_latency, p.exit_text() or p.state)
                          for p in summary.processes],
            "contention": [o.as_dict() for o in summary.contention]}


def figures_of_model(model):
    s = model.summary()
    return {"events": s["events"], "dropped": s["dropped"], "tasks": s["tasks"], "duration_s": s["duration_s"],
            "processes": [(p.pid, p.role, p.name, p.method, p.start_latency, p.exit_text() or p.state)
                          for p in model.processes_table()],
            "contention": [c for c in model.contention() if c["acquired"] or c["contended"]][:5]}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_summary_has_the_models_figures(tmp_path, scenario):
    from core.trace.summary import summarize
    out = tmp_path / "run.mpgrun"
    sets = [x for k, v in SCENARIOS[scenario].items() for x in ("--set", "%s=%s" % (k, v))]
    r = run_cli(["run", scenario, "--quiet", "--out", out] + sets, tmp_path / "home")
    assert r.returncode == 0, r.stderr
    with RunFile(out) as rf:
        summary = summarize(rf)
        model = rf.model()
    assert figures_of_summary(summary) == figures_of_model(model)


# ----------------------------------------------------------------------------------------------------------
# the size cap
# ----------------------------------------------------------------------------------------------------------

CAPPED = textwrap.dedent('''
    import sys
    import core as multiprocessing

    def work(lock, n):
        for _ in range(n):
            with lock:
                pass

    if __name__ == "__main__":
        lock = multiprocessing.Lock(name="capped")
        ps = [multiprocessing.Process(target=work, args=(lock, 400_000)) for _ in range(2)]
        for p in ps:
            p.start()
        for p in ps:
            p.join()
        print("program done")
''')


def test_a_run_file_stops_growing_at_its_size_cap(tmp_path):
    """A tiny cap: the run goes on to its end, the events past the cap are dropped and counted, the file stays
    under the cap, and the command says so in one sentence."""
    script = tmp_path / "capped.py"
    script.write_text(CAPPED)
    out = tmp_path / "capped.mpgrun"
    cap = 1 << 20                            # the smallest: room for about half of its 1.6 million events
    r = run_cli(["trace", "--quiet", "--max-size", "1M", script, "--out", out], tmp_path / "home")
    assert r.returncode == 0, r.stderr
    assert os.path.getsize(out) <= cap + (64 << 10)            # the final status may take a page more
    with RunFile(out) as rf:
        meta = rf.meta()
        logs = [text for _, _, text in rf.read_all()[3]]
        stored = sum(len(c) for c in rf.iter_chunks())
    assert meta["status"] == "done" and meta["max_size"] == cap
    assert "program done" in logs                                  # the run went on to its end
    size_cap = meta["size_cap"]
    assert size_cap["limit"] == cap and size_cap["events_dropped"] > 0
    assert meta["events"] == stored
    assert meta["dropped"] >= size_cap["events_dropped"]
    assert stored + meta["dropped"] >= 2 * 2 * 400_000             # every event recorded is stored or counted
    told = [line for line in r.stderr.splitlines() if line.startswith("mpgui:")]
    assert len(told) == 1 and "size cap" in told[0] and "--max-size" in told[0], r.stderr
    assert "%d later events were dropped" % size_cap["events_dropped"] in told[0]


@pytest.mark.parametrize("given", ["lots", "1k", "5X", "=-5M"])
def test_a_bad_size_cap_is_one_sentence(tmp_path, given):
    script = tmp_path / "capped.py"
    script.write_text(CAPPED)
    option = ["--max-size" + given] if given.startswith("=") else ["--max-size", given]
    for command in (["trace"] + option + [script], ["run", "lock_contention"] + option):
        r = run_cli(command, tmp_path / "home")
        assert r.returncode == 2
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "--max-size" in lines[0] and "Traceback" not in r.stderr, r.stderr
        assert "program done" not in r.stdout


# ----------------------------------------------------------------------------------------------------------
# a collector process that dies
# ----------------------------------------------------------------------------------------------------------

AFTER_THE_COLLECTOR = textwrap.dedent('''
    import os, sys, time
    import core as multiprocessing

    if __name__ == "__main__":
        lock = multiprocessing.Lock(name="after")
        open(sys.argv[2], "w").close()
        while not os.path.exists(sys.argv[1]):
            time.sleep(0.01)
        for _ in range(5000):
            with lock:
                pass
        print("recorded after the collector died")
''')


def test_when_the_collector_process_dies_the_runner_keeps_what_follows(tmp_path):
    """What the program records and prints after its collector process died is still in the run file: the
    runner writes the output itself and drains the rings at the end."""
    from core.trace.runner import RunSpec, TracedRun
    script = tmp_path / "after.py"
    script.write_text(AFTER_THE_COLLECTOR)
    go, ready, out = tmp_path / "go", tmp_path / "ready", tmp_path / "after.mpgrun"
    run = TracedRun(RunSpec([sys.executable, str(script), str(go), str(ready)], str(out), echo_output=()))
    run.start()
    try:
        wait_for(lambda: ready.exists() and run.sink.ready, what="the program and its collector")
        run.collector.proc.kill()
        run.collector.proc.wait()
        go.touch()
        status = run.wait()
    finally:
        if not run.finalized:
            run.cancel()
            run.wait()
    assert status == "done"
    with RunFile(out) as rf:
        meta = rf.meta()
        events, _, _, logs = rf.read_all()
    texts = [text for _, _, text in logs]
    assert "recorded after the collector died" in texts
    assert any("collector process ended before the run did" in text for text in texts)
    assert (events["kind"] == Kind.RELEASE).sum() == 5000
    assert meta["events"] == len(events) and meta["dropped"] == 0
