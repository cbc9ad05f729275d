"""Pipe: round-trip latency, duplex against a pair of one-way pipes, throughput by payload size, and how
large an object ``send`` delivers.

A peer process answers the main process over three pipes: one duplex pipe (both ends send and receive) and a
pair of one-way pipes (``duplex=False``: one end only receives, the other only sends).  The run measures:

* ping-pong round trips per second through the duplex pipe and through the one-way pair;
* throughput of ``send_bytes`` by payload size, in messages and megabytes per second;
* lesson 15: ``send`` pickles the object and writes it as one message; the notes warn that objects over
  about 32 MiB may raise ValueError (it depends on the OS and the Python version).  Objects of growing size,
  up to ``max_mb``, are sent and the run reports what happened to each.  A size is skipped, and said so,
  when the machine lacks the memory for it (sender and receiver each hold about two copies).
"""
import time

from .base import Param, Result, Scenario

#: A safety bound on every blocking wait (nothing here should wait this long).
WAIT_LIMIT = 120.0
MiB = 1024 * 1024
#: Payload sizes of the throughput test.
THROUGHPUT_SIZES = (64, 4096, 256 * 1024, 4 * MiB)
#: Most messages per throughput size (small payloads are about messages per second, not bytes).
MAX_MESSAGES = 20_000


def pipe_peer(ctl, rx, tx):
    """Serve the main process's commands over the duplex pipe ``ctl``; ``rx``/``tx`` are the one-way pair."""
    while True:
        try:
            cmd = ctl.recv()
        except EOFError:
            return
        op = cmd[0]
        if op == "ping":                      # duplex ping-pong
            for _ in range(cmd[1]):
                ctl.send(ctl.recv())
        elif op == "split":                   # ping-pong over the two one-way pipes
            for _ in range(cmd[1]):
                tx.send(rx.recv())
        elif op == "sink":                    # receive N messages, report the bytes
            total = 0
            for _ in range(cmd[1]):
                total += len(ctl.recv_bytes())
            ctl.send(total)
        elif op == "big":                     # one large object through send/recv
            t0 = time.perf_counter()
            try:
                obj = ctl.recv()
            except Exception as e:            # report it, whatever it is
                ctl.send(("error", "%s: %s" % (type(e).__name__, e), time.perf_counter() - t0))
                continue
            n = len(obj)
            del obj
            ctl.send(("ok", n, time.perf_counter() - t0))
        elif op == "stop":
            return


def available_memory():
    try:
        import psutil
        return psutil.virtual_memory().available
    except Exception:                          # pragma: no cover - psutil is a dependency
        return None


def big_sizes(max_mb):
    """1, 4, 16, 32 MiB, then doubling, up to ``max_mb`` (always including ``max_mb`` itself)."""
    sizes = [s for s in (1, 4, 16, 32) if s < max_mb]
    s = 64
    while s < max_mb:
        sizes.append(s)
        s *= 2
    sizes.append(max_mb)
    return [x * MiB for x in sizes]


def ping(conn_out, conn_in, n):
    t0 = time.perf_counter()
    for i in range(n):
        conn_out.send(i)
        if conn_in.recv() != i:
            raise RuntimeError("the peer answered out of order")
    return time.perf_counter() - t0


