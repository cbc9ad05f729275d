"""core.pool.worker: the pool's worker process -- its entry point, its loop and its task runners.

``worker_main`` is the Process target (module level, so spawn and forkserver pickle it by name).  A
worker runs its initializer and says READY (or INIT_FAILED, and ends), then answers each batch of runs it
reads from its task pipe with one RESULTS message, until it reads None (stop), its parent goes away, or it
has done ``maxtasks`` chunks (its last answer then says bye, and it ends).

Its slot in the shared array is how the manager accounts for it if it dies: before a chunk starts, SEQ is
set to that chunk's sequence number (the manager numbers a worker's chunks in the order it sends them);
when the tasks are timed, IDX and START hold the running task and its start time (START is 0 between
tasks).  ``scheduler.Scheduler.settle`` reads what a dead worker ran, finished and never began from these.

Three runners: the fast one (untraced, untimed: each chunk through map() at C speed), the slow one (traced
and/or timed: per task) and the traced map (two records per task, or one pair per chunk once the tasks are
measured shorter than recording them).

Signals.  Workers ignore SIGINT; they are started with SIGINT blocked in the starting thread (children
inherit the mask, see ``no_sigint``), so a Ctrl+C during a spawn worker's start-up cannot kill it either.
(Under forkserver the forkserver forks the worker, with its own mask: the first milliseconds of a worker
remain exposed.)

This module must not import Qt, start threads or processes, or create core's traced primitives.  It records
only POOL_TASK_T0/POOL_TASK and POOL_GROUP_T0/POOL_GROUP; the worker process's own lifecycle is recorded by
core.process, with role "worker".
"""
import collections
import itertools
import os
import pickle
import select
import signal
import time
from multiprocessing.pool import MaybeEncodingError

from ..trace import recorder
from ..trace.events import Kind, Outcome
from .wire import (APPLY, IDX, INIT_FAILED, MAP, READY, RESULTS, SEQ, SLOT, STARMAP, START, Dumper,
                   FrameReader, frame, now, pack_error, parse, views_of, write_some)

#: Traced map tasks shorter than this (ns, mean over the first GROUP_PROBE of a run) are recorded as groups,
#: one pair of events per chunk instead of per task: recording one task costs more than running it.
GROUP_BELOW_NS = 5_000
#: Tasks of a run recorded one by one before its mean length decides.
GROUP_PROBE = 32
#: Seconds an idle worker waits for work before it checks that its parent is still alive.
WORKER_IDLE_CHECK = 1.0

# Event kinds and outcomes as plain ints on hot paths (an IntEnum costs an __index__ call per record).
_K_TASK_T0 = int(Kind.POOL_TASK_T0)
_K_TASK = int(Kind.POOL_TASK)
_K_GROUP_T0 = int(Kind.POOL_GROUP_T0)
_K_GROUP = int(Kind.POOL_GROUP)
_OK = int(Outcome.OK)
_ERROR = int(Outcome.ERROR)

HAVE_SIGMASK = hasattr(signal, "pthread_sigmask")


class no_sigint:
    """Block SIGINT in this thread while it starts workers: a child inherits the signal mask (through
    fork and exec), so a Ctrl+C during a worker's start-up (a spawn worker importing the main module)
    cannot kill it before it ignores SIGINT.  In the caller's thread a Ctrl+C is only delayed until the
    block ends."""

    def __enter__(self):
        if HAVE_SIGMASK:
            self.old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        return self

    def __exit__(self, *exc):
        if HAVE_SIGMASK and signal.SIGINT not in self.old:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


class WorkerSetup:
    """What every worker of a pool is started with, besides its own pipe ends and slot.  ``report_ns``:
    with a task_timeout, finished results are sent before a task starts once this long has passed since
    the last send (the manager's BATCH_SECONDS, so both sides agree on what a death can lose)."""

    __slots__ = ("initializer", "initargs", "maxtasks", "uid", "report_ns")

    def __init__(self, initializer, initargs, maxtasks, uid, report_ns):
        self.initializer = initializer
        self.initargs = initargs
        self.maxtasks = maxtasks
        self.uid = uid
        self.report_ns = report_ns


class _ParentGone(Exception):
    pass


