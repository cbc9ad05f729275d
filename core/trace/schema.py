"""What each kind of event means: one declaration per kind, from which every reader of events derives.

A kind's declaration (``KindSpec``) says what its ``uid`` names, each payload slot's field (name, unit, the
value meaning "unknown"), a one-line template the event log reads it with, and what the run model makes of it
or, with ``log_only``, why it only goes to the log.  The model's handlers (their parameters carry the declared
field names), the event log (``describe``), the CSV export and the Chrome trace's args (``fields``) all derive
from these declarations, so a kind cannot be half-supported: tests/core/test_schema.py fails when one is.

Readers import this module; traced processes never do (``events`` is all they need), so declaring a kind
costs a worker nothing.  Pure Python: no numpy, no Qt, nothing that touches the OS.
"""
import enum
import signal
from typing import Dict

from .events import IpcKind, JobMethod, Kind, Outcome, StartMethod, WorkerExit
from .units import fmt_bytes, fmt_ns

# -- units of payload fields (an enum-valued field has the enum class as its unit) ---------------------------
NS = "ns"                   # a duration in nanoseconds
US = "us"                   # a duration in microseconds
BYTES = "bytes"
COUNT = "count"             # a plain number: a depth, a value, an index, a job id
PID = "pid"
SIGNAL = "signal"           # a signal number
EXIT_CODE = "exit code"     # negative: killed by that signal
FLAG = "flag"               # 0 or 1
STRING = "string id"        # an interned string (``recorder.intern``): a label, a method name

#: Units whose values export with the unit in their key (``wait_ns``), so a number is never read in the
#: wrong unit.
_KEY_SUFFIX = {NS: "_ns", US: "_us", BYTES: "_bytes"}

# -- what a kind's ``uid`` names ---------------------------------------------------------------------------
PROCESS = "process object"  # the Process object's uid in the parent (0 for a process core did not start)
LOCK = "lock"               # Lock, RLock, Semaphore, BoundedSemaphore (the SemLock)
CONDITION = "condition"
EVENT = "event"
BARRIER = "barrier"
QUEUE = "queue"
CONNECTION = "connection"   # one end of a Pipe
SEGMENT = "shared memory segment"
SHARED_OBJECT = "manager's shared object"
MANAGER = "manager"
CHANNEL = "ipc channel"
POOL = "pool"
WAITED_ON = "object waited on"   # a lock, condition, event, barrier, queue, connection or managed object
LABEL = "label"             # the uid is itself a string id (PROGRESS: what progresses)
NOTHING = "nothing"         # uid is 0


class Field:
    """One payload slot of a kind.

    ``unknown``: the value that means "not known" (None: always known): left out of exports and of the event
    log.  ``plain``: a value that goes without saying (a depth of 1): exported, but the event log leaves it
    out.  ``words``: how particular values read in the event log (``{-1: "all"}``, a flag's two meanings).
    """

    __slots__ = ("name", "unit", "unknown", "plain", "words")

    def __init__(self, name, unit=COUNT, unknown=None, plain=None, words=None):
        self.name = name
        self.unit = unit
        self.unknown = unknown
        self.plain = plain
        self.words = words or {}

    @property
    def key(self):
        """The field's name in exports: with its unit when the unit is physical (``wait_ns``)."""
        return self.name + _KEY_SUFFIX.get(self.unit, "")

    def said(self, v):
        """Whether the event log mentions this value (it is known and not plain)."""
        return v != self.unknown and v != self.plain

    def text(self, v, strings):
        """The value as the event log reads it."""
        if v in self.words:
            return self.words[v]
        unit = self.unit
        if unit == NS:
            return fmt_ns(v)
        if unit == US:
            return fmt_ns(v * 1000)
        if unit == BYTES:
            return fmt_bytes(v)
        if unit == SIGNAL:
            return signal_name(v)
        if unit == EXIT_CODE:
            return exit_text(v)
        if unit == STRING:
            return strings.get(v, "#%x" % v)
        if isinstance(unit, type):
            return enum_text(unit, v)
        return str(v)

    def export(self, v, strings):
        """The value as exports hold it: numbers raw, flags as booleans, enums, signals and strings as text
        (signal numbers differ between platforms; their names do not)."""
        unit = self.unit
        if unit == FLAG:
            return bool(v) if v in (0, 1) else v
        if unit == STRING:
            return strings.get(v, v)
        if unit == SIGNAL:
            name = signal_name(v)
            return name if name.startswith("SIG") else v
        if isinstance(unit, type) and issubclass(unit, enum.IntEnum):
            return unit(v).name.lower() if v in unit._value2member_map_ else v
        return v

    def parse(self, x, string_ids):
        """The inverse of ``export`` (``string_ids``: text -> string id)."""
        if isinstance(x, bool):
            return int(x)
        if isinstance(x, int):
            return x
        if self.unit == STRING:
            return string_ids[x]
        if self.unit == SIGNAL:
            return int(signal.Signals[x])
        return int(self.unit[x.upper()])


