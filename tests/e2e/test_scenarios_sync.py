"""The synchronisation and IPC scenarios, run headless with small parameters under each start method: each
must finish, its figures must make its lesson true, and the trace must hold what the lesson needs."""
import signal

import numpy as np

from core.trace.events import IpcKind, Kind
from core.trace.model import Span, SpanEnd
from core.trace.store import RunFile

from scenario_testing import run_scenario


def raw_events(r):
    """Every event of the run (the model keeps derived tables only)."""
    with RunFile(r.run.out_path) as rf:
        return rf.read_all()[0]


def uids_named(r, name):
    return [uid for uid, o in r.model.objects.items() if o.get("name") == name]


def pids_named(r, prefix):
    return {p.pid for p in r.model.procs.values() if p.name.startswith(prefix)}


def spans_of(r, uids, kind):
    s = r.model.spans_array()
    return s[np.isin(s["uid"], uids) & (s["kind"] == kind)]


def events_of(ev, uids, kind):
    return ev[np.isin(ev["uid"], uids) & (ev["kind"] == kind)]


def test_rlock_reenters_where_lock_deadlocks(tmp_path, start_method):
    r = run_scenario("rlock", start_method, {"processes": 2, "depth": 12, "rounds": 20, "hold_ms": 0.5,
                                             "timeout": 0.3}, tmp_path)
    assert r.status == "done", r.error
    f = r.figures
    assert f["rlock"]["depth_reached"] == 12 and f["rlock"]["rounds"] == 40
    assert f["lock"]["depth_reached"] == 1 and f["lock"]["timed_out"]
    assert f["lock"]["waited_s"] >= 0.25
    assert "stopped at depth 1" in r.lesson and "depth 12 of 12" in r.lesson
    # the trace: every RLock acquire with its depth, and one hold per descent (not per level)
    rl = uids_named(r, "recursive rlock")
    ev = raw_events(r)
    depths = events_of(ev, rl, Kind.ACQ_OK)["c"]
    assert len(depths) == 40 * 12 and depths.max() == 12
    holds = spans_of(r, rl, Span.LOCK_HOLD)
    assert len(holds) == 40 and set(holds["pid"].tolist()) == pids_named(r, "rlock-recurser")
    # the plain Lock: one hold, and a wait by its holder that timed out
    lk = uids_named(r, "plain lock")
    waits = spans_of(r, lk, Span.LOCK_WAIT)
    assert len(waits) == 1 and waits["end"][0] == SpanEnd.TIMEOUT
    assert waits["pid"][0] in pids_named(r, "lock-recurser")
    assert (waits["t1"] - waits["t0"])[0] >= 0.25e9


def test_semaphore_admits_k_and_bounded_refuses_over_release(tmp_path, start_method):
    r = run_scenario("semaphore", start_method, {"processes": 3, "slots": 2, "rounds": 4, "hold_ms": 20,
                                                 "extra": 2}, tmp_path)
    assert r.status == "done", r.error
    f, g = r.figures["semaphore"], r.figures["over_release"]
    assert f["acquisitions"] == 12 and f["holding_after"] == 0
    assert f["max_counter"] == 2 and f["max_timestamps"] == 2          # k, never more
    assert g["bounded_errors"] == 2 and "ValueError" in g["bounded_message"] and g["bounded_acquires"] == 2
    assert g["plain_errors"] == 0 and g["plain_acquires"] == 4
    assert "raised ValueError 2 times" in r.lesson and "allowed 4 acquires" in r.lesson
    # the semaphore's value, recorded at every acquire and release, went down to 0 and never above k
    slots = uids_named(r, "resource slots")
    [series] = [s for key, s in r.model.series.items() if key[0] == "value" and key[1] in slots]
    _, values = series.arrays()
    assert values.min() == 0 and values.max() <= 2
    assert len(spans_of(r, slots, Span.LOCK_HOLD)) == 12
    waits = spans_of(r, slots, Span.LOCK_WAIT)
    assert len(waits) > 0 and set(waits["pid"].tolist()) <= pids_named(r, "slot-user")
    # the refused releases are recorded in the over-releaser; the plain semaphore's value grew to k + extra
    ev = raw_events(r)
    errors = events_of(ev, uids_named(r, "bounded slots"), Kind.RELEASE_ERROR)
    assert len(errors) == 2 and set(errors["pid"].tolist()) == pids_named(r, "over-releaser")
    plain = uids_named(r, "plain slots")
    assert events_of(ev, plain, Kind.RELEASE)["b"].max() == 4


