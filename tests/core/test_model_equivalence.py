"""The compact model gives version one's tables (``reference_model``, with the one rule changed on purpose:
``model_checks.FixedReference``), on synthetic runs of every kind of record, however they are cut.

Each thread of a few processes records a random program: locks taken, waited for, timed out, re-entered and
released (also by threads that never took them), waits of every kind opened and closed in any order, queue,
pipe and channel traffic, manager calls, a pool's jobs, chunks, tasks, groups, verdicts and results, the
processes' own lifecycle records, marks, counters, progress, moments.  The run is then read by both models:
version one's all at once, the compact one cut into random pieces (registrations and samples arriving
anywhere), or stored in a run file the way the collector stores it (each poll takes every ring's next few
records, so chunks overlap in time) and opened a chunk at a time.
"""
import os

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from core.trace.arrays import EVENT_DTYPE
from core.trace.collector import Batch
from core.trace.events import JobMethod, Kind, Outcome, StartMethod, WorkerExit
from core.trace.model import RunModel, seq_order
from core.trace.store import RunFile, RunWriter

from model_checks import FixedReference, differences

#: Examples per test (MPGUI_MODEL_EXAMPLES raises it for a longer search).
EXAMPLES = int(os.environ.get("MPGUI_MODEL_EXAMPLES", "300"))
MAIN = 100
THREADS = [(MAIN, MAIN), (MAIN, 101), (200, 200), (300, 300)]
LOCKS = [11, 12]                # a lock, a semaphore
SEMAPHORE = 12
COND, EVENT, BARRIER, QUEUE, PIPE, CHAN, SHARED, POOL, SEG = 21, 22, 23, 24, 25, 26, 27, 28, 29
STRINGS = {901: "get", 902: "phase one", 903: "items", 904: "done so far"}
REGS = ([{"t": "proc", "pid": MAIN, "ppid": 1, "role": "main", "name": "MainProcess"},
         {"t": "spawned", "pid": 200, "name": "w1", "role": "worker", "method": "fork", "uid": 51, "parent": MAIN},
         {"t": "proc", "pid": 200, "ppid": MAIN, "role": "worker", "name": "PoolWorker-1"},
         {"t": "spawned", "pid": 300, "name": "p", "role": "process", "method": "spawn", "uid": 52},
         {"t": "obj", "uid": 11, "kind": "Lock", "name": "db"}, {"t": "obj", "uid": 12, "kind": "Semaphore",
                                                                 "name": "slots"},
         {"t": "obj", "uid": QUEUE, "kind": "Queue", "name": "q"}, {"t": "exit", "pid": MAIN, "exitcode": 0}] +
        [{"t": "str", "id": k, "s": v} for k, v in STRINGS.items()])

small = st.sampled_from
WAIT_NS = small([0, 0, 5, 40_000, 60_000, 2_000_000])


def record(kind, uid, a=0, b=0, c=0):
    def strategy(x):
        return st.just(x) if isinstance(x, int) else x
    return st.tuples(st.just(int(kind)), strategy(uid), strategy(a), strategy(b), strategy(c))


def ints(*values):
    return small(list(values))


