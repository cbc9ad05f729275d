"""The summary of a run, from one streaming pass over its run file: what ``main.py run`` and ``trace`` print
after a run.  Memory stays bounded whatever the run's size (it holds one chunk of events at a time, and per
process, per lock and per pool job a few numbers); no model is built.

``summarize(run_file)`` gives a ``RunSummary``: the processes (role, name, start method, start latency, how
each ended), events recorded and dropped, pool tasks, the run's duration, and per lock-like object its
acquisitions, waits and holds.  The figures are the model's (``model.RunModel``: ``summary()``,
``processes_table()``, ``contention()``), computed otherwise:

* a lock's waits are in its ACQ_OK records' ``a`` (and its timeouts' in ACQ_TIMEOUT's): summed per object
  with numpy, no pairing;
* its holds pair each RELEASE with an ACQ_OK by the model's own pairing (``pairing.pair_holds``: a thread's
  release closes its latest acquisition, a release by a thread that holds nothing the object's oldest one),
  on the records in the order the model reads them (``model.in_time_order``);
* a process's times are the earliest or latest of its records, which is what the model's pass in time order
  leaves;
* pool tasks are counted as unions of index ranges per job.

The registrations are read twice (processes first, as the model takes them; the names of the objects shown
last), the samples once.  No Qt here.
"""
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np

from .events import Kind, StartMethod, WorkerExit
from .lifecycle import ProcInfo, name_the_program, role_rank
from .model import in_time_order
from .pairing import ACQUIRE, RELEASE, LockState, pair_holds

NO_TIME = -1
#: The order of the process table, by role (as the model's).
#: Objects shown in the most contended list, at most.
TOP_OBJECTS = 5

_ACQ_OK, _RELEASE, _ACQ_TIMEOUT = int(Kind.ACQ_OK), int(Kind.RELEASE), int(Kind.ACQ_TIMEOUT)


def _kinds_table(*kinds):
    """A lookup table: ``table[np.minimum(kind, 255)]`` is whether a record is of one of ``kinds``."""
    table = np.zeros(256, dtype=bool)
    table[[int(k) for k in kinds]] = True
    return table


_PROC_KINDS = _kinds_table(Kind.PROC_CREATED, Kind.PROC_START, Kind.PROC_BOOT, Kind.PROC_EXIT, Kind.PROC_REAPED,
                           Kind.POOL_WORKER_EXIT)
_LOCK_KINDS = _kinds_table(Kind.ACQ_OK, Kind.RELEASE, Kind.ACQ_TIMEOUT)
#: Pool records that name one task (``b``) of a job (``a``) of a pool (``uid``).
_ONE_TASK = _kinds_table(Kind.POOL_CHUNK_SENT, Kind.POOL_TASK_T0, Kind.POOL_TASK, Kind.POOL_TASK_LOST,
                         Kind.POOL_RESULT_USED)
#: Pool records that name ``c`` tasks from ``b`` on (a queued chunk names at least one).
_TASK_RANGES = _kinds_table(Kind.POOL_CHUNK_QUEUED, Kind.POOL_GROUP_T0, Kind.POOL_GROUP)
_METHOD_NAMES = {int(m): m.name.lower() for m in StartMethod if m != StartMethod.UNKNOWN}
_EXIT_REASONS = {int(w): w.name.lower().replace("_", " ") for w in WorkerExit}


class ProcessSummary(ProcInfo):
    """One process of the run, as the summary's table shows it: the model's ``ProcInfo`` (the same fields and
    derived figures), sorted the way the app's process table sorts."""

    def sort_key(self):
        when = self.created if self.created >= 0 else (self.first if self.first >= 0 else 1 << 62)
        return role_rank(self.role), when, self.pid


