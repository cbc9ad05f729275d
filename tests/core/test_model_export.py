"""Exports written while the run file is read a chunk at a time: the same trace and tables as from the model
in memory, in memory that does not grow with the run, and honest about a damaged file."""
import collections
import csv
import json
import os
import sqlite3
import sys
import tracemalloc

import numpy as np
import pytest

from core.trace.arrays import EVENT_DTYPE
from core.trace.collector import Batch
from core.trace.events import Kind
from core.trace.contention import PROFILE_PID
from core.trace import export
from core.trace.export import export_run, profile_counters, write_chrome, write_csv
from core.trace.model import Span
from core.trace.store import RunFile, RunWriter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import synthetic_run  # noqa: E402

LOCK = (1 << 24) | 1


def trace_of(path):
    with open(path) as f:
        return json.load(f)


def slices_are_nested_per_thread(events):
    by_thread = collections.defaultdict(list)
    for e in events:
        if e["ph"] == "X":
            by_thread[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
    for key, slices in by_thread.items():
        slices.sort(key=lambda s: (s[0], -s[1]))
        stack = []
        for s0, s1 in slices:
            while stack and stack[-1] <= s0 + 1e-3:
                stack.pop()
            if stack and s1 > stack[-1] + 1e-3:
                return key
            stack.append(s1)
    return None


def comparable(events):
    """What a trace says, whatever its lanes: slices, counters, moments and names, with their numbers."""
    out = collections.Counter()
    for e in events:
        if e["ph"] in ("X", "C", "i"):
            out[(e["ph"], e["name"], e["pid"], round(e["ts"], 3), round(e.get("dur", 0), 3),
                 json.dumps(e.get("args"), sort_keys=True))] += 1
        elif e["ph"] == "M" and e["name"] != "thread_name":
            out[(e["ph"], e["name"], e["pid"], json.dumps(e["args"], sort_keys=True))] += 1
        else:
            out[(e["ph"],)] += 1
    return out


def test_the_streamed_export_is_the_model_s(tmp_path):
    path = synthetic_run.write_run(str(tmp_path / "run.mpgrun"), 150_000)
    with RunFile(path) as rf:
        n, files = export_run(rf, chrome=tmp_path / "streamed.json", csv_dir=tmp_path / "streamed")
        model = rf.model()
        events = np.concatenate(list(rf.iter_chunks()))
    write_chrome(model, tmp_path / "whole.json")
    write_csv(model, tmp_path / "whole", events[np.argsort(events["t"], kind="stable")])
    streamed, whole = trace_of(tmp_path / "streamed.json"), trace_of(tmp_path / "whole.json")
    assert n == len(streamed["traceEvents"])
    assert comparable(streamed["traceEvents"]) == comparable(whole["traceEvents"])
    assert streamed["otherData"]["events"] == 150_000
    assert slices_are_nested_per_thread(streamed["traceEvents"]) is None
    # every span of the model is a slice, at its time
    spans = model.spans_array()
    holds = [e for e in streamed["traceEvents"] if e["ph"] == "X" and e["cat"] == "hold"]
    assert len(holds) == int((spans["kind"] == Span.LOCK_HOLD).sum())
    assert len(files) == 7
    for name in sorted(os.listdir(tmp_path / "whole")):
        with open(tmp_path / "whole" / name, newline="") as a, open(tmp_path / "streamed" / name, newline="") as b:
            assert collections.Counter(map(tuple, csv.reader(a))) == collections.Counter(map(tuple, csv.reader(b))), \
                name
    with open(tmp_path / "streamed" / "spans.csv") as f:
        assert sum(1 for _ in f) == len(spans) + 1


def lock_run(path, n, chunk=20_000):
    """``n`` records of one thread taking and releasing a lock, contended every third time."""
    rng = np.random.default_rng(1)
    w = RunWriter(path, {"created_perf": 1})
    for start in range(0, n, chunk):
        ev = np.zeros(chunk, EVENT_DTYPE)
        ev["t"] = start * 1000 + np.cumsum(rng.integers(100, 900, chunk))
        ev["uid"] = LOCK
        ev["kind"] = np.where(np.arange(chunk) % 2, int(Kind.RELEASE), int(Kind.ACQ_OK))
        ev["a"] = np.where(np.arange(chunk) % 6 == 0, 50, 0)
        ev["b"] = -1
        ev["c"] = np.where(np.arange(chunk) % 2, 0, 1)
        ev["pid"] = ev["tid"] = 101
        w.add_batch(Batch(ev))
    w.close()


def peak_of_export(path, out):
    with RunFile(path) as rf:
        tracemalloc.start()
        try:
            n, _ = export_run(rf, chrome=out)
            return tracemalloc.get_traced_memory()[1], n
        finally:
            tracemalloc.stop()


@pytest.mark.timeout(900)          # every allocation traced: slow, and slower still on a busy machine
def test_the_export_holds_a_chunk_at_a_time(tmp_path):
    """Eight times the events, about the same memory: far less than the events, let alone the trace."""
    small, large = tmp_path / "small.mpgrun", tmp_path / "large.mpgrun"
    lock_run(small, 125_000)
    lock_run(large, 1_000_000)
    peak_small, n_small = peak_of_export(small, tmp_path / "small.json")
    peak_large, n_large = peak_of_export(large, tmp_path / "large.json")
    assert n_large > 7 * n_small
    assert peak_large < 1.5 * peak_small, (peak_small, peak_large)
    assert peak_large < 1_000_000 * EVENT_DTYPE.itemsize / 4, peak_large
    assert trace_of(tmp_path / "large.json")["otherData"]["events"] == 1_000_000


def test_an_export_of_a_damaged_file_is_partial_and_honest(tmp_path):
    """A chunk that cannot be decoded is left out and said so; everything else is exported."""
    path = str(tmp_path / "damaged.mpgrun")
    lock_run(path, 100_000)
    db = sqlite3.connect(path)
    ids = [r[0] for r in db.execute("SELECT id FROM chunks ORDER BY id")]
    db.execute("UPDATE chunks SET data=substr(data, 1, 40) WHERE id=?", (ids[2],))
    db.commit()
    db.close()
    with RunFile(path) as rf:
        export_run(rf, chrome=tmp_path / "t.json", csv_dir=tmp_path / "csv")
        problems = list(rf.problems)
    trace = trace_of(tmp_path / "t.json")
    assert trace["otherData"]["events"] == 80_000
    assert any("event chunk %d" % ids[2] in p and "skipped" in p for p in problems), problems
    holds = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["cat"] == "hold"]
    assert len(holds) == 40_000
    with open(tmp_path / "csv" / "events.csv") as f:
        assert sum(1 for _ in f) == 80_001


