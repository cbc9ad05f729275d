"""Exports of a run: Chrome Trace Event JSON (Perfetto and chrome://tracing open it) and CSV tables, written
as they are computed.

``export_run(run_file, chrome=PATH, csv=DIR)`` makes both in one pass over the run file, a chunk at a time:
the model (``model.RunModel``) pairs the chunk's records, the spans, messages, moments and counter points it
closed are written out and forgotten (``forget_rows``), and what must wait for the end (the processes, the
pool's tasks, the spans still open, the resource samples) is written last.  Memory is the model's open
state and its task table, whatever the run's size.  ``write_chrome(model, path)`` and ``write_csv(model,
directory, events)`` write the same files from a model already in memory; ``chrome_trace(model)`` gives the
trace as a dict (small runs, tests).

Chrome trace layout:
* ``M`` process_name / thread_name / sort-index records for every pid and every (pid, lane) used;
* ``X`` slices for pool tasks, lock holds and waits, condition/event/barrier waits, blocked queue and pipe
  operations, manager calls and pool workers' initializers.  Slices on one (pid, tid) must nest, so each kind
  of slice gets its own lanes per real thread, and a slice that overlaps the ones already on a lane goes to
  the next lane (placed in the order slices end); each lane is a synthetic tid with a readable thread name;
* ``C`` counters: semaphore values, queue depths, barrier waiting, CPU per core, per-process CPU% and RSS;
* flow events (``s``/``f``) for "released -> ended the wait of" on contended locks and for
  "dispatched -> started" on pool tasks;
* ``i`` instants: results used, and the model's moments (signals, shared-memory segments, notifies, requests
  to end...) on a "moments" track of their lane, with the event's declared fields as args;
* the blocking profile (``contention.profile_counters``): a "blocking profile" process with a counter per call
  site where the program waited longest, how many threads wait there at each moment.  It is computed from
  the records that pass, keeping only each wait that recorded a call site (``ProfileRecords``): in the
  same pass for ``export_run``, from the model's run file (``model.path``) or kept events for a model in
  memory; a model that knows no run file and kept no events has none.  Up to ``PROFILE_EXACT_WAITS`` such
  waits each counter is exact (a point whenever a thread starts or stops waiting); past them, so that the
  memory stays bounded whatever the run's size, it is the mean number of threads waiting in each of
  ``PROFILE_BINS`` equal stretches of the run, and its name says so.

CSV: one table per model table, and ``events.csv`` with every event's fields named as the schema declares them
(a JSON object, units in the keys: ``{"wait_ns": 1200, "value": 2}``) and its description in words.

Times are microseconds (Chrome) or seconds (CSV) from the run's start.  A file is written whole or not at all
(through a temporary file).  No Qt here.
"""
import csv
import io
import json
import os

import numpy as np

from . import contention, schema
from .columns import group_starts
from .events import Kind, Outcome
from .units import fmt_ns
from .model import CALLSITE_KIND, NO_TIME, RunModel, Span, SpanEnd, in_time_order
from .textfmt import format_lines

_SPAN_LABEL = {Span.LOCK_WAIT: "wait", Span.LOCK_HOLD: "hold", Span.COND_WAIT: "condition wait",
               Span.EVENT_WAIT: "event wait", Span.BARRIER_WAIT: "barrier wait", Span.QUEUE_PUT: "blocked put",
               Span.QUEUE_GET: "blocked get", Span.QUEUE_JOIN: "queue join", Span.PIPE_RECV: "blocked recv",
               Span.PIPE_SEND: "blocked send", Span.MANAGER_CALL: "manager call", Span.PROC_JOIN: "join",
               Span.INITIALIZER: "initializer"}
# One lane family per kind of slice; the tasks lane family is 0.
_LANE_FAMILY = {Span.LOCK_HOLD: 1, Span.LOCK_WAIT: 2, Span.COND_WAIT: 3, Span.EVENT_WAIT: 3,
                Span.BARRIER_WAIT: 3, Span.QUEUE_PUT: 4, Span.QUEUE_GET: 4, Span.QUEUE_JOIN: 4,
                Span.PIPE_RECV: 5, Span.PIPE_SEND: 5, Span.MANAGER_CALL: 6, Span.PROC_JOIN: 7,
                Span.INITIALIZER: 9}
_FAMILY_OF_KIND = np.zeros(max(int(k) for k in Span) + 1, np.int64)
for _k, _f in _LANE_FAMILY.items():
    _FAMILY_OF_KIND[int(_k)] = _f
_MOMENTS = 10
_FAMILY_NAME = {0: "pool tasks", 1: "lock holds", 2: "lock waits", 3: "waits", 4: "queue", 5: "pipe",
                6: "manager calls", 7: "joins", 8: "results used", 9: "initializer", _MOMENTS: "moments"}
_OUTCOME_NAME = {Outcome.OK: "ok", Outcome.ERROR: "error", Outcome.TIMEOUT: "timeout", Outcome.LOST: "lost",
                 Outcome.CANCELLED: "cancelled"}
_END_NAME = tuple(SpanEnd(i).name.lower() for i in range(len(SpanEnd)))
#: Rows formatted at a time: the text of one block is what an export holds besides the model.
BLOCK_ROWS = 1 << 15
#: Records whose words events.csv remembers, at most (the same record recurs: an uncontended acquire...).
SAID_CACHE = 1 << 16
#: The pid of the trace's "counters" process (counters that belong to no process).
COUNTER_PID = 0


def _literal(text):
    """``text`` as literal text inside a %-format."""
    return text.replace("%", "%%")


def _lane_tid(tid, family, lane):
    return ((tid & 0xFFFFF) * 16 + family) * 64 + lane


