"""``main.py compare``: a scenario under several start methods, N times each, one run file per run in the
history under one comparison id, a column per method; runs from the history side by side with what differs;
bad input refused with one sentence before anything starts; Stop (``cancel`` on stdin) ends the comparison."""
import json
import os
import subprocess
import sys
import time

import psutil
import pytest

from mpgui.history import RunHistory

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAIN = os.path.join(ROOT, "main.py")
#: lock_contention in a second or two a run: two workers, a few increments, with the lock only, each holding it
#: a millisecond, so the workers live long enough for the resource monitor (10 Hz) to see them.
SMALL = ["--set", "processes=2", "--set", "increments=200", "--set", "mode=with lock", "--set", "hold_ms=1"]


def cli(args, home, timeout=300):
    env = dict(os.environ, MPGUI_HOME=str(home))
    return subprocess.run([sys.executable, MAIN] + [str(a) for a in args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def history_rows(home):
    h = RunHistory(str(home), readonly=True)
    try:
        return h.list(limit=1000)
    finally:
        h.close()


@pytest.fixture(scope="module")
def two_methods_twice(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    r = cli(["compare", "lock_contention", "--methods", "fork,spawn", "--repeat", "2", "--json", "--quiet"] + SMALL,
            home)
    return home, r


def test_compare_runs_each_method_the_number_of_repeats_and_prints_a_column_per_method(two_methods_twice):
    home, r = two_methods_twice
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert list(out["methods"]) == ["fork", "spawn"]
    assert [out["methods"][m]["runs"] for m in ("fork", "spawn")] == [2, 2]
    assert [run["method"] for run in out["runs"]] == ["fork", "spawn", "fork", "spawn"]
    assert all(run["status"] == "done" and run["params"]["increments"] == 200 for run in out["runs"])
    for m in ("fork", "spawn"):
        fig = out["methods"][m]
        assert fig["start_latency_ms_p50"] > 0 and fig["start_latency_ms_p95"] >= fig["start_latency_ms_p50"]
        assert fig["makespan_s"] > 0 and fig["rss_mb_per_child"] > 0 and fig["uss_mb_per_child"] > 0
        assert "first_result_s" in fig and fig["sd"]["start_latency_ms_p50"] is not None
    header = next(line for line in r.stdout.splitlines() if line.startswith("figure"))
    assert "fork (2 runs)" in header and "spawn (2 runs)" in header
    assert any(line.startswith("start latency p50 (ms)") and "±" in line for line in r.stdout.splitlines())


def test_the_runs_of_a_comparison_are_in_the_history_under_one_id_each_reopenable(two_methods_twice):
    home, r = two_methods_twice
    out = json.loads(r.stdout.strip().splitlines()[-1])
    rows = history_rows(home)
    assert len(rows) == 4 and len({row["comparison"] for row in rows}) == 1
    assert sorted(row["methods"][0] for row in rows) == ["fork", "fork", "spawn", "spawn"]
    assert {row["path"] for row in rows} == {run["path"] for run in out["runs"]}
    assert all(os.path.isfile(row["path"]) for row in rows)
    # the comparison again, from its id
    again = cli(["compare", rows[0]["comparison"], "--json"], home)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.strip().splitlines()[-1])["methods"]["spawn"]["runs"] == 2


def test_a_scenario_that_runs_several_methods_in_one_run_runs_only_its_runs_method(tmp_path):
    r = cli(["compare", "start_methods", "--methods", "fork", "--repeat", "1", "--json", "--quiet",
             "--set", "processes=1", "--set", "tasks=1", "--set", "task_ms=1", "--set", "list_items=10"], tmp_path)
    assert r.returncode == 0, r.stderr
    (run,) = json.loads(r.stdout.strip().splitlines()[-1])["runs"]
    assert run["params"]["methods"] == "chosen" and run["methods"] == ["fork"]


def test_two_runs_from_the_history_side_by_side_with_their_parameter_differences(tmp_path):
    home = tmp_path / "home"
    for processes in ("2", "3"):
        r = cli(["run", "lock_contention", "--quiet", "--start-method", "fork", "--set", "processes=" + processes,
                 "--set", "increments=100", "--set", "mode=with lock"], home)
        assert r.returncode == 0, r.stderr
    a, b = sorted(history_rows(home), key=lambda row: row["started"])
    r = cli(["compare", a["id"], b["id"], "--json"], home)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    at = lines.index("what differs:")
    assert lines[at + 1].split()[:3] == ["parameter", a["id"], b["id"]]
    assert lines[at + 3].split() == ["processes", "2", "3"]
    out = json.loads(lines[-1])
    assert list(out["groups"]) == ["processes=2", "processes=3"]
    assert [g["runs"] for g in out["groups"].values()] == [1, 1]
    assert any(line.startswith("figure") and "processes=2" in line and "processes=3" in line for line in lines)


@pytest.mark.parametrize("args, says", [
    (["lock_contention", "--methods", "fork,bogus"], "This platform has no 'bogus' start method"),
    (["spawn_main_guard", "--methods", "fork"], "does not use the fork start method: choose one of spawn"),
    (["lock_contention", "--repeat", "0"], "--repeat takes a number of runs per start method from 1"),
    (["lock_contention", "--set", "processes=many"], "must be a whole number"),
    (["start_methods", "--set", "methods=all"], "leave --set methods out"),
    (["0123abcd", "fedc9876"], "No run '0123abcd'"),
    (["nosuchthing"], "is neither a scenario nor a comparison"),
    (["lock_contention", "pool_methods"], "one scenario"),
])
def test_bad_input_is_one_sentence_and_exit_code_2_with_nothing_started(tmp_path, args, says):
    r = cli(["compare"] + args, tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert says in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert history_rows(tmp_path) == []


def test_cancel_on_stdin_stops_the_run_going_on_and_starts_no_other(tmp_path):
    """The app's Stop: ``cancel`` cancels the run going on; the rest of the comparison never starts."""
    env = dict(os.environ, MPGUI_HOME=str(tmp_path))
    p = subprocess.Popen([sys.executable, MAIN, "compare", "lock_contention", "--methods", "fork,spawn",
                          "--repeat", "3", "--quiet", "--control-stdin", "--set", "processes=2",
                          "--set", "increments=1000000", "--set", "hold_ms=1"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        started = json.loads(p.stdout.readline())
        assert started["compare"] == "started" and started["index"] == 0 and started["total"] == 6
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(psutil.Process(p.pid).children(recursive=True)) < 4:
            time.sleep(0.05)
        p.stdin.write("cancel\n")
        p.stdin.flush()
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 130, err
    finished = json.loads(out.splitlines()[0])
    assert finished["compare"] == "finished" and finished["status"] == "cancelled"
    assert "comparison cancelled after 0 of 6 runs" in err
    rows = history_rows(tmp_path)
    assert [row["status"] for row in rows] == ["cancelled"]