def test_barrier_phases_wait_for_the_slowest_and_break(tmp_path, start_method):
    r = run_scenario("barrier", start_method, {"processes": 3, "phases": 3, "work_ms": 20, "slowdown": 8,
                                               "timeout": 0.2}, tmp_path)
    assert r.status == "done", r.error
    f = r.figures
    assert f["generations"] == [[1, 2, 3]] * 3                 # each worker passed generation 0, 1, 2 in turn
    assert [s["generation"] for s in f["per_phase"]] == [[0], [1], [2]]
    for s in f["per_phase"][1:]:                               # phase 0 also waits for the workers to start
        assert s["slowest"] == 2 and s["last_index"] == [2]    # the slow worker arrives last, every phase
        assert s["longest_wait_s"] > 0.05                      # and the fast one waits for it (~140 ms)
    assert f["timeout"]["outcomes"] == ["BrokenBarrierError"] * 3 and f["timeout"]["broke_after_s"] >= 0.18
    assert f["abort"]["outcomes"] == ["BrokenBarrierError"] * 3
    assert "generations 0 to 2" in r.lesson and "3 of 3 waiting workers got BrokenBarrierError" in r.lesson
    # the trace: each worker's wait per generation, and the two broken barriers
    waits = spans_of(r, uids_named(r, "phase barrier"), Span.BARRIER_WAIT)
    assert sorted(waits["value"].tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2] and (waits["end"] == SpanEnd.OK).all()
    assert set(waits["pid"].tolist()) == pids_named(r, "phase-worker")
    for name in ("stranded barrier", "aborted barrier"):
        broken = spans_of(r, uids_named(r, name), Span.BARRIER_WAIT)
        assert len(broken) == 3 and (broken["end"] == SpanEnd.BROKEN).all()
    aborts = events_of(raw_events(r), uids_named(r, "aborted barrier"), Kind.BARRIER_ABORT)
    main = [p.pid for p in r.model.procs.values() if p.role == "main"]
    assert len(aborts) >= 1 and set(aborts["pid"].tolist()) == set(main)


def test_condition_notify_wakes_one_notify_all_wakes_all(tmp_path, start_method):
    r = run_scenario("condition_event", start_method, {"processes": 3, "rounds": 2, "window": 0.3}, tmp_path)
    assert r.status == "done", r.error
    a, b, e = r.figures["notify"], r.figures["notify_all"], r.figures["event"]
    assert a["woken_per_round"] == [1, 1] and a["took"] == 2 and a["timed_out"] == 4
    assert b["woken_per_round"] == [3, 3] and b["took"] == 2 and b["woke_for_nothing"] == 4
    assert b["timed_out"] == 0 and r.figures["items_left"] == 0
    assert e["woken"] == 3 and e["latency_max_ms"] >= e["latency_median_ms"] > 0
    assert "notify() woke 1.00 per round" in r.lesson and "notify_all() woke 3.00 per round" in r.lesson
    # the trace: 12 condition waits, 4 of them ran out unwoken; 4 notifies by the producer; 3 event waits
    cond = uids_named(r, "items ready")
    waits = spans_of(r, cond, Span.COND_WAIT)
    assert len(waits) == 12 and (waits["end"] == SpanEnd.TIMEOUT).sum() == 4
    assert set(waits["pid"].tolist()) == pids_named(r, "consumer")
    notifies = events_of(raw_events(r), cond, Kind.COND_NOTIFY)
    assert sorted(notifies["a"].tolist()) == [-1, -1, 1, 1]
    ev_waits = spans_of(r, uids_named(r, "start signal"), Span.EVENT_WAIT)
    assert len(ev_waits) == 3 and (ev_waits["end"] == SpanEnd.OK).all()