# one record of a thread's program: (kind, uid, a, b, c); its time comes from the program's clock
RECORD = st.one_of(
    record(Kind.ACQ_REQUEST, small(LOCKS), ints(-1, 1000)),
    record(Kind.ACQ_OK, small(LOCKS), WAIT_NS, ints(-1, 0, 1, 2), ints(1, 1, 1, 2, 3)),
    record(Kind.ACQ_OK, small(LOCKS), WAIT_NS, ints(-1, 0, 1, 2), ints(1, 1, 1, 2, 3)),
    record(Kind.ACQ_TIMEOUT, small(LOCKS), WAIT_NS),
    record(Kind.RELEASE, small(LOCKS), ints(-1, -1, 0, 40, 900), ints(-1, 0, 1, 2), ints(0, 0, 0, 1)),
    record(Kind.RELEASE, small(LOCKS), ints(-1, -1, 0, 40, 900), ints(-1, 0, 1, 2), ints(0, 0, 0, 1)),
    record(Kind.COND_WAIT, COND, ints(-1, 100)), record(Kind.COND_WOKEN, COND, WAIT_NS, ints(0, 1)),
    record(Kind.EVENT_WAIT, EVENT, ints(-1)), record(Kind.EVENT_WAIT_END, EVENT, WAIT_NS, ints(0, 1)),
    record(Kind.BARRIER_ARRIVE, BARRIER, ints(3), ints(0, 1), ints(0, 1, 2)),
    record(Kind.BARRIER_PASS, BARRIER, WAIT_NS, ints(0, 1), ints(0, 1, 2)),
    record(Kind.BARRIER_BROKEN, BARRIER, WAIT_NS, ints(0, 1)),
    record(Kind.QUEUE_JOIN_WAIT, QUEUE), record(Kind.QUEUE_JOIN, QUEUE, WAIT_NS),
    record(Kind.QUEUE_PUT, QUEUE, WAIT_NS, ints(-1, 0, 3)), record(Kind.QUEUE_SEND, QUEUE, ints(64, 5000)),
    record(Kind.QUEUE_GET, QUEUE, WAIT_NS, ints(64, 5000), ints(-1, 0, 2)),
    record(Kind.QUEUE_FULL, QUEUE, WAIT_NS), record(Kind.QUEUE_EMPTY, QUEUE, WAIT_NS),
    record(Kind.QUEUE_TASK_DONE, QUEUE, ints(-1, 0, 4)),
    record(Kind.PIPE_SEND, PIPE, ints(10, 1 << 20), WAIT_NS), record(Kind.PIPE_RECV, PIPE, ints(-1, 10), WAIT_NS),
    record(Kind.IPC_SEND, CHAN, ints(10), ints(1, 2)), record(Kind.IPC_RECV, CHAN, ints(10), ints(3, 4)),
    record(Kind.MANAGER_CALL, SHARED, WAIT_NS, ints(901), ints(0, 1)),
    record(Kind.PROC_JOIN, 51, WAIT_NS, ints(0, 1), ints(0, 1)),
    record(Kind.POOL_WORKER_INIT, POOL, ints(100, 5000, 3_000_000), ints(200, 300)),
    record(Kind.COND_NOTIFY, COND, ints(-1, 1)), record(Kind.EVENT_SET, EVENT), record(Kind.EVENT_CLEAR, EVENT),
    record(Kind.RELEASE_ERROR, SEMAPHORE, 0, ints(-1, 2)), record(Kind.SHM_CREATE, SEG, ints(4096)),
    record(Kind.SIGNAL_SEND, CHAN, ints(10), ints(200)), record(Kind.PROC_TERMINATE, 52, ints(300)),
    record(Kind.PROC_KILL, 51, ints(200)), record(Kind.POOL_CREATED, POOL, ints(2), ints(0, 3)),
    record(Kind.MARK, 0, ints(901, 999), ints(1, 7)), record(Kind.PHASE, 0, ints(902, 998)),
    record(Kind.COUNTER, 0, ints(1, 5, 9), ints(903, 997)), record(Kind.PROGRESS, small([904, 996]), ints(1, 2, 3),
                                                                     ints(-1, 3)),
    record(Kind.PROC_CREATED, small([51, 52])),
    record(Kind.PROC_START, small([51, 52]), ints(200, 300), ints(*[int(m) for m in StartMethod]), ints(900, 3000)),
    record(Kind.PROC_BOOT, small([0, 51, 52]), ints(MAIN)), record(Kind.PROC_EXIT, 0, ints(0, 1, -9)),
    record(Kind.PROC_REAPED, small([0, 51]), ints(200, 300), ints(0, -9, -15)),
    record(Kind.POOL_WORKER_EXIT, POOL, ints(200, 300), ints(-1, 0, -9), ints(*[int(w) for w in WorkerExit])),
    record(Kind.POOL_JOB, POOL, ints(1, 2), ints(-1, 4), ints(*[int(m) for m in JobMethod])),
    record(Kind.POOL_CHUNK_QUEUED, POOL, ints(1, 2), ints(0, 1, 2, 3), ints(0, 1, 2)),
    record(Kind.POOL_CHUNK_SENT, POOL, ints(1, 2), ints(0, 1, 2, 3), ints(200, 300)),
    record(Kind.POOL_TASK_T0, POOL, ints(1, 2), ints(0, 1, 2, 3)),
    record(Kind.POOL_TASK, POOL, ints(1, 2), ints(0, 1, 2, 3), ints(*[int(o) for o in Outcome])),
    record(Kind.POOL_TASK_LOST, POOL, ints(1, 2), ints(0, 1, 2, 3), ints(1, 2, 3, 4)),
    record(Kind.POOL_RESULT_USED, POOL, ints(1, 2), ints(-1, 0, 1, 5)),
    record(Kind.POOL_JOB_DONE, POOL, ints(1, 2), 0, ints(0, 1)),
    record(Kind.POOL_GROUP_T0, POOL, ints(1, 2), ints(0, 2), ints(0, 2, 3)),
    record(Kind.POOL_GROUP, POOL, ints(1, 2), ints(0, 2), ints(0, 2, 3)),
    record(124, small([11, 12, COND, QUEUE, PIPE]), ints(905, 906)),     # CALLSITE
)
#: A pool's records only, on one job of a few tasks: its rules meet each other often.
POOL_RECORD = st.one_of(
    record(Kind.POOL_JOB, POOL, 1, ints(-1, 4), ints(*[int(m) for m in JobMethod])),
    record(Kind.POOL_CHUNK_QUEUED, POOL, 1, ints(0, 1, 2), ints(0, 1, 2)),
    record(Kind.POOL_CHUNK_SENT, POOL, 1, ints(0, 1, 2), ints(200, 300)),
    record(Kind.POOL_TASK_T0, POOL, 1, ints(0, 1, 2)), record(Kind.POOL_TASK_T0, POOL, 1, ints(0, 1, 2)),
    record(Kind.POOL_TASK, POOL, 1, ints(0, 1, 2), ints(0, 0, 1, 2)),
    record(Kind.POOL_TASK, POOL, 1, ints(0, 1, 2), ints(0, 0, 1, 3)),
    record(Kind.POOL_TASK_LOST, POOL, 1, ints(0, 1, 2), ints(1, 2, 3, 4)),
    record(Kind.POOL_RESULT_USED, POOL, 1, ints(-1, 0, 1, 2)),
    record(Kind.POOL_JOB_DONE, POOL, 1, 0, ints(0, 1)),
    record(Kind.POOL_GROUP_T0, POOL, 1, ints(0, 1), ints(0, 2)),
    record(Kind.POOL_GROUP, POOL, 1, ints(0, 1), ints(0, 2)),
    record(Kind.POOL_WORKER_EXIT, POOL, ints(200, 300), ints(-1, 0, -9), ints(*[int(w) for w in WorkerExit])),
)
#: Locks and waits only, on two objects.
LOCK_RECORD = st.one_of(
    record(Kind.ACQ_REQUEST, small(LOCKS), ints(-1)),
    record(Kind.ACQ_OK, small(LOCKS), WAIT_NS, ints(-1, 1), ints(1, 1, 2)),
    record(Kind.ACQ_TIMEOUT, small(LOCKS), WAIT_NS),
    record(Kind.RELEASE, small(LOCKS), ints(-1, 0, 900), ints(-1, 1), ints(0, 0, 1)),
    record(Kind.COND_WAIT, COND), record(Kind.COND_WOKEN, COND, WAIT_NS, ints(0, 1)),
    record(Kind.BARRIER_ARRIVE, BARRIER, ints(3), ints(0, 1), ints(0, 1)),
    record(Kind.BARRIER_PASS, BARRIER, WAIT_NS, ints(0, 1), ints(0, 1)),
    record(Kind.QUEUE_GET, QUEUE, WAIT_NS, ints(64), ints(-1, 1)),
    record(124, small([11, 12, COND, QUEUE]), ints(905, 906)),
)
MIXES = {"every kind": RECORD, "pool": POOL_RECORD, "locks": LOCK_RECORD}