class _Lanes:
    """Assigns synthetic tids so that slices on each tid never overlap, slices given in the order they end."""

    def __init__(self):
        self.ends = {}       # (pid, tid, family) -> list of lane end times
        self.names = {}      # (pid, synthetic tid) -> thread name

    def name_lane(self, pid, tid, family, lane, label):
        """The synthetic tid of ``lane`` (named for the trace's thread list)."""
        stid = _lane_tid(tid, family, lane)
        if (pid, stid) not in self.names:
            more = "" if lane == 0 else " %d" % (lane + 1)
            self.names[(pid, stid)] = "%s · %s%s" % (label, _FAMILY_NAME[family], more)
        return stid

    def place(self, pid, tid, family, t0, t1, label):
        ends = self.ends.setdefault((pid, tid, family), [])
        for i, end in enumerate(ends):
            if end <= t0:
                ends[i] = max(end, t1)
                return self.name_lane(pid, tid, family, i, label)
        ends.append(t1)
        return self.name_lane(pid, tid, family, len(ends) - 1, label)

    def place_many(self, pid, tid, family, t0, t1, label):
        """Synthetic tids of slices of one thread and family, in the order they end (arrays)."""
        ends = self.ends.setdefault((pid, tid, family), [])
        if not len(t0):
            return np.zeros(0, np.int64)
        # the usual case: each slice starts after the previous ones ended, and after lane 0's last one
        reach = np.maximum.accumulate(t1)
        if (not ends or ends[0] <= t0[0]) and (len(t0) < 2 or (t0[1:] >= reach[:-1]).all()) and len(ends) <= 1:
            if not ends:
                ends.append(int(reach[-1]))
            else:
                ends[0] = max(ends[0], int(reach[-1]))
            return np.full(len(t0), self.name_lane(pid, tid, family, 0, label), np.int64)
        return np.array([self.place(pid, tid, family, a, b, label) for a, b in zip(t0.tolist(), t1.tolist())],
                        np.int64)


class _Text:
    """JSON text of names, cached (a run has few distinct ones)."""

    def __init__(self, model):
        self.model = model
        self._cache = {}

    def json(self, s):
        j = self._cache.get(s)
        if j is None:
            j = self._cache[s] = json.dumps(s)
        return j