def run(ctx, p, report):
    n = p["round_trips"]
    ctl, peer_ctl = ctx.Pipe(name="duplex")
    peer_rx, to_peer = ctx.Pipe(duplex=False, name="to peer")      # (receive end, send end)
    from_peer, peer_tx = ctx.Pipe(duplex=False, name="from peer")
    peer = ctx.Process(target=pipe_peer, args=(peer_ctl, peer_rx, peer_tx), name="pipe-peer")
    figures, rows = {"max_mb": p["max_mb"]}, []
    sizes = big_sizes(p["max_mb"])
    steps = 2 + len(THROUGHPUT_SIZES) + len(sizes)
    done = 0
    clean = True
    try:
        peer.start()
        for end in (peer_ctl, peer_rx, peer_tx):
            end.close()                       # the peer has its own copies; EOF reaches it when ours close

        report.phase("ping-pong")
        ctl.send(("ping", 10))
        ping(ctl, ctl, 10)                    # warm-up: the peer is up and answering
        for label, cmd, out, back in (("duplex pipe", "ping", ctl, ctl),
                                      ("one-way pair", "split", to_peer, from_peer)):
            ctl.send((cmd, n))
            secs = ping(out, back, n)
            figures[label] = {"round_trips": n, "seconds": secs, "round_trips_per_s": n / secs,
                              "latency_us": 1e6 * secs / n}
            rows.append((label, "ping-pong x %d" % n, "%.0f round trips/s" % (n / secs),
                         "%.1f us per round trip" % (1e6 * secs / n)))
            report.line("%-12s %d round trips in %.3f s: %.0f/s, %.1f us each" % (label, n, secs, n / secs,
                                                                                  1e6 * secs / n))
            done += 1
            report.progress(done, steps)

        report.phase("throughput by payload size")
        figures["throughput"] = []
        for size in THROUGHPUT_SIZES:
            count = max(10, min(MAX_MESSAGES, p["volume_mb"] * MiB // size))
            buf = bytes(size)
            ctl.send(("sink", count))
            t0 = time.perf_counter()
            for _ in range(count):
                ctl.send_bytes(buf)
            got = ctl.recv()
            secs = time.perf_counter() - t0
            if got != count * size:
                raise RuntimeError("the peer received %d bytes of %d" % (got, count * size))
            f = {"size": size, "messages": count, "seconds": secs, "messages_per_s": count / secs,
                 "mb_per_s": count * size / secs / 1e6}
            figures["throughput"].append(f)
            rows.append(("send_bytes", "%s x %d" % (human(size), count), "%.0f messages/s" % f["messages_per_s"],
                         "%.1f MB/s" % f["mb_per_s"]))
            report.line("send_bytes %9s x %5d: %8.0f messages/s, %8.1f MB/s" % (human(size), count,
                                                                                 f["messages_per_s"], f["mb_per_s"]))
            done += 1
            report.progress(done, steps)

        report.phase("large objects through send()")
        figures["large"] = []
        for size in sizes:
            free = available_memory()
            if free is not None and 4 * size > free // 2:
                f = {"size": size, "outcome": "skipped", "detail": "needs about %s free, %s available"
                     % (human(4 * size), human(free))}
            else:
                obj = bytes(size)
                ctl.send(("big",))
                t0 = time.perf_counter()
                try:
                    ctl.send(obj)
                    sent = None
                except Exception as e:        # lesson 15: what a too-large send raises here
                    sent = "%s: %s" % (type(e).__name__, e)
                del obj
                if sent is not None:
                    f = {"size": size, "outcome": "send raised", "detail": sent}
                    clean = False             # the peer may be stuck in the middle of a message
                else:
                    status, detail, _ = ctl.recv()
                    secs = time.perf_counter() - t0
                    if status == "ok" and detail == size:
                        f = {"size": size, "outcome": "delivered", "seconds": secs, "mb_per_s": size / secs / 1e6,
                             "detail": "%.3f s, %.0f MB/s" % (secs, size / secs / 1e6)}
                    else:
                        f = {"size": size, "outcome": "recv failed", "detail": str(detail)}
            figures["large"].append(f)
            rows.append(("send (pickled)", human(size), f["outcome"], f["detail"]))
            report.line("send(%s object): %s (%s)" % (human(size), f["outcome"], f["detail"]))
            done += 1
            report.progress(done, steps)
            if not clean:
                break
        if clean:
            ctl.send(("stop",))
    finally:
        for end in (ctl, to_peer, from_peer):
            end.close()                       # the peer sees EOF and returns
        peer.join(WAIT_LIMIT if clean else 5.0)
        if peer.is_alive():
            peer.terminate()
            peer.join()

    d, s = figures["duplex pipe"], figures["one-way pair"]
    small, large = figures["throughput"][0], figures["throughput"][-1]
    lesson = ("Ping-pong: %.0f round trips/s through a duplex Pipe (%.1f us each), %.0f/s through a pair of one-way "
              "pipes (%.1f us each). send_bytes moved %.0f messages/s of %s (%.1f MB/s) and %.0f MB/s in %s "
              "messages." % (d["round_trips_per_s"], d["latency_us"], s["round_trips_per_s"], s["latency_us"],
                             small["messages_per_s"], human(small["size"]), small["mb_per_s"], large["mb_per_s"],
                             human(large["size"])))
    delivered = [f for f in figures["large"] if f["outcome"] == "delivered"]
    failed = [f for f in figures["large"] if f["outcome"] not in ("delivered", "skipped")]
    skipped = [f for f in figures["large"] if f["outcome"] == "skipped"]
    if delivered and not failed:
        top = delivered[-1]
        lesson += (" send() pickled and delivered every object tried, up to %s (%.2f s, %.0f MB/s), with no "
                   "ValueError: on this OS and Python version the notes' ~32 MiB warning did not apply up to that "
                   "size." % (human(top["size"]), top["seconds"], top["mb_per_s"]))
    elif failed:
        lesson += (" send() of a %s object failed (%s)%s: very large objects may not go through a Pipe in one "
                   "message." % (human(failed[0]["size"]), failed[0]["detail"],
                                 ", after delivering %s" % human(delivered[-1]["size"]) if delivered else ""))
    if skipped:
        lesson += " %d larger size(s) were skipped for lack of free memory." % len(skipped)
    return Result(lesson, figures, ("what", "messages", "rate / outcome", "detail"), rows)


def human(n):
    for unit, k in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= k:
            return "%g %s" % (round(n / k, 1), unit)
    return "%d B" % n


SCENARIO = Scenario(
    name="pipe",
    title="Pipe: round trips, throughput by size, large objects",
    description="A peer process answers over a duplex Pipe and a pair of one-way pipes: ping-pong round trips "
                "per second, send_bytes throughput by payload size, and send() of objects up to max_mb (the "
                "notes' ~32 MiB ValueError), reporting honestly what happened to each.",
    lesson="Pipe.send pickles; small messages cost a round trip each, large ones are limited by copying, and "
           "very large objects may raise ValueError depending on the OS.",
    params=(
        Param("round_trips", "int", 5000, "Ping-pong round trips per pipe kind", 1, 1_000_000),
        Param("volume_mb", "int", 32, "Megabytes per payload size in the throughput test (at most 20000 "
                                      "messages)", 1, 4096, unit="MiB"),
        Param("max_mb", "int", 64, "Largest object sent with send() (MiB)", 1, 512, unit="MiB"),
    ),
    run=run,
    category="Queues and pipes",
)
