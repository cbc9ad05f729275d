"""core.pool.scheduler: the pool's scheduling decisions, on plain records.

What to send to which worker, how many chunks one message holds, which tasks a dead worker ran, finished or
never began.  The manager thread asks and applies the answers (it pickles, writes, fails and delivers);
the unit tests in tests/core/test_pool_scheduler.py drive the same code with fake workers.

Records::

  Job       one call (apply, map, imap...): its input, how far it has been cut, its measured task time
  Segment   a requeued remainder of a dead worker's run, sent again before any new work
  Run       a contiguous range of one job's tasks made of whole chunks, sent to one worker in one batch
  Load      what one worker holds: its runs not fully answered, in order, and their totals

Dispatch (``pick_worker``, ``build_batch``).  A worker gets work when it is idle.  While a job's tasks are
measured to be short, the manager keeps up to ``PREFETCH_SECONDS`` of measured work queued per worker (and
less than ``PREFETCH_MAX_BYTES`` unanswered) and packs several chunks into one message
(``BATCH_SECONDS``, at most ``MAX_BATCH_CHUNKS``); for long or not yet measured tasks a worker holds one
chunk at a time, so chunksize=1 spreads uneven tasks as evenly as the stdlib's shared queue.  Each message
is one *batch* of *runs*; a run is a contiguous range of one job's tasks made of whole chunks (a chunk is
never split).  Requeued segments go first, then jobs in the order they came.  Workers answer once per
batch (with a ``task_timeout``: also before starting a task, once ``BATCH_SECONDS`` have passed since they
last sent).

Death accounting (``settle``).  Each worker owns a slot of a shared int64 array: the sequence number of the
chunk it is running and (with a timeout) the task and its start time.  When a worker dies, the chunk it
was running fails with ``WorkerLostError``, and so do chunks it had finished but not yet reported (their
results died with it; at most about ``BATCH_SECONDS`` of short tasks; a separate error says so): tasks are
never run twice.  Chunks it had not started are requeued in front of everything else, at most
``MAX_REQUEUES`` times (then they fail).  With a ``task_timeout`` the slot also names the running task and
workers send finished results before starting a task (once ``BATCH_SECONDS`` have passed), so killing an
overrunning task fails it (``TaskTimeoutError``), fails at most that much of short finished tasks, and
requeues the rest of its chunk.

This module does no I/O and knows no processes, threads, pipes or recorder; it never calls user code.
"""
import collections

from .wire import MAP

#: Measured work (seconds) the manager may keep queued at one worker, counting the chunk it runs.  Below
#: it, several chunks are sent ahead; a chunk measured longer than this is sent only to an idle worker.
PREFETCH_SECONDS = 0.005
#: Measured work (seconds) packed into one message when several chunks go together.
BATCH_SECONDS = 0.001
#: At most this many chunks in one message.
MAX_BATCH_CHUNKS = 1024
#: A busy worker gets nothing more while this many bytes sent to it are unanswered (big payloads go to
#: idle workers only, so they do not wait in a pipe behind a long task).
PREFETCH_MAX_BYTES = 256 * 1024
#: An untouched chunk of a dead worker is requeued at most this many times, then fails.
MAX_REQUEUES = 3
#: Read-ahead of the feeder thread, in chunks per worker, on top of what prefetching needs.
FEED_AHEAD = 2


class Limits:
    """The tunables one pool schedules with.  Unset ones are the module constants when the pool starts
    (so a test or a benchmark can change those first)."""

    __slots__ = ("prefetch_ns", "batch_ns", "max_batch_chunks", "prefetch_max_bytes", "max_requeues",
                 "feed_ahead")

    def __init__(self, *, prefetch_seconds=None, batch_seconds=None, max_batch_chunks=None,
                 prefetch_max_bytes=None, max_requeues=None, feed_ahead=None):
        def given(value, default):
            return default if value is None else value
        self.prefetch_ns = int(given(prefetch_seconds, PREFETCH_SECONDS) * 1e9)
        self.batch_ns = int(given(batch_seconds, BATCH_SECONDS) * 1e9)
        self.max_batch_chunks = given(max_batch_chunks, MAX_BATCH_CHUNKS)
        self.prefetch_max_bytes = given(prefetch_max_bytes, PREFETCH_MAX_BYTES)
        self.max_requeues = given(max_requeues, MAX_REQUEUES)
        self.feed_ahead = given(feed_ahead, FEED_AHEAD)


