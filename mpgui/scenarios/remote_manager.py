"""A remote manager: a queue and a dict served over TCP on loopback, guarded by an authkey.

A Manager's server process can serve clients that did not start it, even on other machines: a
``BaseManager`` subclass registers what it serves (here a shared ``queue.Queue`` and a dict), listens on a
TCP address, and any process that knows the address and the authkey can connect and use proxies.  The
authkey is checked on every connection with an HMAC challenge: a client with the wrong key is refused with
AuthenticationError before it can make any call.

Here the server listens on ``('127.0.0.1', 0)`` (loopback only, a free port); client processes connect by
address and authkey, each puts items on the queue, writes the dict, and takes as many items back off the
queue (some put by other clients); then a client with a wrong authkey tries to connect and is refused, and
the server is shown still serving.  The run reports operations per second through the proxies and the
refusal.
"""
import os
import queue
import time

from multiprocessing import AuthenticationError
from multiprocessing.managers import DictProxy

from core.managers import BaseManager
from .base import Param, Result, Scenario, processes_param
from .harness import reap

#: A safety bound on every blocking wait (nothing here should wait this long).
WAIT_LIMIT = 60.0
#: The only interface the server listens on.
LOOPBACK = "127.0.0.1"

_shared = {}


def shared_queue():
    """The server's one queue (created on first use, in the server process)."""
    return _shared.setdefault("queue", queue.Queue())


def shared_dict():
    """The server's one dict."""
    return _shared.setdefault("dict", {})


class RemoteManager(BaseManager):
    """Serves ``get_queue()`` and ``get_dict()`` to whoever has the address and the authkey."""


RemoteManager.register("get_queue", callable=shared_queue)
RemoteManager.register("get_dict", callable=shared_dict, proxytype=DictProxy)


def client(index, address, authkey, ops, done, results):
    """Connect by address and authkey; put ``ops`` items, write ``ops`` keys, take ``ops`` items back.
    ``done[index]`` counts this client's operations as it goes (for the progress bar)."""
    t0 = time.perf_counter()
    m = RemoteManager(address=tuple(address), authkey=authkey)
    m.connect()
    q, d = m.get_queue(), m.get_dict()
    t1 = time.perf_counter()
    for k in range(ops):
        q.put((index, k))
        d["client%d-%d" % (index, k)] = k
        if k % 50 == 49:
            done[index] = 2 * (k + 1)
    others = 0
    for k in range(ops):
        who, _k = q.get(timeout=WAIT_LIMIT)
        others += who != index
        if k % 50 == 49:
            done[index] = 2 * ops + k + 1
    t2 = time.perf_counter()
    results.put({"index": index, "connect_s": t1 - t0, "seconds": t2 - t1, "ops": 3 * ops, "from_others": others})


def intruder(address, authkey, results):
    """Try to connect with the wrong authkey; report what happened."""
    t0 = time.perf_counter()
    m = RemoteManager(address=tuple(address), authkey=authkey)
    try:
        m.connect()
        m.get_dict()
        outcome = ("accepted", "", "")
    except AuthenticationError as e:
        outcome = ("refused", type(e).__name__, str(e))
    results.put({"outcome": outcome[0], "error": outcome[1], "message": outcome[2],
                 "seconds": time.perf_counter() - t0})


def gather(results, n, procs, progress=None):
    out = []
    deadline = time.monotonic() + WAIT_LIMIT
    while len(out) < n:
        if progress is not None:
            progress()
        try:
            out.append(results.get(timeout=0.1))
        except queue.Empty:
            dead = [w.name for w in procs if w.exitcode not in (None, 0)]
            if dead or time.monotonic() > deadline:
                raise RuntimeError("no report from %s" % (", ".join(dead) or "the clients")) from None
    return out


def finish(procs):
    reap(procs, WAIT_LIMIT)


