"""The compact model of a real run equals version one's, for every scenario: read a chunk at a time from its
run file, and read whole in one batch (``model_checks``: version one with the one rule changed on purpose).

Each scenario runs once, traced, with small parameters, under fork where it can (the other start methods
record the same kinds of records).
"""
import os

import pytest

from core.trace.model import RunModel
from core.trace.store import RunFile
from mpgui.scenarios import catalog

from model_checks import FixedReference, differences
from scenario_testing import run_scenario

SMALL = {
    "threads_vs_processes": {"processes": 2, "tasks": 4, "task_s": 0.05, "kind": "both"},
    "process_lifecycle": {"unit_s": 0.05, "exit_code": 7},
    "start_cost": {"methods": "chosen", "processes": 2, "task_ms": 2},
    "start_methods": {"methods": "chosen", "processes": 2, "tasks": 4, "task_ms": 10},
    "spawn_main_guard": {"timeout_s": 60},
    "fork_with_thread": {"methods": "chosen", "children": 2, "timeout_s": 0.3, "hold_ms": 100},
    "pool_methods": {"unit": 0.05, "review": 0.02, "tasks": 4, "processes": 2},
    "async_not_lazy": {"processes": 2, "tasks": 4, "task_s": 0.05, "other_s": 0.1},
    "chunksize": {"processes": 2, "tasks": 8, "long_tasks": 2, "short_ms": 5, "long_ms": 100, "big_chunksize": 4,
                  "tiny_tasks": 2000, "tiny_chunksize": 200},
    "maxtasksperchild": {"processes": 2, "tasks": 8, "leak_mb": 1, "maxtasksperchild": 2, "task_ms": 10},
    "initializer_vs_args": {"processes": 2, "size_mb": 1, "tasks": 6, "task_ms": 5},
    "shared_data": {"n": 50_000, "repeats": 1},
    "lock_contention": {"processes": 2, "increments": 3000},
    "rlock": {"processes": 2, "depth": 6, "rounds": 10, "hold_ms": 0.5, "timeout": 0.3},
    "semaphore": {"processes": 3, "slots": 2, "rounds": 3, "hold_ms": 10, "extra": 2},
    "barrier": {"processes": 3, "phases": 3, "work_ms": 10, "slowdown": 8, "timeout": 0.2},
    "condition_event": {"processes": 3, "rounds": 2, "window": 0.2},
    "queues": {"producers": 1, "consumers": 2, "items": 1000, "payload": 64, "tasks": 5, "forget": 1,
               "join_timeout": 0.3},
    "pipe": {"round_trips": 100, "volume_mb": 1, "max_mb": 2},
    "ipc_kinds": {"round_trips": 20, "payload": 32},
    "manager": {"processes": 2, "ops": 100},
    "remote_manager": {"processes": 2, "ops": 30},
}


def test_every_scenario_is_compared():
    assert set(SMALL) == set(catalog())


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SMALL))
def test_a_scenario_s_run_gives_version_one_s_tables(name, tmp_path):
    methods = catalog()[name].available_methods()
    method = "fork" if "fork" in methods else methods[0]
    r = run_scenario(name, method, SMALL[name], tmp_path)
    assert r.status == "done", r.error
    path = os.path.join(str(tmp_path), "%s-%s.mpgrun" % (name, method))
    with RunFile(path) as rf:
        chunked = rf.model()
        events, regs, samples, logs = rf.read_all()
        meta, dropped = rf.meta(), rf.dropped()
    whole = RunModel()
    ref = FixedReference()
    for m in (whole, ref):
        m.ingest(events, regs, samples, logs)
        m.set_meta(meta)
        m.dropped = dropped
    assert chunked.events_seen > 0
    assert differences(whole, chunked) == [], "read in chunks, the model differs from the run read whole"
    assert differences(ref, chunked) == []
