"""A child's exit status is recorded however the parent learns it: also when ``active_children()`` reaps it
behind the Process object's back, as multiprocessing's exit function does for a daemon child it terminates."""
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