@dataclass
class ObjectContention:
    """One lock-like object: acquisitions, waits (contended acquisitions), timeouts, wait and hold times."""
    uid: int
    name: str = ""
    kind: str = ""
    acquired: int = 0
    contended: int = 0
    timeouts: int = 0
    wait_total_ns: int = 0
    wait_max_ns: int = 0
    hold_total_ns: int = 0
    hold_max_ns: int = 0
    waited: bool = False         # it has a wait (contended or timed out): listed before those without

    def as_dict(self):
        return {"name": self.name, "kind": self.kind, "acquired": self.acquired, "contended": self.contended,
                "timeouts": self.timeouts, "wait_total_ns": self.wait_total_ns, "wait_max_ns": self.wait_max_ns,
                "hold_total_ns": self.hold_total_ns, "hold_max_ns": self.hold_max_ns}


@dataclass
class RunSummary:
    """What the command line prints after a run."""
    processes: List[ProcessSummary]
    events: int
    dropped: int
    tasks: int
    duration_s: float
    contention: List[ObjectContention]          # the most contended first, at most TOP_OBJECTS of them
    meta: Dict = field(default_factory=dict)
    problems: List[str] = field(default_factory=list)

    @property
    def size_cap(self):
        """The run file's ``size_cap`` metadata if it reached its cap (what was dropped), else None."""
        cap = self.meta.get("size_cap")
        return cap if isinstance(cap, dict) and cap.get("hit_perf") is not None else None