class KindSpec:
    """A kind's declaration: what its uid names, its three payload slots (a Field or None each), the event
    log's template, and what the model makes of it (``model``) or why it only goes to the log (``log_only``).

    The template is text with ``{field}`` for a field's value and ``{optional part}`` around text that holds
    fields: the part is left out when one of its fields is unknown or plain, and ``{part|other}`` reads
    ``other`` instead."""

    __slots__ = ("kind", "subject", "slots", "template", "model", "log_only", "_parts")

    def __init__(self, kind, subject, template, slots, model, log_only):
        self.kind = kind
        self.subject = subject
        self.template = template
        self.slots = slots
        self.model = model
        self.log_only = log_only
        self._parts = None

    @property
    def fields(self):
        """The declared fields, in slot order."""
        return [f for f in self.slots if f is not None]

    def parts(self):
        if self._parts is None:
            self._parts = _parse(self.template, {f.name: i for i, f in enumerate(self.slots) if f is not None})
        return self._parts


#: kind -> KindSpec, for every ``Kind``.
SCHEMA: Dict[int, KindSpec] = {}


def _kind(kind, subject, template, a=None, b=None, c=None, model=None, log_only=None):
    SCHEMA[kind] = KindSpec(kind, subject, template, (a, b, c), model, log_only)


F = Field
K = Kind
_TIMEOUT = dict(unit=NS, unknown=-1)         # a timeout given to a blocking call (-1: none)

# -- processes ----------------------------------------------------------------------------------------------
_kind(K.PROC_CREATED, PROCESS, "Process object created", model="process lifecycle: when it was created")
_kind(K.PROC_START, PROCESS, "started child pid {child} ({method}), start() took {took}",
      a=F("child", PID), b=F("method", StartMethod), c=F("took", US),
      model="process lifecycle: start() called and returned, start method")
_kind(K.PROC_BOOT, PROCESS, "first instruction (parent pid {parent})", a=F("parent", PID),
      model="process lifecycle: the child's first instruction")
_kind(K.PROC_EXIT, PROCESS, "run ended: {code}", a=F("code", EXIT_CODE),
      model="process lifecycle: the process recorded its own end")
_kind(K.PROC_REAPED, PROCESS, "saw pid {child} end: {code}", a=F("child", PID), b=F("code", EXIT_CODE),
      model="process lifecycle: another process saw it end, with its exit code")
_kind(K.PROC_TERMINATE, PROCESS, "asked pid {target} to terminate (SIGTERM)", a=F("target", PID),
      model="an instant on the target's lane: when it was asked to end, next to when it did")
_kind(K.PROC_KILL, PROCESS, "asked pid {target} to die (SIGKILL)", a=F("target", PID),
      model="an instant on the target's lane: when it was killed, next to when it ended")
_kind(K.PROC_JOIN, PROCESS, "join() waited {wait}: {ended}{, {timed_out}}",
      a=F("wait", NS), b=F("ended", FLAG, words={0: "still running", 1: "the child had ended"}),
      c=F("timed_out", FLAG, plain=0, words={1: "timed out"}), model="a join span when it blocked")

# -- locks and semaphores: uid = the primitive ---------------------------------------------------------------
_kind(K.ACQ_REQUEST, LOCK, "must wait{, timeout {timeout}}", a=F("timeout", **_TIMEOUT),
      model="opens a lock-wait span")
_kind(K.ACQ_OK, LOCK, "acquired after {wait}{, value now {value}}{, depth {depth}}",
      a=F("wait", NS), b=F("value", unknown=-1), c=F("depth", plain=1),
      model="closes the lock-wait span, opens a hold span; the semaphore's value counter")