def test_queues_throughput_task_done_and_copies(tmp_path, start_method):
    r = run_scenario("queues", start_method, {"producers": 1, "consumers": 2, "items": 2000, "payload": 64,
                                              "tasks": 5, "forget": 1, "join_timeout": 0.3}, tmp_path)
    assert r.status == "done", r.error
    f = r.figures
    assert [t["label"] for t in f["throughput"]] == ["Queue 1->1", "Queue 1->2", "SimpleQueue 1->1"]
    for t in f["throughput"]:
        assert t["items"] == sum(t["per_consumer"]) == 2000 and t["bytes"] == 2000 * 64 and t["items_per_s"] > 0
    good, bad = f["joinable_all_done"], f["joinable_missing"]
    assert good["task_done_calls"] == 5 and good["join_blocked_after_s"] is None
    assert good["extra_task_done"].startswith("ValueError")
    assert bad["task_done_calls"] == 4 and bad["unfinished"] == 1
    assert bad["join_blocked_after_s"] >= 0.25 and bad["join_returned_after_fix_ms"] is not None
    sp, op = f["copies"]["same_process"], f["copies"]["other_process"]
    assert sp == {"equal": True, "same_object": False, "original_after": ["original"]}
    assert op["original_after"] == ["original"] and op["returned"] == ["original", "changed by the worker"]
    assert not op["same_object"]
    assert f["all_delivered"] and "Every layout delivered all 2000 items" in r.lesson
    assert "still blocked" in r.lesson and "raised ValueError" in r.lesson and "are copies" in r.lesson
    # the trace: every item's pickled bytes sent by the producer and got by a consumer
    m = r.model.messages_array()
    for name in ("Queue 1->2", "SimpleQueue 1->1"):
        mine = m[np.isin(m["uid"], uids_named(r, name))]
        sends = mine[(mine["kind"] == Kind.QUEUE_SEND) & (mine["nbytes"] > 64)]
        gets = mine[(mine["kind"] == Kind.QUEUE_GET) & (mine["nbytes"] > 64)]
        assert len(sends) == len(gets) == 2000
        assert set(sends["pid"].tolist()) <= pids_named(r, "producer")
        assert set(gets["pid"].tolist()) <= pids_named(r, "consumer")
    # the blocked join() is a span of at least the watch time; the unfinished count went back to 0
    jq = uids_named(r, "tasks (forgets 1)")
    joins = spans_of(r, jq, Span.QUEUE_JOIN)
    assert len(joins) == 1 and joins["t1"][0] - joins["t0"][0] >= 0.25e9
    [unfinished] = [s for key, s in r.model.series.items() if key[0] == "unfinished" and key[1] in jq]
    assert unfinished.v[-1] == 0 and 1 in unfinished.v


def test_pipe_round_trips_throughput_and_large_objects(tmp_path, start_method):
    r = run_scenario("pipe", start_method, {"round_trips": 200, "volume_mb": 1, "max_mb": 2}, tmp_path)
    assert r.status == "done", r.error
    f = r.figures
    for kind in ("duplex pipe", "one-way pair"):
        assert f[kind]["round_trips"] == 200 and f[kind]["round_trips_per_s"] > 0
    assert [t["size"] for t in f["throughput"]] == [64, 4096, 256 * 1024, 4 << 20]
    assert [t["messages"] for t in f["throughput"]] == [16384, 256, 10, 10]
    assert [(x["size"], x["outcome"]) for x in f["large"]] == [(1 << 20, "delivered"), (2 << 20, "delivered")]
    assert "no ValueError" in r.lesson and "up to 2 MiB" in r.lesson
    # the trace: each end's sends and receives with their sizes, in the process that used the end
    m = r.model.messages_array()
    peer = pids_named(r, "pipe-peer")

    def on(end, kind):
        return m[np.isin(m["uid"], uids_named(r, end)) & (m["kind"] == kind)]

    assert len(on("to peer[1]", Kind.PIPE_SEND)) == 200 == len(on("from peer[1]", Kind.PIPE_SEND))
    assert set(on("to peer[0]", Kind.PIPE_RECV)["pid"].tolist()) == peer
    assert len(on("duplex[1]", Kind.PIPE_SEND)) >= 210
    big_sent = on("duplex[0]", Kind.PIPE_SEND)
    big_got = on("duplex[1]", Kind.PIPE_RECV)
    for msgs in (big_sent, big_got):                   # the 2 MiB object, pickled: a little over 2 MiB
        assert ((msgs["nbytes"] > 2 << 20) & (msgs["nbytes"] < (2 << 20) + 4096)).sum() == 1
    assert set(big_got["pid"].tolist()) == peer


