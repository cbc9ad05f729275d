"""The start latency a comparison reports is the stdlib's "start() called to the child's first instruction":
the child's moment is read when its bootstrap begins, before tracing sets itself up in the child (registering
the process, creating its rings), so the app does not count its own start-up as the start method's cost."""
import time

import core
from mpgui.compare import started_children


def first_line(conn):
    conn.send(time.perf_counter_ns())
    conn.close()


def test_the_recorded_first_instruction_precedes_the_tracers_set_up_in_the_child(trace_session, start_method):
    ctx = core.get_context(start_method)
    r, w = ctx.Pipe(duplex=False)
    p = ctx.Process(target=first_line, args=(w,))
    before = time.perf_counter_ns()
    p.start()
    w.close()
    began = r.recv()
    p.join()
    r.close()
    model = trace_session.stop()
    (child,) = [c for c in started_children(model) if c.pid == p.pid]
    registered = next(m["perf"] for b in trace_session.batches for m in b.metas
                      if m.get("t") == "proc" and m.get("pid") == p.pid)
    assert child.booted < registered              # read before the child's tracing registered the process
    # within what the program itself measures: start() called after ``before``, first instruction before the
    # target's first line
    assert before <= child.start_called and child.booted <= began
    assert 0 < child.start_latency <= began - before
