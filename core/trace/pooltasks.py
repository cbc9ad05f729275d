"""Pool tasks in columns: one row per task, filled in as the pool's records arrive, a chunk at a time.

A task is named by (pool uid, job, index).  Its row is found through its job: a job's tasks are numbered
from 0, so each job keeps an array from task index to row (indices a damaged record makes up, negative or
far beyond the job's size, go through a dict instead).  A chunk's pool records become per-task operations
(a queued chunk of tasks is one operation per task...), sorted by task and order; the operations are
applied round by round, the first operation of every task touched, then the second..., each round one
numpy step per kind of operation.  A task's rules (``apply_round``) read as version one's handlers did, one
record at a time; tests/core/test_model_equivalence.py checks them against it.

What the pool's records set, per task: queued, sent (and the worker it was sent to), start (and the worker
that started it), end and outcome (the worker's, unless the pool already gave its verdict: lost, timed out,
cancelled), the moment the caller used its result.  A group of short tasks shares its time equally.  Per
job: its method, its size, done and failed counts, when it was submitted and done.

No Qt here.
"""
import bisect
from typing import Dict, List, Tuple

import numpy as np

from .columns import Columns, full, group_starts, ranges, segment_ids
from .events import Outcome
from .pairing import OpenWaits, pair_waits

NO_TIME = -1
OUTCOME_PENDING = -1
#: Outcomes only the pool's parent gives (its worker cannot report them): they beat the worker's own record.
PARENT_VERDICTS = (int(Outcome.LOST), int(Outcome.TIMEOUT), int(Outcome.CANCELLED))
#: The most tasks one record may name (a queued chunk, a group): more is damage, not a pool.
MAX_TASKS_PER_RECORD = 1 << 20
#: A job's index array grows to a task index no further than this many times its rows (plus this slack):
#: a damaged index must not make it huge.
DENSE_GROWTH, DENSE_SLACK = 4, 4096

TASK_DTYPE = np.dtype([("pool", "<u8"), ("job", "<i8"), ("index", "<i8"), ("worker", "<i4"),
                       ("outcome", "<i2"), ("method", "<i2"), ("queued", "<i8"), ("sent", "<i8"),
                       ("start", "<i8"), ("end", "<i8"), ("used", "<i8")])

# per-task operations, in the order of a task's rules
OP_QUEUED, OP_SENT, OP_START, OP_END, OP_GROUP_START, OP_GROUP_END, OP_LOST, OP_USED, OP_JOB_USED = range(9)


