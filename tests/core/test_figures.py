"""A run's comparison figures, on a synthetic run file whose every figure is computed here by hand, and their
statistics over repeats (mean ± sd, min..max, a ratio's uncertainty by error propagation)."""
import math

import numpy as np
import pytest

from core.trace.arrays import EVENT_DTYPE
from core.trace.collector import Batch
from core.trace.events import Kind, Outcome, StartMethod
from core.trace.store import RunWriter
from mpgui import compare
from mpgui.compare import Group, RunFigures, Stat

T = 5_000_000_000_000          # the run's origin on the perf_counter clock (ns)
MS = 1_000_000
MIB = 1 << 20
MAIN, W1, W2, W3 = 100, 201, 202, 203
POOL, LOCK = 7, 99


def ev(t_ms, kind, pid, uid=0, a=0, b=0, c=0):
    return (T + int(t_ms * MS), uid, a, b, int(kind), c, pid, pid)


def synthetic_run(path):
    """A Pool run: workers 201 and 202 start first, 203 replaces one later; two tasks; two lock waits;
    three resource samples.  The figures it must give are in ``EXPECTED``."""
    fork = int(StartMethod.of("fork"))
    rows = [
        # start() returned at 3 ms after 2000 us inside it: called at 1 ms; first instruction at 11 ms
        ev(3, Kind.PROC_START, MAIN, uid=11, a=W1, b=fork, c=2000), ev(11, Kind.PROC_BOOT, W1, uid=11, a=MAIN),
        # called at 4 ms, first instruction at 24 ms, its initializer ran 25..30 ms
        ev(5, Kind.PROC_START, MAIN, uid=12, a=W2, b=fork, c=1000), ev(24, Kind.PROC_BOOT, W2, uid=12, a=MAIN),
        ev(30, Kind.POOL_WORKER_INIT, MAIN, uid=POOL, a=5 * MS, b=W2),
        ev(11.5, Kind.POOL_WORKER_INIT, MAIN, uid=POOL, a=1000, b=W1),       # 1 us: no initializer to speak of
        # two tasks queued at 12 ms; task 0 on 201 13..50 ms, task 1 on 202 31..80 ms; results used at 55, 85 ms
        ev(11.9, Kind.POOL_JOB, MAIN, uid=POOL, a=0, b=2, c=1),
        ev(12, Kind.POOL_CHUNK_QUEUED, MAIN, uid=POOL, a=0, b=0, c=2),
        ev(13, Kind.POOL_TASK_T0, W1, uid=POOL, a=0, b=0), ev(50, Kind.POOL_TASK, W1, uid=POOL, a=0, b=0,
                                                              c=int(Outcome.OK)),
        ev(31, Kind.POOL_TASK_T0, W2, uid=POOL, a=0, b=1), ev(80, Kind.POOL_TASK, W2, uid=POOL, a=0, b=1,
                                                              c=int(Outcome.OK)),
        ev(55, Kind.POOL_RESULT_USED, MAIN, uid=POOL, a=0, b=0), ev(85, Kind.POOL_RESULT_USED, MAIN, uid=POOL, a=0,
                                                                     b=1),
        # lock waits: 3 ms in 201, 2 ms in 202
        ev(37, Kind.ACQ_REQUEST, W1, uid=LOCK, a=-1), ev(40, Kind.ACQ_OK, W1, uid=LOCK, a=3 * MS, b=-1, c=1),
        ev(41, Kind.RELEASE, W1, uid=LOCK, a=1 * MS, b=-1),
        ev(58, Kind.ACQ_REQUEST, W2, uid=LOCK, a=-1), ev(60, Kind.ACQ_OK, W2, uid=LOCK, a=2 * MS, b=-1, c=1),
        ev(61, Kind.RELEASE, W2, uid=LOCK, a=1 * MS, b=-1),
        # a replacement worker, started after the first task began: not one of the workers waited for
        ev(90, Kind.PROC_START, MAIN, uid=13, a=W3, b=fork, c=1000), ev(119, Kind.PROC_BOOT, W3, uid=13, a=MAIN),
    ]
    events = np.array(sorted(rows), dtype=EVENT_DTYPE)
    regs = [{"t": "proc", "pid": MAIN, "ppid": 1, "role": "main", "name": "MainProcess"},
            {"t": "obj", "uid": LOCK, "kind": "Lock", "name": "L"}]
    for uid, pid in ((11, W1), (12, W2), (13, W3)):
        regs.append({"t": "spawned", "uid": uid, "pid": pid, "name": "w%d" % pid, "role": "worker",
                     "method": "fork", "parent": MAIN})
    samples = [
        (T + 100 * MS, {"cores": [0, 0], "procs": [
            {"pid": MAIN, "cpu": 0.0, "rss": 50 * MIB, "uss": 40 * MIB},
            {"pid": W1, "cpu": 0.0, "rss": 10 * MIB, "uss": 2 * MIB},
            {"pid": W2, "cpu": 0.0, "rss": 30 * MIB, "uss": 20 * MIB}]}),
        (T + 200 * MS, {"cores": [100, 100], "procs": [
            {"pid": MAIN, "cpu": 50.0, "rss": 50 * MIB},
            {"pid": W1, "cpu": 100.0, "rss": 12 * MIB},
            {"pid": W2, "cpu": 50.0, "rss": 28 * MIB, "uss": 22 * MIB}]}),
        (T + 300 * MS, {"cores": [50, 0], "procs": [
            {"pid": MAIN, "cpu": 0.0, "rss": 50 * MIB},
            {"pid": W1, "cpu": 100.0, "rss": 11 * MIB},
            {"pid": W2, "cpu": 0.0, "rss": 25 * MIB},
            {"pid": W3, "cpu": 0.0, "rss": 40 * MIB, "uss": 1 * MIB}]}),
    ]
    w = RunWriter(path, {"created_perf": T, "kind": "scenario", "scenario": "pool_methods", "start_method": "fork",
                         "params": {"processes": 2, "method": "imap"}, "machine": {"cpu_count": 2},
                         "run_id": "abc123"})
    try:
        w.add_batch(Batch(events, regs))
        w.add_samples(samples)
        w.finish(status="done")
    finally:
        w.close()
    return path