class _Pass:
    """The state of one pass over a run file."""

    def __init__(self):
        self.procs = {}
        self.proc_uids = {}           # Process object uid -> pid, from registrations
        self.start_uids = {}          # Process object uid -> (t, position, pid): its latest PROC_START
        self.boot_uids = {}           # Process object uid -> (t, position, pid): its earliest PROC_BOOT
        self.created = {}             # Process object uid -> (t, position): its latest PROC_CREATED
        self.exit_set = {}            # pid -> exit code the registrations set
        self.reaped = {}              # pid -> (t, position, code): the latest PROC_REAPED
        self.first_code = {}          # pid -> (t, position, code): the earliest PROC_EXIT / POOL_WORKER_EXIT
        self.latest = {}              # (pid, field) -> (t, position, value): fields the latest record sets
        self.method_from = {}         # pid -> (t, position, method): the earliest PROC_START with a method
        self.objects = {}             # uid -> ObjectContention
        self.holds = LockState()      # acquisitions not yet released
        self.tasks = {}               # (pool, job) -> (starts, ends) of disjoint index ranges
        self.events = 0
        self.position = 0
        self.t_first = None
        self.t_last = None

    def proc(self, pid):
        p = self.procs.get(pid)
        if p is None:
            p = self.procs[pid] = ProcessSummary(pid)
        return p

    # -- registrations, as the model takes them --------------------------------------------------------------
    def registration(self, r):
        kind = r.get("t")
        if kind == "proc":
            p = self.proc(r["pid"])
            if not p.role_declared or r.get("role") != "process":
                p.role = r.get("role") or p.role
            p.role_declared = True
            p.name = r.get("name") or p.name
        elif kind == "role":
            p = self.proc(r["pid"])
            p.role = r.get("role") or p.role
            p.role_declared = True
            if r.get("name"):
                p.name = r["name"]
        elif kind == "spawned":
            p = self.proc(r["pid"])
            p.name = r.get("name") or p.name
            if not p.role_declared:
                p.role = r.get("role") or p.role
            p.method = r.get("method") or p.method
            self.proc_uids[r.get("uid", 0)] = p.pid
        elif kind == "extproc":
            p = self.proc(r["pid"])
            p.role = r.get("role") or p.role
            p.name = r.get("name") or p.role
        elif kind == "exit":
            p = self.proc(r["pid"])
            p.exitcode = r.get("exitcode")
            self.exit_set[p.pid] = p.exitcode
            if r.get("time"):
                p.saw_end(r["time"])

    # -- events ------------------------------------------------------------------------------------------------
    def chunk(self, ev):
        n = len(ev)
        t = ev["t"]
        kinds = np.minimum(ev["kind"], 255)
        self.events += n
        lo, hi = int(t.min()), int(t.max())
        self.t_first = lo if self.t_first is None else min(self.t_first, lo)
        self.t_last = hi if self.t_last is None else max(self.t_last, hi)
        self._per_process(ev["pid"], t)
        proc_rows = np.flatnonzero(_PROC_KINDS[kinds])
        if len(proc_rows):
            self._process_records(ev[proc_rows], proc_rows + self.position)
        lock_rows = np.flatnonzero(_LOCK_KINDS[kinds])
        if len(lock_rows):
            self._locks(_Columns(ev, None if len(lock_rows) == n else lock_rows, self.position))
        pool_rows = np.flatnonzero(_ONE_TASK[kinds] | _TASK_RANGES[kinds])
        if len(pool_rows):
            self._tasks(ev[pool_rows])
        self.position += n

    def _per_process(self, pids, t):
        u, inv = np.unique(pids, return_inverse=True)
        firsts = np.full(len(u), np.iinfo(np.int64).max)
        lasts = np.full(len(u), np.iinfo(np.int64).min)
        np.minimum.at(firsts, inv, t)
        np.maximum.at(lasts, inv, t)
        counts = np.bincount(inv, minlength=len(u))
        for pid, first, last, count in zip(u.tolist(), firsts.tolist(), lasts.tolist(), counts.tolist()):
            p = self.proc(pid)
            if p.first == NO_TIME or first < p.first:
                p.first = first
            if last > p.last:
                p.last = last
            p.events += count

    def _latest(self, pid, name, key, value):
        old = self.latest.get((pid, name))
        if old is None or key >= old[:2]:
            self.latest[(pid, name)] = key + (value,)

    def _process_records(self, rows, positions):
        for (t, uid, a, b, kind, c, pid, _tid), pos in zip(rows.tolist(), positions.tolist()):
            key = (t, pos)
            if kind == Kind.PROC_CREATED:
                old = self.created.get(uid)
                if old is None or key >= old:
                    self.created[uid] = key
            elif kind == Kind.PROC_START:
                self.proc(a)
                self._latest(a, "started", key, (t, c))
                old = self.start_uids.get(uid)
                if old is None or key >= old[:2]:
                    self.start_uids[uid] = key + (a,)
                method = _METHOD_NAMES.get(b, "")
                if method:
                    old = self.method_from.get(a)
                    if old is None or key < old[:2]:
                        self.method_from[a] = key + (method,)
            elif kind == Kind.PROC_BOOT:
                self.proc(pid)
                self._latest(pid, "booted", key, t)
                old = self.boot_uids.get(uid)
                if old is None or key < old[:2]:
                    self.boot_uids[uid] = key + (pid,)
            elif kind == Kind.PROC_EXIT:
                self.proc(pid)
                self._latest(pid, "exit_recorded", key, t)
                self._first_code(pid, key, a)
            elif kind == Kind.PROC_REAPED:
                p = self.proc(a)
                old = self.reaped.get(a)
                if old is None or key >= old[:2]:
                    self.reaped[a] = key + (b,)
                p.saw_end(t)
            elif kind == Kind.POOL_WORKER_EXIT:
                p = self.proc(a)
                self._first_code(a, key, b)
                p.saw_end(t)
                if p.end_reported == NO_TIME or t < p.end_reported:
                    p.end_reported = t
                if c in _EXIT_REASONS:
                    self._latest(a, "exit_reason", key, _EXIT_REASONS[c])

    def _first_code(self, pid, key, code):
        old = self.first_code.get(pid)
        if old is None or key < old[:2]:
            self.first_code[pid] = key + (code,)

    # -- locks ---------------------------------------------------------------------------------------------
    def _object(self, uid):
        o = self.objects.get(uid)
        if o is None:
            o = self.objects[uid] = ObjectContention(uid)
        return o

    def _locks(self, ev):
        kinds, a = ev.kind, ev.a
        for kind, field_count in ((_ACQ_OK, "contended"), (_ACQ_TIMEOUT, "timeouts")):
            sel = (kinds == kind) & (a > 0)
            if sel.any():
                for uid, count, total, top in _sum_max_by(ev.uid[sel], a[sel]):
                    o = self._object(uid)
                    setattr(o, field_count, getattr(o, field_count) + count)
                    o.wait_total_ns += total
                    o.wait_max_ns = max(o.wait_max_ns, top)
                    o.waited = True
        holds = kinds != _ACQ_TIMEOUT
        if holds.any():
            self._holds(ev.take(holds))

    def _holds(self, ev):
        """Pair releases with acquisitions as the model does, and add the holds to their objects."""
        keep = (ev.kind == _ACQ_OK) | (ev.c <= 0)         # a release leaving a recursive lock held is none
        ev = ev.take(keep)
        op = np.where(ev.kind == _ACQ_OK, ACQUIRE, RELEASE)
        spans = pair_holds(self.holds, ev.seq, ev.t, ev.uid, ev.pid, ev.tid, op, ev.c.astype(np.int64),
                           np.where(ev.kind == _RELEASE, ev.a, -1))
        if not len(spans.t0):
            return
        for uid, count, total, top in _sum_max_by(spans.uid, spans.t1 - spans.t0):
            o = self._object(uid)
            o.acquired += count
            o.hold_total_ns += total
            o.hold_max_ns = max(o.hold_max_ns, top)

    # -- pool tasks ----------------------------------------------------------------------------------------
    def _tasks(self, ev):
        kinds = np.minimum(ev["kind"], 255)
        first = ev["b"]
        one = _ONE_TASK[kinds] & ~((kinds == Kind.POOL_RESULT_USED) & (first < 0))
        ranges = _TASK_RANGES[kinds]
        count = np.where(kinds == Kind.POOL_CHUNK_QUEUED, np.maximum(ev["c"], 1), ev["c"]).astype(np.int64)
        sel = one | (ranges & (count > 0))
        pools, jobs = ev["uid"][sel], ev["a"][sel]
        lo = first[sel]
        hi = lo + np.where(one[sel], 1, count[sel])
        job_keys = np.stack((pools.astype(np.int64), jobs), 1)
        for pool, job in np.unique(job_keys, axis=0).tolist():
            mine = (job_keys[:, 0] == pool) & (job_keys[:, 1] == job)
            key = (pool & 0xFFFFFFFFFFFFFFFF, job)
            old_lo, old_hi = self.tasks.get(key, (np.empty(0, np.int64), np.empty(0, np.int64)))
            self.tasks[key] = _union(np.concatenate((old_lo, lo[mine])), np.concatenate((old_hi, hi[mine])))

    def task_count(self):
        return int(sum(int((hi - lo).sum()) for lo, hi in self.tasks.values()))

    # -- samples, after the events (as the model takes them) ---------------------------------------------------
    def sample(self, t, s):
        if self.t_first is None or t < self.t_first:
            self.t_first = t
        self.t_last = t if self.t_last is None else max(self.t_last, t)
        for pr in s.get("procs", ()):
            if not isinstance(pr, dict) or "pid" not in pr:
                continue
            p = self.procs.get(pr["pid"])
            if p is None:
                p = self.proc(pr["pid"])
                p.name = pr.get("name", "")
                p.role = pr.get("role", "other")
            if p.first == NO_TIME:
                p.first = t
            if pr.get("status") == "zombie":
                p.saw_end(t)
            else:
                p.last = max(p.last, t)
            p.status = pr.get("status", p.status)
        for pid in s.get("gone", ()):
            p = self.procs.get(pid)
            if p is not None:
                p.saw_end(t)
                p.status = "gone"

    # -- the end -------------------------------------------------------------------------------------------
    def settle_processes(self):
        """Apply what the records set per process, now that every record was seen."""
        for (pid, name), (_, _, value) in self.latest.items():
            p = self.procs[pid]
            if name == "started":
                p.started, p.start_us = value
            else:
                setattr(p, name, value)
        for pid, (_, _, method) in self.method_from.items():
            p = self.procs[pid]
            if not p.method:
                p.method = method
        for pid, p in self.procs.items():
            if pid in self.reaped:
                p.exitcode = self.reaped[pid][2]
            elif self.exit_set.get(pid) is None and pid in self.first_code:
                p.exitcode = self.first_code[pid][2]
        for uid, (t, _) in self.created.items():
            pid = self.proc_uids.get(uid)
            if pid is None and uid in self.start_uids:
                pid = self.start_uids[uid][2]
            if pid is None and uid in self.boot_uids:
                pid = self.boot_uids[uid][2]
            if pid is not None and pid in self.procs:
                self.procs[pid].created = t