def test_shared_data_queue_copies_shared_memory_does_not(tmp_path, start_method):
    r = run_scenario("shared_data", start_method, {"n": 100_000, "repeats": 1}, tmp_path)
    assert r.status == "done", r.error
    f = r.figures
    assert list(f["methods"]) == ["Queue", "Array", "RawArray", "SharedMemory"]
    for name, m in f["methods"].items():
        assert m["sum_ok"] and abs(m["sum"] - f["expected_sum"]) < 1e-6
        if name == "Queue":
            assert m["bytes_through_pipe"] == f["pickled_bytes"] > 800_000 and m["bytes_into_shared_memory"] == 0
        else:
            assert m["bytes_through_pipe"] == 0 and m["bytes_into_shared_memory"] == 800_000
    assert "every sum was correct" in r.lesson
    main = {p.pid for p in r.model.procs.values() if p.role == "main"}
    summer = pids_named(r, "summer")
    # the Queue's whole pickled array left the main process and arrived in the summer
    m = r.model.messages_array()
    dq = m[np.isin(m["uid"], uids_named(r, "data queue"))]
    assert set(dq[(dq["kind"] == Kind.QUEUE_SEND) & (dq["nbytes"] >= 800_000)]["pid"].tolist()) == main
    assert set(dq[(dq["kind"] == Kind.QUEUE_GET) & (dq["nbytes"] >= 800_000)]["pid"].tolist()) == summer
    # the synchronized Array was held by both processes; the sums came back through the Value's lock
    holds = spans_of(r, uids_named(r, "shared Array"), Span.LOCK_HOLD)
    assert set(holds["pid"].tolist()) == main | summer
    assert summer <= set(spans_of(r, uids_named(r, "sum result"), Span.LOCK_HOLD)["pid"].tolist())
    # the segment: created and unlinked by the main process, attached and closed by the summer
    ev = raw_events(r)
    seg = [uid for uid, o in r.model.objects.items() if o.get("kind") == "SharedMemory"]
    assert len(seg) == 1
    by = {k: set(events_of(ev, seg, k)["pid"].tolist())
          for k in (Kind.SHM_CREATE, Kind.SHM_ATTACH, Kind.SHM_CLOSE, Kind.SHM_UNLINK)}
    assert by[Kind.SHM_CREATE] == main and by[Kind.SHM_UNLINK] == main
    assert by[Kind.SHM_ATTACH] == summer and by[Kind.SHM_CLOSE] == main | summer


def test_manager_one_call_per_item_vs_batched(tmp_path, start_method):
    r = run_scenario("manager", start_method, {"processes": 2, "ops": 200}, tmp_path)
    assert r.status == "done", r.error
    f = r.figures
    assert f["counts_ok"] and f["items"] == {"dict": 800, "list": 800, "Namespace": 402}
    per_item = sum(f[s]["per_op_s"] for s in ("dict", "list", "Namespace"))
    batched = sum(f[s]["batched_s"] for s in ("dict", "list", "Namespace"))
    assert per_item > batched                       # 600 round trips against 3, per worker
    assert "keep them few, batch them" in r.lesson
    # the trace: one MANAGER_CALL span per proxy call, named by its method, in the process that called it
    workers = pids_named(r, "manager-worker")
    assert len(workers) == 2
    spans = r.model.spans_array()
    calls = spans[(spans["kind"] == Span.MANAGER_CALL) & np.isin(spans["pid"], list(workers))]
    methods = [r.model.strings.get(int(v)) for v in calls["value"]]
    for method, count in (("__setitem__", 400), ("update", 2), ("append", 400), ("extend", 2),
                          ("__setattr__", 402)):
        assert methods.count(method) == count, method
    assert len(calls) == f["proxy_calls_by_workers"] == 1206
    assert (calls["end"] == SpanEnd.OK).all()
    assert any(p.role == "manager" for p in r.model.procs.values())


