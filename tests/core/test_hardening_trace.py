"""Hardening of recording and of core.ipc (issue 8): who registers as the main process, authenticated
socket channels, a full /dev/shm, and file descriptors held by traced threads."""
import multiprocessing
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from core.trace import collector
from core.trace.model import RunModel

import trace_helpers as th  # noqa: F401

START_METHODS = multiprocessing.get_all_start_methods()


def collect_dir(d, sink=None):
    """Drain a trace directory whose writers have all ended; returns (collector, batches)."""
    batches = []
    col = collector.Collector(d, sink or batches.append, own_dir=False)
    col.poll(final=True)
    return col, batches


def run_traced_script(source, tmp_path, args=(), env=None, timeout=120):
    """Run ``source`` as a script with tracing on into a fresh trace directory; returns (result, trace dir)."""
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(source))
    d = collector.make_trace_dir()
    full_env = dict(os.environ, MPGUI_TRACE_DIR=d, **(env or {}))
    r = subprocess.run([sys.executable, str(script)] + list(args), env=full_env, capture_output=True, text=True,
                       timeout=timeout, cwd=str(tmp_path))
    return r, d


# ----------------------------------------------------------------------------------------------------------
# 4. A spawned or forkserver child never registers as the main process
# ----------------------------------------------------------------------------------------------------------

NO_MAIN_GUARD = '''
    import sys
    import core as multiprocessing

    lock = multiprocessing.Lock()      # a traced object: the importing process registers itself

    def work():
        pass

    # No main guard: a spawned child runs this again while it imports the main module, and fails here.
    ctx = multiprocessing.get_context(sys.argv[1])
    p = ctx.Process(target=work)
    p.start()
    p.join()
    print("child exit", p.exitcode)
'''


@pytest.mark.parametrize("method", [m for m in ("spawn", "forkserver") if m in START_METHODS])
def test_child_importing_the_main_module_is_not_main(method, tmp_path):
    r, d = run_traced_script(NO_MAIN_GUARD, tmp_path, [method])
    try:
        assert "child exit 1" in r.stdout, r.stderr       # the child failed in its bootstrapping phase
        _, batches = collect_dir(d)
    finally:
        collector.release_trace_dir(d)
    metas = [m for b in batches for m in b.metas]
    procs = {m["pid"]: m["role"] for m in metas if m.get("t") == "proc"}
    main_pids = {pid for pid, role in procs.items() if role == "main"}
    assert len(procs) >= 2, procs                          # the child registered too (its lock)
    assert len(main_pids) == 1, procs
    model = RunModel()
    model.ingest(np.zeros(0, collector.EVENT_DTYPE), metas)
    assert [p.pid for p in model.procs.values() if p.role == "main"] == list(main_pids)
    # and what a child made while importing is named as a child's objects are: with its pid
    for m in metas:
        if m.get("t") == "obj" and m.get("kind") == "Lock" and m["uid"] >> 24 not in main_pids:
            assert m["name"].endswith("@%d" % (m["uid"] >> 24)), m