_kind(K.ACQ_TIMEOUT, LOCK, "gave up after {wait}", a=F("wait", NS, words={0: "no wait (non-blocking)"}),
      model="closes the lock-wait span as timed out")
_kind(K.RELEASE, LOCK, "released{ after holding {hold}}{, value now {value}}{, still held at depth {depth}}",
      a=F("hold", NS, unknown=-1), b=F("value", unknown=-1), c=F("depth", plain=0),
      model="closes the hold span; the semaphore's value counter")
_kind(K.RELEASE_ERROR, LOCK, "release refused{: value {value}}", b=F("value", unknown=-1),
      model="an instant: a BoundedSemaphore released too often, an RLock released by a non-owner")

# -- condition: uid = the condition ---------------------------------------------------------------------------
_kind(K.COND_WAIT, CONDITION, "wait(){ with timeout {timeout}}", a=F("timeout", **_TIMEOUT),
      model="opens a condition-wait span")
_kind(K.COND_WOKEN, CONDITION, "{notified} after {wait}",
      a=F("wait", NS), b=F("notified", FLAG, words={0: "timed out", 1: "notified"}),
      model="closes the condition-wait span (timed out unless notified)")
_kind(K.COND_NOTIFY, CONDITION, "notify wakes {n} waiting", a=F("n", words={-1: "all"}),
      model="an instant: who woke the waiters, and when")

# -- event: uid = the event -----------------------------------------------------------------------------------
_kind(K.EVENT_SET, EVENT, "set()", model="an instant: the moment the waiters are released")
_kind(K.EVENT_CLEAR, EVENT, "clear()", model="an instant: from here wait() blocks again")
_kind(K.EVENT_WAIT, EVENT, "wait(){ with timeout {timeout}}", a=F("timeout", **_TIMEOUT),
      model="opens an event-wait span")
_kind(K.EVENT_WAIT_END, EVENT, "{flag} after {wait}",
      a=F("wait", NS), b=F("flag", FLAG, words={0: "timed out", 1: "set"}),
      model="closes the event-wait span (timed out unless set)")

# -- barrier: uid = the barrier ------------------------------------------------------------------------------
_kind(K.BARRIER_ARRIVE, BARRIER, "arrived with {waiting} of {parties} already waiting (generation {generation})",
      a=F("parties"), b=F("generation"), c=F("waiting"),
      model="opens a barrier-wait span; the barrier's waiting counter")
_kind(K.BARRIER_PASS, BARRIER, "passed after {wait} (generation {generation}), wait() returned {index}",
      a=F("wait", NS), b=F("generation"), c=F("index"), model="closes the barrier-wait span")
_kind(K.BARRIER_BROKEN, BARRIER, "broken after {wait} (generation {generation})",
      a=F("wait", NS), b=F("generation"), model="closes the barrier-wait span as broken")
_kind(K.BARRIER_ABORT, BARRIER, "abort()", model="an instant: why the waits that follow end broken")
_kind(K.BARRIER_RESET, BARRIER, "reset()", model="an instant: why the waits that follow end broken")

# -- queues: uid = the queue --------------------------------------------------------------------------------
_kind(K.QUEUE_PUT, QUEUE, "put() took {blocked}{, depth now {depth}}", a=F("blocked", NS),
      b=F("depth", unknown=-1), model="a message; a blocked-put span when it blocked; the depth counter")
_kind(K.QUEUE_SEND, QUEUE, "the feeder thread wrote {size}", a=F("size", BYTES), model="a message")
_kind(K.QUEUE_GET, QUEUE, "got {size} in {blocked}{, depth now {depth}}",
      a=F("blocked", NS), b=F("size", BYTES), c=F("depth", unknown=-1),
      model="a message; a blocked-get span when it blocked; the depth counter")
_kind(K.QUEUE_FULL, QUEUE, "put() gave up after {blocked}: the queue is full", a=F("blocked", NS),
      model="a blocked-put span ending in a timeout")
_kind(K.QUEUE_EMPTY, QUEUE, "get() gave up after {blocked}: the queue is empty", a=F("blocked", NS),
      model="a blocked-get span ending in a timeout")
