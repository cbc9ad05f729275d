"""core.pool as a package: what programs, tests and benchmarks reach through ``core.pool`` keeps working
now that it is split into modules (no processes here)."""
import pytest

import core.pool
from core.pool import manager, pool, scheduler, wire, worker

# every tunable, and the module that reads it
OWNERS = {
    "PREFETCH_SECONDS": scheduler, "BATCH_SECONDS": scheduler, "MAX_BATCH_CHUNKS": scheduler,
    "PREFETCH_MAX_BYTES": scheduler, "MAX_REQUEUES": scheduler, "FEED_AHEAD": scheduler,
    "GROUP_BELOW_NS": worker, "GROUP_PROBE": worker, "WORKER_IDLE_CHECK": worker,
    "TIMEOUT_POLL": manager, "LIVENESS_POLL": manager, "TERMINATE_GRACE": manager,
    "MAX_STARTUP_DEATHS": manager,
    "PIPE_BUFFER": wire, "READ_SIZE": wire, "BIG_FRAME": wire,
    "HELPER_JOIN_TIMEOUT": pool, "MAX_TASK_TIMEOUT": pool,
}

# what the single-module core.pool offered besides __all__
OTHER_NAMES = ["RUN", "CLOSE", "TERMINATE", "INIT", "mapstar", "starmapstar", "rebuild_exc", "ProcessError",
               "job_counter"]


def test_every_name_is_still_there():
    for name in list(core.pool.__all__) + list(OWNERS) + OTHER_NAMES:
        assert hasattr(core.pool, name), name
    for name, module in OWNERS.items():
        assert getattr(core.pool, name) == getattr(module, name), name


@pytest.mark.parametrize("name", sorted(OWNERS))
def test_setting_a_tunable_on_core_pool_reaches_the_module_that_reads_it(monkeypatch, name):
    module = OWNERS[name]
    before = getattr(module, name)
    value = before * 2 + 1
    monkeypatch.setattr(core.pool, name, value)
    assert getattr(core.pool, name) == value
    assert getattr(module, name) == value
    monkeypatch.undo()
    assert getattr(core.pool, name) == before and getattr(module, name) == before


def test_a_pool_schedules_with_the_tunables_set_before_it_starts(monkeypatch):
    monkeypatch.setattr(core.pool, "PREFETCH_SECONDS", 0.25)
    monkeypatch.setattr(core.pool, "BATCH_SECONDS", 0.125)
    monkeypatch.setattr(core.pool, "MAX_REQUEUES", 0)
    limits = scheduler.Limits()
    assert (limits.prefetch_ns, limits.batch_ns, limits.max_requeues) == (250_000_000, 125_000_000, 0)


def test_public_classes_name_core_pool():
    for cls in (core.pool.Pool, core.pool.ApplyResult, core.pool.MapResult, core.pool.IMapIterator,
                core.pool.IMapUnorderedIterator):
        assert cls.__module__ == "core.pool", cls
