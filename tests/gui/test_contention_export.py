"""The blocking profile the contention panel shows is in the Perfetto export too: a "blocking profile" process
with a counter per call site, the most waited-at first, named by its site and totals."""
import json
import os
import subprocess
import sys

import pytest

from core.trace import contention
from core.trace.export import export_run, write_chrome
from core.trace.store import RunFile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def lock_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    out = str(d / "lock.mpgrun")
    subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), "run", "lock_contention", "--set", "processes=3",
                    "--set", "increments=30", "--set", "hold_ms=2", "--set", "mode=with lock", "--out", out,
                    "--quiet"], check=True, timeout=120, capture_output=True,
                   env=dict(os.environ, MPGUI_HOME=str(d / "home")))
    return out


def profile_tracks(trace):
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    named = [e for e in events if e.get("ph") == "M" and e.get("name") == "process_name"
             and e["args"]["name"].startswith("blocking profile")]
    assert len(named) == 1, "no blocking profile process in the export"
    pid = named[0]["pid"]
    counters = {}
    for e in events:
        if e.get("ph") == "C" and e.get("pid") == pid:
            counters.setdefault(e["name"], []).append(e["args"]["waiting"])
    return counters


def expected_sites(path):
    with RunFile(path) as rf:
        return contention.analyse_run(rf).profile()


@pytest.mark.parametrize("how", ["streamed", "from a model"])
def test_the_perfetto_export_has_the_blocking_profile(lock_run, tmp_path, how):
    out = tmp_path / "trace.json"
    with RunFile(lock_run) as rf:
        if how == "streamed":
            export_run(rf, chrome=out)
        else:
            write_chrome(rf.model(), out)
    with open(out) as f:
        counters = profile_tracks(json.load(f))
    sites = expected_sites(lock_run)
    assert sites and sites[0].site.endswith("in increment")
    top = [name for name in counters if name.startswith("#1 ")]
    assert len(top) == 1 and sites[0].site in top[0] and "%d waits" % sites[0].waits in top[0]
    # a counter of the threads waiting there: at most the three workers, back to none at the end
    assert 1 <= max(counters[top[0]]) <= 3 and counters[top[0]][-1] == 0