EXPECTED = {
    "start_latency_ms_p50": 20.0,            # latencies 10, 20, 30 ms
    "start_latency_ms_p95": 29.0,            # numpy's linear percentile: 20 + 0.9 * 10
    "workers_ready_s": 0.029,                # first start() at 1 ms, 202 ready (initializer done) at 30 ms
    "first_result_s": 0.043,                 # queued at 12 ms, first result used at 55 ms
    "makespan_s": 0.068,                     # queued at 12 ms, last task done at 80 ms
    "rss_mb_per_child": (12 + 30 + 40) / 3,  # each child's peak RSS, averaged
    "uss_mb_per_child": (2 + 22 + 1) / 3,
    "cpu_s": 0.3,                            # (100+50+50)% x 0.1 s + 100% x 0.1 s
    "cpu_util_pct": 75.0,                    # 0.3 s of CPU over 0.2 s on 2 cores
    "lock_wait_s": 0.005,
    "duration_s": 0.3,                       # from the origin to the last sample
}


def test_figures_of_a_synthetic_run_match_the_hand_computation(tmp_path):
    run, model = compare.read_run(synthetic_run(str(tmp_path / "s.mpgrun")))
    assert set(run.figures) == set(compare.FIGURE_KEYS)
    for key, value in EXPECTED.items():
        assert run.figures[key] == pytest.approx(value, rel=1e-6), key
    assert run.children == 3 and run.tasks == 2
    assert run.methods == ["fork"] and run.method == "fork"
    assert run.scenario == "pool_methods" and run.params == {"processes": 2, "method": "imap"}
    assert run.run_id == "abc123" and run.status == "done"
    assert run.first_task_s == pytest.approx(0.013)          # the first task began 13 ms into the run


def test_a_run_without_pool_tasks_has_no_first_result_and_its_makespan_is_its_processes(tmp_path):
    """Two processes (no Pool): makespan is first start() to the last child's end."""
    rows = [ev(3, Kind.PROC_START, MAIN, uid=11, a=W1, b=int(StartMethod.of("spawn")), c=2000),
            ev(51, Kind.PROC_BOOT, W1, uid=11, a=MAIN), ev(70, Kind.PROC_EXIT, W1, uid=11, a=0),
            ev(4, Kind.PROC_START, MAIN, uid=12, a=W2, b=int(StartMethod.of("spawn")), c=500),
            ev(83.5, Kind.PROC_BOOT, W2, uid=12, a=MAIN), ev(90, Kind.PROC_EXIT, W2, uid=12, a=0)]
    regs = [{"t": "proc", "pid": MAIN, "role": "main"}] + [
        {"t": "spawned", "uid": u, "pid": p, "role": "process", "method": "spawn"} for u, p in ((11, W1), (12, W2))]
    path = str(tmp_path / "p.mpgrun")
    w = RunWriter(path, {"created_perf": T, "start_method": "spawn", "machine": {"cpu_count": 2}})
    w.add_batch(Batch(np.array(sorted(rows), dtype=EVENT_DTYPE), regs))
    w.close()
    run, _ = compare.read_run(path)
    f = run.figures
    assert f["start_latency_ms_p50"] == pytest.approx((50 + 80) / 2)
    assert f["workers_ready_s"] == pytest.approx(0.0825)      # first start() at 1 ms, the last boot at 83.5 ms
    assert f["makespan_s"] == pytest.approx(0.089)            # 1 ms to the last exit at 90 ms
    assert f["first_result_s"] is None and f["rss_mb_per_child"] is None and f["cpu_s"] is None
    assert run.methods == ["spawn"]
    assert run.first_task_s == pytest.approx(0.001)           # no task: the first process started


