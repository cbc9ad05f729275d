"""Scenarios run headless with small parameters under each start method and record what their lesson needs."""
import numpy as np

from core.trace.events import JobMethod
from core.trace.model import Span

from scenario_testing import run_scenario


def test_pool_methods_imap_vs_unordered(tmp_path, start_method):
    r = run_scenario("pool_methods", start_method, {"unit": 0.1, "review": 0.05, "tasks": 4, "processes": 4},
                     tmp_path)
    assert r.status == "done", r.error
    f = r.figures
    assert f["imap"]["order"] == [0, 1, 2, 3]                  # submission order
    assert f["imap_unordered"]["order"] == [3, 2, 1, 0]        # completion order: slowest was first
    assert f["imap_unordered"]["first_result_s"] < f["imap"]["first_result_s"]
    assert "imap_unordered delivered the first result" in r.lesson
    # the timeline has what the Gantt charts need: every task with its worker, start and end
    tasks = r.model.tasks_array()
    tasks = tasks[np.isin(tasks["method"], [JobMethod.IMAP, JobMethod.IMAP_UNORDERED])]
    assert len(tasks) == 8
    assert (tasks["worker"] > 0).all() and (tasks["end"] > tasks["start"]).all()
    # the caller used imap's results in submission order, imap_unordered's in completion order
    for method, expect in ((JobMethod.IMAP, [0, 1, 2, 3]), (JobMethod.IMAP_UNORDERED, [3, 2, 1, 0])):
        t = tasks[tasks["method"] == method]
        assert t["index"][np.argsort(t["used"])].tolist() == expect


def test_lock_contention_counts_lost_updates(tmp_path, start_method):
    r = run_scenario("lock_contention", start_method, {"processes": 2, "increments": 3000}, tmp_path)
    assert r.status == "done", r.error
    f = r.figures
    assert f["with lock"]["total"] == f["with lock"]["expected"] == 6000
    assert f["without lock"]["total"] + f["without lock"]["lost"] == 6000
    lock_uids = [uid for uid, o in r.model.objects.items() if o.get("name") == "counter lock"]
    spans = r.model.spans_array()
    holds = spans[np.isin(spans["uid"], lock_uids) & (spans["kind"] == Span.LOCK_HOLD)]
    assert len(holds) == 6000                                  # every locked increment is a hold
    workers = {p.pid for p in r.model.procs.values() if p.name.startswith("incrementer")}
    assert set(holds["pid"].tolist()) <= workers and len(workers) == 4