_kind(K.QUEUE_TASK_DONE, QUEUE, "task_done(): {unfinished} unfinished", a=F("unfinished", unknown=-1),
      model="the queue's unfinished-tasks counter")
_kind(K.QUEUE_JOIN, QUEUE, "join() returned after {blocked}", a=F("blocked", NS),
      model="closes the queue-join span")
_kind(K.QUEUE_JOIN_WAIT, QUEUE, "join() waits", model="opens a queue-join span")

# -- pipes: uid = the connection end ------------------------------------------------------------------------
_kind(K.PIPE_SEND, CONNECTION, "sent {size} in {blocked}", a=F("size", BYTES), b=F("blocked", NS),
      model="a message; a blocked-send span when it blocked")
_kind(K.PIPE_RECV, CONNECTION, "received{ {size}} in {blocked}", a=F("size", BYTES, unknown=-1),
      b=F("blocked", NS), model="a message; a blocked-recv span when it blocked")
_kind(K.PIPE_CLOSE, CONNECTION, "closed", model="an instant: after it, the other end's recv() raises EOFError")

# -- shared memory: uid = the segment (the same in every process) -------------------------------------------
_kind(K.SHM_CREATE, SEGMENT, "created a {size} segment", a=F("size", BYTES),
      model="an instant: the segment's life begins")
_kind(K.SHM_ATTACH, SEGMENT, "attached the {size} segment", a=F("size", BYTES),
      model="an instant: this process maps the segment")
_kind(K.SHM_CLOSE, SEGMENT, "closed its mapping of the {size} segment", a=F("size", BYTES),
      model="an instant: this process unmaps the segment")
_kind(K.SHM_UNLINK, SEGMENT, "unlinked the {size} segment", a=F("size", BYTES),
      model="an instant: the segment's name is gone (it is freed when the last mapping closes)")

# -- managers ---------------------------------------------------------------------------------------------------
_kind(K.MANAGER_CALL, SHARED_OBJECT, "{method}() took {duration}{, {raised}}",
      a=F("duration", NS), b=F("method", STRING), c=F("raised", FLAG, plain=0, words={1: "raised"}),
      model="a manager-call span")
_kind(K.MANAGER_START, MANAGER, "started its server process, pid {server}", a=F("server", PID),
      model="an instant: the manager's server is up")

# -- core.ipc: uid = the channel --------------------------------------------------------------------------------
_kind(K.IPC_SEND, CHANNEL, "sent {size} by {channel}", a=F("size", BYTES), b=F("channel", IpcKind),
      model="a message")
_kind(K.IPC_RECV, CHANNEL, "received {size} by {channel}", a=F("size", BYTES), b=F("channel", IpcKind),
      model="a message")
_kind(K.SIGNAL_SEND, CHANNEL, "sent {signal} to pid {target}", a=F("signal", SIGNAL), b=F("target", PID),
      model="an instant on the sender's lane")
_kind(K.SIGNAL_RECV, CHANNEL, "handled {signal}", a=F("signal", SIGNAL),
      model="an instant on the receiver's lane")

# -- pool: uid = the Pool; job ids are small ints per pool; a task's index is its position in the call --------
_kind(K.POOL_CREATED, POOL, "Pool of {processes} workers{, maxtasksperchild {maxtasksperchild}}",
      a=F("processes"), b=F("maxtasksperchild", plain=0), model="an instant: the pool's life begins")
_kind(K.POOL_JOB, POOL, "job {job}: {method}{ of {tasks} tasks}",
      a=F("job"), b=F("tasks", unknown=-1), c=F("method", JobMethod), model="a job: its method and size")
# CHUNK_QUEUED is also re-emitted (by the caller at submission or as the feeder reads; by the pool's manager
# when a dead worker's untouched tasks are requeued, possibly from mid-chunk) before the matching CHUNK_SENT.
_kind(K.POOL_CHUNK_QUEUED, POOL, "job {job}: {size} task(s) from task {first} queued",
      a=F("job"), b=F("first"), c=F("size"), model="task column: queued")
_kind(K.POOL_CHUNK_SENT, POOL, "job {job}: the chunk from task {first} sent to pid {worker}",
      a=F("job"), b=F("first"), c=F("worker", PID), model="task columns: sent, worker")
