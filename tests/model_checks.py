"""Comparing the compact run model with version one's (``reference_model``), table by table, for tests.

``FixedReference`` is version one's model with the one rule the compact model changed on purpose, written
out one record at a time as version one's rules are: a release by a thread that holds nothing closes the
object's oldest open acquisition (earliest time, then the record read first), whoever holds it.
"""
import numpy as np

import reference_model as R

SPAN_FIELDS = ["uid", "pid", "tid", "kind", "end", "t0", "t1", "value"]


class FixedReference(R.RunModel):
    """Version one's model, with cross-thread releases closing the object's oldest open acquisition."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pushes = 0

    def _acq_ok(self, t, uid, wait, value, depth, pid, tid):
        if wait > 0:
            self.open_spans.pop((R.Span.LOCK_WAIT, uid, pid, tid), None)
            self._span(uid, pid, tid, R.Span.LOCK_WAIT, t - wait, t)
        stack = self._holds[(uid, pid, tid)]
        if not stack or depth <= 1:
            self._pushes += 1
            stack.append((t, self._pushes))
            self.open_spans[(R.Span.LOCK_HOLD, uid, pid, tid, len(stack))] = (t, 0)
        if value >= 0:
            self._series(("value", uid), self.name_of(uid)).add(t, value)

    def _release(self, t, uid, hold, value, depth, pid, tid):
        if value >= 0:
            self._series(("value", uid), self.name_of(uid)).add(t, value)
        if depth > 0:
            return
        key = (uid, pid, tid)
        stack = self._holds.get(key)
        if stack:
            t_acq, _ = stack.pop()
            self.open_spans.pop((R.Span.LOCK_HOLD, uid, pid, tid, len(stack) + 1), None)
            self._span(uid, pid, tid, R.Span.LOCK_HOLD, t_acq, t)
            return
        owners = [(s[0], k) for k, s in self._holds.items() if k[0] == uid and s]
        if owners:
            (t_acq, _), owner = min(owners)
            stack = self._holds[owner]
            for level in range(1, len(stack) + 1):
                self.open_spans.pop((R.Span.LOCK_HOLD,) + owner + (level,), None)
            stack.pop(0)
            for level, (t_open, _) in enumerate(stack, 1):
                self.open_spans[(R.Span.LOCK_HOLD,) + owner + (level,)] = (t_open, 0)
            self._span(uid, owner[1], owner[2], R.Span.LOCK_HOLD, t_acq, t)
        elif hold > 0:
            self._span(uid, pid, tid, R.Span.LOCK_HOLD, t - hold, t)


def canonical(a, fields):
    a = np.asarray(a)[fields] if len(a) else np.asarray(a)[fields]
    if not len(a):
        return a
    return a[np.lexsort(tuple(a[f] for f in reversed(fields)))]


def differences(ref, new):
    """What differs between two models' tables (empty: none), by name."""
    out = []

    def check(name, ok):
        if not ok:
            out.append(name)

    ref_spans, new_spans = ref.spans_array(include_open=False), new.spans_array(include_open=False)
    check("spans", np.array_equal(ref_spans[SPAN_FIELDS], new_spans[SPAN_FIELDS]))
    check("open spans", np.array_equal(canonical(ref.spans_array()[len(ref_spans):], SPAN_FIELDS),
                                       canonical(new.spans_array()[len(new_spans):], SPAN_FIELDS)))
    check("tasks", np.array_equal(ref.tasks_array(), new.tasks_array()))
    check("jobs", ref.jobs == new.jobs)
    check("messages", np.array_equal(ref.messages_array(), new.messages_array()))
    check("instants", np.array_equal(ref.instants_array(), new.instants_array()))
    rc, nc = ref.counters(), new.counters()
    check("counter names", set(rc) == set(nc))
    for name in set(rc) & set(nc):
        check("counter %s" % name, np.array_equal(rc[name][0], nc[name][0]) and np.array_equal(rc[name][1],
                                                                                                nc[name][1]))
    check("series keys", set(ref.series) == set(new.series))
    check("contention", ref.contention() == new.contention())
    check("summary", ref.summary() == new.summary())
    check("processes", {p.pid: vars(p) for p in ref.procs.values()} == {p.pid: vars(p) for p in new.procs.values()})
    check("process table order", [p.pid for p in ref.processes_table()] == [p.pid for p in new.processes_table()])
    check("marks", ref.marks == new.marks)
    check("progress", ref.progress == new.progress)
    check("logs", list(ref.logs) == list(new.logs))
    check("t0", (ref.t0, ref.t_first, ref.t_last, ref.events_seen) == (new.t0, new.t_first, new.t_last,
                                                                      new.events_seen))
    return out
