"""A run's context everywhere: its parameters and every start method it used in the history and in ``runs``,
and in the Perfetto export's metadata; a history made before these were recorded still opens."""
import json
import os
import sqlite3
import subprocess
import sys

import pytest

from mpgui.history import RunHistory

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAIN = os.path.join(ROOT, "main.py")
#: start_methods in seconds: one worker, one task, a ten-item list, under every start method in one run.
SMALL_ALL = ["--set", "processes=1", "--set", "tasks=1", "--set", "task_ms=1", "--set", "list_items=10"]


def cli(args, home, timeout=180):
    env = dict(os.environ, MPGUI_HOME=str(home))
    return subprocess.run([sys.executable, MAIN] + [str(a) for a in args], capture_output=True, text=True,
                          env=env, timeout=timeout)


@pytest.fixture(scope="module")
def all_methods_run(tmp_path_factory):
    """One start_methods run that uses every start method (its ``methods`` parameter is "all")."""
    home = tmp_path_factory.mktemp("home")
    r = cli(["run", "start_methods", "--quiet"] + SMALL_ALL, home)
    assert r.returncode == 0, r.stderr
    h = RunHistory(str(home), readonly=True)
    try:
        (row,) = h.list()
    finally:
        h.close()
    return home, row


def test_a_run_that_used_every_start_method_is_labelled_with_all_of_them(all_methods_run):
    import multiprocessing
    home, row = all_methods_run
    assert row["methods"] == multiprocessing.get_all_start_methods()
    r = cli(["runs"], home)
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith(row["id"]))
    assert ", ".join(multiprocessing.get_all_start_methods()) in line


def test_runs_lists_the_parameters(all_methods_run):
    home, row = all_methods_run
    r = cli(["runs"], home)
    header, _, *lines = r.stdout.splitlines()
    assert "parameters" in header
    line = next(x for x in lines if x.startswith(row["id"]))
    assert "processes=1" in line and "list_items=10" in line and "methods=all" in line


def test_the_perfetto_export_carries_the_parameters_and_methods(all_methods_run, tmp_path):
    import multiprocessing
    home, row = all_methods_run
    out = tmp_path / "trace.json"
    r = cli(["export", row["id"], "--chrome", out], home)
    assert r.returncode == 0, r.stderr
    other = json.loads(out.read_text())["otherData"]
    assert other["scenario"] == "start_methods"
    assert "processes=1" in other["parameters"] and "tasks=1" in other["parameters"]
    assert other["start_methods"] == ", ".join(multiprocessing.get_all_start_methods())


def test_a_history_from_before_methods_and_comparisons_still_opens_and_labels_old_runs(tmp_path):
    """An old database (no ``methods`` nor ``comparison`` column): read-only it lists its runs, a multi-method
    run labelled with every method its parameters named; opened to write, it gains the columns."""
    import multiprocessing
    home = tmp_path / "home"
    (home / "runs").mkdir(parents=True)
    db = sqlite3.connect(str(home / "history.sqlite"))
    db.executescript("""
        CREATE TABLE runs(
            id TEXT PRIMARY KEY, path TEXT NOT NULL, kind TEXT NOT NULL, scenario TEXT, title TEXT,
            params TEXT, start_method TEXT, machine TEXT, started REAL, ended REAL, status TEXT NOT NULL,
            lesson TEXT, events INTEGER DEFAULT 0, dropped INTEGER DEFAULT 0, exit_code INTEGER, runner_pid INTEGER);
        INSERT INTO runs(id, path, kind, scenario, params, start_method, started, status)
            VALUES('old1', '/nowhere/a.mpgrun', 'scenario', 'start_methods', '{"methods": "all", "processes": 2}',
                   'fork', 1.0, 'done');
        INSERT INTO runs(id, path, kind, scenario, params, start_method, started, status)
            VALUES('old2', '/nowhere/b.mpgrun', 'scenario', 'lock_contention', '{"processes": 2}', 'spawn', 2.0,
                   'done');
    """)
    db.commit()
    db.close()
    h = RunHistory(str(home), readonly=True)
    rows = {r["id"]: r for r in h.list()}
    h.close()
    assert rows["old1"]["methods"] == multiprocessing.get_all_start_methods()
    assert rows["old2"]["methods"] == ["spawn"] and rows["old2"]["comparison"] is None
    h = RunHistory(str(home))
    try:
        h.begin("new1", str(home / "runs" / "n.mpgrun"), "scenario", "lock_contention", params={"processes": 3},
                start_method="forkserver", methods=["forkserver"], comparison="cmp1")
        assert [r["id"] for r in h.comparison_runs("cmp1")] == ["new1"]
        assert {r["id"] for r in h.list()} == {"old1", "old2", "new1"}
    finally:
        h.close()


def test_the_history_keeps_a_comparison_in_the_order_its_runs_started(tmp_path):
    h = RunHistory(str(tmp_path / "home"))
    try:
        for i, m in enumerate(["fork", "spawn", "fork"]):
            h.begin("r%d" % i, str(tmp_path / ("%d.mpgrun" % i)), "scenario", "pool_methods", params={"tasks": 4},
                    start_method=m, methods=[m], comparison="c1")
        h.begin("x", str(tmp_path / "x.mpgrun"), "scenario", "pool_methods", start_method="fork")
        runs = h.comparison_runs("c1")
        assert [(r["id"], r["methods"]) for r in runs] == [("r0", ["fork"]), ("r1", ["spawn"]), ("r2", ["fork"])]
        assert h.comparison_runs("nope") == []
    finally:
        h.close()