def test_remote_manager_serves_loopback_and_refuses_wrong_authkey(tmp_path, start_method):
    r = run_scenario("remote_manager", start_method, {"processes": 2, "ops": 50}, tmp_path)
    assert r.status == "done", r.error
    f = r.figures
    assert f["address"][0] == "127.0.0.1" and f["address"][1] > 0
    assert f["total_ops"] == 300 and f["dict_items"] == 100 and f["queue_left"] == 0 and f["ops_per_s"] > 0
    w = f["wrong_key"]
    assert w["outcome"] == "refused" and w["error"] == "AuthenticationError"
    assert "was refused with AuthenticationError" in r.lesson and "127.0.0.1:%d" % f["address"][1] in r.lesson
    # the trace: the server process, and each right-key client's proxy calls; none by the refused one
    servers = [p.pid for p in r.model.procs.values() if p.role == "manager"]
    assert len(servers) == 1
    starts = raw_events(r)
    starts = starts[starts["kind"] == Kind.MANAGER_START]
    assert starts["a"].tolist() == servers
    spans = r.model.spans_array()
    calls = spans[spans["kind"] == Span.MANAGER_CALL]
    for pid in pids_named(r, "client-"):
        methods = [r.model.strings.get(int(v)) for v in calls[calls["pid"] == pid]["value"]]
        assert methods.count("put") == methods.count("get") == methods.count("__setitem__") == 50
    [intruder] = pids_named(r, "wrong-key-client")
    assert not (calls["pid"] == intruder).any()


def test_ipc_kinds_file_socket_shared_memory_signal(tmp_path, start_method):
    r = run_scenario("ipc_kinds", start_method, {"round_trips": 30, "payload": 32}, tmp_path)
    assert r.status == "done", r.error
    k = r.figures["kinds"]
    assert list(k) == ["file", "socketpair", "TCP (loopback)", "shared memory", "signal (SIGUSR1)"]
    for name, f in k.items():
        assert f["round_trips_per_s"] > 0 and f["payload_bytes"] == (0 if name.startswith("signal") else 1920)
    assert k["signal (SIGUSR1)"]["received"] == 30
    assert "only its number" in r.lesson
    main = {p.pid for p in r.model.procs.values() if p.role == "main"}
    peer = pids_named(r, "ipc-peer")
    # files and sockets: every message sent and received, with its size and IPC kind, in the right process
    m = r.model.messages_array()
    for sender, receiver, ipc in (("file to peer", "file to peer", IpcKind.FILE),
                                  ("file from peer", "file from peer", IpcKind.FILE),
                                  ("socketpair[0]", "socketpair[1]", IpcKind.SOCKET),
                                  ("tcp (main end)", "tcp (peer end)", IpcKind.SOCKET)):
        for name, kind in ((sender, Kind.IPC_SEND), (receiver, Kind.IPC_RECV)):
            mine = m[np.isin(m["uid"], uids_named(r, name)) & (m["kind"] == kind)]
            assert len(mine) == 30 and (mine["nbytes"] == 32).all() and (mine["depth"] == ipc).all(), name
    sent_by = {n: set(m[np.isin(m["uid"], uids_named(r, n)) & (m["kind"] == Kind.IPC_SEND)]["pid"].tolist())
               for n in ("file to peer", "file from peer", "tcp (main end)", "tcp (peer end)")}
    assert sent_by == {"file to peer": main, "file from peer": peer, "tcp (main end)": main, "tcp (peer end)": peer}
    # signals: 30 each way, each one sent to the other process and handled there
    ev = raw_events(r)
    sig = uids_named(r, "SIGUSR1")
    sends, recvs = events_of(ev, sig, Kind.SIGNAL_SEND), events_of(ev, sig, Kind.SIGNAL_RECV)
    [main_pid], [peer_pid] = main, peer
    for me, other in ((main_pid, peer_pid), (peer_pid, main_pid)):
        assert sends[sends["pid"] == me]["b"].tolist() == [other] * 30       # sent to the other process
        assert (recvs["pid"] == me).sum() == 30                              # and handled there
    assert (sends["a"] == signal.SIGUSR1).all() and (recvs["a"] == signal.SIGUSR1).all()
    # shared memory: the peer attached the segment; the turns are 30 acquires of each semaphore
    seg = [uid for uid, o in r.model.objects.items() if o.get("kind") == "SharedMemory"]
    assert set(events_of(ev, seg, Kind.SHM_ATTACH)["pid"].tolist()) == peer
    assert len(events_of(ev, uids_named(r, "shm ping"), Kind.ACQ_OK)) == 30