def program(records):
    return st.lists(st.tuples(small([0, 0, 1, 3, 70_000]), records), max_size=25)


def thread_records(pid, tid, program, start):
    ev = np.zeros(len(program), EVENT_DTYPE)
    t = start
    for i, (dt, (kind, uid, a, b, c)) in enumerate(program):
        t += dt
        ev[i] = (t, uid, a, b, kind, c, pid, tid)
    return ev


SAMPLE = st.tuples(small([0, 50, 100_000]), st.lists(st.tuples(small([MAIN, 200, 300, 400]),
                                                                small(["running", "sleeping", "zombie"])),
                                                      max_size=3),
                   st.lists(small([200, 300, 400]), max_size=1))


def samples_of(drawn):
    out, t = [], 0
    for dt, procs, gone in drawn:
        t += dt
        out.append((t, {"cores": [10.0, 30.0], "procs": [{"pid": p, "ppid": MAIN, "name": "python", "cpu": 1.5,
                                                          "rss": 4096, "threads": 2, "status": status}
                                                         for p, status in procs], "gone": gone}))
    return out


def reference_of(events, samples, logs=()):
    ref = FixedReference()
    ref.set_meta({"created_perf": 1})
    ref.ingest(events, REGS, samples, logs)
    return ref


def programs():
    """Each thread's program, all from one mix; the main thread's starts with its pool's job."""
    def of_mix(records):
        return st.lists(program(records), min_size=len(THREADS), max_size=len(THREADS)).map(
            lambda progs: [[(0, (int(Kind.POOL_JOB), POOL, 1, 3, int(JobMethod.MAP)))] + progs[0]] + progs[1:])
    return st.sampled_from(list(MIXES.values())).flatmap(of_mix)