class _Job:
    """A job's tasks: index -> row (-1: none yet), and the size of each chunk queued, by its first index."""

    __slots__ = ("jid", "rows", "sizes", "extra_rows", "extra_sizes", "n_rows", "pool_job_seqs")

    def __init__(self, jid):
        self.jid = jid
        self.rows = np.full(0, -1, np.int64)
        self.sizes = np.zeros(0, np.int64)
        self.extra_rows: Dict[int, int] = {}
        self.extra_sizes: Dict[int, int] = {}
        self.n_rows = 0
        self.pool_job_seqs: List[Tuple[int, int]] = []      # (seq, method) of each POOL_JOB record

    def dense(self, idx):
        """Which of ``idx`` live in the index array (growing it for them if that is reasonable)."""
        ok = idx >= 0
        if not ok.any():
            return ok
        top = int(idx[ok].max()) + 1
        if top > len(self.rows):
            limit = DENSE_GROWTH * (self.n_rows + len(idx)) + DENSE_SLACK
            if top <= limit:
                cap = max(top, 2 * len(self.rows))
                self.rows = np.concatenate((self.rows, np.full(cap - len(self.rows), -1, np.int64)))
                self.sizes = np.concatenate((self.sizes, np.zeros(cap - len(self.sizes), np.int64)))
        return ok & (idx < len(self.rows))

    def lookup(self, idx):
        out = np.full(len(idx), -1, np.int64)
        dense = self.dense(idx)
        out[dense] = self.rows[idx[dense]]
        for i in np.flatnonzero(~dense).tolist():
            out[i] = self.extra_rows.get(int(idx[i]), -1)
        return out

    def assign(self, idx, rows):
        dense = self.dense(idx)
        self.rows[idx[dense]] = rows[dense]
        for i in np.flatnonzero(~dense).tolist():
            self.extra_rows[int(idx[i])] = int(rows[i])
        self.n_rows += len(idx)

    def size_of(self, first):
        """The stored chunk size for each of ``first`` (0: none stored)."""
        out = np.zeros(len(first), np.int64)
        dense = (first >= 0) & (first < len(self.sizes))
        out[dense] = self.sizes[first[dense]]
        for i in np.flatnonzero(~dense).tolist():
            out[i] = self.extra_sizes.get(int(first[i]), 0)
        return out

    def store_sizes(self, first, size):
        dense = self.dense(first)
        self.sizes[first[dense]] = size[dense]
        for i in np.flatnonzero(~dense).tolist():
            self.extra_sizes[int(first[i])] = int(size[i])

    def all_rows(self):
        r = self.rows[self.rows >= 0]
        if self.extra_rows:
            r = np.concatenate((r, np.array(list(self.extra_rows.values()), np.int64)))
        return r

    def methods_at(self, seq):
        """The job's method as known when each record at ``seq`` came (0 before its POOL_JOB)."""
        seqs = np.array([s for s, _ in self.pool_job_seqs], np.int64)
        methods = np.array([0] + [m for _, m in self.pool_job_seqs], np.int64)
        return methods[np.searchsorted(seqs, seq, side="left")]