class Job:
    """One call (apply, map, imap...): what the manager needs to cut, send and account its tasks."""

    __slots__ = (
        # the call
        "id", "func", "mode", "method", "cs", "timeout", "timeout_ns", "funckey",
        # its input: a sequence ``seq`` of ``total`` items cut from ``next`` on; or (``lazy``) chunks the
        # feeder reads into ``buffer`` as (first, items) until ``exhausted`` (``feed``: the feeder's record)
        "seq", "total", "next", "lazy", "buffer", "exhausted", "feed", "input_error",
        # its results: where they go, how many have arrived, how it ended
        "result", "via_cb", "progress", "done", "failed", "finished", "func_error",
        # measured ns per task (None until a piece of it is answered, or known from an earlier call)
        "est", "est_sum", "est_n")

    def __init__(self, jid, func, mode=MAP, cs=1, timeout=None):
        self.id = jid
        self.func = func
        self.mode = mode
        self.method = 0
        self.cs = cs
        self.timeout = timeout
        self.timeout_ns = int(timeout * 1e9) if timeout else 0
        self.funckey = None
        self.seq = None
        self.total = None
        self.next = 0
        self.lazy = False
        self.buffer = None
        self.exhausted = False
        self.feed = None
        self.input_error = None       # (position, exception) of a lazy input, once its length is known
        self.result = None
        self.via_cb = False
        self.progress = None
        self.done = 0
        self.failed = False
        self.finished = False
        self.func_error = None        # the job's function cannot be pickled: every unsent task fails
        self.est = None
        self.est_sum = 0
        self.est_n = 0

    def measure(self, n, ns):
        """A worker ran ``n`` of its tasks in ``ns``: update the estimate."""
        if n:
            self.est_sum += ns
            self.est_n += n
            self.est = self.est_sum // self.est_n or 1

    def cut_out(self):
        """True when every task has been cut into runs (for a lazy job: so far, and its input ended)."""
        if self.lazy:
            return self.exhausted and not self.buffer
        return self.next >= self.total


class Segment:
    """Tasks to (re)send: a requeued remainder of a dead worker's run."""

    __slots__ = ("job", "first", "items", "pos", "cs", "requeues")

    def __init__(self, job, first, items, cs, requeues):
        self.job = job
        self.first = first
        self.items = items
        self.pos = 0
        self.cs = cs
        self.requeues = requeues


class Run:
    """A contiguous range of one job's tasks sent to one worker (whole chunks of ``cs`` tasks)."""

    __slots__ = ("job", "first", "items", "n", "cs", "nchunks", "seq0", "reported", "est", "nbytes",
                 "requeues")

    def __init__(self, job, first, items, cs, requeues=0):
        self.job = job
        self.first = first
        self.items = items
        self.n = len(items)
        self.cs = cs
        self.nchunks = (self.n + cs - 1) // cs
        self.seq0 = 0                 # sequence number of its first chunk at its worker
        self.reported = 0             # tasks answered, from the start
        self.est = job.est * self.n if job.est is not None else None
        self.nbytes = 0
        self.requeues = requeues

    def chunks(self):
        """This run as one run per chunk (to fail only the chunks that cannot be pickled)."""
        return [Run(self.job, self.first + k, self.items[k:k + self.cs], self.cs, self.requeues)
                for k in range(0, self.n, self.cs)]


