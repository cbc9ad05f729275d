"""Queues: many producers and consumers, JoinableQueue's task accounting, and copies, not originals.

Lesson 10: for many producers and many consumers, use a Queue.  The same number of items goes from producer
processes to consumer processes with 1 -> 1, P -> 1, 1 -> C and P -> C of them, then through a SimpleQueue
(no feeder thread: ``put`` writes the pipe itself); the run measures items per second for each.

Lesson 16: with a JoinableQueue every ``get`` must be matched by a ``task_done``.  With all of them,
``join()`` returns once the last is done; with one missing it would block forever: here it runs in a thread
of the main process, is seen still blocked after a timeout, and is released by making up the missing
``task_done``.  One ``task_done`` too many raises ValueError.

Lesson 18: what comes out of a Queue is an unpickled copy.  A dict put and got back in the same process is
equal but not the same object; a worker that changes the dict it received changes only its copy.
"""
import os
import queue
import threading
import time

from .base import MAX_PROCESSES, Param, Result, Scenario

#: A safety bound on every blocking wait (nothing here should wait this long).
WAIT_LIMIT = 60.0


def producer(q, start, n, payload):
    """Put ``n`` items of ``payload`` bytes on ``q``."""
    start.wait(WAIT_LIMIT)
    blob = bytes(payload)
    for i in range(n):
        q.put((i, blob))


def consumer(index, q, simple, start, counts, results):
    """Get items until the sentinel (None); report how many, their bytes, and when the last one came."""
    start.wait(WAIT_LIMIT)
    count = nbytes = 0
    t_last = time.perf_counter()
    get = q.get if simple else (lambda: q.get(timeout=WAIT_LIMIT))
    while True:
        item = get()
        if item is None:
            break
        count += 1
        nbytes += len(item[1])
        t_last = time.perf_counter()
        if count % 500 == 0:
            counts[index] = count               # this consumer's slot only: no lock needed
    counts[index] = count
    results.put((index, count, nbytes, t_last))


def task_worker(jq, tasks, forget, results):
    """Get ``tasks`` tasks; mark all but the first ``forget`` of them done."""
    done = 0
    t_last = time.perf_counter()
    for i in range(tasks):
        jq.get(timeout=WAIT_LIMIT)
        if i >= forget:
            t_last = time.perf_counter()
            jq.task_done()
            done += 1
    results.put((done, t_last))


def echo_worker(inbox, outbox):
    """Receive a record, change it, send it back with what this process saw."""
    record = inbox.get()
    record["tags"].append("changed by the worker")
    outbox.put((record, id(record)))


def layouts(producers, consumers):
    out = []
    for lay in ((1, 1), (producers, 1), (1, consumers), (producers, consumers)):
        if lay not in out:
            out.append(lay)
    return out


def wait_for(procs, deadline, what, poll=None):
    """Join ``procs`` by ``deadline``, calling ``poll`` meanwhile; RuntimeError if one fails or hangs."""
    for w in procs:
        while w.exitcode is None:
            if time.monotonic() > deadline:
                raise RuntimeError("%s did not finish within %s s" % (what, WAIT_LIMIT))
            w.join(0.05)
            if poll is not None:
                poll()
        if w.exitcode != 0:
            raise RuntimeError("%s %s failed with exit code %s" % (what, w.name, w.exitcode))


def stop_all(procs):
    for w in procs:
        if w.pid is not None:
            w.join(5.0)
            if w.is_alive():
                w.terminate()
                w.join()