class PoolTasks:
    """The task table and the jobs (``jobs``: (pool, job) -> the job's dict, as version one's model kept)."""

    def __init__(self):
        self.table = Columns(TASK_DTYPE)
        self.created = Columns([("seq", "<i8")])      # the order of the record that made each row
        self.jobs: Dict[Tuple[int, int], dict] = {}
        self._jobs: Dict[Tuple[int, int], _Job] = {}
        self._groups = OpenWaits()                      # (pool, job, first) -> start of a group still running
        self.version = 0
        #: Whether to remember which rows changed (``take_changes``): a view that redraws only those sets it.
        self.track_changes = False
        self._changes: List[np.ndarray] = []

    def __len__(self):
        return len(self.table)

    def _job(self, pool, job):
        key = (pool, job)
        j = self._jobs.get(key)
        if j is None:
            j = self._jobs[key] = _Job(len(self._jobs))
        return j

    # -- a chunk's records ----------------------------------------------------------------------------------
    def ingest(self, rec):
        """One chunk's pool records: ``rec`` maps a record name to its columns (see ``model``), each in the
        chunk's order (``seq``)."""
        self._job_records(rec.get("job", ()), rec.get("done", ()))
        ops = _Ops()
        q = rec.get("queued")
        s = rec.get("sent")
        if q is not None or s is not None:
            self._chunks(ops, q, s)
        for name, code in (("start", OP_START), ("end", OP_END), ("lost", OP_LOST)):
            r = rec.get(name)
            if r is not None:
                seq, t, pool, job, index, value, pid = r
                ops.add(seq, t, pool, job, index, code, w=pid, o=value)
        r = rec.get("used")
        job_used = None
        if r is not None:
            seq, t, pool, job, index, _, pid = r
            one = index >= 0
            ops.add(seq[one], t[one], pool[one], job[one], index[one], OP_USED)
            if (~one).any():
                job_used = (seq[~one], t[~one], pool[~one], job[~one])
        g0, g1 = rec.get("group_start"), rec.get("group_end")
        if g0 is not None or g1 is not None:
            self._group_records(ops, g0, g1)
        if not ops.n and job_used is None:
            return
        rows = self._rows_of(ops)
        if job_used is not None:
            rows = self._job_used(ops, rows, *job_used)
        self._apply(ops, rows)
        self.version += 1
        self.table.version += 1

    def _job_records(self, jobs, done):
        """POOL_JOB (a job's dict, anew) and POOL_JOB_DONE (its end), in their order."""
        recs = []
        if len(jobs):
            seq, t, pool, job, total, method, pid = jobs
            recs += [(s, 0, tt, p, j, n, m, pi) for s, tt, p, j, n, m, pi in
                     zip(seq.tolist(), t.tolist(), pool.tolist(), job.tolist(), total.tolist(), method.tolist(),
                         pid.tolist())]
        if len(done):
            seq, t, pool, job = done[:4]
            recs += [(s, 1, tt, p, j, 0, 0, 0) for s, tt, p, j in zip(seq.tolist(), t.tolist(), pool.tolist(),
                                                                       job.tolist())]
        for s, is_done, t, pool, job, total, method, pid in sorted(recs):
            if is_done:
                d = self.jobs.get((pool, job))
                if d is not None:
                    d["ended"] = t
                continue
            self.jobs[(pool, job)] = {"method": method, "total": total, "submitted": t, "done": 0, "failed": 0,
                                      "ended": NO_TIME, "pid": pid}
            j = self._job(pool, job)
            bisect.insort(j.pool_job_seqs, (s, method))

    def _chunks(self, ops, q, s):
        """CHUNK_QUEUED (each of its tasks queued; its size kept) and CHUNK_SENT (each task of the chunk of
        that size from that first index sent to a worker)."""
        parts = [p for p in (q, s) if p is not None]
        seq = np.concatenate([p[0] for p in parts])
        t = np.concatenate([p[1] for p in parts])
        pool = np.concatenate([p[2] for p in parts])
        job = np.concatenate([p[3] for p in parts])
        first = np.concatenate([p[4] for p in parts])
        value = np.concatenate([p[5] for p in parts])
        is_q = np.concatenate([np.full(len(p[0]), p is q) for p in parts])
        size = np.where(is_q, np.clip(value, 1, MAX_TASKS_PER_RECORD), 0)
        order = np.lexsort((seq, first, job, pool))
        seq, t, pool, job, first, value, is_q, size = (a[order] for a in (seq, t, pool, job, first, value, is_q, size))
        n = len(seq)
        starts = group_starts(pool, job, first)
        seg = segment_ids(n, starts)
        last_q = np.maximum.accumulate(np.where(is_q, np.arange(n), -1))
        known = last_q >= starts[seg]
        sent = np.flatnonzero(~is_q)
        sent_size = np.where(known[sent], size[np.maximum(last_q[sent], 0)], 0)
        # a chunk queued in an earlier chunk of records: its stored size
        need = sent[sent_size == 0]
        if len(need):
            stored = self._stored_sizes(pool[need], job[need], first[need])
            sent_size[sent_size == 0] = np.where(stored > 0, stored, 1)
        size[sent] = np.minimum(sent_size, MAX_TASKS_PER_RECORD)
        # store the size of each chunk's last queuing
        ends = np.append(starts[1:], n) - 1
        qe = ends[known[ends]]
        last = last_q[qe]
        self._store_sizes(pool[last], job[last], first[last], size[last])
        count = size
        idx = ranges(first, first + count)
        rep = np.repeat(np.arange(n), count)
        code = np.where(is_q[rep], OP_QUEUED, OP_SENT)
        ops.add(seq[rep], t[rep], pool[rep], job[rep], idx, code, w=np.where(is_q[rep], 0, value[rep]))

    def _stored_sizes(self, pool, job, first):
        out = np.zeros(len(pool), np.int64)
        for (p, j), sel in by_job(pool, job):
            jj = self._jobs.get((p, j))
            if jj is not None:
                out[sel] = jj.size_of(first[sel])
        return out

    def _store_sizes(self, pool, job, first, size):
        for (p, j), sel in by_job(pool, job):
            self._job(p, j).store_sizes(first[sel], size[sel])

    def _group_records(self, ops, g0, g1):
        """POOL_GROUP_T0 (its tasks start, unless started) and POOL_GROUP (its tasks share its time)."""
        parts = [p for p in (g0, g1) if p is not None]
        seq = np.concatenate([p[0] for p in parts])
        t = np.concatenate([p[1] for p in parts])
        pool = np.concatenate([p[2] for p in parts])
        job = np.concatenate([p[3] for p in parts])
        first = np.concatenate([p[4] for p in parts])
        count = np.clip(np.concatenate([p[5] for p in parts]), 0, MAX_TASKS_PER_RECORD)
        pid = np.concatenate([p[6] for p in parts])
        opens = np.concatenate([np.full(len(p[0]), p is g0) for p in parts])
        closes, t0 = pair_waits(self._groups, seq, t, pool, job, first, opens, np.zeros(len(seq), np.int64),
                                np.zeros(len(seq), np.int64))
        starts_at = np.zeros(len(seq), np.int64)
        starts_at[closes] = t0
        idx = ranges(first, first + count)
        rep = np.repeat(np.arange(len(seq)), count)
        k = idx - first[rep]
        step = (t[rep] - starts_at[rep]) / np.maximum(count[rep], 1)
        gs = starts_at[rep] + (k * step).astype(np.int64)
        ge = starts_at[rep] + ((k + 1) * step).astype(np.int64)
        code = np.where(opens[rep], OP_GROUP_START, OP_GROUP_END)
        ops.add(seq[rep], t[rep], pool[rep], job[rep], idx, code, w=pid[rep], gs=gs, ge=ge)

    def _rows_of(self, ops):
        """The row of each operation's task, making rows (in the order their first record came) as needed."""
        pool, job, idx, seq = ops.col("pool"), ops.col("job"), ops.col("index"), ops.col("seq")
        rows = np.full(len(pool), -1, np.int64)
        new_pool, new_job, new_idx, new_seq = [], [], [], []
        for (p, j), sel in by_job(pool, job):
            jj = self._job(p, j)
            found = jj.lookup(idx[sel])
            rows[sel] = found
            missing = sel[found < 0]
            if len(missing):
                o = missing[np.argsort(seq[missing], kind="stable")]
                u, first = np.unique(idx[o], return_index=True)
                new_pool.append(np.full(len(u), p, np.uint64))
                new_job.append(np.full(len(u), j, np.int64))
                new_idx.append(u)
                new_seq.append(seq[o][first])
        if new_idx:
            n_pool, n_job, n_idx, n_seq = (np.concatenate(x) for x in (new_pool, new_job, new_idx, new_seq))
            order = np.argsort(n_seq, kind="stable")
            n_pool, n_job, n_idx, n_seq = n_pool[order], n_job[order], n_idx[order], n_seq[order]
            method = np.zeros(len(n_idx), np.int16)
            first_row = len(self.table)
            new_rows = first_row + np.arange(len(n_idx))
            for (p, j), sel in by_job(n_pool, n_job):
                jj = self._job(p, j)
                jj.assign(n_idx[sel], new_rows[sel])
                if jj.pool_job_seqs:
                    method[sel] = jj.methods_at(n_seq[sel])
            self.table.extend(pool=n_pool, job=n_job, index=n_idx, worker=0, outcome=OUTCOME_PENDING,
                              method=method, queued=NO_TIME, sent=NO_TIME, start=NO_TIME, end=NO_TIME,
                              used=NO_TIME)
            self.created.extend(seq=n_seq)
            for (p, j), sel in by_job(pool, job):
                missing = sel[rows[sel] < 0]
                if len(missing):
                    rows[missing] = self._job(p, j).lookup(idx[missing])
        return rows

    def _job_used(self, ops, rows, seq, t, pool, job):
        """POOL_RESULT_USED for a whole job: each of its tasks that had a row then, unless already used."""
        created = self.created.view("seq")
        for s, tt, p, j in zip(seq.tolist(), t.tolist(), pool.tolist(), job.tolist()):
            jj = self._jobs.get((p, j))
            if jj is None:
                continue
            r = jj.all_rows()
            r = r[created[r] < s]
            n0 = ops.n
            ops.add(np.full(len(r), s), np.full(len(r), tt), np.full(len(r), p, np.uint64), np.full(len(r), j),
                    self.table.view("index")[r], OP_JOB_USED)
            rows = np.concatenate((rows, r)) if ops.n > n0 else rows
        return rows

    # -- applying the operations -------------------------------------------------------------------------
    def _apply(self, ops, rows):
        if not ops.n:
            return
        seq = ops.col("seq")
        span = int(seq.max() - seq.min()) + 1
        if span < (1 << 31) and int(rows.max()) < (1 << 31):       # one 64-bit key: a single sort
            order = np.argsort(rows * span + (seq - seq.min()), kind="stable")
        else:
            order = np.lexsort((seq, rows))
        rows = rows[order]
        cols = {name: ops.col(name)[order] for name in ("seq", "t", "op", "w", "o", "gs", "ge", "pool", "job")}
        n = len(rows)
        starts = group_starts(rows)
        seg = segment_ids(n, starts)
        position = np.arange(n) - starts[seg]
        task_rows = rows[starts]
        tab = self.table
        state = {name: tab.column(name)[task_rows].copy() for name in ("queued", "sent", "start", "end", "used",
                                                                        "worker", "outcome")}
        # which operations count towards their job's done and failed counts (those after its POOL_JOB)
        job_seq = np.zeros(n, np.int64)
        for (p, j), sel in by_job(cols["pool"], cols["job"]):
            job_seq[sel] = self._count_from(p, j)
        counts = cols["seq"] > job_seq
        done = np.zeros(n, np.int64)
        failed = np.zeros(n, np.int64)
        by_round = np.argsort(position.astype(np.int16) if position.max() < (1 << 15) else position, kind="stable")
        bounds = np.searchsorted(position[by_round], np.arange(int(position.max()) + 2))
        for r in range(len(bounds) - 1):
            i = by_round[bounds[r]:bounds[r + 1]]
            apply_round(state, seg[i], cols["op"][i], cols["t"][i], cols["w"][i], cols["o"][i], cols["gs"][i],
                        cols["ge"][i], done, failed, i)
        for name, values in state.items():
            tab.column(name)[task_rows] = values
        if self.track_changes:
            self._changes.append(task_rows)
        counted = counts & ((done != 0) | (failed != 0))
        if counted.any():          # summed per job: a chunk holds a few jobs and many tasks
            at = np.flatnonzero(counted)
            done, failed = done[at], failed[at]
            for key, sel in by_job(cols["pool"][at], cols["job"][at]):
                jd = self.jobs.get(key)
                if jd is not None:
                    jd["done"] += int(done[sel].sum())
                    jd["failed"] += int(failed[sel].sum())

    def _count_from(self, pool, job):
        """Records after this order count towards the job's dict (-> no job yet: none count)."""
        jj = self._jobs.get((pool, job))
        if jj is None or not jj.pool_job_seqs or (pool, job) not in self.jobs:
            return 1 << 62
        return jj.pool_job_seqs[-1][0]

    def take_changes(self):
        """The rows changed since the last call (``track_changes``), each once."""
        changes, self._changes = self._changes, []
        return np.unique(np.concatenate(changes)) if changes else np.zeros(0, np.int64)

    def rows_of(self, pool, job):
        """The rows of one job's tasks (for queries by job)."""
        jj = self._jobs.get((pool, job))
        return np.zeros(0, np.int64) if jj is None else np.sort(jj.all_rows())


