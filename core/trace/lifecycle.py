"""The process table: what each process of a run is and when it was created, started, booted and ended.

Process records are few (a handful per process) but their rules depend on order: the latest reap gives the
exit code, a process's own record of its end beats the others, the start method comes from the earliest
start... So the table keeps what decides it, and rebuilds ``ProcInfo``s from it whenever it changed:

* the process registrations, in the order they came (they all count before any record, as in a run read
  whole);
* every process record (PROC_CREATED/START/BOOT/EXIT/REAPED, POOL_WORKER_EXIT), replayed in time order;
* per process, what its other records add whatever their order: first and last seen, how many;
* per process, the resource monitor's samples folded as they come (first and last seen alive, seen ended,
  latest status, CPU, RSS and threads; and who it is, for a process nothing else names).

So the table is the same however the run was cut into chunks, and equals version one's model of the run
read whole.  No Qt here.
"""
import signal
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from .columns import Columns
from .events import Kind, StartMethod, WorkerExit
from .schema import enum_text, exit_text

NO_TIME = -1
#: The order processes are listed in, everywhere (the process table, the summary, the timeline's lanes): the
#: main process, managers, pool workers, other processes, then the stdlib's helpers.
ROLE_ORDER = {"main": 0, "manager": 1, "worker": 2, "process": 3, "other": 4, "forkserver": 5, "resource tracker": 6}


def role_rank(role):
    """Where a process of ``role`` is listed (a role not named above with "other")."""
    return ROLE_ORDER.get(role, ROLE_ORDER["other"])
#: Registrations about processes (the rest name objects and strings).
PROCESS_REGISTRATIONS = ("proc", "role", "spawned", "extproc", "exit")
#: Records replayed in time order.
PROCESS_KINDS = (Kind.PROC_CREATED, Kind.PROC_START, Kind.PROC_BOOT, Kind.PROC_EXIT, Kind.PROC_REAPED,
                 Kind.POOL_WORKER_EXIT)
_PROC_EVENT_DTYPE = [("t", "<i8"), ("seq", "<i8"), ("kind", "<u4"), ("uid", "<u8"), ("a", "<i8"), ("b", "<i8"),
                     ("c", "<i4"), ("pid", "<i4")]


@dataclass
class ProcInfo:
    pid: int
    ppid: int = 0
    role: str = "process"
    name: str = ""
    method: str = ""
    daemon: bool = False
    created: int = NO_TIME      # Process() in the parent
    started: int = NO_TIME      # start() returned in the parent
    booted: int = NO_TIME       # first instruction in the child
    exit_recorded: int = NO_TIME    # the process recorded its own end (PROC_EXIT)
    end_seen: int = NO_TIME     # the earliest time another process saw it ended (reaped, gone, a zombie)
    end_reported: int = NO_TIME     # a pool saw its worker end: it waits on the worker's sentinel, so this is
    #                                 within moments of the death
    exitcode: object = None     # int; negative: killed by signal -exitcode
    first: int = NO_TIME        # first event or sample seen
    last: int = NO_TIME         # last sign of life: its latest event, or the latest sample showing it alive
    cpu: float = 0.0
    rss: int = 0
    threads: int = 0
    status: str = ""
    exit_reason: str = ""         # why a pool worker ended: recycled, died, timed_out, stopped
    traced: bool = False
    role_declared: bool = False   # the process said what it is (beats what its parent said)
    uid: int = 0                # the Process object's uid in the parent
    start_us: int = 0           # time inside start() in the parent, in us
    events: int = 0

    @property
    def exited(self):
        """When it ended (ns), or NO_TIME while it is not known to have ended.

        Its own record of its end is exact, and so (to a few ms) is a pool's record of its worker's end.  Any
        other process killed (or ending without recording it) ended between its last sign of life and the
        moment another process saw it gone, which can be much later (a parent joins when it likes): the
        former is shown.  Derived on each read, so the answer does not depend on the order records arrive
        in: live, the monitor's samples reach the run file up to a quarter of a second after the events."""
        if self.exit_recorded != NO_TIME:
            return self.exit_recorded
        if self.end_reported != NO_TIME:
            return self.end_reported
        if self.end_seen == NO_TIME or self.last == NO_TIME:
            return self.end_seen
        return min(self.last, self.end_seen)

    def saw_end(self, t):
        """Another process (a parent, the runner, the monitor) observed at ``t`` that this one had ended."""
        if self.end_seen == NO_TIME or t < self.end_seen:
            self.end_seen = t

    @property
    def state(self):
        if self.exitcode is not None or self.exited != NO_TIME:
            return "exited"
        if self.status == "gone":
            return "gone"
        return "running" if self.first != NO_TIME else "starting"

    @property
    def start_called(self):
        """When start() was called in the parent (ns), or NO_TIME."""
        return self.started - self.start_us * 1000 if self.started != NO_TIME else NO_TIME

    @property
    def start_latency(self):
        """ns from start() being called to the child's first instruction (None if unknown)."""
        if self.start_called == NO_TIME or self.booted == NO_TIME:
            return None
        return self.booted - self.start_called

    def exit_text(self):
        text = self._exit_code_text()
        if self.exit_reason == "stopped":
            # terminate(), close() or the pool's end: SIGTERM (or a clean exit) is how a pool stops its workers,
            # not a crash; only another end is worth naming
            if self.exitcode in (None, 0, -signal.SIGTERM):
                return "stopped by the pool"
            return "stopped by the pool (%s)" % text
        if self.exit_reason and text:
            return "%s (%s)" % (text, self.exit_reason)
        return text or self.exit_reason

    def _exit_code_text(self):
        return "" if self.exitcode is None else exit_text(self.exitcode)