_kind(K.POOL_TASK, POOL, "job {job} task {index}: {outcome}", a=F("job"), b=F("index"), c=F("outcome", Outcome),
      model="task columns: end, outcome (t is the end; POOL_TASK_T0 precedes it in the same ring)")
_kind(K.POOL_TASK_T0, POOL, "job {job} task {index} started", a=F("job"), b=F("index"),
      model="task columns: start, worker")
# LOST: its worker died (also a task the worker had finished but not yet reported); TIMEOUT; CANCELLED
# (terminate); ERROR (failed in the parent: argument not picklable, input raised).
_kind(K.POOL_TASK_LOST, POOL, "job {job} task {index} failed by the pool: {outcome}",
      a=F("job"), b=F("index"), c=F("outcome", Outcome), model="task columns: end, outcome (the pool's verdict)")
_kind(K.POOL_RESULT_USED, POOL, "job {job}: the result{ of task {index}|s of the whole job} used by the caller",
      a=F("job"), b=F("index", unknown=-1), model="task column: result used")
_kind(K.POOL_WORKER_UP, POOL, "worker {number} started: pid {worker}", a=F("worker", PID), b=F("number"),
      log_only="the worker's lane and start come from its own records (PROC_START, PROC_BOOT, its "
               "registration); this is the pool's view of the same moment")
# Emitted by the parent with the worker's timestamp: t is when the initializer returned.
_kind(K.POOL_WORKER_INIT, POOL, "worker pid {worker} ready: its initializer took {duration}",
      a=F("duration", NS), b=F("worker", PID), model="an initializer span on the worker's lane")
_kind(K.POOL_WORKER_EXIT, POOL, "worker pid {worker} ended{: {code}} ({reason})",
      a=F("worker", PID), b=F("code", EXIT_CODE, unknown=-1), c=F("reason", WorkerExit),
      model="process lifecycle: the pool saw its worker end, and why")
_kind(K.POOL_JOB_DONE, POOL, "job {job} done{, {failed}}", a=F("job"),
      c=F("failed", FLAG, plain=0, words={1: "some tasks failed"}), model="a job's end")
_kind(K.POOL_CLOSED, POOL, "{terminate}", c=F("terminate", FLAG, words={0: "close()", 1: "terminate()"}),
      model="an instant: no more work is taken (close) or the workers are stopped (terminate)")
# A worker runs tasks too short to record one by one as a group (core.pool.GROUP_BELOW_NS): t is the start
# (GROUP_T0) or the end (GROUP); its tasks share the group's time equally; a task of it that failed was
# recorded alone (TASK_T0/TASK, ERROR) first.
_kind(K.POOL_GROUP_T0, POOL, "job {job}: a group of {count} short tasks from task {first} started",
      a=F("job"), b=F("first"), c=F("count"), model="task columns: start, worker")
_kind(K.POOL_GROUP, POOL, "job {job}: the group of {count} short tasks from task {first} ended",
      a=F("job"), b=F("first"), c=F("count"), model="task columns: start, end, outcome (an equal share each)")

# -- free-form: scenarios and programs ---------------------------------------------------------------------
_kind(K.MARK, NOTHING, "{label}: {value}", a=F("label", STRING), b=F("value"), model="a labelled mark")
_kind(K.COUNTER, NOTHING, "{name} = {value}", a=F("value"), b=F("name", STRING), model="a counter series")
_kind(K.PROGRESS, LABEL, "{done}{ of {total}} done", a=F("done"), b=F("total", unknown=-1),
      model="the progress of what the uid names")
_kind(K.PHASE, NOTHING, "phase: {label}", a=F("label", STRING), model="a phase line across the timeline")

# -- where a wait blocked: uid = the object waited on ---------------------------------------------------------
# Recorded only on a blocking path, by the waiting thread: as it starts to block (before ACQ_REQUEST, COND_WAIT
# and BARRIER_ARRIVE; after EVENT_WAIT and QUEUE_JOIN_WAIT, once the event is found unset or tasks unfinished),
# or, for a call known to have blocked only once it returns (it took events.BLOCKED_NS or more), right before
# QUEUE_GET/PUT/FULL/EMPTY, PIPE_SEND/RECV or MANAGER_CALL.  Either way it belongs to the next wait-ending
# record of its thread on the same object.
_kind(K.CALLSITE, WAITED_ON, "blocked at {site}", a=F("site", STRING),
      log_only="attached to the wait it precedes by the analytics (core/trace/contention.py) and, later, the "
               "model")