def run_layout(ctx, kind, n_prod, n_cons, items, payload, progress):
    """Move ``items`` items from ``n_prod`` producers to ``n_cons`` consumers; (seconds, items, bytes)."""
    label = "%s %d->%d" % (kind, n_prod, n_cons)
    simple = kind == "SimpleQueue"
    q = ctx.SimpleQueue(name=label) if simple else ctx.Queue(name=label)
    start = ctx.Barrier(n_prod + n_cons + 1, name="start line %s" % label)
    results = ctx.Queue(name="consumer results")
    counts = ctx.RawArray("q", n_cons)
    shares = [items // n_prod + (1 if i < items % n_prod else 0) for i in range(n_prod)]
    prods = [ctx.Process(target=producer, args=(q, start, shares[i], payload), name="producer-%d" % i)
             for i in range(n_prod)]
    cons = [ctx.Process(target=consumer, args=(i, q, simple, start, counts, results), name="consumer-%d" % i)
            for i in range(n_cons)]
    ok = False
    try:
        for w in prods + cons:
            w.start()
        start.wait(WAIT_LIMIT)
        t0 = time.perf_counter()
        deadline = time.monotonic() + WAIT_LIMIT
        wait_for(prods, deadline, "producer", lambda: progress(sum(counts)))
        for _ in cons:
            q.put(None)
        got = []
        while len(got) < n_cons:
            try:
                got.append(results.get(timeout=0.05))
            except queue.Empty:
                progress(sum(counts))
                if time.monotonic() > deadline or any(w.exitcode not in (None, 0) for w in cons):
                    raise RuntimeError("a consumer of %s did not report" % label) from None
        wait_for(cons, deadline, "consumer")
        ok = True
    finally:
        if not ok:
            start.abort()                       # release any worker still at the start line
        stop_all(prods + cons)
        for qq in ((results,) if simple else (q, results)):
            qq.close()
            qq.join_thread()
        if simple:
            q.close()
    progress(items)
    seconds = max(t for _, _, _, t in got) - t0
    return {"label": label, "producers": n_prod, "consumers": n_cons, "items": sum(c for _, c, _, _ in got),
            "bytes": sum(b for _, _, b, _ in got), "seconds": seconds,
            "items_per_s": sum(c for _, c, _, _ in got) / max(seconds, 1e-9),
            "per_consumer": [c for _, c, _, _ in sorted(got)]}


def run_joinable(ctx, tasks, forget, join_timeout):
    """One worker gets ``tasks`` tasks and forgets ``forget`` task_done calls; join() in a thread, bounded."""
    jq = ctx.JoinableQueue(name="tasks (forgets %d)" % forget if forget else "tasks")
    results = ctx.SimpleQueue(name="task results")
    worker = ctx.Process(target=task_worker, args=(jq, tasks, forget, results), name="task-worker")
    joined = []
    waiter = threading.Thread(target=lambda: joined.append((jq.join(), time.perf_counter())),
                              name="join waiter", daemon=True)
    out = {"tasks": tasks, "forgotten": forget}
    try:
        for i in range(tasks):
            jq.put(i)
        worker.start()
        waiter.start()
        wait_for([worker], time.monotonic() + WAIT_LIMIT, "the task worker")
        out["task_done_calls"], t_done = results.get()
        waiter.join(join_timeout)
        out["join_blocked_after_s"] = time.perf_counter() - t_done if waiter.is_alive() else None
        try:
            out["unfinished"] = jq._unfinished_tasks.get_value()      # what join() waits to see reach 0
        except NotImplementedError:                                   # macOS: no sem_getvalue
            out["unfinished"] = tasks - out["task_done_calls"]
        t_fix = time.perf_counter()
        for _ in range(tasks - out["task_done_calls"]):
            jq.task_done()                      # make up the missing ones (any process may call it)
        waiter.join(WAIT_LIMIT)
        if waiter.is_alive():
            raise RuntimeError("JoinableQueue.join() still blocked after every task was marked done")
        out["join_returned_after_fix_ms"] = 1000 * (joined[0][1] - t_fix) if forget else None
        out["join_returned_after_worker_ms"] = 1000 * (joined[0][1] - t_done) if not forget else None
        try:
            jq.task_done()
            out["extra_task_done"] = "accepted"
        except ValueError as e:
            out["extra_task_done"] = "ValueError: %s" % e
    finally:
        stop_all([worker])
        jq.close()
        jq.join_thread()
        results.close()
    return out


def run_copies(ctx):
    """Lesson 18, in one process and across two."""
    out = {}
    q = ctx.Queue(name="copies")
    original = {"tags": ["original"], "n": 1}
    q.put(original)
    got = q.get(timeout=WAIT_LIMIT)
    out["same_process"] = {"equal": got == original, "same_object": got is original}
    got["tags"].append("changed by the receiver")
    out["same_process"]["original_after"] = list(original["tags"])
    q.close()
    q.join_thread()

    inbox, outbox = ctx.SimpleQueue(name="to echo worker"), ctx.SimpleQueue(name="from echo worker")
    sent = {"tags": ["original"], "n": 2}
    worker = ctx.Process(target=echo_worker, args=(inbox, outbox), name="echo-worker")
    try:
        worker.start()
        inbox.put(sent)
        wait_for([worker], time.monotonic() + WAIT_LIMIT, "the echo worker")
        back, their_id = outbox.get()
    finally:
        stop_all([worker])
        inbox.close()
        outbox.close()
    out["other_process"] = {"original_after": list(sent["tags"]), "returned": list(back["tags"]),
                            "same_object": back is sent, "ids": [id(sent), their_id, id(back)]}
    return out


def run(ctx, p, report):
    n_prod, n_cons, items, payload = p["producers"], p["consumers"], p["items"], p["payload"]
    forget = min(p["forget"], p["tasks"])
    if forget < p["forget"]:
        report.line("forget %d is more than the %d tasks: the worker forgets all %d" % (p["forget"], p["tasks"],
                                                                                         forget))
    plan = [("Queue",) + lay for lay in layouts(n_prod, n_cons)] + [("SimpleQueue", 1, 1)]
    total = items * len(plan)
    figures, rows = {"throughput": []}, []
    for k, (kind, a, b) in enumerate(plan):
        report.phase("%s %d->%d" % (kind, a, b))
        base = k * items
        f = run_layout(ctx, kind, a, b, items, payload, lambda n, base=base: report.progress(base + n, total))
        figures["throughput"].append(f)
        rows.append((f["label"], f["items"], "%.3f s" % f["seconds"], "%.0f" % f["items_per_s"],
                     "%.1f MB/s" % (f["bytes"] / f["seconds"] / 1e6)))
        report.line("%-16s %d items of %d bytes in %.3f s: %.0f items/s (per consumer: %s)"
                    % (f["label"], f["items"], payload, f["seconds"], f["items_per_s"], f["per_consumer"]))

    report.phase("JoinableQueue: every get matched by task_done")
    good = figures["joinable_all_done"] = run_joinable(ctx, p["tasks"], 0, p["join_timeout"])
    report.line("all %d task_done calls made: join() returned %.1f ms after the last one; one more "
                "task_done: %s" % (good["tasks"], good["join_returned_after_worker_ms"], good["extra_task_done"]))
    report.phase("JoinableQueue: a task_done missing")
    bad = figures["joinable_missing"] = run_joinable(ctx, p["tasks"], forget, p["join_timeout"])
    if bad["join_blocked_after_s"] is not None:
        report.line("%d of %d task_done calls made: join() still blocked %.2f s after the worker finished "
                    "(unfinished count %s); after making up the missing %d, it returned in %.1f ms"
                    % (bad["task_done_calls"], bad["tasks"], bad["join_blocked_after_s"], bad["unfinished"],
                       bad["forgotten"], bad["join_returned_after_fix_ms"]))
    rows.append(("JoinableQueue, all task_done", good["tasks"], "-", "-",
                 "join() returned in %.1f ms" % good["join_returned_after_worker_ms"]))
    rows.append(("JoinableQueue, %d missing" % bad["forgotten"], bad["tasks"], "-", "-",
                 "join() blocked > %.2f s" % bad["join_blocked_after_s"]
                 if bad["join_blocked_after_s"] is not None else "join() returned"))

    report.phase("copies, not originals")
    c = figures["copies"] = run_copies(ctx)
    sp, op = c["same_process"], c["other_process"]
    report.line("same process: got == put: %s, got is put: %s; after changing the copy the original is %s"
                % (sp["equal"], sp["same_object"], sp["original_after"]))
    report.line("echo worker: the sender's dict is still %s, the worker's changed copy came back as %s (a third "
                "object: %s)" % (op["original_after"], op["returned"], not op["same_object"]))
    report.progress(total, total)

    tp = {f["label"]: f for f in figures["throughput"]}
    parts = ["%s %.0f" % (lab.split(" ", 1)[1] if lab.startswith("Queue ") else lab, f["items_per_s"])
             for lab, f in tp.items()]
    lesson = ("Items per second through a Queue with %d items of %d bytes, producers->consumers: %s." % (
        items, payload, ", ".join(parts[:-1])))
    queued = figures["throughput"][:-1]
    figures["all_delivered"] = all(f["items"] == items for f in figures["throughput"])
    lesson += " Every layout delivered all %d items%s." % (
        items, "" if figures["all_delivered"] else " (NOT all: see the table)")
    if len(queued) > 1:
        best = max(queued, key=lambda f: f["items_per_s"])
        if best is queued[0]:
            lesson += (" No layout beat 1->1 on this machine's %d cores: every producer and consumer shares the "
                       "queue's one pipe and its locks." % (os.cpu_count() or 1))
        else:
            lesson += (" The best, %s, moved %.2fx the 1->1 rate on this machine's %d cores." % (
                best["label"].split(" ", 1)[1], best["items_per_s"] / queued[0]["items_per_s"],
                os.cpu_count() or 1))
    lesson += " A SimpleQueue (no feeder thread) moved them 1->1 at %.0f items/s." % figures["throughput"][-1][
        "items_per_s"]
    lesson += (" JoinableQueue: with every get matched by task_done, join() returned %.1f ms after the last one"
               % good["join_returned_after_worker_ms"])
    if bad["join_blocked_after_s"] is not None:
        lesson += ("; with %d of %d task_done calls missing it was still blocked %.2f s after the worker finished "
                   "(it would wait forever) and returned %.1f ms after the missing calls were made up"
                   % (bad["forgotten"], bad["tasks"], bad["join_blocked_after_s"], bad["join_returned_after_fix_ms"]))
    lesson += ("; one task_done too many raised ValueError." if good["extra_task_done"].startswith("ValueError")
               else "; one task_done too many was accepted.")
    lesson += (" Objects from a Queue are copies: the dict got back in the same process was equal but not the same "
               "object, and the echo worker's change reached only its own copy (the sender's still read %s)."
               % op["original_after"])
    return Result(lesson, figures, ("queue", "items", "time", "items/s", "throughput / outcome"), rows)


SCENARIO = Scenario(
    name="queues",
    title="Queues: many producers and consumers, JoinableQueue, copies",
    description="Items flow from producer to consumer processes through a Queue (1->1 up to P->C) and a "
                "SimpleQueue; a JoinableQueue's join() waits for every task_done (shown safely when one is "
                "missing); and what comes out of a queue is a copy, never the original.",
    lesson="Many producers and consumers: a Queue. Match every get with task_done or join() hangs. Objects "
           "from a Queue are unpickled copies.",
    params=(
        Param("producers", "int", 2, "Producer processes (P)", 1, MAX_PROCESSES),
        Param("consumers", "int", 2, "Consumer processes (C)", 1, MAX_PROCESSES),
        Param("items", "int", 20_000, "Items per throughput run", 1, 10_000_000),
        Param("payload", "int", 100, "Bytes of payload per item", 0, 16 * 1024 * 1024, unit="B"),
        Param("tasks", "int", 20, "Tasks the JoinableQueue worker gets", 1, 100_000),
        Param("forget", "int", 1, "task_done calls the worker leaves out", 1, 100_000),
        Param("join_timeout", "float", 1.0, "How long to watch join() stay blocked (s)", 0.05, 30.0, unit="s"),
    ),
    run=run,
    category="Queues and pipes",
)