def run_of(progs, starts):
    per_thread = [thread_records(pid, tid, prog, start) for (pid, tid), prog, start in zip(THREADS, progs, starts)]
    return per_thread, np.concatenate(per_thread)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.lists(st.integers(0, 300), min_size=len(THREADS), max_size=len(THREADS)),
       st.lists(st.integers(0, 120), max_size=8), st.lists(SAMPLE, max_size=6), st.randoms())
def test_pieces_of_a_run_give_version_one_s_tables(progs, starts, cuts, drawn_samples, rnd):
    """The run in time order, cut anywhere; registrations and samples arrive with any piece."""
    _, events = run_of(progs, starts)
    events = events[np.argsort(events["t"], kind="stable")]
    samples = samples_of(drawn_samples)
    ref = reference_of(events, samples)
    new = RunModel()
    new.set_meta({"created_perf": 1})
    bounds = sorted(set(min(c, len(events)) for c in np.cumsum(cuts).tolist())) + [len(events)]
    pieces, lo = [], 0
    for hi in bounds:
        pieces.append(events[lo:hi])
        lo = hi
    regs = list(REGS)
    todo = list(samples)
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        k = len(regs) if last else rnd.randint(0, len(regs))
        j = len(todo) if last else rnd.randint(0, len(todo))
        new.ingest(piece, regs[:k], todo[:j])
        regs, todo = regs[k:], todo[j:]
    assert differences(ref, new) == []


@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(programs(), st.lists(st.integers(0, 300), min_size=len(THREADS), max_size=len(THREADS)),
       st.lists(st.integers(0, 6), min_size=1, max_size=8))
def test_a_run_file_read_a_chunk_at_a_time_gives_version_one_s_tables(tmp_path_factory, progs, starts, polls):
    """Stored as the collector stores it: each chunk holds every thread's next few records, so a chunk's
    records may be older than the previous chunk's."""
    per_thread, _ = run_of(progs, starts)
    path = tmp_path_factory.mktemp("equiv") / "run.mpgrun"
    w = RunWriter(path, {"created_perf": 1})
    w.add_batch(Batch(np.zeros(0, EVENT_DTYPE), REGS))
    stored = []
    pos = [0] * len(per_thread)
    for take in polls + [10 ** 6]:
        parts = []
        for i, ev in enumerate(per_thread):
            parts.append(ev[pos[i]:pos[i] + take])
            pos[i] += take
        batch = np.concatenate(parts)
        if len(batch):
            w.add_batch(Batch(batch))
            stored.append(batch)
    w.add_log("stdout", "hello", t=5)
    w.add_samples(samples_of([(10, [(MAIN, "running"), (300, "zombie")], [200])]))
    w.close()
    events = np.concatenate(stored) if stored else np.zeros(0, EVENT_DTYPE)
    with RunFile(path) as rf:
        new = rf.model()
        logs = list(rf.iter_log())
        samples = list(rf.iter_samples())
    ref = FixedReference()
    ref.ingest(events, REGS, samples, logs)
    ref.set_meta(new.meta)
    ref.dropped = new.dropped
    assert differences(ref, new) == []


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 200), max_size=300), st.integers(0, 10 ** 12), st.sampled_from([1, 3, 1000]))
def test_a_familys_rows_are_put_in_record_order_as_a_stable_sort_puts_them(values, base, spread):
    """Rows of one family (spans, messages...) are appended in the order of their records: close, distinct
    record numbers by their place in a table, spread or repeated ones (a record closing two spans) sorted;
    either way what a stable sort gives."""
    seq = base + np.array(values, np.int64) * spread
    assert seq_order(seq).tolist() == np.argsort(seq, kind="stable").tolist()