class _Columns:
    """The fields of some records that pairing needs, each a contiguous array."""
    __slots__ = ("t", "uid", "a", "kind", "c", "pid", "tid", "seq")

    def __init__(self, ev=None, rows=None, first=0):
        if ev is not None:
            for name in self.__slots__[:-1]:
                setattr(self, name, np.ascontiguousarray(ev[name]) if rows is None else ev[name][rows])
            self.seq = first + (np.arange(len(ev)) if rows is None else rows)

    def take(self, index):
        out = _Columns()
        for name in self.__slots__:
            setattr(out, name, getattr(self, name)[index])
        return out


def _sum_max_by(keys, values):
    """(key, count, sum, max) for each distinct key (exact int64 sums)."""
    order = np.argsort(keys, kind="stable")
    keys, values = keys[order], values[order]
    starts = np.concatenate(([0], np.flatnonzero(keys[1:] != keys[:-1]) + 1))
    counts = np.diff(np.append(starts, len(keys)))
    sums = np.add.reduceat(values, starts)
    tops = np.maximum.reduceat(values, starts)
    return zip(keys[starts].tolist(), counts.tolist(), sums.tolist(), tops.tolist())


def _union(lo, hi):
    """Disjoint ranges [lo, hi) covering the same indices as the given ones."""
    order = np.argsort(lo, kind="stable")
    lo, hi = lo[order], hi[order]
    reach = np.maximum.accumulate(hi)
    starts = np.concatenate(([0], np.flatnonzero(lo[1:] > reach[:-1]) + 1))
    return lo[starts], np.maximum.reduceat(hi, starts)


