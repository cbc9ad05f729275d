"""core's Process beyond the differential suite: a child's exit status is recorded however the parent learns
it (also when ``active_children()`` reaps it behind the Process object's back, as multiprocessing's exit
function does for a daemon child it terminates), and the forkserver preloads core."""
import multiprocessing.connection
import time

import core
from core.trace.events import Kind


def _exits_at_once():
    pass


def test_a_child_reaped_by_active_children_is_recorded(trace_session, start_method):
    ctx = core.get_context(start_method)
    p = ctx.Process(target=_exits_at_once)
    p.start()
    # ended, not reaped: its sentinel says so without reaping it (psutil's wait() would reap it)
    assert multiprocessing.connection.wait([p.sentinel], 60), "the child did not end"
    deadline = time.monotonic() + 60
    while p in core.active_children():      # this reaps it (the stdlib's _cleanup): no join, no exitcode
        assert time.monotonic() < deadline, "active_children() never reaped the child"
        time.sleep(0.01)
    trace_session.stop()
    ev = trace_session.events()
    reaped = ev[(ev["kind"] == Kind.PROC_REAPED) & (ev["a"] == p.pid)]
    assert reaped["b"].tolist() == [0]
    assert trace_session.model().procs[p.pid].exitcode == 0


def test_the_forkserver_preloads_core_and_keeps_the_programs_preload_list(tmp_path):
    """core has the stdlib's forkserver import it once, when it starts, so its children need not each import
    it; a program's own set_forkserver_preload list is kept (checked in a fresh interpreter: the forkserver
    of this test process may be running already)."""
    import json
    import os
    import subprocess
    import sys
    code = ("import json, multiprocessing, core\n"
            "multiprocessing.set_forkserver_preload(['json'])\n"
            "if __name__ == '__main__':\n"
            "    p = core.get_context('forkserver').Process(target=print)\n"
            "    p.start(); p.join()\n"
            "    from multiprocessing import forkserver\n"
            "    print(json.dumps([forkserver._forkserver._preload_modules, p.exitcode]))\n")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    script = tmp_path / "fs.py"
    script.write_text(code)
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=root), cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.strip().splitlines()[-1]) == [["json", "core"], 0]