def apply_round(st, g, op, t, w, o, gs, ge, done, failed, at):
    """One operation for each of the tasks ``g`` (indices into the state arrays ``st``), by kind: the rules of
    version one's handlers.  ``done``/``failed``: what each operation (``at``) adds to its job's counts."""
    for code in np.flatnonzero(np.bincount(op, minlength=OP_JOB_USED + 1)).tolist():
        sel = op == code
        gg, tt = g[sel], t[sel]
        if code == OP_QUEUED:
            st["queued"][gg] = tt
        elif code == OP_SENT:
            st["sent"][gg] = tt
            st["worker"][gg] = w[sel]
        elif code == OP_START:
            st["start"][gg] = tt
            st["worker"][gg] = w[sel]
        elif code == OP_END:
            verdict = np.isin(st["outcome"][gg], PARENT_VERDICTS)
            st["end"][gg] = tt
            st["worker"][gg] = w[sel]
            keep = ~verdict
            st["outcome"][gg[keep]] = o[sel][keep]
            done[at[sel][keep]] += 1
            failed[at[sel][keep]] += o[sel][keep] != int(Outcome.OK)
        elif code == OP_GROUP_START:
            pending = st["start"][gg] == NO_TIME
            st["start"][gg[pending]] = tt[pending]
            st["worker"][gg[pending]] = w[sel][pending]
        elif code == OP_GROUP_END:
            still = st["end"][gg] == NO_TIME
            h = gg[still]
            st["start"][h] = gs[sel][still]
            st["end"][h] = ge[sel][still]
            st["worker"][h] = w[sel][still]
            st["outcome"][h] = int(Outcome.OK)
            done[at[sel][still]] += 1
        elif code == OP_LOST:
            ended = st["end"][gg] != NO_TIME
            e = gg[ended]
            failed[at[sel][ended]] += st["outcome"][e] == int(Outcome.OK)
            st["outcome"][e] = o[sel][ended]
            h = gg[~ended]
            th = tt[~ended]
            start = st["start"][h]
            sent = st["sent"][h]
            st["start"][h] = np.where(start != NO_TIME, start, np.where(sent != NO_TIME, sent, th))
            st["end"][h] = th
            oh = o[sel][~ended]
            st["outcome"][h] = oh
            done[at[sel][~ended]] += 1
            failed[at[sel][~ended]] += oh != int(Outcome.OK)
        elif code == OP_USED:
            st["used"][gg] = tt
        elif code == OP_JOB_USED:
            unset = st["used"][gg] == NO_TIME
            st["used"][gg[unset]] = tt[unset]