del F, K


# -- reading a record ---------------------------------------------------------------------------------------
def describe(kind, a, b, c, strings):
    """An event's payload in words, from its kind's template (``strings``: string id -> text)."""
    spec = SCHEMA.get(kind)
    if spec is None:                 # a kind from a newer version of core
        return "payload %d, %d, %d" % (a, b, c)
    return _render(spec.parts(), (a, b, c), spec.slots, strings)


def fields(kind, a, b, c, strings):
    """An event's payload as ``{field key: value}`` (the exports' form); unknown values are left out."""
    spec = SCHEMA.get(kind)
    if spec is None:
        return {"a": a, "b": b, "c": c}
    return {f.key: f.export(v, strings) for f, v in zip(spec.slots, (a, b, c))
            if f is not None and v != f.unknown}


def payload(kind, exported, string_ids):
    """The inverse of ``fields``: ``(a, b, c)`` from ``{field key: value}`` (``string_ids``: text -> id)."""
    spec = SCHEMA[kind]
    out = []
    for f in spec.slots:
        if f is None:
            out.append(0)
        elif f.key in exported:
            out.append(f.parse(exported[f.key], string_ids))
        else:
            out.append(f.unknown if f.unknown is not None else 0)
    return tuple(out)


def title(kind):
    """A kind as the event log names it: ``acq ok``; the number of a kind from a newer version of core."""
    return Kind(kind).name.lower().replace("_", " ") if kind in SCHEMA else str(kind)


def subject_name(kind, uid, names, strings):
    """The name of what an event is about (``names``: object uid -> name)."""
    spec = SCHEMA.get(kind)
    if spec is not None and spec.subject == LABEL:
        return strings.get(uid, "")
    if not uid or (spec is not None and spec.subject == NOTHING):
        return ""
    return names.get(uid) or "#%x" % uid


def enum_text(enum_class, v):
    """A value of one of the payload enums in words: ``imap unordered``; the number if it is none of them."""
    member = enum_class._value2member_map_.get(v)
    return member.name.lower().replace("_", " ") if member is not None else str(v)


def signal_name(signum):
    """``SIGKILL``; ``signal 99`` for a number the platform does not name."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return "signal %d" % signum


def exit_text(code):
    """An exit code in words: ``exit 0``, ``killed by SIGKILL``."""
    if code < 0:
        return "killed by " + signal_name(-code)
    return "exit %d" % code


# -- templates ----------------------------------------------------------------------------------------------
def _parse(template, slot_of):
    """A template as a list of parts: literal text, ``(slot,)`` for a field, ``(parts, other)`` for an optional
    part.  ValueError for a field the kind does not declare, a nested optional part or an unclosed brace."""
    parts, i, n = [], 0, len(template)
    while i < n:
        j = template.find("{", i)
        if j < 0:
            parts.append(template[i:])
            break
        if j > i:
            parts.append(template[i:j])
        depth, k = 0, j
        while k < n:
            depth += {"{": 1, "}": -1}.get(template[k], 0)
            if depth == 0:
                break
            k += 1
        if depth:
            raise ValueError("unclosed { in %r" % template)
        inner = template[j + 1:k]
        if inner.isidentifier():
            if inner not in slot_of:
                raise ValueError("%r names no declared field: {%s}" % (template, inner))
            parts.append((slot_of[inner],))
        else:
            body, _, other = inner.partition("|")
            sub = _parse(body, slot_of)
            if any(isinstance(p, tuple) and len(p) == 2 for p in sub) or "{" in other:
                raise ValueError("optional parts cannot nest: %r" % template)
            parts.append((sub, other))
        i = k + 1
    return parts


def _render(parts, values, slots, strings):
    out = []
    for p in parts:
        if isinstance(p, str):
            out.append(p)
        elif len(p) == 1:
            out.append(slots[p[0]].text(values[p[0]], strings))
        else:
            sub, other = p
            said = all(slots[q[0]].said(values[q[0]]) for q in sub if not isinstance(q, str))
            out.append(_render(sub, values, slots, strings) if said else other)
    return "".join(out)