def summarize(run_file, top=TOP_OBJECTS):
    """The ``RunSummary`` of an open ``store.RunFile`` (finished or not), in one pass over its chunks."""
    state = _Pass()
    for reg in run_file.iter_registrations():
        state.registration(reg)
    for events, order in in_time_order(run_file):
        state.chunk(events[order])
    for t, sample in run_file.iter_samples():
        state.sample(t, sample)
    state.settle_processes()
    meta = run_file.meta()
    name_the_program(state.procs, meta)
    start = meta.get("created_perf")
    t0 = (min(int(start), state.t_first) if state.t_first is not None else int(start)) if start \
        else (state.t_first or 0)
    duration = ((state.t_last or 0) - t0) / 1e9 if state.t_last else 0.0
    listed = [o for o in state.objects.values() if o.acquired or o.contended]
    listed.sort(key=lambda o: (-o.wait_total_ns, not o.waited, o.uid))
    listed = listed[:top]
    _name_objects(run_file, listed)
    processes = sorted(state.procs.values(), key=ProcessSummary.sort_key)
    return RunSummary(processes, state.events, run_file.dropped(), state.task_count(), duration, listed, meta,
                      list(run_file.problems))


def _name_objects(run_file, objects):
    """Names and kinds of ``objects`` from their registrations (the last one wins, as in the model)."""
    wanted = {o.uid: o for o in objects}
    for o in objects:
        o.name = "#%x" % o.uid
    if not wanted:
        return
    for reg in run_file.iter_registrations():
        if reg.get("t") == "obj":
            o = wanted.get(reg.get("uid"))
            if o is not None:
                o.name = reg.get("name") or "#%x" % o.uid
                o.kind = reg.get("kind", "")