class Load:
    """What one worker holds: the runs sent to it and not fully answered (in the order sent), the measured
    work (ns) and bytes they add up to, how many are unmeasured or timed, and its chunk count."""

    __slots__ = ("runs", "est", "unknown", "nbytes", "timed", "sent", "seq")

    def __init__(self):
        self.runs = collections.deque()
        self.est = 0
        self.unknown = 0
        self.nbytes = 0
        self.timed = 0
        self.sent = 0                 # chunks sent (maxtasksperchild)
        self.seq = 0                  # last chunk sequence number assigned

    def add(self, run):
        """``run`` is sent: number its chunks (the worker sets the same numbers in its slot as it begins
        each) and count it."""
        run.seq0 = self.seq + 1
        self.seq += run.nchunks
        self.sent += run.nchunks
        self.runs.append(run)
        if run.est is None:
            self.unknown += 1
        else:
            self.est += run.est
        self.nbytes += run.nbytes
        if run.job.timeout_ns:
            self.timed += 1

    def answered(self, jid, first, n):
        """The worker answered ``n`` tasks of job ``jid`` from ``first``: the run they belong to (dropped
        once fully answered), or None (e.g. the job was failed meanwhile)."""
        runs = self.runs
        run = runs[0] if runs else None
        if run is None or run.job.id != jid or run.first + run.reported != first:
            run = None
            for r in runs:
                if r.job.id == jid and r.first + r.reported == first:
                    run = r
                    break
        if run is not None:
            run.reported += n
            if run.reported >= run.n:
                if runs[0] is run:
                    runs.popleft()
                else:
                    runs.remove(run)
                if run.est is None:
                    self.unknown -= 1
                else:
                    self.est -= run.est
                self.nbytes -= run.nbytes
                if run.job.timeout_ns:
                    self.timed -= 1
        return run

    def running(self, seq):
        """The run holding chunk number ``seq``, or None."""
        for r in self.runs:
            if r.seq0 <= seq < r.seq0 + r.nchunks:
                return r
        return None

    def clear(self):
        self.runs.clear()
        self.est = self.unknown = self.nbytes = self.timed = 0


#: A dead worker's slot as read after its death: the chunk it began last, and (timed tasks) the task it
#: began last and that task's start time (0: it had finished it).
Slot = collections.namedtuple("Slot", "seq task start")
#: The pool killed a worker for an overrunning task: which one (job id, task, start time, timeout s).
Kill = collections.namedtuple("Kill", "job task start timeout")


class Settlement:
    """What a dead worker's runs come to.  ``running`` and ``finished``: {job: [(first, n)]}, the tasks it
    was running (lost) and those it had finished without reporting them (lost with it); ``timed_out``:
    (job, task, timeout) when the pool killed it for that task; ``requeued``: the segments sent again."""

    __slots__ = ("running", "finished", "timed_out", "requeued")

    def __init__(self):
        self.running = collections.defaultdict(list)
        self.finished = collections.defaultdict(list)
        self.timed_out = None
        self.requeued = []