def run(ctx, p, report):
    clients, ops = p["processes"], p["ops"]
    authkey = os.urandom(16)
    wrong = os.urandom(16)
    figures, rows = {"clients": clients, "ops_per_client": 3 * ops}, []
    report.phase("start the server")
    server = RemoteManager(address=(LOOPBACK, 0), authkey=authkey, ctx=ctx)
    t0 = time.perf_counter()
    server.start()
    try:
        host, port = server.address
        figures["address"] = [host, port]
        figures["server_start_s"] = time.perf_counter() - t0
        if host != LOOPBACK:                               # never serve anything but loopback
            raise RuntimeError("the server listens on %s, not on %s" % (host, LOOPBACK))
        report.line("server process serving get_queue() and get_dict() on %s:%d (authkey: 16 random bytes), up in "
                    "%.3f s" % (host, port, figures["server_start_s"]))

        report.phase("clients with the right authkey")
        results = ctx.Queue(name="client results")
        done = ctx.RawArray("q", clients)
        procs = [ctx.Process(target=client, args=(i, (host, port), authkey, ops, done, results),
                             name="client-%d" % i) for i in range(clients)]
        steps = 3 * ops * clients + 2
        try:
            t0 = time.perf_counter()
            for w in procs:
                w.start()
            out = gather(results, clients, procs, lambda: report.progress(sum(done), steps))
            wall = time.perf_counter() - t0
            report.progress(steps - 2, steps)
        finally:
            finish(procs)
        out.sort(key=lambda r: r["index"])
        total_ops = sum(r["ops"] for r in out)
        busiest = max(r["seconds"] for r in out)
        figures["clients_report"] = out
        figures["total_ops"] = total_ops
        figures["ops_per_s"] = total_ops / busiest
        figures["per_client_ops_per_s"] = [r["ops"] / r["seconds"] for r in out]
        figures["from_others"] = sum(r["from_others"] for r in out)
        figures["clients_wall_s"] = wall
        figures["connect_s"] = [r["connect_s"] for r in out]
        for r in out:
            rows.append(("client-%d" % r["index"], "right", "%.1f ms" % (1000 * r["connect_s"]), r["ops"],
                         "%.0f ops/s" % (r["ops"] / r["seconds"]), "%d items from other clients" % r["from_others"]))
            report.line("client-%d: connected in %.1f ms; %d proxy operations in %.3f s (%.0f ops/s); %d of the "
                        "items it took were put by other clients" % (r["index"], 1000 * r["connect_s"], r["ops"],
                                                                      r["seconds"], r["ops"] / r["seconds"],
                                                                      r["from_others"]))

        report.line("(connecting includes the authkey handshake and creating two proxies, each over a new TCP "
                    "connection: the stdlib's connections do not set TCP_NODELAY, so each can wait ~40 ms for a "
                    "delayed ACK)")

        report.phase("a client with the wrong authkey")
        bad = ctx.Process(target=intruder, args=((host, port), wrong, results), name="wrong-key-client")
        try:
            bad.start()
            [refusal] = gather(results, 1, [bad])
        finally:
            finish([bad])
            results.close()
            results.join_thread()
        figures["wrong_key"] = refusal
        rows.append(("wrong-key-client", "wrong", "-", 0, refusal["outcome"],
                     ("%s: %s" % (refusal["error"], refusal["message"])) if refusal["error"] else ""))
        report.line("wrong-key-client: %s %s" % (refusal["outcome"],
                                                 "(%s: %s)" % (refusal["error"], refusal["message"])
                                                 if refusal["error"] else ""))
        report.progress(steps - 1, steps)

        report.phase("the server still serves")
        d, q = server.get_dict(), server.get_queue()
        figures["dict_items"] = len(d)
        figures["queue_left"] = q.qsize()
        report.line("after the refusal the server still answers: its dict holds %d keys, its queue %d items"
                    % (figures["dict_items"], figures["queue_left"]))
        del d, q
        report.progress(steps, steps)
    finally:
        server.shutdown()

    w = figures["wrong_key"]
    lesson = ("A BaseManager subclass served a queue and a dict on %s:%d; %d client processes connected with the "
              "authkey (in %.0f ms at most) and made %d proxy operations in %.3f s, %.0f operations/s in all (%d "
              "items crossed between clients through the queue; the dict ended with %d keys)."
              % (host, port, clients, 1000 * max(figures["connect_s"]), total_ops, busiest, figures["ops_per_s"],
                 figures["from_others"], figures["dict_items"]))
    if w["outcome"] == "refused":
        lesson += (" A client with the wrong authkey was refused with %s (%s) after %.1f ms, and the server went on "
                   "serving." % (w["error"], w["message"], 1000 * w["seconds"]))
    else:
        lesson += " A client with the wrong authkey was NOT refused: check the manager's authentication."
    return Result(lesson, figures, ("client", "authkey", "connect", "operations", "rate / outcome", "detail"),
                  rows)


SCENARIO = Scenario(
    name="remote_manager",
    title="Remote manager over TCP with an authkey",
    description="A BaseManager subclass serves a queue and a dict on 127.0.0.1 (a free port). Client processes "
                "connect by address and authkey and share items through them; a client with a wrong authkey is "
                "refused with AuthenticationError.",
    lesson="A manager serves objects over the network to any process with the address and the authkey; a wrong "
           "authkey is refused.",
    params=(
        processes_param(3, "Client processes with the right authkey"),
        Param("ops", "int", 1000, "Items each client puts, keys it writes, items it takes", 1, 100_000),
    ),
    run=run,
    category="Managers",
)
