"""The after-run summary from one streaming pass: the model's figures (any order of lock records, split into
chunks anywhere), in memory that does not grow with the run."""
import tracemalloc

import numpy as np
from hypothesis import given, settings, strategies as st

from core.trace.arrays import EVENT_DTYPE
from core.trace.collector import Batch
from core.trace.events import Kind
from core.trace.store import RunFile, RunWriter
from core.trace.summary import summarize

THREADS = [(101, 101), (101, 102), (202, 202)]
UIDS = [(1 << 24) | 1, (1 << 24) | 2]

# one record of a thread: (kind, uid index, a, c)
_record = st.one_of(
    st.tuples(st.just(int(Kind.ACQ_OK)), st.integers(0, 1), st.sampled_from([0, 0, 7, 1500]),
              st.sampled_from([1, 1, 1, 2, 3])),
    st.tuples(st.just(int(Kind.RELEASE)), st.integers(0, 1), st.sampled_from([-1, 0, 40, 900]),
              st.sampled_from([0, 0, 0, 1])),
    st.tuples(st.just(int(Kind.ACQ_TIMEOUT)), st.integers(0, 1), st.sampled_from([0, 300]), st.just(0)),
)


def thread_events(pid, tid, records, start):
    ev = np.zeros(len(records), EVENT_DTYPE)
    for i, (kind, u, a, c) in enumerate(records):
        ev[i] = (start + 10 * (i + 1), UIDS[u], a, -1, kind, c, pid, tid)
    return ev


def write_run(path, per_thread, cuts):
    """A run file whose chunks each hold, for every thread, its next few records (as a collector's poll)."""
    w = RunWriter(path, {"created_perf": 0})
    pos = [0] * len(per_thread)
    for cut in cuts + [10 ** 9]:
        parts = []
        for i, ev in enumerate(per_thread):
            parts.append(ev[pos[i]:pos[i] + cut])
            pos[i] += cut
        batch = np.concatenate(parts)
        if len(batch):
            w.add_batch(Batch(batch))
    w.close()


def model_contention(model):
    return [c for c in model.contention() if c["acquired"] or c["contended"]]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_record, max_size=40), min_size=len(THREADS), max_size=len(THREADS)),
       st.lists(st.integers(0, 12), max_size=6), st.lists(st.integers(0, 500), min_size=3, max_size=3))
def test_lock_figures_equal_the_models(tmp_path_factory, sequences, cuts, starts):
    """Waits, holds (a thread's releases paired with its acquisitions, recursive ones, releases by a thread
    that did not acquire, acquisitions never released), timeouts: per object, as the model counts them."""
    path = tmp_path_factory.mktemp("summary") / "run.mpgrun"
    per_thread = [thread_events(pid, tid, seq, start) for (pid, tid), seq, start in zip(THREADS, sequences, starts)]
    write_run(path, per_thread, cuts)
    with RunFile(path) as rf:
        summary = summarize(rf, top=100)
        model = rf.model()
    assert [o.as_dict() for o in summary.contention] == model_contention(model)
    m = model.summary()
    assert (summary.events, summary.dropped, summary.tasks) == (m["events"], m["dropped"], m["tasks"])
    assert summary.duration_s == m["duration_s"]
    assert [(p.pid, p.role, p.state) for p in summary.processes] == \
        [(p.pid, p.role, p.state) for p in model.processes_table()]


def pool_events(jobs):
    """Pool records of ``jobs`` [(job, tasks, chunksize)], as a pool's parent and workers record them."""
    rows, t = [], 1000
    pool = (3 << 24) | 5
    for job, tasks, chunk in jobs:
        rows.append((t, pool, job, tasks, int(Kind.POOL_JOB), 2, 300, 300))
        for first in range(0, tasks, chunk):
            t += 5
            rows.append((t, pool, job, first, int(Kind.POOL_CHUNK_QUEUED), min(chunk, tasks - first), 300, 300))
            rows.append((t + 1, pool, job, first, int(Kind.POOL_CHUNK_SENT), 301, 300, 301))
            for i in range(first, min(first + chunk, tasks)):
                t += 3
                rows.append((t, pool, job, i, int(Kind.POOL_TASK_T0), 0, 301, 301))
                rows.append((t + 1, pool, job, i, int(Kind.POOL_TASK), 0, 301, 301))
        rows.append((t + 2, pool, job, -1, int(Kind.POOL_RESULT_USED), 0, 300, 300))
    return np.array(rows, dtype=EVENT_DTYPE)


def test_pool_task_count_equals_the_models(tmp_path):
    path = tmp_path / "pool.mpgrun"
    ev = pool_events([(1, 10, 3), (2, 7, 1), (3, 1, 4)])
    w = RunWriter(path, {"created_perf": 0})
    for part in np.array_split(ev, 5):
        w.add_batch(Batch(part))
    w.close()
    with RunFile(path) as rf:
        summary = summarize(rf)
        model = rf.model()
    assert summary.tasks == model.summary()["tasks"] == 18


def lock_run(path, n, chunk=20_000):
    rng = np.random.default_rng(1)
    w = RunWriter(path, {})
    for start in range(0, n, chunk):
        ev = np.zeros(chunk, EVENT_DTYPE)
        ev["t"] = start * 1000 + np.cumsum(rng.integers(100, 900, chunk))
        ev["uid"] = UIDS[0]
        ev["kind"] = np.where(np.arange(chunk) % 2, int(Kind.RELEASE), int(Kind.ACQ_OK))
        ev["a"] = rng.integers(0, 1000, chunk)
        ev["c"] = np.where(np.arange(chunk) % 2, 0, 1)
        ev["pid"] = ev["tid"] = 101
        w.add_batch(Batch(ev))
    w.close()


def peak_memory_of_summary(path):
    with RunFile(path) as rf:
        tracemalloc.start()
        try:
            summary = summarize(rf)
            return tracemalloc.get_traced_memory()[1], summary
        finally:
            tracemalloc.stop()


def test_the_summary_holds_one_chunk_at_a_time(tmp_path):
    """Eight times the events, about the same memory: far less than the events themselves."""
    small, large = tmp_path / "small.mpgrun", tmp_path / "large.mpgrun"
    lock_run(small, 200_000)
    lock_run(large, 1_600_000)
    peak_small, s_small = peak_memory_of_summary(small)
    peak_large, s_large = peak_memory_of_summary(large)
    assert (s_small.events, s_large.events) == (200_000, 1_600_000)
    assert s_large.contention[0].acquired == 800_000
    assert peak_large < 1.5 * peak_small, (peak_small, peak_large)
    assert peak_large < 1_600_000 * EVENT_DTYPE.itemsize / 4, peak_large