def test_mean_sd_min_max_as_hyperfine_reports_them():
    s = Stat.of([10.0, 12.0, 14.0, None])
    assert (s.n, s.mean, s.sd, s.min, s.max) == (3, 12.0, 2.0, 10.0, 14.0)
    assert s.text("%.1f", "ms") == "12.0 ± 2.0 ms  [10.0..14.0]"
    one = Stat.of([3.0])
    assert one.sd == 0.0 and one.text("%.1f", "ms") == "3.0 ms"
    assert Stat.of([None]) is None


def test_a_ratio_carries_its_uncertainty_by_error_propagation():
    a, b = Stat.of([10.0, 12.0, 14.0]), Stat.of([2.0, 2.5, 1.5])
    r, u = compare.ratio(a, b)
    assert r == pytest.approx(6.0)
    assert u == pytest.approx(6.0 * math.sqrt((2.0 / 12.0) ** 2 + (0.5 / 2.0) ** 2))


def _runs(method, values, key="start_latency_ms_p50"):
    return [RunFigures(path="%s-%d" % (method, i), method=method, methods=[method], figures={key: v})
            for i, v in enumerate(values)]


def test_differences_name_the_slower_method_against_the_fastest_with_the_uncertainty():
    runs = _runs("fork", [2.0, 2.5, 1.5]) + _runs("spawn", [10.0, 12.0, 14.0]) + _runs("forkserver", [2.1, 2.0, 2.2])
    groups = compare.group_by_method(runs, ["fork", "spawn", "forkserver"])
    assert [(g.label, len(g.runs)) for g in groups] == [("fork", 3), ("spawn", 3), ("forkserver", 3)]
    diffs = compare.differences(groups, ["start_latency_ms_p50"])
    spawn = next(d for d in diffs if d.label == "spawn")
    assert spawn.baseline == "fork"
    assert spawn.sentence() == "spawn started processes 6.00x slower than fork, ±1.80"
    ten = compare.differences(compare.group_by_method(_runs("fork", [2.0, 2.5, 1.5]) + _runs("spawn", [20.0, 24.0,
                                                                                                      28.0])))
    assert ten[0].sentence() == "spawn started processes 12.0x slower than fork, ±3.6"
    fs = next(d for d in diffs if d.label == "forkserver")
    assert fs.within_noise and fs.sentence().endswith("(within the noise)")


def test_a_run_that_used_several_methods_is_labelled_with_all_of_them():
    runs = [RunFigures(path="a", method="fork", methods=["fork", "spawn", "forkserver"])]
    assert [g.label for g in compare.group_by_method(runs)] == ["fork, spawn, forkserver"]


def test_history_runs_are_grouped_by_configuration_and_labelled_by_what_differs():
    def run(path, **params):
        return RunFigures(path=path, scenario="pool_methods", method="fork", methods=["fork"],
                          params=dict({"processes": 4, "tasks": 8}, **params))
    runs = [run("a", method="imap"), run("b", method="imap_unordered"), run("c", method="imap")]
    groups = compare.group_by_config(runs)
    assert [(g.label, [r.path for r in g.runs]) for g in groups] == [("method=imap", ["a", "c"]),
                                                                      ("method=imap_unordered", ["b"])]
    assert compare.parameter_rows(runs) == [("method", ["imap", "imap_unordered", "imap"])]
    other = RunFigures(path="d", scenario="chunksize", method="spawn", methods=["spawn"], params={"chunksize": 1})
    rows = dict(compare.parameter_rows([runs[0], other]))
    assert rows["scenario"] == ["pool_methods", "chunksize"] and rows["start methods"] == ["fork", "spawn"]
    assert rows["chunksize"] == ["-", "1"] and rows["method"] == ["imap", "-"]


def test_the_plan_interleaves_methods_over_the_repeats():
    assert compare.plan(["fork", "spawn"], 2) == [("fork", 0), ("spawn", 0), ("fork", 1), ("spawn", 1)]


def test_the_json_summary_has_one_entry_per_method_with_its_repeats():
    runs = _runs("fork", [2.0, 4.0]) + _runs("spawn", [10.0, 12.0])
    by_method = compare.group_by_method(runs)
    out = compare.summary_json(runs, by_method, by_method)
    assert len(out["runs"]) == 4
    assert out["methods"]["fork"]["runs"] == 2 and out["methods"]["fork"]["start_latency_ms_p50"] == 3.0
    assert out["methods"]["spawn"]["sd"]["start_latency_ms_p50"] == pytest.approx(math.sqrt(2), rel=1e-5)
    assert out["methods"]["spawn"]["makespan_s"] is None
    assert out["differences"][0]["group"] == "spawn" and out["differences"][0]["ratio"] == pytest.approx(11 / 3,
                                                                                                        rel=1e-5)


def test_groups_have_statistics_for_every_figure():
    g = Group("x", _runs("fork", [1.0, 3.0]))
    stats = g.stats()
    assert set(stats) == set(compare.FIGURE_KEYS) and stats["start_latency_ms_p50"].mean == 2.0
    assert stats["makespan_s"] is None