class ChromeWriter:
    """Writes a Chrome trace to an open text file, block by block (see the module's docstring)."""

    def __init__(self, f, model, t0):
        self.f = f
        self.model = model
        self.t0 = t0
        self.lanes = _Lanes()
        self.text = _Text(model)
        self.count = 0
        self.flow_id = 1
        self._first = True
        self._last_release = {}        # uid -> (t released, pid, synthetic tid, t acquired) of its latest hold
        f.write('{"traceEvents":[')

    def _lines(self, lines):
        if lines:
            self._text(",\n".join(lines), len(lines))

    def _text(self, text, count):
        """``count`` trace events, already joined (``textfmt.format_lines``)."""
        if not count:
            return
        if self._first:
            self.f.write("\n")
            self._first = False
        else:
            self.f.write(",\n")
        self.f.write(text)
        self.count += count

    def _ns(self, t):
        """Times as nanoseconds from the run's start (int64): ``textfmt``'s ``%.3f`` writes them in
        microseconds."""
        return np.asarray(t, np.int64) - self.t0

    def _us(self, t):
        return ((np.asarray(t, np.int64) - self.t0) / 1000.0).tolist()

    # -- spans ------------------------------------------------------------------------------------------------
    def spans(self, cols):
        """Finished spans (columns of the model's span table), in the order they ended."""
        n = len(cols["t0"])
        for lo in range(0, n, BLOCK_ROWS):
            self._span_block({k: v[lo:lo + BLOCK_ROWS] for k, v in cols.items()})

    def _span_block(self, c):
        n = len(c["t0"])
        if not n:
            return
        family = _FAMILY_OF_KIND[c["kind"].astype(np.int64)]
        stid = np.zeros(n, np.int64)
        order = np.lexsort((np.arange(n), family, c["tid"], c["pid"]))
        starts = group_starts(c["pid"][order], c["tid"][order], family[order])
        ends = np.append(starts[1:], n)
        for s, e in zip(starts.tolist(), ends.tolist()):
            rows = order[s:e]
            r0 = rows[0]
            tid = int(c["tid"][r0])
            stid[rows] = self.lanes.place_many(int(c["pid"][r0]), tid, int(family[r0]), c["t0"][rows],
                                               c["t1"][rows], "thread %d" % tid)
        # one format per (kind, object, outcome, what the args add): the rows differ only in their numbers
        kind = c["kind"].astype(np.int64)
        manager = kind == Span.MANAGER_CALL
        shown = (kind == Span.PIPE_RECV) | (kind == Span.PIPE_SEND) | (kind == Span.BARRIER_WAIT) | manager
        site = c["site"] if "site" in c else np.zeros(n, np.uint64)
        value = np.where(shown, c["value"], 0)
        cols = (kind, c["uid"], c["end"], value, site)
        by = np.lexsort(cols[::-1])
        first = group_starts(*(x[by] for x in cols))
        inv = np.empty(n, np.int64)
        inv[by] = np.cumsum(np.isin(np.arange(n), first)) - 1
        fmts = [self._span_format(*(int(x[i]) for x in cols)) for i in by[first].tolist()]
        dur = np.maximum(c["t1"] - c["t0"], 0)
        self._text(format_lines(fmts, inv, [c["pid"], stid, self._ns(c["t0"]), dur]), n)
        self._handoffs(c, stid)

    def _span_format(self, kind, uid, end, value, site):
        m = self.model
        j = self.text.json
        obj = m.name_of(uid)
        label = _SPAN_LABEL[Span(kind)]
        name = "%s %s" % (label, obj)
        extra = ""
        if kind == Span.MANAGER_CALL:
            name = "%s.%s" % (obj, m.strings.get(value, "?"))
        elif kind in (Span.PIPE_RECV, Span.PIPE_SEND):
            extra = ',"bytes":%d' % value
        elif kind == Span.BARRIER_WAIT:
            extra = ',"generation":%d' % value
        if site:
            extra += ',"site":%s' % j(m.strings.get(site, "#%x" % site))
        return ('{"ph":"X","name":%s,"cat":%s,"pid":%%d,"tid":%%d,"ts":%%.3f,"dur":%%.3f,"args":{"object":%s,'
                '"outcome":"%s"%s}}' % (_literal(j(name)), _literal(j(label)), _literal(j(obj)), _END_NAME[end],
                                        _literal(extra)))

    def _handoffs(self, c, stid):
        """Flows from the release of a contended lock to the end of the wait it ended: the latest release at
        or before the wait's end, if it came after the wait began."""
        kind = c["kind"]
        holds = np.flatnonzero(kind == Span.LOCK_HOLD)
        waits = np.flatnonzero((kind == Span.LOCK_WAIT) & (c["end"] == SpanEnd.OK))
        if not len(holds) and not len(waits):
            return
        texts, count = [], 0
        for uid in np.unique(c["uid"][np.concatenate((holds, waits))]).tolist():
            h = holds[c["uid"][holds] == np.uint64(uid)]
            h = h[np.argsort(c["t1"][h], kind="stable")]
            w = waits[c["uid"][waits] == np.uint64(uid)]
            rel = c["t1"][h]
            last = self._last_release.get(uid)
            if len(w):
                w0, w1 = c["t0"][w], c["t1"][w]
                i = np.searchsorted(rel, w1, side="right") - 1
                here = i >= 0
                hi = h[np.maximum(i, 0)] if len(h) else np.zeros(len(w), np.int64)
                h1 = np.where(here, c["t1"][hi] if len(h) else 0, last[0] if last else NO_TIME)
                h0 = np.where(here, c["t0"][hi] if len(h) else 0, last[3] if last else NO_TIME)
                hpid = np.where(here, c["pid"][hi] if len(h) else 0, last[1] if last else 0)
                htid = np.where(here, stid[hi] if len(h) else 0, last[2] if last else 0)
                ok = (here | (last is not None)) & (h1 >= w0) & (h1 <= w1)
                k = np.flatnonzero(ok)
                if len(k):
                    ids = np.arange(self.flow_id, self.flow_id + len(k))
                    self.flow_id += len(k)
                    # a start then its finish, for each flow
                    released, ended = self._ns(np.maximum(h0[k], h1[k] - 1)), self._ns(np.maximum(w0[k], w1[k] - 1))
                    cols = [np.stack((ids, ids), 1), np.stack((hpid[k], c["pid"][w][k]), 1),
                            np.stack((htid[k], stid[w][k]), 1), np.stack((released, ended), 1)]
                    texts.append(format_lines(_HANDOFF_FORMATS, np.tile([0, 1], len(k)),
                                              [x.reshape(-1) for x in cols]))
                    count += 2 * len(k)
            if len(h):
                hi = h[-1]
                latest = (int(c["t1"][hi]), int(c["pid"][hi]), int(stid[hi]), int(c["t0"][hi]))
                if last is None or latest[0] >= last[0]:
                    self._last_release[uid] = latest
        self._text(",\n".join(texts), count)

    # -- moments, counters, marks ---------------------------------------------------------------------------
    def instants(self, rows):
        """The model's moments (INSTANT_DTYPE records)."""
        m = self.model
        names = {uid: o.get("name", "") for uid, o in m.objects.items()}
        lines = []
        ts = self._us(rows["t"])
        for (t, pid, _by, _tid, kind, uid, a, b, c), x in zip(rows.tolist(), ts):
            obj = schema.subject_name(kind, uid, names, m.strings)
            args = {"kind": Kind(kind).name if kind in Kind._value2member_map_ else kind, "object": obj,
                    "description": schema.describe(kind, a, b, c, m.strings)}
            args.update(schema.fields(kind, a, b, c, m.strings))
            stid = self.lanes.place(pid, 0, _MOMENTS, t, t, "process")
            lines.append(json.dumps({"ph": "i", "s": "t", "name": ("%s %s" % (schema.title(kind), obj)).strip(),
                                     "cat": "moment", "pid": pid, "tid": stid, "ts": x, "args": args},
                                    separators=(",", ":")))
        self._lines(lines)

    def counter(self, name, pid, t, v, arg="value", scale=1.0):
        """A counter's points; a block of whole numbers (a semaphore's value, a queue's depth) written as
        integers, which is quicker and shorter."""
        head = ('{"ph":"C","name":%s,"pid":%d,"ts":%%.3f,"args":{%s:'
                % (_literal(self.text.json(name)), pid, _literal(self.text.json(arg))))
        as_float, as_int = head + "%r}}", head + "%d}}"     # ``as_int``: a format of ``textfmt``
        for lo in range(0, len(t), BLOCK_ROWS):
            vals = np.asarray(v[lo:lo + BLOCK_ROWS], np.float64) * scale
            times = t[lo:lo + BLOCK_ROWS]
            finite = np.isfinite(vals)
            if not finite.all():                    # JSON has no NaN nor infinity: such a point is left out
                vals, times = vals[finite], np.asarray(times)[finite]
            whole = bool(np.all((vals == np.trunc(vals)) & (np.abs(vals) < 2.0 ** 53)))
            if whole:
                self._text(format_lines([as_int], np.zeros(len(vals)), [self._ns(times), vals.astype(np.int64)]),
                           len(vals))
            else:
                self._lines(list(map(as_float.__mod__, zip(self._us(times), vals.tolist()))))

    def event_points(self, store, sid, t, v):
        """Counter points of the events (semaphore values, queue depths, free-form counters)."""
        if not len(t):
            return
        order = np.argsort(sid, kind="stable")
        sid, t, v = sid[order], t[order], v[order]
        starts = group_starts(sid)
        ends = np.append(starts[1:], len(sid))
        for s, e in zip(starts.tolist(), ends.tolist()):
            key = store.keys[int(sid[s])]
            self.counter(self.model._series_name(key), COUNTER_PID, t[s:e], v[s:e])

    # -- the end --------------------------------------------------------------------------------------------
    def finish(self, open_spans, profile=()):
        """Everything that waits for the end of the run: spans still open, processes, tasks, the samples'
        and barriers' counters, marks, thread names, the blocking profile (``contention.profile_counters``)
        and the run's metadata."""
        m = self.model
        if len(open_spans):
            self.spans({name: open_spans[name] for name in open_spans.dtype.names})
        self._processes()
        self._tasks()
        for key, series in m.series.items():
            if key[0] in ("value", "depth", "unfinished", "counter"):
                continue                                  # written as their chunks were read
            t, v = series.arrays()
            if key[0] in ("cpu", "rss"):
                self.counter("CPU %" if key[0] == "cpu" else "RSS MiB", key[1], t, v,
                             scale=1.0 if key[0] == "cpu" else 1.0 / (1 << 20))
            else:
                self.counter(series.name, COUNTER_PID, t, v)
        for i, series in enumerate(m.cpu_cores):
            t, v = series.arrays()
            self.counter("CPU core %d" % i, COUNTER_PID, t, v, arg="load %")
        lines = [json.dumps({"ph": "M", "name": "process_name", "pid": COUNTER_PID, "tid": 0,
                             "args": {"name": "counters"}})]
        for t, pid, label, value in m.marks:
            lines.append(json.dumps({"ph": "i", "s": "p", "name": label, "pid": pid, "tid": 2,
                                     "ts": self._us([t])[0], "args": {} if value is None else {"value": value}},
                                    separators=(",", ":")))
        for (pid, stid), name in self.lanes.names.items():
            lines.append(json.dumps({"ph": "M", "name": "thread_name", "pid": pid, "tid": stid, "args": {"name": name}},
                                    separators=(",", ":")))
        self._lines(lines)
        self._profile(profile)
        meta = {k: v for k, v in m.meta.items() if isinstance(v, (str, int, float, bool))}
        meta.update({"events": m.events_seen, "dropped": m.dropped})
        self.f.write('\n],"displayTimeUnit":"ms","otherData":%s}\n' % json.dumps(meta, separators=(",", ":")))

    def _profile(self, counters):
        if not counters:
            return
        pid = contention.PROFILE_PID
        self._lines([json.dumps({"ph": "M", "name": "process_name", "pid": pid, "tid": 0,
                                 "args": {"name": "blocking profile: where the program waited"}}),
                     json.dumps({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0,
                                 "args": {"sort_index": 1 << 20}})])
        for name, t, waiting in counters:
            self.counter(name, pid, t, waiting, arg="waiting")

    def _processes(self):
        lines = []
        for order, p in enumerate(self.model.processes_table()):
            label = "%s (%s) pid %d" % (p.name or "process", p.role, p.pid)
            lines.append({"ph": "M", "name": "process_name", "pid": p.pid, "tid": 0, "args": {"name": label}})
            lines.append({"ph": "M", "name": "process_sort_index", "pid": p.pid, "tid": 0,
                          "args": {"sort_index": order}})
            start = p.start_called if p.start_called != NO_TIME else p.created
            if p.booted != NO_TIME and start != NO_TIME and p.booted >= start:
                lines.append({"ph": "X", "name": "starting", "cat": "process", "pid": p.pid, "tid": 1,
                              "ts": self._us([start])[0], "dur": (p.booted - start) / 1000.0,
                              "args": {"start method": p.method}})
            life_start = p.booted if p.booted != NO_TIME else p.first
            life_end = p.exited if p.exited != NO_TIME else p.last
            if life_start != NO_TIME and life_end != NO_TIME and life_end >= life_start:
                lines.append({"ph": "X", "name": "lifetime", "cat": "process", "pid": p.pid, "tid": 2,
                              "ts": self._us([life_start])[0], "dur": (life_end - life_start) / 1000.0,
                              "args": {"exit": p.exit_text() or "running", "role": p.role}})
            lines.append({"ph": "M", "name": "thread_name", "pid": p.pid, "tid": 1, "args": {"name": "start"}})
            lines.append({"ph": "M", "name": "thread_name", "pid": p.pid, "tid": 2, "args": {"name": "lifetime"}})
        self._lines([json.dumps(x, separators=(",", ":")) for x in lines])

    def _tasks(self):
        """Pool tasks as slices on their workers' lanes, a flow from each task's dispatch (on its caller) to its
        start, and a moment where the caller used its result: a block of tasks at a time, in start order,
        formatted by column."""
        m = self.model
        n = len(m.tasks)
        if not n:
            return
        callers = {key: j.get("pid", 0) for key, j in m.jobs.items()}
        pools: dict = {}
        order = np.argsort(m.tasks.view("start"), kind="stable")
        for lo in range(0, n, BLOCK_ROWS):
            tab = m.tasks_array(order[lo:lo + BLOCK_ROWS])
            tab = tab[(tab["start"] != NO_TIME) & (tab["end"] != NO_TIME) & (tab["worker"] != 0)]
            if not len(tab):
                continue
            worker, start, end = tab["worker"].astype(np.int64), tab["start"], tab["end"]
            stid = self._place_by(worker, 0, start, end, "worker")
            # one format per (outcome, pool): the rows differ only in their numbers
            pool_codes, pool_of = np.unique(tab["pool"], return_inverse=True)
            codes, outcome_of = np.unique(tab["outcome"], return_inverse=True)
            group = pool_of.reshape(-1) * len(codes) + outcome_of.reshape(-1)
            used_groups, which = np.unique(group, return_inverse=True)
            outcomes = [_OUTCOME_NAME.get(c, "pending") for c in codes.tolist()]
            fmts = [_TASK_FORMAT % (outcomes[g % len(codes)],
                                    _literal(self._pool_text(pools, int(pool_codes[g // len(codes)]))))
                    for g in used_groups.tolist()]
            index, job = tab["index"].astype(np.int64), tab["job"].astype(np.int64)
            ts = self._ns(start)
            texts = [format_lines(fmts, which.reshape(-1), [index, worker, stid, ts, np.maximum(end - start, 0),
                                                             job, index])]
            count = len(tab)
            caller = np.array([callers.get(k, 0) for k in zip(tab["pool"].tolist(), job.tolist())], dtype=np.int64)
            sent = np.flatnonzero((tab["sent"] != NO_TIME) & (caller != 0))
            if len(sent):
                ids = np.arange(self.flow_id, self.flow_id + len(sent))
                self.flow_id += len(sent)
                texts.append(format_lines([_SENT_FORMAT], np.zeros(len(sent)),
                                          [ids, caller[sent], self._ns(tab["sent"][sent])]))
                texts.append(format_lines([_STARTED_FORMAT], np.zeros(len(sent)),
                                          [ids, worker[sent], stid[sent], ts[sent]]))
                count += 2 * len(sent)
            used = np.flatnonzero((tab["used"] != NO_TIME) & (caller != 0))
            if len(used):
                # one row per caller: a moment lasts no time, so moments never need a second row
                rows = {pid: self.lanes.name_lane(pid, 0, 8, 0, "main") for pid in np.unique(caller[used]).tolist()}
                lane = np.array([rows[p] for p in caller[used].tolist()], np.int64)
                texts.append(format_lines([_USED_FORMAT], np.zeros(len(used)),
                                          [index[used], caller[used], lane, self._ns(tab["used"][used])]))
                count += len(used)
            self._text(",\n".join(texts), count)

    def _pool_text(self, pools, pool):
        text = pools.get(pool)
        if text is None:
            text = pools[pool] = self.text.json(self.model.name_of(pool))
        return text

    def _place_by(self, pid, family, t0, t1, label):
        """Synthetic tids of slices (thread 0 of each ``pid``, one ``family``) given in order: placed a
        process at a time, each process's in the order given."""
        stid = np.zeros(len(pid), np.int64)
        by = np.argsort(pid, kind="stable")
        starts = group_starts(pid[by])
        for s, e in zip(starts.tolist(), np.append(starts[1:], len(by)).tolist()):
            rows = by[s:e]
            stid[rows] = self.lanes.place_many(int(pid[rows[0]]), 0, family, t0[rows], t1[rows], label)
        return stid


_HANDOFF_FORMATS = ['{"ph":"s","id":%d,"name":"handoff","cat":"lock handoff","pid":%d,"tid":%d,"ts":%.3f}',
                    '{"ph":"f","bp":"e","id":%d,"name":"handoff","cat":"lock handoff","pid":%d,"tid":%d,"ts":%.3f}']
#: A task's slice, given its outcome and its pool's name (JSON text): a format of ``textfmt.format_lines``.
_TASK_FORMAT = ('{"ph":"X","name":"task %%d","cat":"task","pid":%%d,"tid":%%d,"ts":%%.3f,"dur":%%.3f,'
                '"args":{"job":%%d,"index":%%d,"outcome":"%s","pool":%s}}')
_SENT_FORMAT = '{"ph":"s","id":%d,"name":"dispatch","cat":"dispatch","pid":%d,"tid":2,"ts":%.3f}'
_STARTED_FORMAT = '{"ph":"f","bp":"e","id":%d,"name":"dispatch","cat":"dispatch","pid":%d,"tid":%d,"ts":%.3f}'
_USED_FORMAT = '{"ph":"i","s":"t","name":"result %d used","cat":"result","pid":%d,"tid":%d,"ts":%.3f}'


class CsvWriter:
    """Writes the CSV tables into a directory, block by block."""

    TABLES = {"processes.csv": ["pid", "parent", "role", "name", "start_method", "created_s", "started_s",
                                "first_instruction_s", "exited_s", "exit", "cpu_percent", "rss_bytes", "threads"],
              "tasks.csv": ["pool", "job", "index", "worker", "outcome", "queued_s", "sent_s", "start_s", "end_s",
                            "result_used_s"],
              "spans.csv": ["object", "kind", "pid", "tid", "start_s", "end_s", "duration_ms", "outcome", "value"],
              "messages.csv": ["object", "operation", "pid", "tid", "time_s", "bytes", "blocked_ms", "depth"],
              "counters.csv": ["counter", "time_s", "value"],
              "instants.csv": ["time_s", "pid", "recorded_by", "kind", "object", "description"]}
    EVENTS = ["time_s", "pid", "tid", "kind", "object", "fields", "description"]

    def __init__(self, directory, model, t0, events=False):
        self.directory = directory
        self.model = model
        self.t0 = t0
        self.files = {}
        self.writers = {}
        self._said = {}
        names = list(self.TABLES) + (["events.csv"] if events else [])
        for name in names:
            path = os.path.join(directory, name)
            f = open(path + ".tmp", "w", newline="")
            self.files[name] = f
            w = self.writers[name] = csv.writer(f)
            w.writerow(self.TABLES.get(name, self.EVENTS))

    def _rel(self, t):
        """Seconds from the start, as text ('' for no time), for an array of ns."""
        t = np.asarray(t, np.int64)
        s = ((t - self.t0) / 1e9).tolist()
        return ["" if x == NO_TIME else "%.6f" % y for x, y in zip(t.tolist(), s)]

    def spans(self, cols):
        m = self.model
        names: dict = {}
        for lo in range(0, len(cols["t0"]), BLOCK_ROWS):
            c = {k: v[lo:lo + BLOCK_ROWS] for k, v in cols.items()}
            dur = ((c["t1"] - c["t0"]) / 1e6).tolist()
            rows = []
            for uid, kind, pid, tid, a, b, d, end, value in zip(c["uid"].tolist(), c["kind"].tolist(),
                                                                c["pid"].tolist(), c["tid"].tolist(),
                                                                self._rel(c["t0"]), self._rel(c["t1"]), dur,
                                                                c["end"].tolist(), c["value"].tolist()):
                name = names.get(uid)
                if name is None:
                    name = names[uid] = m.name_of(uid)
                rows.append((name, _SPAN_LABEL[kind], pid, tid, a, b, "%.6f" % d, _END_NAME[end], value))
            self.writers["spans.csv"].writerows(rows)

    def messages(self, rows):
        m = self.model
        names: dict = {}
        for lo in range(0, len(rows), BLOCK_ROWS):
            r = rows[lo:lo + BLOCK_ROWS]
            kinds = {k: Kind(k).name.lower() for k in np.unique(r["kind"]).tolist()}
            out = []
            for uid, pid, tid, kind, t, nbytes, blocked, depth in zip(
                    r["uid"].tolist(), r["pid"].tolist(), r["tid"].tolist(), r["kind"].tolist(), self._rel(r["t"]),
                    r["nbytes"].tolist(), (r["blocked"] / 1e6).tolist(), r["depth"].tolist()):
                name = names.get(uid)
                if name is None:
                    name = names[uid] = m.name_of(uid)
                out.append((name, kinds[kind], pid, tid, t, nbytes, "%.6f" % blocked, depth))
            self.writers["messages.csv"].writerows(out)

    def instants(self, rows):
        m = self.model
        names = {uid: o.get("name", "") for uid, o in m.objects.items()}
        self.writers["instants.csv"].writerows(
            (rel, pid, by, _kind_name(kind), schema.subject_name(kind, uid, names, m.strings),
             schema.describe(kind, a, b, c, m.strings))
            for rel, (t, pid, by, tid, kind, uid, a, b, c) in zip(self._rel(rows["t"]), rows.tolist()))

    def counter(self, name, t, v):
        for lo in range(0, len(t), BLOCK_ROWS):
            self.writers["counters.csv"].writerows(
                (name, rel, x) for rel, x in zip(self._rel(t[lo:lo + BLOCK_ROWS]),
                                                  np.asarray(v[lo:lo + BLOCK_ROWS], np.float64).tolist()))

    def event_points(self, store, sid, t, v):
        if not len(t):
            return
        order = np.argsort(sid, kind="stable")
        sid, t, v = sid[order], t[order], v[order]
        starts = group_starts(sid)
        ends = np.append(starts[1:], len(sid))
        for s, e in zip(starts.tolist(), ends.tolist()):
            self.counter(self.model._series_name(store.keys[int(sid[s])]), t[s:e], v[s:e])

    def events(self, ev):
        m = self.model
        names = {uid: o.get("name", "") for uid, o in m.objects.items()}
        strings = m.strings
        said = self._said

        def words(kind, uid, a, b, c):
            """kind, object, fields and description of a record, remembered: records repeat."""
            key = (kind, uid, a, b, c)
            w = said.get(key)
            if w is None:
                if len(said) >= SAID_CACHE:
                    said.clear()
                w = said[key] = (_kind_name(kind), schema.subject_name(kind, uid, names, strings),
                                 json.dumps(schema.fields(kind, a, b, c, strings), separators=(",", ":")),
                                 schema.describe(kind, a, b, c, strings))
            return w

        for lo in range(0, len(ev), BLOCK_ROWS):
            e = ev[lo:lo + BLOCK_ROWS]
            self.writers["events.csv"].writerows(
                (rel, pid, tid) + words(kind, uid, a, b, c)
                for rel, (t, uid, a, b, kind, c, pid, tid) in zip(self._rel(e["t"]), e.tolist()))

    def finish(self, open_spans):
        m = self.model
        if len(open_spans):
            self.spans({name: open_spans[name] for name in open_spans.dtype.names})
        procs = m.processes_table()
        self.writers["processes.csv"].writerows(
            (p.pid, p.ppid, p.role, p.name, p.method, *self._rel([p.created, p.start_called, p.booted, p.exited]),
             p.exit_text(), p.cpu, p.rss, p.threads) for p in procs)
        n = len(m.tasks)
        for lo in range(0, n, BLOCK_ROWS):
            tasks = m.tasks_array(np.arange(lo, min(n, lo + BLOCK_ROWS)))
            self.writers["tasks.csv"].writerows(
                (m.name_of(r[0]), r[1], r[2], r[3], _OUTCOME_NAME.get(r[4], "pending"), *self._rel(list(r[6:11])))
                for r in tasks.tolist())
        for key, series in m.series.items():
            if key[0] in ("value", "depth", "unfinished", "counter"):
                continue
            t, v = series.arrays()
            self.counter(series.name, t, v)
        for series in m.cpu_cores + ([m.cpu_total] if len(m.cpu_total) else []):
            t, v = series.arrays()
            self.counter(series.name, t, v)

    def close(self, keep):
        """Close the files; ``keep``: move them in place (else remove them).  Returns the paths kept."""
        out = []
        for name, f in self.files.items():
            f.close()
            path = os.path.join(self.directory, name)
            if keep:
                os.replace(path + ".tmp", path)
                out.append(path)
            elif os.path.exists(path + ".tmp"):
                os.unlink(path + ".tmp")
        return out


def _kind_name(kind):
    return Kind(kind).name if kind in Kind._value2member_map_ else kind


class _Outputs:
    """The Chrome trace and the CSV tables being written (either may be absent)."""

    def __init__(self, model, t0, chrome=None, directory=None, events=False):
        self.model = model
        self.chrome_path = chrome
        self.chrome_file = None
        self.chrome = None
        self.csv = None
        if chrome is not None:
            self.chrome_file = open(os.fspath(chrome) + ".tmp", "w")
            self.chrome = ChromeWriter(self.chrome_file, model, t0)
        if directory is not None:
            os.makedirs(directory, exist_ok=True)
            self.csv = CsvWriter(directory, model, t0, events)
        self.written = []

    def block(self, model, events=None):
        """What the model closed since the last block (all of it, for a model in memory)."""
        sp = model.spans
        if len(sp):
            cols = sp.views()
            if self.chrome:
                self.chrome.spans(cols)
            if self.csv:
                self.csv.spans(cols)
        if len(model.messages) and self.csv:
            self.csv.messages(model.messages_array())
        if len(model.instants):
            inst = model.instants_array()
            if self.chrome:
                self.chrome.instants(inst)
            if self.csv:
                self.csv.instants(inst)
        store = model._event_series
        pts = store.points
        if len(pts):
            sid, t, v = pts.view("sid"), pts.view("t"), pts.view("v")
            for out in (self.chrome, self.csv):
                if out:
                    out.event_points(store, sid, t, v)
        if events is not None and self.csv and "events.csv" in self.csv.writers:
            self.csv.events(events)

    def finish(self, model, profile=None):
        open_spans = model.open_spans_array(with_site=True)
        if self.chrome:
            self.chrome.finish(open_spans, profile_counters(model, profile=profile))
        if self.csv:
            self.csv.finish(open_spans)
        self.close(keep=True)
        return self.chrome.count if self.chrome else 0

    def close(self, keep):
        if self.chrome_file is not None:
            self.chrome_file.close()
            tmp = os.fspath(self.chrome_path) + ".tmp"
            if keep:
                os.replace(tmp, self.chrome_path)
            elif os.path.exists(tmp):
                os.unlink(tmp)
            self.chrome_file = None
        if self.csv is not None:
            self.written = self.csv.close(keep)
            self.csv = None


#: The blocking profile keeps each wait that recorded a call site (36 bytes) up to this many, and its
#: counters are exact; past them it keeps, per call site, its totals and its waiting time in each of
#: ``PROFILE_BINS`` equal stretches of the run, whatever the run's size.
PROFILE_EXACT_WAITS = 1_000_000
PROFILE_BINS = 4096
_PROFILE_FIELDS = (("t", "<i8"), ("wait", "<i8"), ("site", "<i8"), ("uid", "<u8"), ("pid", "<i4"))
_PROFILE_WAIT = np.dtype(list(_PROFILE_FIELDS))


class ProfileRecords:
    """The blocking profile of a run's records fed a chunk at a time (``feed``: EVENT_DTYPE records, each
    thread's in the order recorded, as stored or in time order).  Only each call site (CALLSITE) and the
    wait-ending record right after it in its thread on its object count; a call site whose wait ends in a
    later chunk is carried to it.  Each such wait is kept (36 bytes) until there are more than
    ``PROFILE_EXACT_WAITS`` and the run's time ``span`` (ns, first and last) is known; then they are summed
    per call site (``strings``: string id -> text; a site is its text) into ``PROFILE_BINS`` stretches of the
    span, and the memory stays that of the bins.  ``counters()``: the counters of the Chrome export."""

    def __init__(self, span=None, strings=None):
        self._carried = None
        self._kept = []
        self._n = 0
        self.span = span
        self.strings = strings if strings is not None else {}
        self._text_of: dict = {}
        self._sites: dict = {}          # text -> [waits, total ns, max ns, covered ns per bin, bin steps]
        self.binned = False

    def feed(self, chunk):
        kind = np.minimum(chunk["kind"], 255)
        cand = chunk[(kind == CALLSITE_KIND) | contention._IS_END[kind]]
        if self._carried is not None:
            cand, self._carried = np.concatenate((self._carried, cand)), None
        is_site = cand["kind"] == CALLSITE_KIND
        if not is_site.any():
            return
        order = np.lexsort((cand["tid"], cand["pid"], cand["uid"]))      # stable: each thread's order kept
        c, site = cand[order], is_site[order]
        same_next = np.zeros(len(c), bool)
        same_next[:-1] = ((c["uid"][1:] == c["uid"][:-1]) & (c["pid"][1:] == c["pid"][:-1])
                          & (c["tid"][1:] == c["tid"][:-1]))
        site_then_end = site & same_next & np.append(~site[1:], False)
        waiting = site & ~same_next             # the last record of its thread here: its wait ends later
        if waiting.any():
            self._carried = c[waiting]
        pairs = c[site_then_end | np.append(False, site_then_end[:-1])]
        if not len(pairs):
            return
        w = contention.waits(pairs)
        w = w[w["site"] != 0]
        rows = np.zeros(len(w), _PROFILE_WAIT)
        for name, _ in _PROFILE_FIELDS:
            rows[name] = w[name]
        if self.binned:
            self._add_bins(rows)
            return
        self._kept.append(rows)
        self._n += len(rows)
        if self._n > PROFILE_EXACT_WAITS and self.span is not None:
            self.binned = True
            kept, self._kept = self._kept, []
            for part in kept:
                self._add_bins(part)

    def _bin_width(self):
        lo, hi = self.span
        return max(1, -(-(int(hi) - int(lo) + 1) // PROFILE_BINS))

    def _add_bins(self, rows):
        lo = int(self.span[0])
        width = self._bin_width()
        top = lo + width * PROFILE_BINS
        end = np.clip(rows["t"], lo, top)
        start = np.clip(rows["t"] - rows["wait"], lo, end)
        b0 = np.minimum((start - lo) // width, PROFILE_BINS - 1)
        b1 = np.minimum((end - lo) // width, PROFILE_BINS - 1)
        ids, which = np.unique(rows["site"], return_inverse=True)
        texts = [self._text(i) for i in ids.tolist()]        # a site is its text (several ids may share one)
        for text in sorted(set(texts)):
            mine = np.isin(which, [k for k, x in enumerate(texts) if x == text])
            acc = self._sites.get(text)
            if acc is None:
                acc = self._sites[text] = [0, 0, 0, np.zeros(PROFILE_BINS), np.zeros(PROFILE_BINS + 1, np.int64)]
            wait = rows["wait"][mine]
            acc[0] += len(wait)
            acc[1] += int(wait.sum())
            acc[2] = max(acc[2], int(wait.max()))
            s, e, a, b = start[mine], end[mine], b0[mine], b1[mine]
            one = a == b
            # a wait within one bin covers it for its length; one across bins covers the rest of its first,
            # the start of its last and the whole of those between (steps, summed at the end)
            acc[3] += np.bincount(a, weights=np.where(one, e - s, (a + 1) * width + lo - s), minlength=PROFILE_BINS)
            acc[3] += np.bincount(b[~one], weights=(e - (b * width + lo))[~one], minlength=PROFILE_BINS)
            acc[4] += np.bincount(a[~one] + 1, minlength=PROFILE_BINS + 1)
            acc[4] -= np.bincount(b[~one], minlength=PROFILE_BINS + 1)

    def _text(self, sid):
        text = self._text_of.get(sid)
        if text is None:
            text = self._text_of[sid] = self.strings.get(sid, "#%x" % sid)
        return text

    def result(self):
        """The waits kept (exact): t, wait, site, uid, pid."""
        return np.concatenate(self._kept) if self._kept else np.zeros(0, _PROFILE_WAIT)

    def counters(self):
        """``contention.profile_counters`` of the waits fed: (name, times ns, threads waiting) per call site."""
        if not self.binned:
            waits = self.result()
            if not len(waits):
                return []
            return contention.profile_counters(_ProfileReport(waits, self.strings))
        width = self._bin_width()
        lo = int(self.span[0])
        out = []
        ranked = sorted(self._sites.items(), key=lambda kv: (-kv[1][1], -kv[1][0], kv[0]))
        for rank, (text, (n, total, top, covered, steps)) in enumerate(ranked[:contention.TOP_SITES], 1):
            mean = (covered + np.cumsum(steps)[:PROFILE_BINS] * float(width)) / width
            change = np.flatnonzero(np.append(True, mean[1:] != mean[:-1]))
            name = "#%d %s: %d waits, %s in all, max %s (mean waiting per %s)" % (
                rank, text, n, fmt_ns(total), fmt_ns(top), fmt_ns(width))
            out.append((name, lo + change * width, mean[change]))
        return out


class _ProfileReport:
    """What ``contention.profile_counters`` reads of a report: the waits with a call site and the profile."""

    def __init__(self, waits, strings):
        self.waits, self.strings = waits, strings

    def profile(self):
        return contention.blocking_profile(self.waits, self.strings)


def profile_records(chunks, span=None, strings=None):
    """``ProfileRecords`` of EVENT_DTYPE chunks (in stored or time order) read whole."""
    acc = ProfileRecords(span, strings)
    for chunk in chunks:
        acc.feed(chunk)
    return acc


def profile_counters(model, run_file=None, profile=None):
    """The blocking profile's counters (``contention.profile_counters``) for the run of ``model``: from
    ``profile`` (a ``ProfileRecords`` fed its events), else from ``run_file`` (an open ``store.RunFile``), else
    from the run file the model was read from, else from the events it kept; none if it has neither, or if its
    run file can no longer be read (the rest of the export does not depend on it)."""
    if profile is None:
        profile = _stored_profile(model, run_file)
    return profile.counters() if profile is not None else []


def _stored_profile(model, run_file):
    """``profile_records`` of the run file or the events kept (see ``profile_counters``); None if there are
    none to read."""
    from .store import RunFile, RunFileError
    strings = dict(model.strings)
    try:
        if run_file is not None:
            return profile_records(run_file.iter_chunks(), run_span(run_file), strings)
        if model.path and os.path.isfile(model.path):
            with RunFile(model.path) as rf:
                return profile_records(rf.iter_chunks(), run_span(rf), strings)
        if model.events is not None:
            return profile_records([model.events.records()], None, strings)
    except (RunFileError, OSError):
        pass
    return None


def run_span(run_file):
    """(first, last) time of a run file's records (ns), from its chunks' index; None if it has none."""
    index = run_file.chunk_index()
    if not index:
        return None
    return min(r[2] for r in index), max(r[3] for r in index)


def run_start(run_file):
    """The time origin a model of the whole run would have (``RunModel.t0``), known before reading it: the
    run's creation, or its first chunk's first record if that came earlier."""
    meta = run_file.meta()
    starts = [int(r[2]) for r in run_file.chunk_index()]
    first = min(starts) if starts else None
    created = meta.get("created_perf")
    if created:
        return int(created) if first is None else min(int(created), first)
    if first is None:
        samples = [t for t, _ in run_file.iter_samples()]
        return min(samples) if samples else 0
    return first


def export_run(run_file, chrome=None, csv_dir=None, events_csv=True):
    """Write the Chrome trace (``chrome``: a path) and/or the CSV tables (``csv_dir``) of an open
    ``store.RunFile`` in one pass over its chunks (see the module's docstring).  Returns (trace events written,
    CSV files written).  OSError if a file cannot be written (nothing half-written is left)."""
    model = RunModel()
    t0 = run_start(run_file)
    out = _Outputs(model, t0, chrome, csv_dir, events=events_csv)
    profile = None
    try:
        with model.lock:
            for reg in run_file.iter_registrations():
                model._registration(reg)
            if chrome is not None:
                profile = ProfileRecords(run_span(run_file), dict(model.strings))
            for events, order in in_time_order(run_file):
                model._ingest_events(events, order)
                piece = events[order]
                if profile is not None:
                    profile.feed(piece)
                out.block(model, piece)
                model.forget_rows()
            for t, s in run_file.iter_samples():
                model._sample(t, s)
            model.logs.extend(run_file.iter_log())
            model.set_meta(run_file.meta())
            model.dropped = run_file.dropped()
            model._settle()
            n = out.finish(model, profile)
    except BaseException:
        out.close(keep=False)
        raise
    return n, out.written


def write_chrome(model, path):
    """Write the Chrome trace of a model in memory to ``path`` (whole or not at all); OSError if it cannot be
    written.  Returns the number of trace events."""
    out = _Outputs(model, model.t0, chrome=path)
    try:
        out.block(model)
        return out.finish(model)
    except BaseException:
        out.close(keep=False)
        raise


def write_csv(model, directory, events=None):
    """processes.csv, tasks.csv, spans.csv, messages.csv, counters.csv, instants.csv (and events.csv if
    ``events`` are given: an array, or an iterable of arrays in time order) of a model in memory."""
    out = _Outputs(model, model.t0, directory=directory, events=events is not None)
    try:
        out.block(model)
        if events is not None:
            assert out.csv is not None
            for part in ([events] if isinstance(events, np.ndarray) else events):
                out.csv.events(part)
        out.finish(model)
    except BaseException:
        out.close(keep=False)
        raise
    return out.written


def chrome_trace(model):
    """The run as a Chrome Trace Event dict ({"traceEvents": [...], ...}): for small runs and tests."""
    buf = io.StringIO()
    w = ChromeWriter(buf, model, model.t0)
    cols = model.spans.views()
    if len(model.spans):
        w.spans(cols)
    if len(model.instants):
        w.instants(model.instants_array())
    pts = model._event_series.points
    w.event_points(model._event_series, pts.view("sid"), pts.view("t"), pts.view("v"))
    w.finish(model.open_spans_array(with_site=True))
    return json.loads(buf.getvalue())
