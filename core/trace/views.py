"""The run model's tables as views and exports read them: the row types and the read-only queries.

``RunModel`` (``model``) builds its tables a chunk at a time; this module holds what is read from them: the
span kinds and ends (``Span``, ``SpanEnd``), the records' dtypes (``SPAN_DTYPE``, ``SPAN_COLUMNS``,
``MESSAGE_DTYPE``, ``INSTANT_DTYPE``) and ``RunViews``, the queries ``RunModel`` inherits (spans, messages,
instants and tasks as arrays, queries by object and time range, counter series, marks, progress,
contention, the summary).  Nothing here changes a table: ingesting, pairing and trimming stay in ``model``,
and these names stay importable from it.  No Qt here.
"""
import enum
from typing import TYPE_CHECKING, Any

import numpy as np

from .columns import group_starts
from .counters import Series
from .events import Outcome
from .lifecycle import NO_TIME, processes_table
from .pooltasks import OUTCOME_PENDING

__all__ = ["Span", "SpanEnd", "SPAN_DTYPE", "SPAN_COLUMNS", "MESSAGE_DTYPE", "INSTANT_DTYPE", "RunViews"]


class Span(enum.IntEnum):
    LOCK_WAIT = 1
    LOCK_HOLD = 2
    COND_WAIT = 3
    EVENT_WAIT = 4
    BARRIER_WAIT = 5
    QUEUE_PUT = 6       # blocked in put (bounded queue full)
    QUEUE_GET = 7       # blocked in get (queue empty)
    QUEUE_JOIN = 8
    PIPE_RECV = 9       # blocked in recv
    PIPE_SEND = 10      # blocked in send (pipe full)
    MANAGER_CALL = 11
    PROC_JOIN = 12
    INITIALIZER = 13    # a pool worker's initializer ran (on the worker's lane)


class SpanEnd(enum.IntEnum):
    OK = 0
    TIMEOUT = 1
    OPEN = 2
    BROKEN = 3


#: A span as a record (``spans_array``).
SPAN_DTYPE = np.dtype([("uid", "<u8"), ("pid", "<i4"), ("tid", "<i4"), ("kind", "<i2"), ("end", "<i2"),
                       ("t0", "<i8"), ("t1", "<i8"), ("value", "<i8")])
#: The span table's columns: a record's, and ``site``, the string id of the call site where the wait blocked
#: (0: none recorded).
SPAN_COLUMNS = np.dtype(SPAN_DTYPE.descr + [("site", "<u8")])
MESSAGE_DTYPE = np.dtype([("uid", "<u8"), ("pid", "<i4"), ("tid", "<i4"), ("kind", "<i2"), ("t", "<i8"),
                          ("nbytes", "<i8"), ("blocked", "<i8"), ("depth", "<i8")])
#: A moment on a lane: ``pid`` is the lane (a terminate request shows on its target's), ``by`` the process that
#: recorded it; ``kind``, ``uid`` and ``a``/``b``/``c`` are the event's, for ``schema.describe``.
INSTANT_DTYPE = np.dtype([("t", "<i8"), ("pid", "<i4"), ("by", "<i4"), ("tid", "<i4"), ("kind", "<u4"),
                          ("uid", "<u8"), ("a", "<i8"), ("b", "<i8"), ("c", "<i4")])

#: Outcomes only the pool's parent gives: see ``pooltasks``.
_OUTCOME_BY_WORKER_EXIT = {"died": Outcome.LOST, "timed out": Outcome.TIMEOUT, "stopped": Outcome.CANCELLED}


def _drop_site(records):
    out = np.zeros(len(records), SPAN_DTYPE)
    for name in SPAN_DTYPE.names or ():
        out[name] = records[name]
    return out


