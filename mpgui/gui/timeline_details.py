"""The timeline's bars in words: what the tooltip and the details line say of a bar (``describe``: who, what,
how long, where it blocked, and for a wait who let it go and the handoff's length), which wait a clicked bar
is (``wait_of``, for the views around the timeline), and a row's counters at a time (``counters_text``).

Everything here reads a ``timeline_data.TimelineData`` and the run's "unblocked by" links; no Qt here.
"""
import numpy as np

from core.trace import schema
from core.trace.events import Outcome
from core.trace.model import NO_TIME, Span, SpanEnd
from core.trace.units import fmt_s

from .timeline_layers import MARK_BROKEN, MARK_GENERATION

_OUTCOME_TEXT = {Outcome.OK: "finished", Outcome.ERROR: "raised an exception", Outcome.TIMEOUT: "timed out",
                 Outcome.LOST: "lost (its worker died)", Outcome.CANCELLED: "cancelled"}
_SPAN_TEXT = {Span.LOCK_WAIT: "waiting for", Span.LOCK_HOLD: "holding", Span.COND_WAIT: "waiting on condition",
              Span.EVENT_WAIT: "waiting for event", Span.BARRIER_WAIT: "waiting at barrier",
              Span.QUEUE_PUT: "blocked putting into", Span.QUEUE_GET: "blocked getting from",
              Span.QUEUE_JOIN: "joining", Span.PIPE_RECV: "blocked receiving on", Span.PIPE_SEND: "blocked sending on",
              Span.MANAGER_CALL: "manager call on", Span.PROC_JOIN: "joining process",
              Span.INITIALIZER: "running the initializer of"}
#: Span kinds that are waits (a click on one says which wait it was: ``sigWaitSelected``).
WAIT_KINDS = frozenset(k for k in Span if k not in (Span.LOCK_HOLD, Span.INITIALIZER))
_MARK_TEXT = {MARK_GENERATION: "released generation %d", MARK_BROKEN: "broken in generation %d"}


def _fields(record):
    """The field names of a record (a dict, or a numpy record)."""
    names = getattr(getattr(record, "dtype", None), "names", None)
    return names if names is not None else record.keys()


def fmt_value(v, unit):
    """A counter's value in words: bytes in KiB, MiB, GiB; a share in %; a count whole."""
    if unit == "B":
        for scale, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
            if v >= scale:
                return "%.1f %s" % (v / scale, name)
        return "%d B" % v
    if unit == "%":
        return "%.0f%%" % v
    return ("%d" % v) if float(v).is_integer() else "%.2f" % v


def counters_text(label, counters, t0, x):
    """The values of a row's ``counters`` at ``x`` (seconds from the run's start ``t0``, ns), or "" if none
    has a value yet: ``waiting · value at 1.2 s\nwaiting: 3, value: 1``."""
    t = t0 + int(x * 1e9)
    parts = []
    for c in counters:
        k = int(np.searchsorted(c.t, t, side="right")) - 1
        if k >= 0:
            parts.append("%s: %s" % (c.name, fmt_value(float(c.v[k]), c.unit)))
    return "%s at %s\n%s" % (label.strip(), fmt_s(x), ", ".join(parts)) if parts else ""


def wait_of(d, layer, ref):
    """The wait bar ``ref`` of ``layer`` is (the view's ``sigWaitSelected``'s dict), or None if it is no wait."""
    if layer not in ("waits", "obj_waits"):
        return None
    s = d.spans[ref]
    kind = Span(int(s["kind"]))
    if kind not in WAIT_KINDS:
        return None
    t0 = d.t0
    return {"uid": int(s["uid"]), "pid": int(s["pid"]), "tid": int(s["tid"]), "t0": int(s["t0"]),
            "t1": int(s["t1"]), "kind": kind.name.lower(), "x0": (int(s["t0"]) - t0) / 1e9,
            "x1": (int(s["t1"]) - t0) / 1e9}