class _SampleFold:
    """What the monitor's samples said of one process so far."""

    __slots__ = ("ident", "first_sample", "first", "last", "zombie", "status", "status_sample", "cpu", "rss",
                 "threads", "gone")

    def __init__(self, ident, index):
        self.ident = ident                  # (ppid, name, role) of its first mention
        self.first_sample = index
        self.first = NO_TIME
        self.last = NO_TIME
        self.zombie = NO_TIME               # earliest sample showing it a zombie (ended, not yet reaped)
        self.status: Optional[str] = None
        self.status_sample = -1
        self.cpu = 0.0
        self.rss = 0
        self.threads = 0
        self.gone: List[Tuple[int, int]] = []          # (sample index, t) of each "gone"


class ProcessTable:
    """Folds registrations, process records and samples; ``settle()`` gives the ProcInfos."""

    def __init__(self):
        self.regs: List[dict] = []
        self.records = Columns(_PROC_EVENT_DTYPE)
        #: pid -> [first t, last t, records] of every record a process wrote.
        self.seen: Dict[int, List[int]] = {}
        #: pids other records name as a child, a worker... (they get a ProcInfo, as version one gave them)
        self.named: Dict[int, None] = {}
        self.samples: Dict[int, _SampleFold] = {}
        self.n_samples = 0
        self.proc_uids: Dict[int, int] = {}
        self._base: Optional[Dict[int, ProcInfo]] = None      # the replay of registrations and records

    # -- folding -----------------------------------------------------------------------------------------
    def registration(self, r):
        if r.get("t") in PROCESS_REGISTRATIONS:
            self.regs.append(r)
            self._base = None

    def add_records(self, rows):
        """Process records (columns of ``_PROC_EVENT_DTYPE``)."""
        self.records.extend(**rows)
        self._base = None

    def add_seen(self, pid, first, last, count):
        """Per process: the earliest and latest time and the number of a chunk's records."""
        for p, f, la, c in zip(pid.tolist(), first.tolist(), last.tolist(), count.tolist()):
            s = self.seen.get(p)
            if s is None:
                self.seen[p] = [f, la, c]
                self._base = None             # a new process
            else:
                if f < s[0]:
                    s[0] = f
                if la > s[1]:
                    s[1] = la
                s[2] += c

    def sample(self, t, s, series):
        """One resource sample; ``series(key, unit, t, value)`` adds a point to a counter series."""
        index = self.n_samples
        self.n_samples += 1
        for pr in s.get("procs", ()):
            if not isinstance(pr, dict) or "pid" not in pr:
                continue
            pid = pr["pid"]
            f = self.samples.get(pid)
            if f is None or f.ident is None:
                ident = (pr.get("ppid", 0), pr.get("name", ""), pr.get("role", "other"))
                if f is None:
                    f = self.samples[pid] = _SampleFold(ident, index)
                else:                               # said to be gone before it was ever listed
                    f.ident, f.first_sample = ident, index
            if f.first == NO_TIME or t < f.first:
                f.first = t
            if pr.get("status") == "zombie":
                if f.zombie == NO_TIME or t < f.zombie:
                    f.zombie = t
            else:
                f.last = max(f.last, t)
            f.cpu = pr.get("cpu", 0.0)
            f.rss = pr.get("rss", 0)
            f.threads = pr.get("threads", 0)
            if "status" in pr:
                f.status = pr["status"]
            f.status_sample = index
            series(("cpu", pid), "%", t, f.cpu)
            series(("rss", pid), "B", t, f.rss)
        for pid in s.get("gone", ()):
            f = self.samples.get(pid)
            if f is None:
                f = self.samples[pid] = _SampleFold(None, 1 << 62)
            f.gone.append((index, t))

    # -- the table ----------------------------------------------------------------------------------------
    def settle(self):
        """The ProcInfos now (fresh objects: a reader may keep them)."""
        if self._base is None:
            self._base = self._replay()
        procs = {}
        known = set(self._base)
        for pid, base in self._base.items():
            p = ProcInfo(**base.__dict__)
            s = self.seen.get(pid)
            if s is not None:
                if p.first == NO_TIME or s[0] < p.first:
                    p.first = s[0]
                if s[1] > p.last:
                    p.last = s[1]
                p.events += s[2]
            procs[pid] = p
        for pid, f in self.samples.items():
            found = procs.get(pid)
            if found is not None:
                p = found
            else:
                if f.ident is None:
                    continue                        # only ever said to be gone: nothing knew it
                ppid, name, role = f.ident
                p = procs[pid] = ProcInfo(pid, ppid=ppid, name=name, role=role)
            if f.first != NO_TIME and (p.first == NO_TIME or f.first < p.first):
                p.first = f.first
            if f.zombie != NO_TIME:
                p.saw_end(f.zombie)
            if f.last > p.last:
                p.last = f.last
            if f.status_sample >= 0:
                p.cpu, p.rss, p.threads = f.cpu, f.rss, f.threads
                if f.status is not None:
                    p.status = f.status
            # "gone" counts where the process was known then: from its records, or an earlier sample
            gone = [(i, t) for i, t in f.gone if pid in known or i >= f.first_sample]
            if gone:
                p.saw_end(min(t for _, t in gone))
                if max(i for i, _ in gone) >= f.status_sample:
                    p.status = "gone"
        return procs

    def _replay(self):
        """Registrations, then every process record in time order, as version one's model read a run."""
        procs: Dict[int, ProcInfo] = {}
        self.proc_uids = proc_uids = {}
        pending_created: Dict[int, int] = {}

        def proc(pid):
            p = procs.get(pid)
            if p is None:
                p = procs[pid] = ProcInfo(pid)
            return p

        for r in self.regs:
            kind = r.get("t")
            if kind == "proc":                    # the process about itself: authoritative
                p = proc(r["pid"])
                if not p.ppid:
                    p.ppid = r.get("ppid", 0)
                if not p.role_declared or r.get("role") != "process":
                    p.role = r.get("role") or p.role
                p.role_declared = True
                p.name = r.get("name") or p.name
                p.traced = True
            elif kind == "role":
                p = proc(r["pid"])
                p.role = r.get("role") or p.role
                p.role_declared = True
                if r.get("name"):
                    p.name = r["name"]
            elif kind == "spawned":               # the parent about its child
                p = proc(r["pid"])
                p.name = r.get("name") or p.name
                if not p.role_declared:
                    p.role = r.get("role") or p.role
                p.method = r.get("method") or p.method
                p.daemon = bool(r.get("daemon"))
                p.uid = r.get("uid", 0)
                proc_uids[p.uid] = p.pid
                parent = r.get("parent")
                if parent:
                    p.ppid = parent
            elif kind == "extproc":
                p = proc(r["pid"])
                p.role = r.get("role") or p.role
                p.name = r.get("name") or p.role
                p.ppid = p.ppid or r.get("ppid", 0)
            elif kind == "exit":                  # the runner saw the program's main process end
                p = proc(r["pid"])
                p.exitcode = r.get("exitcode")
                if r.get("time"):
                    p.saw_end(r["time"])
        for pid in self.seen:
            proc(pid).traced = True
        recs = self.records
        order = np.lexsort((recs.view("seq"), recs.view("t")))
        cols = [recs.view(name)[order].tolist() for name in ("t", "kind", "uid", "a", "b", "c", "pid")]
        for t, kind, uid, a, b, c, pid in zip(*cols):
            if kind == Kind.PROC_CREATED:
                child = proc_uids.get(uid)
                if child is not None:
                    procs[child].created = t
                else:
                    pending_created[uid] = t
            elif kind == Kind.PROC_START:
                p = proc(a)
                p.started = t
                p.start_us = c
                p.uid = uid
                if not p.ppid or p.ppid != pid:
                    p.ppid = pid
                proc_uids[uid] = a
                if not p.method:
                    p.method = StartMethod(b).name.lower() if b in StartMethod._value2member_map_ else ""
                if uid in pending_created:
                    p.created = pending_created.pop(uid)
            elif kind == Kind.PROC_BOOT:
                p = proc(pid)
                p.booted = t
                if uid:
                    proc_uids.setdefault(uid, pid)
            elif kind == Kind.PROC_EXIT:
                p = proc(pid)
                p.exit_recorded = t
                if p.exitcode is None:
                    p.exitcode = a
            elif kind == Kind.PROC_REAPED:
                p = proc(a)
                p.exitcode = b
                p.saw_end(t)
            elif kind == Kind.POOL_WORKER_EXIT:
                p = proc(a)
                if p.exitcode is None:
                    p.exitcode = b
                p.saw_end(t)
                if p.end_reported == NO_TIME:
                    p.end_reported = t
                if c in WorkerExit._value2member_map_:
                    p.exit_reason = enum_text(WorkerExit, c)
        return procs


def name_the_program(procs, meta):
    """The program the runner started is the run's main process, though it never said what it is (a program
    that does not use multiprocessing): ``procs`` pid -> an object with role, role_declared and name."""
    main = procs.get(meta.get("program_pid", 0))
    if main is not None and not main.role_declared and main.role in ("process", "other"):
        main.role = "main"
        main.name = main.name or "MainProcess"


def processes_table(procs):
    """Processes sorted main first, then by role and creation."""
    return sorted(procs.values(), key=lambda p: (role_rank(p.role), p.created if p.created >= 0
                                                 else (p.first if p.first >= 0 else 1 << 62), p.pid))