class RunViews:
    """The read side of ``RunModel``: tables for views and exports, built from the model's columns on each
    call (the model holds the state; see ``model.RunModel`` for its attributes)."""

    if TYPE_CHECKING:       # what ``RunModel`` provides, for the type checker
        spans: Any
        span_blocks: Any
        messages: Any
        message_blocks: Any
        instants: Any
        procs: Any
        meta: Any
        strings: Any
        t_last: Any
        events_seen: Any
        dropped: Any
        _lock_waits: Any
        _locks: Any
        _waits: Any
        _sites: Any
        _event_series: Any
        _sample_series: Any
        _barriers: Any
        _marks: Any
        _progress: Any
        _contention: Any
        _forgotten: Any
        _cpu_cores: Any
        _kind_counts: Any

        @property
        def t0(self) -> Any: ...

        @property
        def tasks(self) -> Any: ...

        def name_of(self, uid: Any) -> Any: ...

        def kind_of(self, uid: Any) -> Any: ...

    def open_spans_array(self, now=None, with_site=False):
        """The spans still open, cut at ``now`` (default: the last time seen), in order of their start."""
        now = self.t_last if now is None else now
        rows = []
        for (u, p, th), t0 in self._lock_waits.items():
            rows.append((u, p, th, Span.LOCK_WAIT, SpanEnd.OPEN, t0, 0, self._sites.get((u, p, th), 0)))
        for (u, p, th), _, t0 in self._locks.open_holds():
            rows.append((u, p, th, Span.LOCK_HOLD, SpanEnd.OPEN, t0, 0, 0))
        for kind, w in self._waits.items():
            for (u, p, th), (t0, value) in w.open.items():
                rows.append((u, p, th, kind, SpanEnd.OPEN, t0, value, self._sites.get((u, p, th), 0)))
        out = np.zeros(len(rows), SPAN_COLUMNS if with_site else SPAN_DTYPE)
        if rows:
            cols = list(zip(*rows))
            for name, values in zip(("uid", "pid", "tid", "kind", "end", "t0", "value", "site"), cols):
                if name in (out.dtype.names or ()):
                    out[name] = values
            out["t1"] = np.maximum(now if now is not None else out["t0"], out["t0"])
            out = out[np.lexsort((out["tid"], out["pid"], out["uid"], out["kind"], out["t0"]))]
        return out

    def spans_array(self, include_open=True, now=None, with_site=False):
        """Finished spans (in the order their closing records came) plus, optionally, the open ones cut at
        ``now`` (default: the last time seen); ``with_site``: with the ``site`` column.  A copy: for a run of
        millions of spans, prefer the columns (``spans.view(name)``) and ``spans_between``."""
        done = self.spans.records()
        if not with_site:
            done = _drop_site(done)
        if len(done):
            t1 = done["t1"]
            if (t1[1:] < t1[:-1]).any():
                done = done[np.argsort(t1, kind="stable")]
        if not include_open:
            return done
        return np.concatenate((done, self.open_spans_array(now, with_site)))

    def spans_between(self, t0, t1, uid=None, pid=None, kinds=None):
        """Rows of the finished spans overlapping [t0, t1] (ns), optionally of one object, one process and some
        span kinds, sorted by start: the query a view of one object or one time range makes."""
        rows = self.span_blocks.frozen(len(self.spans)).candidate_rows(t0, t1)
        sp = self.spans
        keep = (sp.view("t0")[rows] <= t1) & (sp.view("t1")[rows] >= t0)
        if uid is not None:
            keep &= sp.view("uid")[rows] == np.uint64(uid)
        if pid is not None:
            keep &= sp.view("pid")[rows] == pid
        if kinds is not None:
            keep &= np.isin(sp.view("kind")[rows], [int(k) for k in kinds])
        rows = rows[keep]
        return rows[np.argsort(sp.view("t0")[rows], kind="stable")]

    def span_rows_of(self, uid, kinds=None):
        """Rows of one object's finished spans, sorted by start."""
        sp = self.spans
        keep = sp.view("uid") == np.uint64(uid)
        if kinds is not None:
            keep &= np.isin(sp.view("kind"), [int(k) for k in kinds])
        rows = np.flatnonzero(keep)
        return rows[np.argsort(sp.view("t0")[rows], kind="stable")]

    def messages_between(self, t0, t1, uid=None):
        """Rows of the messages at times within [t0, t1], optionally of one object, in time order."""
        rows = self.message_blocks.frozen(len(self.messages)).candidate_rows(t0, t1)
        t = self.messages.view("t")[rows]
        keep = (t >= t0) & (t <= t1)
        if uid is not None:
            keep &= self.messages.view("uid")[rows] == np.uint64(uid)
        rows = rows[keep]
        return rows[np.argsort(self.messages.view("t")[rows], kind="stable")]

    def tasks_array(self, rows=None):
        """The task table (a copy; of ``rows`` only, if given), with what the workers' ends imply: a task ends
        when its worker does.

        A task still open when its worker's end is known ends then, as the pool said of the worker (died:
        lost, timed out, stopped: cancelled) or, without a word from the pool, cancelled if the run was
        stopped and lost otherwise.  A task the pool failed after its worker died ends at the death, not when
        the pool noticed.  Derived on each call, so records arriving later (the pool's verdict, the
        monitor's last samples) still count."""
        tab = self.tasks.records(rows)
        ran = np.nonzero(tab["start"] != NO_TIME)[0]
        if not len(ran):
            return tab
        workers = np.unique(tab["worker"][ran])
        info = [self.procs.get(pid) for pid in workers.tolist()]
        # once the run is over, a worker whose end nobody recorded (killed with the run's tree after the
        # monitor's last look) ended by its last sign of life: its task does not run on for ever
        over = self.meta.get("status") not in (None, "running")
        died_of = np.array([NO_TIME if p is None else
                            p.exited if p.exited != NO_TIME or not over else p.last for p in info], dtype=np.int64)
        outcome_of = np.array([self._outcome_of_open_task(p) if p is not None else OUTCOME_PENDING for p in info],
                              dtype=tab["outcome"].dtype)
        w = np.searchsorted(workers, tab["worker"][ran])         # each task's worker, as an index
        known = died_of[w] != NO_TIME
        rows_, w = ran[known], w[known]
        died = died_of[w]
        end, start = tab["end"][rows_], tab["start"][rows_]
        still_open = end == NO_TIME
        tab["outcome"][rows_[still_open]] = outcome_of[w[still_open]]
        tab["end"][rows_] = np.where(still_open | (end > died), np.maximum(died, start), end)
        return tab

    def _outcome_of_open_task(self, worker):
        outcome = _OUTCOME_BY_WORKER_EXIT.get(worker.exit_reason)
        if outcome is None:
            outcome = Outcome.CANCELLED if self.meta.get("status") == "cancelled" else Outcome.LOST
        return outcome

    def messages_array(self):
        """Every message (a copy), in time order."""
        m = self.messages.records()
        t = m["t"]
        if len(t) and (t[1:] < t[:-1]).any():
            m = m[np.argsort(t, kind="stable")]
        return m

    def instants_array(self):
        """The moments on the lanes (a copy), in time order."""
        m = self.instants.records()
        t = m["t"]
        if len(t) and (t[1:] < t[:-1]).any():
            m = m[np.argsort(t, kind="stable")]
        return m

    def processes_table(self):
        """Processes sorted main first, then by role and creation."""
        return processes_table(self.procs)

    def sync_intervals(self):
        """Lock/semaphore/condition/event/barrier spans as dict rows (the run-file API)."""
        out = []
        for r in self.spans_array(include_open=True):
            out.append({"object": self.name_of(int(r["uid"])), "kind": Span(int(r["kind"])).name.lower(),
                        "pid": int(r["pid"]), "tid": int(r["tid"]), "start_ns": int(r["t0"]),
                        "end_ns": int(r["t1"]), "outcome": SpanEnd(int(r["end"])).name.lower(),
                        "value": int(r["value"])})
        return out

    # -- counters ----------------------------------------------------------------------------------------------
    def _series_name(self, key):
        what, which = key
        if what == "value":
            return self.name_of(which)
        if what in ("depth", "unfinished", "waiting"):
            return self.name_of(which) + " " + what
        if what == "counter":
            return self.strings.get(which, "counter %d" % which)
        if what == "cpu":
            return "CPU %d" % which
        if what == "rss":
            return "RSS %d" % which
        if what == "core":
            return "CPU %d" % which
        return "CPU total"

    @property
    def series(self):
        """{key: Series} of the run's counters (semaphore values, queue depths, barrier waiting, free-form
        counters, CPU% and RSS per process), as version one's model kept them."""
        out = {}
        for store in (self._event_series, self._sample_series):
            for key, (t, v) in store.arrays().items():
                if key[0] in ("core", "total"):
                    continue
                out[key] = Series(self._series_name(key), store.unit_of(key), t, v)
        for uid, (t, v) in self._barrier_series().items():
            out[("waiting", uid)] = Series(self._series_name(("waiting", uid)), "", t, v)
        return out

    def _barrier_series(self):
        """Each barrier's waiting count after each arrival and departure (never below zero), in time order."""
        b = self._barriers
        if not len(b):
            return {}
        t, seq, uid, delta = b.view("t"), b.view("seq"), b.view("uid"), b.view("delta")
        order = np.lexsort((seq, t, uid))
        t, uid, delta = t[order], uid[order], delta[order]
        out = {}
        starts = group_starts(uid)
        ends = np.append(starts[1:], len(uid))
        for s, e in zip(starts.tolist(), ends.tolist()):
            walk = np.cumsum(delta[s:e])
            v = walk - np.minimum(np.minimum.accumulate(walk), 0)
            out[int(uid[s])] = (t[s:e], v.astype(np.float64))
        return out

    @property
    def cpu_cores(self):
        """One series per CPU core (its load, %), as views of growing arrays."""
        return [Series("CPU %d" % i, "%", *self._sample_series.get(("core", i))) for i in range(self._cpu_cores)]

    @property
    def cpu_total(self):
        return Series("CPU total", "%", *self._sample_series.get(("total", 0)))

    def counters(self):
        """{name: (times ns, values)} for every counter series."""
        out = {}
        total = self.cpu_total
        for s in list(self.series.values()) + self.cpu_cores + ([total] if len(total) else []):
            out[s.name] = s.arrays()
        return out

    # -- marks, progress ---------------------------------------------------------------------------------------
    @property
    def marks(self):
        """(t, pid, label, value) of every mark, value None for a phase; in time order."""
        m = self._marks
        if not len(m):
            return []
        order = np.lexsort((m.view("seq"), m.view("t")))
        strings = self.strings
        return [(t, pid, strings.get(label, str(label)), None if phase else value) for t, pid, label, value, phase in
                zip(*(m.view(name)[order].tolist() for name in ("t", "pid", "label", "value", "phase")))]

    @property
    def progress(self):
        """{label: (t, done, total)}: the latest progress of each thing that reports it."""
        out = {}
        for label, (t, _, done, total) in sorted(self._progress.items(), key=lambda kv: kv[1][:2]):
            out[self.strings.get(label, "progress")] = (t, done, total)
        return out

    def contention(self):
        """Per lock-like object: acquisitions, contended ones, total/max wait and hold, timeouts."""
        out = []
        waited = sorted(u for u, c in self._contention.items() if c[7])
        held = sorted(u for u, c in self._contention.items() if not c[7])
        for uid in waited + held:
            c = self._contention[uid]
            out.append({"name": self.name_of(uid), "kind": self.kind_of(uid), "acquired": c[0], "contended": c[1],
                        "timeouts": c[2], "wait_total_ns": c[3], "wait_max_ns": c[4], "hold_total_ns": c[5],
                        "hold_max_ns": c[6]})
        return sorted(out, key=lambda d: -d["wait_total_ns"])

    def summary(self):
        gone = self._forgotten
        return {"processes": len(self.procs), "events": self.events_seen, "dropped": self.dropped,
                "tasks": len(self.tasks), "spans": len(self.spans) + gone["spans"],
                "messages": len(self.messages) + gone["messages"], "instants": len(self.instants) + gone["instants"],
                "duration_s": ((self.t_last or 0) - self.t0) / 1e9 if self.t_last else 0.0}

    def kind_counts(self):
        """{kind: records of it read so far} (the kinds an event log can filter by)."""
        c = self._kind_counts.copy()
        return {int(k): int(c[k]) for k in np.flatnonzero(c)}