def worker_main(setup, task_r, result_w, slots, slot):
    """A pool worker: run the initializer, then batches of tasks until told to stop, the parent goes
    away, or ``maxtasks`` chunks are done.  ``slots``: the pool's shared array; ``slot``: this worker's."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)         # Ctrl+C belongs to the caller
    if HAVE_SIGMASK:                                      # started with SIGINT blocked: see no_sigint
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    rfd = task_r.fileno()
    wfd = result_w.fileno()
    os.set_blocking(wfd, False)
    ppid = os.getppid()
    sl = memoryview(slots).cast("B").cast("q")[slot * SLOT:(slot + 1) * SLOT]
    dumps = Dumper()
    out = _Out(wfd, ppid)
    try:
        t0 = now()
        if setup.initializer is not None:
            try:
                setup.initializer(*setup.initargs)
            except Exception as e:
                _, tb, data = pack_error(0, e, dumps)
                out.send((INIT_FAILED, tb, data), ())
                return
        t1 = now()
        out.send((READY, t1, t1 - t0), ())
        _serve(rfd, _Runner(sl, setup.uid, setup.report_ns, dumps, out), setup.maxtasks, ppid)
    except _ParentGone:
        return
    finally:
        sl[START] = 0


class _Part:
    """One run of a batch, as the worker reads it: tasks ``first``.. of ``job``, in chunks of ``cs``."""

    __slots__ = ("job", "first", "cs", "mode", "n", "timed", "func", "items")

    def __init__(self, job, first, cs, mode, n, timed):
        self.job = job
        self.first = first
        self.cs = cs
        self.mode = mode
        self.n = n
        self.timed = timed
        self.func = self.items = None


def _serve(rfd, runner, maxtasks, ppid):
    """Read batches and answer them until told to stop, the parent goes away or ``maxtasks`` is reached."""
    poller = select.poll()
    poller.register(rfd, select.POLLIN)
    reader = FrameReader(rfd)
    pending = collections.deque()
    completed = 0
    dumps = runner.dumps
    while True:
        while not pending:
            if not poller.poll(WORKER_IDLE_CHECK * 1000):
                if os.getppid() != ppid:
                    return
                continue
            if not reader.fill():
                return                                 # the parent closed the pipe
            pending.extend(reader.frames())
        payload = pending.popleft()
        header, off = parse(payload)
        if header is None:
            return
        traced = recorder.ENABLED
        pieces = []
        blobs = []
        for job, first, cs, mode, n, timed, blen in header:
            blob = payload[off:off + blen]
            off += blen
            part = _Part(job, first, cs, mode, n, timed)
            try:
                part.func, part.items = pickle.loads(blob)
            except Exception as e:              # e.g. a class the child cannot import
                values, errs, dur, vfirst = runner.unloadable(part, e, traced)
            else:
                if timed or traced:
                    values, errs, dur, vfirst = runner.run_slow(part, traced)
                else:
                    values, errs, dur = runner.run_fast(part.func, mode, part.items, cs)
                    vfirst = first
            part = None
            completed += (n + cs - 1) // cs
            if not values:                     # timed: every task was reported already
                continue
            vb, errs = dump_values(values, errs, dumps)
            pieces.append((job, vfirst, len(values), errs, dur, len(vb)))
            blobs.append(vb)
        # drop this message's arguments and results before sending (the send may wait on a full pipe) and
        # before waiting for the next message: a worker holds no task's data once it has answered
        header = payload = blob = values = errs = vb = None
        bye = bool(maxtasks) and completed >= maxtasks
        if pieces or bye:
            runner.out.send((RESULTS, pieces, bye), blobs)
        pieces = blobs = None
        if bye:
            return


def dump_values(values, errs, dumps):
    """Pickle a piece's values -> (blob, errs).  A value that cannot be pickled fails its task with the
    stdlib's MaybeEncodingError; the other values of the piece go through."""
    try:
        return dumps(values), errs
    except Exception:
        pass
    errs = list(errs) if errs else []
    failed = {e[0] for e in errs}
    for k, v in enumerate(values):
        if k in failed:
            continue
        try:
            dumps(v)
        except Exception as e:
            values[k] = None
            errs.append((k, "", dumps(MaybeEncodingError(e, v))))
    errs.sort(key=lambda e: e[0])
    return dumps(values), errs


