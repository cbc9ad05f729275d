"""The resource monitor samples USS (memory unique to a process) besides RSS, sparingly: psutil reads a process's
whole memory map for it, so each process gets it when first seen and then once per ``USS_INTERVAL``."""
import subprocess
import sys

import psutil
import pytest

from core.trace import monitor
from core.trace.monitor import ResourceMonitor


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def sleeper():
    """A child process that sleeps until killed (the monitor's tree root)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _entry(sample, pid):
    return next(p for p in sample[1]["procs"] if p["pid"] == pid)


def test_uss_is_sampled_when_a_process_is_first_seen_then_once_per_interval(sleeper):
    clock = FakeClock()
    mon = ResourceMonitor(sleeper.pid, lambda batch: None, clock=clock)
    first = _entry(mon.sample(), sleeper.pid)
    assert 0 < first["uss"] <= first["rss"]
    assert first["uss"] == pytest.approx(psutil.Process(sleeper.pid).memory_full_info().uss, rel=0.5)
    clock.now += monitor.USS_INTERVAL / 2
    again = _entry(mon.sample(), sleeper.pid)
    assert "uss" not in again and again["rss"] > 0          # RSS every sample, USS not yet
    clock.now += monitor.USS_INTERVAL / 2
    assert _entry(mon.sample(), sleeper.pid)["uss"] > 0


def test_nothing_is_kept_of_a_process_that_is_gone(sleeper):
    clock = FakeClock()
    mon = ResourceMonitor(sleeper.pid, lambda batch: None, clock=clock)
    assert "uss" in _entry(mon.sample(), sleeper.pid)
    sleeper.kill()
    sleeper.wait()
    t, s = mon.sample()
    assert s["procs"] == [] and s["gone"] == [sleeper.pid]
    assert not mon._uss_at                                   # nothing kept for a process that is gone


def test_once_the_main_process_ended_a_sample_does_not_look_through_every_process(sleeper, monkeypatch):
    """The last sample a run's end waits for: with the main process gone its children belong to another
    parent, so the monitor does not walk the machine's process table to look for them."""
    mon = ResourceMonitor(sleeper.pid, lambda batch: None, clock=FakeClock())
    assert _entry(mon.sample(), sleeper.pid)["rss"] > 0
    sleeper.kill()
    sleeper.wait()

    def walk(*args, **kwargs):
        raise AssertionError("the monitor walked the process table for a main process that ended")
    monkeypatch.setattr(psutil.Process, "children", walk)
    t, s = mon.sample()
    assert s["procs"] == [] and s["gone"] == [sleeper.pid]