def describe(d, links, layer, ref):
    """The details of bar ``ref`` of ``layer`` of TimelineData ``d``, as text (tooltip and details line);
    ``links``: the run's "unblocked by" links (``contention.LINK_DTYPE``), or None if not read yet."""
    found = d.layers[layer].bar(ref)
    if found is None:
        return ""
    pid, x0, x1 = found             # pid: the bar's lane key
    ref = int(ref)
    tid = None
    if layer in ("holds", "waits", "obj_holds", "obj_waits"):
        pid, tid = int(d.spans[ref]["pid"]), int(d.spans[ref]["tid"])
    elif layer == "moments":
        pid = int(d.instants[ref]["pid"])
    elif layer == "obj_moments":
        pid = int(d.obj_marks[ref]["pid"])
    elif layer == "obj_mholds":
        pid, tid = int(d.managed[ref]["pid"]), int(d.managed[ref]["tid"])
    elif layer == "sends":
        pid, tid = int(d.messages[ref]["pid"]), int(d.messages[ref]["tid"])
    proc = d.procs.get(pid)
    who = "%s (pid %d%s)" % (proc.name if proc else "process", pid,
                             ", thread %d" % tid if tid is not None and tid not in (pid, 0) else "")
    if layer == "obj_moments":
        return describe_mark(d, d.obj_marks[ref], who, x0)
    if layer == "sends":
        msg = d.messages[ref]
        name = d.names.get(int(msg["uid"]), "#%x" % int(msg["uid"]))
        size = int(msg["nbytes"])
        return "%s wrote a message%s into %s's pipe (the queue's feeder)\nat %s" % (
            who, " of %d bytes" % size if size >= 0 else "", name, fmt_s(x0))
    if layer == "obj_mholds":
        h = d.managed[ref]
        name = d.names.get(int(h["uid"]), "#%x" % int(h["uid"]))
        still = " — still going" if ref >= d.managed.n else ""
        return "%s holding %s (through its manager) for %s%s\nfrom %s: acquire() returned, to release()" % (
            who, name, fmt_s(x1 - x0), still, fmt_s(x0))
    if layer == "tasks":
        t = d.tasks[ref]
        state = "running" if t["end"] == NO_TIME else _OUTCOME_TEXT.get(int(t["outcome"]), "ended")
        lines = ["Task %d of job %d — %s" % (t["index"], t["job"], state),
                 "worker %s" % who,
                 "started at %s, ran %s" % (fmt_s(x0), fmt_s(x1 - x0))]
        if t["queued"] != NO_TIME and t["start"] != NO_TIME:
            lines.append("waited %s in the queue" % fmt_s((t["start"] - t["queued"]) / 1e9))
        if t["used"] != NO_TIME and t["end"] != NO_TIME:
            lines.append("result used by the caller %s after it was ready"
                         % fmt_s(max(0, t["used"] - t["end"]) / 1e9))
        return "\n".join(lines)
    if layer == "used":
        t = d.tasks[ref]
        return "Result of task %d used by %s at %s" % (t["index"], who, fmt_s(x0))
    if layer == "moments":
        return describe_moment(d, d.instants[ref], who, x0)
    if layer in ("holds", "waits", "obj_holds", "obj_waits"):
        s = d.spans[ref]
        kind = Span(int(s["kind"]))
        name = d.names.get(int(s["uid"]), "#%x" % int(s["uid"]))
        if kind == Span.MANAGER_CALL:
            name = "%s.%s()" % (name, d.strings.get(int(s["value"]), "?"))
        end = SpanEnd(int(s["end"]))
        extra = {SpanEnd.TIMEOUT: " — timed out", SpanEnd.OPEN: " — still going", SpanEnd.BROKEN: " — broken",
                 SpanEnd.OK: ""}[end]
        text = "%s %s %s for %s%s\nfrom %s" % (who, _SPAN_TEXT[kind], name, fmt_s(x1 - x0), extra, fmt_s(x0))
        site = int(s["site"]) if "site" in _fields(s) else 0
        if site:
            text += "\nblocked at %s" % d.strings.get(site, "#%x" % site)
        if kind in WAIT_KINDS:
            text += unblocked_by(d, links, s)
        return text
    if layer == "starting":
        return "%s starting (%s): %s from start() to its first instruction" % (
            who, proc.method if proc else "?", fmt_s(x1 - x0))
    if proc is None:
        return who
    status = proc.exit_text() or proc.state
    return "%s — %s, %s\nalive %s to %s (%s)" % (who, proc.role, status, fmt_s(x0), fmt_s(x1), fmt_s(x1 - x0))


def unblocked_by(d, links, s):
    """Who let a wait go and how long the handoff took, if the links are read (one line, or "")."""
    if links is None or not len(links) or int(s["end"]) == SpanEnd.OPEN:
        return ""
    mine = np.flatnonzero((links["to_t"] == int(s["t1"])) & (links["to_pid"] == int(s["pid"]))
                          & (links["to_tid"] == int(s["tid"])) & (links["uid"] == np.uint64(int(s["uid"]))))
    if not len(mine):
        return ""
    link = links[int(mine[0])]
    by = d.procs.get(int(link["from_pid"]))
    what = schema.title(int(link["from_kind"])) if int(link["from_kind"]) in schema.SCHEMA else "release"
    return "\nunblocked by %s (pid %d): %s at %s, handoff %s" % (
        by.name if by else "process", int(link["from_pid"]), what,
        fmt_s((int(link["from_t"]) - d.t0) / 1e9), fmt_s(int(link["latency"]) / 1e9))


def describe_mark(d, r, who, x):
    """A mark on an object's track: a moment of it (a notify, a set...), a generation, a break."""
    kind = int(r["kind"])
    name = d.names.get(int(r["uid"]), "#%x" % int(r["uid"]))
    if kind in _MARK_TEXT:
        what = _MARK_TEXT[kind] % int(r["value"])
        by = "first waiter released" if kind == MARK_GENERATION else "first waiter broken"
        return "%s: %s\n%s: %s, at %s" % (name, what, by, who, fmt_s(x))
    return describe_moment(d, d.instants[int(r["instant"])], who, x)


def describe_moment(d, r, who, x):
    """A moment in words, from its kind's declaration: ``worker (pid 7): signal recv chan — handled SIGUSR1``."""
    kind, a, b, c = int(r["kind"]), int(r["a"]), int(r["b"]), int(r["c"])
    obj = schema.subject_name(kind, int(r["uid"]), d.names, d.strings)
    lines = ["%s: %s%s" % (who, schema.title(kind), " " + obj if obj else ""),
             schema.describe(kind, a, b, c, d.strings)]
    if int(r["by"]) != int(r["pid"]):
        by = d.procs.get(int(r["by"]))
        lines[-1] += ", by %s (pid %d)" % (by.name if by else "process", int(r["by"]))
    lines.append("at %s" % fmt_s(x))
    return "\n".join(lines)