class _Out:
    """The worker's end of its result pipe (non-blocking, so a dead parent is noticed)."""

    __slots__ = ("fd", "ppid", "poller")

    def __init__(self, fd, ppid):
        self.fd = fd
        self.ppid = ppid
        self.poller = None

    def send(self, header, blobs):
        views = views_of(frame(header, blobs))
        fd = self.fd
        while views:
            try:
                write_some(fd, views)
            except BlockingIOError:
                self._wait_writable()
            except OSError:
                raise _ParentGone() from None

    def _wait_writable(self):
        if self.poller is None:
            self.poller = select.poll()
            self.poller.register(self.fd, select.POLLOUT)
        while not self.poller.poll(WORKER_IDLE_CHECK * 1000):
            if os.getppid() != self.ppid:
                raise _ParentGone()


class _Runner:
    """Runs the tasks of a worker's batches: keeps its slot up to date and its chunk sequence number.
    Each runner returns the values, the errors ``[(position, tb, pickled exception)]`` or None, the
    duration (ns) and, when it sent some results already, the task index of values[0]."""

    __slots__ = ("sl", "seq", "uid", "report_ns", "dumps", "out")

    def __init__(self, sl, uid, report_ns, dumps, out):
        self.sl = sl
        self.seq = 0
        self.uid = uid
        self.report_ns = report_ns
        self.dumps = dumps
        self.out = out

    def unloadable(self, part, exc, traced):
        """The run's function or items cannot be unpickled here: every task fails with that error."""
        self.seq += (part.n + part.cs - 1) // part.cs
        self.sl[SEQ] = self.seq
        _, tb, data = pack_error(0, exc, self.dumps)
        if traced:
            for i in range(part.first, part.first + part.n):
                recorder.emit(_K_TASK_T0, self.uid, part.job, i)
                recorder.emit(_K_TASK, self.uid, part.job, i, _ERROR)
        return [None] * part.n, [(k, tb, data) for k in range(part.n)], 0, part.first

    def run_fast(self, func, mode, items, cs):
        """Untraced, no timeout: each chunk through map() at C speed; an exception costs a restart."""
        t0 = now()
        sl = self.sl
        seq = self.seq
        dumps = self.dumps
        values = []
        errs = None
        n = len(items)
        if mode == APPLY:
            seq += 1
            sl[SEQ] = self.seq = seq
            args, kwds = items[0]
            try:
                values.append(func(*args, **kwds))
            except Exception as e:
                errs = [pack_error(0, e, dumps)]
                values.append(None)
            return values, errs, now() - t0
        if cs == 1:
            append = values.append
            star = mode == STARMAP
            for x in items:
                seq += 1
                sl[SEQ] = seq
                try:
                    # tuple(): the stdlib's starmap message for a non-iterable item
                    append((func(*x) if type(x) is tuple else func(*tuple(x))) if star else func(x))
                except Exception as e:
                    if errs is None:
                        errs = []
                    errs.append(pack_error(len(values), e, dumps))
                    append(None)
            self.seq = seq
            return values, errs, now() - t0
        mapper = map if mode == MAP else itertools.starmap
        it = iter(items)
        extend = values.extend
        end = 0
        while end < n:
            end = min(end + cs, n)
            seq += 1
            sl[SEQ] = seq
            while len(values) < end:
                try:
                    extend(mapper(func, itertools.islice(it, end - len(values))))
                except Exception as e:
                    if errs is None:
                        errs = []
                    errs.append(pack_error(len(values), e, dumps))
                    values.append(None)
        self.seq = seq
        return values, errs, now() - t0

    def run_slow(self, part, traced):
        """Traced and/or timed: per task, POOL_TASK_T0 and POOL_TASK (traced); the task and its start time
        in the slot (timed).  Timed, the finished tasks' results are sent before a task starts once
        ``report_ns`` have passed since the last send: a task longer than that is reported before the next
        one starts, so killing an overrunning task loses at most that much of short finished ones."""
        timed = part.timed
        mode = part.mode
        if traced and not timed and mode == MAP:
            return self.run_traced_map(part)
        func, items, cs, job, first = part.func, part.items, part.cs, part.job, part.first
        sl = self.sl
        seq = self.seq
        uid = self.uid
        dumps = self.dumps
        report_ns = self.report_ns
        emit = recorder.emit
        emit_at = recorder.emit_at
        t_run = t_flush = now()
        values = []
        errs = None
        vfirst = first
        star = mode == STARMAP
        apply = mode == APPLY
        i = first
        k = 0
        for x in items:
            if k % cs == 0:
                seq += 1
                sl[SEQ] = seq
            k += 1
            if timed:
                t0 = now()
                if values and t0 - t_flush >= report_ns:
                    vb, e1 = dump_values(values, errs, dumps)
                    self.out.send((RESULTS, [(job, vfirst, len(values), e1, t0 - t_flush, len(vb))], False),
                                  [vb])
                    values = []
                    errs = None
                    vfirst = i
                    t_flush = t0
                sl[START] = 0
                sl[IDX] = i
                sl[START] = t0
                if traced:
                    emit_at(t0, _K_TASK_T0, uid, job, i)
            elif traced:
                emit(_K_TASK_T0, uid, job, i)
            try:
                if apply:
                    v = func(*x[0], **x[1])
                elif star:
                    v = func(*x) if type(x) is tuple else func(*tuple(x))
                else:
                    v = func(x)
            except Exception as e:
                v = None
                err = pack_error(len(values), e, dumps)
                oc = _ERROR
            else:
                err = None
                oc = _OK
            if traced:
                emit(_K_TASK, uid, job, i, oc)
            if timed:
                sl[START] = 0
            if err is not None:
                if errs is None:
                    errs = []
                errs.append(err)
            values.append(v)
            v = x = None
            i += 1
        t_end = now()
        self.seq = seq
        return values, errs, t_end - (t_flush if timed else t_run), vfirst

    def run_traced_map(self, part):
        """The traced map loop: two records per task, as lean as that allows.  When a chunk's first
        ``GROUP_PROBE`` tasks show the tasks are shorter than recording them (``GROUP_BELOW_NS`` of this
        thread's CPU time each: preemption does not count), the rest of the run is recorded per chunk
        (POOL_GROUP_T0/POOL_GROUP) and runs at C speed; a task that fails is still recorded alone."""
        func, items, cs, job, first = part.func, part.items, part.cs, part.job, part.first
        sl = self.sl
        seq = self.seq
        uid = self.uid
        dumps = self.dumps
        emit = recorder.emit
        t_run = now()
        values = []
        errs = None
        n = len(items)
        grouped = False
        for c0 in range(0, n, cs):
            seq += 1
            sl[SEQ] = seq
            c1 = min(c0 + cs, n)
            k = c0
            if not grouped:
                probe = c1 - c0 >= 3 * GROUP_PROBE
                t_cpu = 0
                for x in itertools.islice(items, c0, c1) if cs < n else items:
                    i = first + k
                    emit(_K_TASK_T0, uid, job, i)
                    try:
                        values.append(func(x))
                    except Exception as e:
                        if errs is None:
                            errs = []
                        errs.append(pack_error(k, e, dumps))
                        values.append(None)
                        emit(_K_TASK, uid, job, i, _ERROR)
                    else:
                        emit(_K_TASK, uid, job, i, _OK)
                    k += 1
                    if probe:
                        if k - c0 == 1:             # from the second task: the first pays for warm-up
                            t_cpu = time.thread_time_ns()
                        elif k - c0 == GROUP_PROBE:
                            grouped = (time.thread_time_ns() - t_cpu) / (GROUP_PROBE - 1) < GROUP_BELOW_NS
                            if grouped:
                                break
            if grouped and k < c1:
                errs = self.run_group(part, k, c1, values, errs)
        self.seq = seq
        return values, errs, now() - t_run, first

    def run_group(self, part, k0, k1, values, errs):
        """Run items[k0:k1] at C speed, recorded as one group (failures alone).  Returns errs."""
        func, job, first, uid = part.func, part.job, part.first, self.uid
        recorder.emit(_K_GROUP_T0, uid, job, first + k0, k1 - k0)
        it = itertools.islice(part.items, k0, k1)
        while len(values) < k1:
            try:
                values.extend(map(func, itertools.islice(it, k1 - len(values))))
            except Exception as e:
                k = len(values)
                if errs is None:
                    errs = []
                errs.append(pack_error(k, e, self.dumps))
                values.append(None)
                t = now()
                recorder.emit_at(t, _K_TASK_T0, uid, job, first + k)
                recorder.emit_at(t, _K_TASK, uid, job, first + k, _ERROR)
        recorder.emit(_K_GROUP, uid, job, first + k0, k1 - k0)
        return errs
