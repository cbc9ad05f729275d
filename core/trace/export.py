"""Exports of a run: Chrome Trace Event JSON (Perfetto and chrome://tracing open it) and CSV tables.

Chrome trace layout:
* ``M`` process_name / thread_name / sort-index records for every pid and every (pid, lane) used;
* ``X`` slices for pool tasks, lock holds and waits, condition/event/barrier waits, blocked queue and pipe
  operations, manager calls and pool workers' initializers.  Slices on one (pid, tid) must nest, so each kind
  of slice gets its own lanes per real thread, and overlapping slices of one kind are spread over as many
  lanes as needed (greedy interval partitioning); each lane is a synthetic tid with a readable thread name;
* ``C`` counters: semaphore values, queue depths, barrier waiting, CPU per core, per-process CPU% and RSS;
* flow events (``s``/``f``) for "released -> next acquired by" on contended locks and for
  "dispatched -> started" on pool tasks;
* ``i`` instants: results used, and the model's moments (signals, shared-memory segments, notifies, requests
  to end...) on a "moments" track of their lane, with the event's declared fields as args.

CSV: one table per model table, and ``events.csv`` with every event's fields named as the schema declares them
(a JSON object, units in the keys: ``{"wait_ns": 1200, "value": 2}``) and its description in words.

Times are microseconds from the run's start.  No Qt here.
"""
import csv
import json
import os

import numpy as np

from . import schema
from .events import Kind, Outcome
from .model import NO_TIME, Span, SpanEnd

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
_MOMENTS = 10
_FAMILY_NAME = {0: "pool tasks", 1: "lock holds", 2: "lock waits", 3: "waits", 4: "queue", 5: "pipe",
                6: "manager calls", 7: "joins", 8: "results used", 9: "initializer", _MOMENTS: "moments"}
_OUTCOME_NAME = {Outcome.OK: "ok", Outcome.ERROR: "error", Outcome.TIMEOUT: "timeout", Outcome.LOST: "lost",
                 Outcome.CANCELLED: "cancelled"}


class _Lanes:
    """Assigns synthetic tids so that slices on each tid never overlap."""

    def __init__(self):
        self.ends = {}       # (pid, tid, family) -> list of lane end times
        self.names = {}      # (pid, synthetic tid) -> thread name

    def place(self, pid, tid, family, t0, t1, thread_label):
        ends = self.ends.setdefault((pid, tid, family), [])
        for i, end in enumerate(ends):
            if end <= t0:
                ends[i] = t1
                lane = i
                break
        else:
            ends.append(t1)
            lane = len(ends) - 1
        stid = ((tid & 0xFFFFF) * 16 + family) * 64 + lane
        if (pid, stid) not in self.names:
            self.names[(pid, stid)] = "%s · %s%s" % (thread_label, _FAMILY_NAME[family],
                                                      "" if lane == 0 else " %d" % (lane + 1))
        return stid