class _Ops:
    """Per-task operations being gathered for a chunk."""

    NAMES = ("seq", "t", "pool", "job", "index", "op", "w", "o", "gs", "ge")

    def __init__(self):
        self.parts: Dict[str, list] = {name: [] for name in self.NAMES}
        self.n = 0
        self._cols: Dict[str, np.ndarray] = {}

    def add(self, seq, t, pool, job, index, op, w=0, o=0, gs=0, ge=0):
        k = len(seq)
        if not k:
            return
        for name, value, dtype in (("seq", seq, np.int64), ("t", t, np.int64), ("pool", pool, np.uint64),
                                   ("job", job, np.int64), ("index", index, np.int64), ("op", op, np.int8),
                                   ("w", w, np.int64), ("o", o, np.int64), ("gs", gs, np.int64),
                                   ("ge", ge, np.int64)):
            self.parts[name].append(full(np.asarray(value, dtype), k))
        self.n += k
        self._cols.clear()

    def col(self, name):
        c = self._cols.get(name)
        if c is None:
            parts = self.parts[name]
            c = self._cols[name] = np.concatenate(parts) if parts else np.zeros(0)
        return c


def by_job(pool, job):
    """(pool, job) -> indices of the items of that job, for each job among the items (arrays)."""
    if not len(pool):
        return
    if pool.min() == pool.max() and job.min() == job.max():     # one job: the usual case in a chunk
        yield (int(pool[0]), int(job[0])), np.arange(len(pool))
        return
    order = np.lexsort((job, pool))
    starts = group_starts(pool[order], job[order])
    ends = np.append(starts[1:], len(order))
    for s, e in zip(starts.tolist(), ends.tolist()):
        i = order[s]
        yield (int(pool[i]), int(job[i])), np.sort(order[s:e])
