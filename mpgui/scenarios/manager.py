"""Manager: every proxy operation is a round trip to the server process, so batch them.

Lesson 7 of the notes: for infrequent access to shared state, a Manager's server process holds the objects
(dict, list, Namespace...) and other processes use proxies; keep the number of operations low.  Each worker
process here writes the same N items three ways per structure, first one call per item, then in one call:

* dict: ``d[key] = value`` N times, against one ``d.update(items)``;
* list: ``l.append(item)`` N times, against one ``l.extend(items)``;
* Namespace: N attribute writes, against one attribute holding all N values.

Every proxy call pickles its arguments, sends them to the manager's server process, waits for the answer and
unpickles it: the per-item loop pays that N times, the batched call once.  The trace records one
MANAGER_CALL span per proxy call, with the method's name.
"""
import time

from .base import Param, Result, Scenario, processes_param
from .harness import collect, reap

#: A safety bound on every blocking wait (nothing here should wait this long).
WAIT_LIMIT = 120.0
STRUCTURES = (("dict", "d[key] = value", "d.update(items)"),
              ("list", "l.append(item)", "l.extend(items)"),
              ("Namespace", "setattr(ns, name, value)", "one attribute of all values"))


def manager_worker(index, d, lst, ns, n, start, results):
    """Write ``n`` items per structure one call at a time, then again in one call; report the times."""
    start.wait(WAIT_LIMIT)
    out = {}
    clock = time.perf_counter

    t0 = clock()
    for k in range(n):
        d["w%d-%d" % (index, k)] = k
    t1 = clock()
    d.update({"w%d-batch-%d" % (index, k): k for k in range(n)})
    out["dict"] = (t1 - t0, clock() - t1)

    t0 = clock()
    for k in range(n):
        lst.append((index, k))
    t1 = clock()
    lst.extend([(index, "batch", k) for k in range(n)])
    out["list"] = (t1 - t0, clock() - t1)

    t0 = clock()
    for k in range(n):
        setattr(ns, "w%d_%d" % (index, k), k)
    t1 = clock()
    setattr(ns, "w%d_batch" % index, list(range(n)))
    out["Namespace"] = (t1 - t0, clock() - t1)
    results.put((index, out))


def run(ctx, p, report):
    workers, n = p["processes"], p["ops"]
    figures, rows = {"workers": workers, "ops": n}, []
    report.phase("start the manager")
    t0 = time.perf_counter()
    with ctx.Manager() as manager:
        figures["manager_start_s"] = time.perf_counter() - t0
        report.line("manager server process up in %.3f s" % figures["manager_start_s"])
        d, lst, ns = manager.dict(), manager.list(), manager.Namespace()
        start = ctx.Barrier(workers, name="start line")
        results = ctx.Queue(name="manager results")
        procs = [ctx.Process(target=manager_worker, args=(i, d, lst, ns, n, start, results),
                             name="manager-worker-%d" % i) for i in range(workers)]
        report.phase("per-item vs batched calls")
        out = []
        try:
            for w in procs:
                w.start()
            out = collect(results, workers, procs, "the manager workers", WAIT_LIMIT,
                          lambda n: report.progress(n, workers))
        finally:
            if len(out) < workers:
                start.abort()
            reap(procs, WAIT_LIMIT)
            results.close()
            results.join_thread()
        report.phase("check")
        counts = {"dict": len(d), "list": len(lst),
                  "Namespace": len([k for k in vars(ns._getvalue()) if not k.startswith("_")])}
    figures["items"] = counts
    expected = {"dict": 2 * n * workers, "list": 2 * n * workers, "Namespace": (n + 1) * workers}
    figures["counts_ok"] = counts == expected
    for name, single, batched in STRUCTURES:
        per_op = [o[name][0] for _, o in out]
        batch = [o[name][1] for _, o in out]
        f = figures[name] = {"per_op_s": sum(per_op) / workers, "batched_s": sum(batch) / workers,
                             "us_per_call": 1e6 * sum(per_op) / (workers * n),
                             "batched_us_per_item": 1e6 * sum(batch) / (workers * n),
                             "items": counts[name], "expected": expected[name]}
        f["speedup"] = f["per_op_s"] / max(f["batched_s"], 1e-9)
        rows.append((name, "%s x %d" % (single, n), "%.4f s" % f["per_op_s"], "%.1f us" % f["us_per_call"],
                     batched, "%.4f s" % f["batched_s"], "%.1fx" % f["speedup"]))
        report.line("%-9s %d single calls %.4f s (%.1f us each); batched %.4f s: %.1fx faster; %d items held "
                    "(expected %d)" % (name, n, f["per_op_s"], f["us_per_call"], f["batched_s"], f["speedup"],
                                       counts[name], expected[name]))
    figures["proxy_calls_by_workers"] = workers * (3 * n + 3)

    a, b, c = figures["dict"], figures["list"], figures["Namespace"]
    lesson = ("Through a Manager, each of %d workers wrote %d items per structure: one call per item cost %.0f us "
              "for dict[key] = value, %.0f us for list.append and %.0f us for a Namespace attribute, while one "
              "batched call for all %d took %.4f s (dict.update), %.4f s (list.extend) and %.4f s (Namespace): "
              "%.0fx, %.0fx and %.0fx faster. Every proxy call is a round trip to the manager's server process "
              "(%d calls by the workers, each a MANAGER_CALL span in the trace): keep them few, batch them."
              % (workers, n, a["us_per_call"], b["us_per_call"], c["us_per_call"], n, a["batched_s"],
                 b["batched_s"], c["batched_s"], a["speedup"], b["speedup"], c["speedup"],
                 figures["proxy_calls_by_workers"]))
    if not figures["counts_ok"]:
        lesson += " The manager held %s items, not the expected %s." % (counts, expected)
    return Result(lesson, figures, ("structure", "one call per item", "time", "per call", "batched", "time",
                                    "speedup"), rows)


SCENARIO = Scenario(
    name="manager",
    title="Manager proxies: one call per item vs batched",
    description="Workers write N items to a Manager's dict, list and Namespace, one proxy call per item and "
                "then in one batched call. Each call is a round trip to the manager's server process (a span "
                "on the timeline); batching pays it once.",
    lesson="Manager access is a round trip per operation: keep operations few and batch them.",
    params=(
        processes_param(2, "Worker processes using the proxies"),
        Param("ops", "int", 5000, "Items each worker writes per structure", 1, 100_000),
    ),
    run=run,
    category="Managers",
)
