"""The runner and the scenario command line: cancel leaves nothing behind, the history survives a killed
runner, and bad input is refused with one sentence before anything starts."""
import os
import signal
import subprocess
import sys
import tempfile
import time

import psutil
import pytest
from hypothesis import given, settings, strategies as st

from mpgui.scenario_run import prepare, start_run
from mpgui.scenarios import ParamError, catalog, get
from core.trace import tracedir
from core.trace.store import RunFile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAIN = os.path.join(ROOT, "main.py")
LONG = {"processes": "2", "increments": "1000000", "hold_ms": "1"}     # runs for minutes unless cancelled


def cli(args, home, **kw):
    env = dict(os.environ, MPGUI_HOME=str(home))
    return subprocess.Popen([sys.executable, MAIN] + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


def wait_for(cond, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s" % what)


def tree_of_host(pid):
    try:
        return [pid] + [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def _has_workers(run):
    return len(tree_of_host(run.proc.pid)) >= 3


def test_cancel_ends_the_tree_and_keeps_the_recording(tmp_path):
    scenario, params, method = prepare("lock_contention", None, LONG)
    out = tmp_path / "c.mpgrun"
    run = start_run(scenario, params, method, out=str(out), home=str(tmp_path / "home"), echo_output=())
    try:
        wait_for(lambda: _has_workers(run) and run.sink.events > 1000, what="workers recording")
        pids = tree_of_host(run.proc.pid)
        run.cancel()
        status = run.wait()
    finally:
        if run.status == "running":
            run.cancel()
            run.wait()
    # (how long a cancel takes is measured by tests/bench/cancel.py, never asserted here)
    assert status == "cancelled"
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    # the main process was ended by the cancel, and says so (it was not "exit 0")
    assert run.exit_code == -signal.SIGTERM
    with RunFile(out) as rf:
        meta = rf.meta()
        model = rf.model()
    assert meta["status"] == "cancelled" and meta["exit_code"] == -signal.SIGTERM
    assert model.procs[run.proc.pid].exit_text() == "killed by SIGTERM"
    assert model.events_seen >= 1000
    assert any(p.name.startswith("incrementer") for p in model.procs.values())


def long_cli_run(tmp_path, out):
    """``main.py run`` of a scenario that runs for minutes; returns (the runner, its scenario tree's pids) once
    the scenario's workers are running."""
    p = cli(["run", "lock_contention", "--set", "processes=2", "--set", "increments=1000000", "--set", "hold_ms=1",
             "--out", str(out), "--quiet"], tmp_path)

    def workers_running():
        # the runner's children: the scenario's main process (its children: the workers), the guardian and
        # the collector
        return sum(len(c.children()) for c in psutil.Process(p.pid).children()) >= 2

    try:
        wait_for(lambda: out.exists() and workers_running(), what="the scenario running")
    except BaseException:
        p.kill()
        p.communicate(timeout=10)
        raise
    return p, [c.pid for c in psutil.Process(p.pid).children(recursive=True)]


def test_sigterm_to_the_cli_runner_cancels(tmp_path):
    out = tmp_path / "s.mpgrun"
    p, host_tree = long_cli_run(tmp_path, out)
    try:
        time.sleep(0.3)
        p.send_signal(signal.SIGTERM)
        stdout, stderr = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 143, stderr              # 128 + SIGTERM, as shells report it
    assert "cancelled" in stderr and "Traceback" not in stderr
    wait_for(lambda: not [x for x in host_tree if psutil.pid_exists(x)
                          and psutil.Process(x).status() != psutil.STATUS_ZOMBIE], 3, "the tree to end")
    with RunFile(out) as rf:
        assert rf.meta()["status"] == "cancelled"
        assert rf.model().events_seen > 0


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.mark.parametrize("final", [None, "cut short"])
def test_history_entry_left_running_shows_what_the_run_file_says(tmp_path, final):
    """A runner that finished its run file but could not update the history (its disk was full), or that died
    before finishing: the entry it left ``running`` is listed with the run file's final status and figures,
    else as ``interrupted``."""
    from core.trace.store import RunWriter
    from mpgui.history import RunHistory
    history = RunHistory(tmp_path / "home")
    try:
        path = history.new_run_path("trace")
        writer = RunWriter(path, {"kind": "trace"}, replace=True)
        if final:
            writer.finish([], status=final, exit_code=3, events=1234, dropped=5)
        writer.close()
        history.begin("r1", path, "trace", title="trace flood.py")
        history._writer.execute("UPDATE runs SET runner_pid=? WHERE id='r1'", (_dead_pid(),))
    finally:
        history.close()
    reader = RunHistory(tmp_path / "home", readonly=True)
    try:
        (entry,) = reader.list()
    finally:
        reader.close()
    if final is None:
        assert entry["status"] == "interrupted"
    else:
        assert (entry["status"], entry["exit_code"], entry["events"], entry["dropped"]) == (final, 3, 1234, 5)


def test_history_survives_a_killed_runner(tmp_path):
    out = tmp_path / "k.mpgrun"
    p, host_tree = long_cli_run(tmp_path, out)
    try:
        time.sleep(0.5)                       # let the collector store some batches
        p.kill()
        p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
    # The scenario's tree notices its runner is gone and ends itself.
    wait_for(lambda: not [x for x in host_tree if psutil.pid_exists(x)
                          and psutil.Process(x).status() != psutil.STATUS_ZOMBIE], 10, "the orphaned tree to end")
    r = subprocess.run([sys.executable, MAIN, "runs"], env=dict(os.environ, MPGUI_HOME=str(tmp_path)),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    assert "lock_contention" in r.stdout and "interrupted" in r.stdout
    with RunFile(out) as rf:                  # what was recorded before the kill is readable
        assert rf.model().events_seen > 0
    # the killed runner could not remove its trace directory; the next collector does (on a shared machine
    # that may be another session's, which makes a new trace directory meanwhile)
    base = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    tracedir.remove_stale_trace_dirs(base)
    assert not [n for n in os.listdir(base) if n.startswith("%s%d-" % (tracedir.TRACE_DIR_PREFIX, p.pid))]


@pytest.mark.parametrize("args, needle", [
    (["run", "lock_contension"], "Did you mean 'lock_contention'"),
    (["run", "lock_contention", "--set", "procs=3"], "did you mean 'processes'"),
    (["run", "lock_contention", "--set", "processes=many"], "must be a whole number"),
    (["run", "lock_contention", "--set", "processes=100000"], "must be at most"),
    (["run", "lock_contention", "--set", "hold_ms=-1"], "must be at least"),
    (["run", "lock_contention", "--set", "mode=sometimes"], "must be one of"),
    (["run", "lock_contention", "--set", "processes"], "--set takes name=value"),
    (["run", "lock_contention", "--start-method", "teleport"], "no 'teleport' start method"),
])
def test_bad_input_is_one_sentence_and_starts_nothing(tmp_path, args, needle):
    p = cli(args, tmp_path)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 2
    assert needle in stderr
    assert "Traceback" not in stderr and stderr.strip().count("\n") == 0
    assert not (tmp_path / "runs").exists() or not os.listdir(tmp_path / "runs")


def test_scenarios_lists_every_scenario_and_parameter(tmp_path):
    p = cli(["scenarios"], tmp_path)
    stdout, _ = p.communicate(timeout=60)
    assert p.returncode == 0
    for sc in catalog().values():
        assert sc.name in stdout
        for prm in sc.params:
            assert "--set %s=" % prm.name in stdout


_texts = st.one_of(st.text(max_size=12), st.integers(-10**9, 10**9).map(str),
                   st.floats(allow_nan=True, allow_infinity=True).map(repr), st.sampled_from(["true", "no", ""]))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_parameter_validation_fuzz(data):
    """Any text for any parameter either parses to a value inside the schema, or is refused in one sentence."""
    sc = data.draw(st.sampled_from(list(catalog().values())))
    prm = data.draw(st.sampled_from(sc.params))
    raw = data.draw(_texts)
    try:
        value = sc.validate({prm.name: raw})[prm.name]
    except ParamError as e:
        msg = str(e)
        assert "\n" not in msg and msg.endswith((".", "?")) and prm.name in msg
        return
    if prm.type in ("int", "float"):
        assert prm.min <= value <= prm.max
        assert isinstance(value, int if prm.type == "int" else float)
    elif prm.type == "choice":
        assert value in prm.choices
    else:
        assert isinstance(value, bool)


def test_unknown_scenario_suggests_close_names():
    with pytest.raises(ParamError, match="pool_methods"):
        get("pool_method")


def test_an_observer_hears_the_program_end_before_the_run_is_finished(tmp_path):
    """``program_ended`` comes once the program's main process has ended and before the run is finalized
    (the CLI uses that moment to prepare its summary); observers without it (the history) are told the rest."""
    from core.trace.runner import RunSpec, TracedRun
    from mpgui.history import RunHistory
    heard = []

    class Observer:
        def run_started(self, run):
            heard.append(("started", run.proc))

        def program_ended(self, run):
            heard.append(("ended", run.proc.poll(), run.finalized))

        def run_finished(self, run):
            heard.append(("finished", run.status))

    script = tmp_path / "p.py"
    script.write_text("import core\nprint('hello')\n")
    out = tmp_path / "p.mpgrun"
    history = RunHistory(str(tmp_path / "home"))
    run = TracedRun(RunSpec([sys.executable, str(script)], str(out), echo_output=()),
                    observers=[history, Observer()])
    run.start()
    assert run.wait() == "done"
    assert heard == [("started", None), ("ended", 0, False), ("finished", "done")]
    assert [r["status"] for r in history.list()] == ["done"]


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="POSIX shared memory is listed in /dev/shm")
def test_a_segment_the_program_leaks_is_cleaned_up_and_said_in_the_run_file(tmp_path):
    """The program ends without unlinking its SharedMemory: its resource tracker (waited for after the
    collector's last drain) unlinks it and says so on stderr, which the run file keeps beside the program's
    own output; nothing of the tree is left running."""
    from core.trace.procs import group_members
    from core.trace.runner import RunSpec, TracedRun
    script = tmp_path / "leak.py"
    script.write_text("from core import shared_memory\n"
                      "if __name__ == '__main__':\n"
                      "    s = shared_memory.SharedMemory(create=True, size=4096)\n"
                      "    print('made', s.name, flush=True)\n"
                      "    s.close()\n")
    out = tmp_path / "leak.mpgrun"
    run = TracedRun(RunSpec([sys.executable, str(script)], str(out), echo_output=()))
    run.start()
    pid = run.proc.pid
    assert run.wait() == "done"
    with RunFile(out) as rf:
        logs = [(kind, text) for _, kind, text in rf.iter_log()]
        meta = rf.meta()
    name = next(text.split()[1] for kind, text in logs if kind == "stdout" and text.startswith("made "))
    assert not os.path.exists("/dev/shm/" + name.lstrip("/"))
    assert any("leaked shared_memory" in text for kind, text in logs if kind == "stderr") or \
        any(name in text for kind, text in logs if kind == "cleanup")
    assert meta["status"] == "done" and meta["exit_code"] == 0
    assert not group_members(pid)                          # the program's process group: nothing left