def chrome_trace(model):
    """The run as a Chrome Trace Event dict ({"traceEvents": [...], ...})."""
    t0 = model.t0
    us = lambda t: (int(t) - t0) / 1000.0           # noqa: E731
    out = []
    lanes = _Lanes()
    procs = model.processes_table()
    main_tid = {}
    for order, p in enumerate(procs):
        label = "%s (%s) pid %d" % (p.name or "process", p.role, p.pid)
        out.append({"ph": "M", "name": "process_name", "pid": p.pid, "tid": 0, "args": {"name": label}})
        out.append({"ph": "M", "name": "process_sort_index", "pid": p.pid, "tid": 0, "args": {"sort_index": order}})
        start = p.start_called if p.start_called != NO_TIME else p.created
        if p.booted != NO_TIME and start != NO_TIME and p.booted >= start:
            out.append({"ph": "X", "name": "starting", "cat": "process", "pid": p.pid, "tid": 1,
                        "ts": us(start), "dur": (p.booted - start) / 1000.0,
                        "args": {"start method": p.method}})
            main_tid[p.pid] = 1
        life_start = p.booted if p.booted != NO_TIME else p.first
        life_end = p.exited if p.exited != NO_TIME else p.last
        if life_start != NO_TIME and life_end != NO_TIME and life_end >= life_start:
            out.append({"ph": "X", "name": "lifetime", "cat": "process", "pid": p.pid, "tid": 2,
                        "ts": us(life_start), "dur": (life_end - life_start) / 1000.0,
                        "args": {"exit": p.exit_text() or "running", "role": p.role}})
        out.append({"ph": "M", "name": "thread_name", "pid": p.pid, "tid": 1, "args": {"name": "start"}})
        out.append({"ph": "M", "name": "thread_name", "pid": p.pid, "tid": 2, "args": {"name": "lifetime"}})

    # -- spans ------------------------------------------------------------------------------------------------
    spans = model.spans_array(include_open=True)
    spans = spans[np.argsort(spans["t0"], kind="stable")]
    holds_by_uid = {}
    for r in spans.tolist():
        uid, pid, tid, kind, end, s0, s1, value = r
        kind = Span(kind)
        stid = lanes.place(pid, tid, _LANE_FAMILY[kind], s0, s1, "thread %d" % tid)
        name = "%s %s" % (_SPAN_LABEL[kind], model.name_of(uid))
        args = {"object": model.name_of(uid), "outcome": SpanEnd(end).name.lower()}
        if kind == Span.MANAGER_CALL:
            name = "%s.%s" % (model.name_of(uid), model.strings.get(value, "?"))
        elif kind in (Span.PIPE_RECV, Span.PIPE_SEND):
            args["bytes"] = value
        elif kind == Span.BARRIER_WAIT:
            args["generation"] = value
        out.append({"ph": "X", "name": name, "cat": _SPAN_LABEL[kind], "pid": pid, "tid": stid,
                    "ts": us(s0), "dur": max(s1 - s0, 0) / 1000.0, "args": args})
        if kind == Span.LOCK_HOLD:
            holds_by_uid.setdefault(uid, []).append((s0, s1, pid, stid))
        elif kind == Span.LOCK_WAIT and end == SpanEnd.OK:
            holds_by_uid.setdefault(("wait", uid), []).append((s0, s1, pid, stid))

    # -- flows: released -> next acquired by (for acquisitions that had to wait) -------------------------------
    flow_id = 1
    for uid, holds in holds_by_uid.items():
        if isinstance(uid, tuple):
            continue
        holds.sort()
        waits = holds_by_uid.get(("wait", uid), [])
        if not waits:
            continue
        releases = np.array([h[1] for h in holds], dtype=np.int64)
        starts = {(h[2], h[0]): h for h in holds}
        for w0, w1, wpid, _wtid in waits:
            # the release that ended this wait: the last release at or before the acquisition
            i = int(np.searchsorted(releases, w1, side="right")) - 1
            if i < 0:
                continue
            h0, h1, hpid, htid = holds[i]
            acquired = starts.get((wpid, w1))
            if h1 < w0 or acquired is None:
                continue
            out.append({"ph": "s", "id": flow_id, "name": "handoff", "cat": "lock handoff", "pid": hpid,
                        "tid": htid, "ts": us(max(h0, h1 - 1))})
            out.append({"ph": "f", "bp": "e", "id": flow_id, "name": "handoff", "cat": "lock handoff",
                        "pid": wpid, "tid": acquired[3], "ts": us(acquired[0])})
            flow_id += 1

    # -- pool tasks ---------------------------------------------------------------------------------------------
    tasks = model.tasks_array()
    if len(tasks):
        tasks = tasks[np.argsort(tasks["start"], kind="stable")]
        pool_pid = {}
        for (pool, job), j in model.jobs.items():
            pool_pid[(pool, job)] = j.get("pid", 0)
        for r in tasks.tolist():
            pool, job, index, worker, outcome, method, queued, sent, start, end, used = r
            if start == NO_TIME or end == NO_TIME or not worker:
                continue
            stid = lanes.place(worker, 0, 0, start, end, "worker")
            out.append({"ph": "X", "name": "task %d" % index, "cat": "task", "pid": worker, "tid": stid,
                        "ts": us(start), "dur": max(end - start, 0) / 1000.0,
                        "args": {"job": job, "index": index, "outcome": _OUTCOME_NAME.get(outcome, "pending"),
                                 "pool": model.name_of(pool)}})
            caller = pool_pid.get((pool, job), 0)
            if sent != NO_TIME and caller:
                out.append({"ph": "s", "id": flow_id, "name": "dispatch", "cat": "dispatch", "pid": caller,
                            "tid": 2, "ts": us(sent)})
                out.append({"ph": "f", "bp": "e", "id": flow_id, "name": "dispatch", "cat": "dispatch",
                            "pid": worker, "tid": stid, "ts": us(start)})
                flow_id += 1
            if used != NO_TIME and caller:
                out.append({"ph": "i", "s": "t", "name": "result %d used" % index, "cat": "result",
                            "pid": caller, "tid": lanes.place(caller, 0, 8, used, used, "main"), "ts": us(used)})

    # -- moments: each is one event, so its args are that event's declared fields ----------------------------
    names = {uid: o.get("name", "") for uid, o in model.objects.items()}
    instants = model.instants_array()
    for r in instants[np.argsort(instants["t"], kind="stable")].tolist():   # in time order: one track each
        t, pid, by, tid, kind, uid, a, b, c = r
        obj = schema.subject_name(kind, uid, names, model.strings)
        args = {"kind": Kind(kind).name, "object": obj, "description": schema.describe(kind, a, b, c, model.strings)}
        args.update(schema.fields(kind, a, b, c, model.strings))
        out.append({"ph": "i", "s": "t", "name": ("%s %s" % (schema.title(kind), obj)).strip(),
                    "cat": "moment", "pid": pid, "tid": lanes.place(pid, 0, _MOMENTS, t, t, "process"),
                    "ts": us(t), "args": args})

    for (pid, stid), name in lanes.names.items():
        out.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": stid, "args": {"name": name}})

    # -- counters -------------------------------------------------------------------------------------------------
    counter_pid = 0
    for key, series in model.series.items():
        t, v = series.arrays()
        if key[0] in ("cpu", "rss"):
            pid = key[1]
            cname = "CPU %" if key[0] == "cpu" else "RSS MiB"
            scale = 1.0 if key[0] == "cpu" else 1.0 / (1 << 20)
        else:
            pid = counter_pid
            cname = series.name
            scale = 1.0
        for ti, vi in zip(t.tolist(), v.tolist()):
            out.append({"ph": "C", "name": cname, "pid": pid, "ts": us(ti), "args": {"value": vi * scale}})
    if model.cpu_cores:
        for i, series in enumerate(model.cpu_cores):
            t, v = series.arrays()
            for ti, vi in zip(t.tolist(), v.tolist()):
                out.append({"ph": "C", "name": "CPU core %d" % i, "pid": counter_pid, "ts": us(ti),
                            "args": {"load %": vi}})
    out.append({"ph": "M", "name": "process_name", "pid": counter_pid, "tid": 0, "args": {"name": "counters"}})
    for t, pid, label, value in model.marks:
        out.append({"ph": "i", "s": "p", "name": label, "pid": pid, "tid": 2, "ts": us(t),
                    "args": {} if value is None else {"value": value}})
    meta = {k: v for k, v in model.meta.items() if isinstance(v, (str, int, float, bool))}
    meta.update({"events": model.events_seen, "dropped": model.dropped})
    return {"traceEvents": out, "displayTimeUnit": "ms", "otherData": meta}