class Scheduler:
    """The pool's queues of work (jobs in order, requeued segments in front), the loads of its workers,
    and its decisions."""

    def __init__(self, processes, maxtasks=None, limits=None):
        self.processes = processes
        self.maxtasks = maxtasks
        self.limits = limits if limits is not None else Limits()
        self.open_jobs = collections.deque()
        self.requeue = collections.deque()
        self.loads = []

    def new_load(self):
        """The Load of a worker that just started."""
        load = Load()
        self.loads.append(load)
        return load

    def forget(self, load):
        """Its worker is gone (settled first)."""
        self.loads.remove(load)

    def add_job(self, job):
        self.open_jobs.append(job)

    def has_work(self):
        return bool(self.requeue or self.open_jobs)

    def clear(self):
        self.requeue.clear()
        self.open_jobs.clear()

    def drop(self, job):
        """``job`` finished: its requeued remainders go too."""
        if any(seg.job is job for seg in self.requeue):
            self.requeue = collections.deque(seg for seg in self.requeue if seg.job is not job)

    def feed_target(self, job):
        """Chunks a lazy job's feeder may read ahead: ``FEED_AHEAD`` per worker, plus, once the job's
        tasks are measured, what prefetching can send ahead."""
        ahead = 0
        if job.est is not None and job.cs:
            lim = self.limits
            ahead = min(lim.max_batch_chunks, lim.prefetch_ns // max(job.est * job.cs, 1))
        return self.processes * (self.limits.feed_ahead + 1 + int(ahead))

    # -- what to send, to whom ----------------------------------------------------------------------------
    def pick_worker(self, workers):
        """The worker (anything with a ``.load``; all able to take work) that gets the next batch, or None
        when none should: idle ones first, then the least measured work queued."""
        lim = self.limits
        prefetch_ns = lim.prefetch_ns
        max_bytes = lim.prefetch_max_bytes
        maxtasks = self.maxtasks
        best = best_key = None
        for w in workers:
            load = w.load
            if maxtasks and load.sent >= maxtasks:
                continue
            if load.runs:
                if load.unknown or load.est >= prefetch_ns or load.nbytes >= max_bytes:
                    continue
            key = (bool(load.runs), load.est)
            if best is None or key < best_key:
                best, best_key = w, key
        return best

    def spent(self, load):
        """The worker has been sent its last chunks (maxtasksperchild): it gets nothing more."""
        return bool(self.maxtasks) and load.sent >= self.maxtasks

    def build_batch(self, load):
        """The runs of the next message to the worker holding ``load`` -> (runs, doomed).  ``doomed``: runs
        of jobs whose function cannot be pickled, cut out to fail (every task of theirs not yet sent)."""
        lim = self.limits
        batch_limit = lim.batch_ns
        idle = not load.runs
        budget = lim.max_batch_chunks
        if self.maxtasks:
            budget = min(budget, self.maxtasks - load.sent)
        room_total = lim.prefetch_ns - load.est
        batch_ns = 0
        runs = []
        doomed = []
        while budget > 0:
            src = self.next_source()
            if src is None:
                break
            job = src.job if type(src) is Segment else src
            if job.func_error is not None:
                doomed.extend(self._cut_all(src))
                continue
            cs = src.cs
            est = job.est
            if est is None:
                if runs or not idle:
                    break
                k = 1
            else:
                chunk_ns = est * cs
                if runs or not idle:
                    room = min(batch_limit - batch_ns, room_total - batch_ns)
                else:
                    room = batch_limit
                k = int(room // chunk_ns) if chunk_ns > 0 else budget
                if k < 1:
                    if runs or not idle:
                        break
                    k = 1
            k = min(k, budget)
            run = self.cut(src, k)
            runs.append(run)
            budget -= run.nchunks
            if est is None:
                break
            batch_ns += run.est
        return runs, doomed

    def next_source(self):
        """The requeued segment or open job to cut from next, or None."""
        rq = self.requeue
        while rq:
            seg = rq[0]
            if seg.job.finished or seg.pos >= len(seg.items):
                rq.popleft()
                continue
            return seg
        oj = self.open_jobs
        while oj:                       # drop finished and fully cut jobs from the head (O(1) each)
            job = oj[0]
            if job.finished or job.cut_out():
                oj.popleft()
                continue
            break
        for job in oj:                  # usually the head; a lazy job waiting for its feeder is skipped
            if job.finished:
                continue
            if job.lazy:
                if job.buffer:
                    return job
            elif job.next < job.total:
                return job
        return None

    def cut(self, src, k):
        """Up to ``k`` chunks from ``src`` (a Segment or a Job) as one run."""
        if type(src) is Segment:
            lo = src.pos
            hi = min(lo + k * src.cs, len(src.items))
            src.pos = hi
            return Run(src.job, src.first + lo, src.items[lo:hi], src.cs, src.requeues)
        job = src
        if not job.lazy:
            lo = job.next
            hi = min(lo + k * job.cs, job.total)
            job.next = hi
            return Run(job, lo, job.seq[lo:hi], job.cs)
        buf = job.buffer
        first, items = buf.popleft()
        if k > 1 and buf:
            items = list(items)
            for _ in range(k - 1):
                if not buf:
                    break
                items.extend(buf.popleft()[1])
        return Run(job, first, items, job.cs)

    def _cut_all(self, src):
        """Every task left in ``src``, as runs."""
        job = src.job if type(src) is Segment else src
        runs = []
        while True:
            if type(src) is Segment:
                if src.pos >= len(src.items):
                    break
            elif job.lazy:
                if not job.buffer:
                    break
            elif job.next >= job.total:
                break
            runs.append(self.cut(src, self.limits.max_batch_chunks))
        return runs

    # -- what a death, or a failed job, leaves --------------------------------------------------------------
    def settle(self, load, slot, kill=None):
        """A worker died holding ``load``; ``slot`` (a Slot) is what it had begun, ``kill`` (a Kill) why
        the pool killed it, if it did.  Returns the Settlement, requeues the untouched runs (in their order,
        in front of everything else) and empties ``load``."""
        cur, idx, start = slot
        out = Settlement()
        requeue = []
        for run in load.runs:
            job = run.job
            lo = run.reported
            if lo >= run.n or job.finished:         # (a finished job's remainder is not requeued)
                continue
            if cur < run.seq0:                          # not begun: requeue all of it
                fin_hi = run_hi = lo
            elif cur >= run.seq0 + run.nchunks:         # every chunk begun before the one running
                fin_hi = run_hi = run.n
            else:
                c_lo = (cur - run.seq0) * run.cs
                c_hi = min(c_lo + run.cs, run.n)
                if job.timeout_ns:
                    pos = idx - run.first
                    if c_lo <= pos < c_hi:
                        if start:
                            fin_hi, run_hi = pos, pos + 1
                            if kill is not None and kill.job == job.id and kill.task == idx \
                                    and kill.start == start:
                                out.timed_out = (job, idx, kill.timeout)
                        else:
                            fin_hi = run_hi = pos + 1
                    else:
                        fin_hi = run_hi = c_lo          # chunk begun, none of its tasks started
                else:
                    fin_hi, run_hi = c_lo, c_hi
            fin_hi = max(fin_hi, lo)
            run_hi = max(run_hi, fin_hi)
            if fin_hi > lo:
                out.finished[job].append((run.first + lo, fin_hi - lo))
            if run_hi > fin_hi:
                out.running[job].append((run.first + fin_hi, run_hi - fin_hi))
            if run_hi < run.n:
                requeue.append(Segment(job, run.first + run_hi, run.items[run_hi:], run.cs,
                                       run.requeues + 1))
        load.clear()
        for seg in requeue:
            if seg.requeues > self.limits.max_requeues:     # keeps killing its workers before starting
                out.running[seg.job].append((seg.first, len(seg.items)))
            else:
                out.requeued.append(seg)
        self.requeue.extendleft(reversed(out.requeued))
        if out.timed_out is not None:                   # that task fails with its own error
            job, i, _ = out.timed_out
            out.running[job] = [r for r in out.running[job] if not (r[0] == i and r[1] == 1)]
        return out

    def take_unanswered(self, job):
        """Every task of ``job`` that no worker will answer now: its unanswered runs at the workers
        (marked answered), its requeued segments and what was never cut -> [(first, n)].  (A lazy job's
        buffer is taken too; the caller stops its feeder first.)"""
        ranges = []
        for load in self.loads:
            for run in load.runs:
                if run.job is job and run.reported < run.n:
                    ranges.append((run.first + run.reported, run.n - run.reported))
                    run.reported = run.n
        for seg in self.requeue:
            if seg.job is job and seg.pos < len(seg.items):
                ranges.append((seg.first + seg.pos, len(seg.items) - seg.pos))
                seg.pos = len(seg.items)
        if not job.lazy:
            if job.next < job.total:
                ranges.append((job.next, job.total - job.next))
                job.next = job.total
        else:
            while job.buffer:
                first, items = job.buffer.popleft()
                ranges.append((first, len(items)))
        return ranges