def test_a_failed_export_leaves_nothing_half_written(tmp_path, monkeypatch):
    path = synthetic_run.write_run(str(tmp_path / "run.mpgrun"), 20_000)
    import core.trace.export as export

    def broken(*args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(export.CsvWriter, "instants", broken)
    monkeypatch.setattr(export.ChromeWriter, "instants", broken)
    monkeypatch.setattr(export.CsvWriter, "spans", broken)
    with RunFile(path) as rf:
        try:
            export_run(rf, chrome=tmp_path / "t.json", csv_dir=tmp_path / "csv")
        except OSError:
            pass
        else:
            raise AssertionError("the failure was not passed on")
    assert not os.path.exists(tmp_path / "t.json") and not os.path.exists(tmp_path / "t.json.tmp")
    assert os.listdir(tmp_path / "csv") == []


def test_pool_tasks_in_the_chrome_trace_are_the_model_s(tmp_path):
    """Every task that ran is a slice on its worker at its times, its dispatch a flow from its caller (at the
    time it was sent) to the slice's start, and the caller's use of its result a moment on the caller."""
    from core.trace.model import NO_TIME
    path = synthetic_run.write_run(str(tmp_path / "run.mpgrun"), 120_000)
    with RunFile(path) as rf:
        export_run(rf, chrome=tmp_path / "t.json")
        model = rf.model()
    events = trace_of(tmp_path / "t.json")["traceEvents"]
    t0 = model.t0
    tab = model.tasks_array()
    tab = tab[(tab["start"] != NO_TIME) & (tab["end"] != NO_TIME) & (tab["worker"] != 0)]
    assert len(tab) > 1000
    us = lambda t: round((int(t) - t0) / 1000.0, 3)  # noqa: E731
    caller = {key: j.get("pid", 0) for key, j in model.jobs.items()}
    want = collections.Counter((int(r["worker"]), int(r["job"]), int(r["index"]), us(r["start"]),
                                round(max(int(r["end"]) - int(r["start"]), 0) / 1000.0, 3)) for r in tab)
    slices = [e for e in events if e["ph"] == "X" and e["cat"] == "task"]
    got = collections.Counter((e["pid"], e["args"]["job"], e["args"]["index"], e["ts"], e["dur"]) for e in slices)
    assert got == want
    assert all(e["name"] == "task %d" % e["args"]["index"] for e in slices)
    at = {(e["pid"], e["tid"], e["ts"]) for e in slices}
    sent = {e["id"]: e for e in events if e["ph"] == "s" and e["cat"] == "dispatch"}
    started = {e["id"]: e for e in events if e["ph"] == "f" and e["cat"] == "dispatch"}
    assert sent.keys() == started.keys()
    assert all((f["pid"], f["tid"], f["ts"]) in at for f in started.values())
    flows = collections.Counter((s["pid"], s["ts"], started[i]["pid"], started[i]["ts"]) for i, s in sent.items())
    assert flows == collections.Counter(
        (caller[(int(r["pool"]), int(r["job"]))], us(r["sent"]), int(r["worker"]), us(r["start"])) for r in tab
        if r["sent"] != NO_TIME and caller.get((int(r["pool"]), int(r["job"]))))
    used = collections.Counter((e["pid"], e["name"], e["ts"]) for e in events if e.get("cat") == "result")
    assert used == collections.Counter(
        (caller[(int(r["pool"]), int(r["job"]))], "result %d used" % r["index"], us(r["used"])) for r in tab
        if r["used"] != NO_TIME and caller.get((int(r["pool"]), int(r["job"]))))
    assert len(used) > 0 and len(flows) > 0


def test_counter_points_are_valid_json_whole_numbers_as_integers(tmp_path):
    """A queue's depth is written 3, not 3.0; a CPU share keeps its fraction; a point without a finite value
    (JSON has no NaN) is left out rather than making the whole trace unreadable."""
    import io
    from core.trace.export import ChromeWriter
    from core.trace.model import RunModel
    f = io.StringIO()
    w = ChromeWriter(f, RunModel(), 0)
    w.counter("depth", 0, np.array([1000, 2000, 3000]), np.array([0, 3.0, -2]))
    w.counter("cpu", 7, np.array([1000, 2000, 3000]), np.array([12.5, np.nan, 1e300]))
    w.counter("gone", 7, np.array([1000]), np.array([np.inf]))
    f.write("]}")
    points = [(e["name"], e["pid"], e["ts"], e["args"]["value"]) for e in json.loads(f.getvalue())["traceEvents"]]
    assert points == [("depth", 0, 1.0, 0), ("depth", 0, 2.0, 3), ("depth", 0, 3.0, -2),
                      ("cpu", 7, 1.0, 12.5), ("cpu", 7, 3.0, 1e300)]
    assert '"value":3}' in f.getvalue() and '"value":12.5}' in f.getvalue()


def threads_waiting_run(path, threads=6, rounds=400, chunk_rounds=50):
    """``threads`` threads of one process take one lock ``rounds`` times each, every wait after its call site;
    each chunk holds ``chunk_rounds`` rounds of every thread, the threads' windows shifted so that the chunks
    overlap in time and a wait often ends in the chunk after its call site."""
    w = RunWriter(path, {"created_perf": 1})
    w.add_registrations([{"t": "str", "id": 100 + k, "s": "w.py:%d in work" % (10 * k)} for k in range(3)])
    rng = np.random.default_rng(7)
    for start in range(0, rounds, chunk_rounds):
        rows = []
        for tid in range(1, threads + 1):
            t = (start * 1000 + tid * 370) * 1000
            for r in range(start, start + chunk_rounds):
                wait, hold = int(rng.integers(1, 400)) * 1000, int(rng.integers(1, 300)) * 1000
                site = 100 + (tid + r) % 3
                rows += [(t, LOCK, site, 0, int(Kind.CALLSITE), 0, 101, tid),
                         (t, LOCK, -1, 0, int(Kind.ACQ_REQUEST), 0, 101, tid),
                         (t + wait, LOCK, wait, -1, int(Kind.ACQ_OK), 1, 101, tid),
                         (t + wait + hold, LOCK, hold, -1, int(Kind.RELEASE), 0, 101, tid)]
                t += wait + hold + 1000
        # each ring read between a request and its acquisition: every thread's last wait ends in the next chunk
        ev = np.array(rows, dtype=EVENT_DTYPE)
        later = np.zeros(len(ev), bool)
        later.reshape(threads, -1)[:, -2:] = True
        w.add_batch(Batch(ev[~later]))
        w.add_batch(Batch(ev[later]))
    w.close()


def test_the_streamed_blocking_profile_is_the_one_of_the_stored_records(tmp_path):
    """The export's blocking profile, gathered in time order during its one pass, is the one the run file's
    records give in the order stored (the carried call sites included)."""
    path = tmp_path / "waits.mpgrun"
    threads_waiting_run(path)
    with RunFile(path) as rf:
        export_run(rf, chrome=tmp_path / "t.json")
        expected = profile_counters(rf.model(), rf)
    assert len(expected) == 3
    by_name = {}
    for e in trace_of(tmp_path / "t.json")["traceEvents"]:
        if e["ph"] == "C" and e["pid"] == PROFILE_PID:
            by_name.setdefault(e["name"], []).append((e["ts"], list(e["args"].values())[0]))
    assert sorted(by_name) == sorted(name for name, _, _ in expected)
    for name, times, waiting in expected:
        assert [v for _, v in by_name[name]] == waiting.tolist(), name
        ts = np.array([round(t * 1000) for t, _ in by_name[name]])      # µs from the run's start, as ns
        assert (ts - ts[0]).tolist() == (times - times[0]).tolist(), name
    # every wait is counted: 6 threads x 400 rounds, on three sites
    assert sum(int(name.split(": ")[1].split()[0]) for name, _, _ in expected) == 6 * 400


def test_past_its_bound_the_blocking_profile_is_the_mean_waiting_per_stretch_of_the_run(tmp_path, monkeypatch):
    """A run with more waits at call sites than the profile keeps (its memory stays bounded whatever the run's
    size): each site's counter becomes the mean number of threads waiting in each stretch of the run, which
    is what the waits give, ranked and totalled as the exact profile, and its name says so."""
    path = tmp_path / "waits.mpgrun"
    threads_waiting_run(path)
    with RunFile(path) as rf:
        model = rf.model()
        exact = profile_counters(model, rf)
        strings = dict(model.strings)
        waits = export.profile_records(rf.iter_chunks(), None, strings).result()
        span = export.run_span(rf)
        monkeypatch.setattr(export, "PROFILE_EXACT_WAITS", 100)
        monkeypatch.setattr(export, "PROFILE_BINS", 512)
        acc = export.profile_records(rf.iter_chunks(), span, strings)
        export_run(rf, chrome=tmp_path / "t.json")
    assert acc.binned and not len(acc.result()), "the waits are still kept one by one"
    binned = acc.counters()
    assert [name.split(" (mean waiting per ")[0] for name, _, _ in binned] == [name for name, _, _ in exact]
    width = acc._bin_width()
    edges = span[0] + np.arange(513) * width
    for name, times, mean in binned:
        site = name.split(" ", 1)[1].split(": ")[0]
        mine = waits[np.array([strings[int(i)] == site for i in waits["site"].tolist()])]
        start, end = mine["t"] - mine["wait"], mine["t"]
        # the time threads waited there in each stretch, one wait at a time
        covered = np.array([np.clip(np.minimum(end, b) - np.maximum(start, a), 0, None).sum()
                            for a, b in zip(edges[:-1], edges[1:])])
        assert covered.sum() == mine["wait"].sum()
        first = (times - span[0]) // width
        held = np.repeat(mean, np.diff(np.append(first, 512)))      # each point holds until the next
        assert first[0] == 0 and np.allclose(held, covered / width), site
    written = collections.defaultdict(list)
    for e in trace_of(tmp_path / "t.json")["traceEvents"]:
        if e["ph"] == "C" and e["pid"] == PROFILE_PID:
            written[e["name"]].append(list(e["args"].values())[0])
    assert sorted(written) == sorted(name for name, _, _ in binned)
    for name, _, mean in binned:
        assert np.allclose(written[name], mean), name