def write_chrome(model, path):
    """Write the Chrome trace to ``path`` (whole or not at all: through a temporary file); OSError if it
    cannot be written.  Returns the number of trace events."""
    data = chrome_trace(model)
    tmp = os.fspath(path) + ".tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, separators=(",", ":"))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return len(data["traceEvents"])


def write_csv(model, directory, events=None):
    """processes.csv, tasks.csv, spans.csv, messages.csv, counters.csv, instants.csv (and events.csv if given)."""
    os.makedirs(directory, exist_ok=True)
    t0 = model.t0
    written = []

    def table(name, header, rows):
        path = os.path.join(directory, name)
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)
        written.append(path)

    def rel(t):
        return "" if t == NO_TIME else "%.6f" % ((t - t0) / 1e9)

    table("processes.csv", ["pid", "parent", "role", "name", "start_method", "created_s", "started_s",
                            "first_instruction_s", "exited_s", "exit", "cpu_percent", "rss_bytes", "threads"],
          [(p.pid, p.ppid, p.role, p.name, p.method, rel(p.created), rel(p.start_called), rel(p.booted),
            rel(p.exited), p.exit_text(), p.cpu, p.rss, p.threads) for p in model.processes_table()])
    tasks = model.tasks_array()
    table("tasks.csv", ["pool", "job", "index", "worker", "outcome", "queued_s", "sent_s", "start_s", "end_s",
                        "result_used_s"],
          [(model.name_of(r[0]), r[1], r[2], r[3], _OUTCOME_NAME.get(r[4], "pending"), rel(r[6]), rel(r[7]),
            rel(r[8]), rel(r[9]), rel(r[10])) for r in tasks.tolist()])
    spans = model.spans_array(include_open=True)
    table("spans.csv", ["object", "kind", "pid", "tid", "start_s", "end_s", "duration_ms", "outcome", "value"],
          [(model.name_of(r[0]), _SPAN_LABEL[Span(r[3])], r[1], r[2], rel(r[5]), rel(r[6]),
            "%.6f" % ((r[6] - r[5]) / 1e6), SpanEnd(r[4]).name.lower(), r[7]) for r in spans.tolist()])
    msgs = model.messages_array()
    table("messages.csv", ["object", "operation", "pid", "tid", "time_s", "bytes", "blocked_ms", "depth"],
          [(model.name_of(r[0]), Kind(r[3]).name.lower(), r[1], r[2], rel(r[4]), r[5], "%.6f" % (r[6] / 1e6),
            r[7]) for r in msgs.tolist()])
    rows = []
    for name, (t, v) in model.counters().items():
        rows.extend((name, rel(ti), vi) for ti, vi in zip(t.tolist(), v.tolist()))
    table("counters.csv", ["counter", "time_s", "value"], rows)
    names = {uid: o.get("name", "") for uid, o in model.objects.items()}
    strings = model.strings

    def kind_name(kind):
        return Kind(kind).name if kind in Kind._value2member_map_ else kind

    table("instants.csv", ["time_s", "pid", "recorded_by", "kind", "object", "description"],
          [(rel(t), pid, by, kind_name(kind), schema.subject_name(kind, uid, names, strings),
            schema.describe(kind, a, b, c, strings))
           for t, pid, by, tid, kind, uid, a, b, c in model.instants_array().tolist()])
    if events is not None:
        table("events.csv", ["time_s", "pid", "tid", "kind", "object", "fields", "description"],
              [(rel(t), pid, tid, kind_name(kind), schema.subject_name(kind, uid, names, strings),
                json.dumps(schema.fields(kind, a, b, c, strings), separators=(",", ":")),
                schema.describe(kind, a, b, c, strings))
               for t, uid, a, b, kind, c, pid, tid in events.tolist()])
    return written
