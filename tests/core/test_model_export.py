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

from core.trace.arrays import EVENT_DTYPE
from core.trace.collector import Batch
from core.trace.events import Kind
from core.trace.export import export_run, write_chrome, write_csv
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


def test_the_export_holds_a_chunk_at_a_time(tmp_path):
    """Eight times the events, about the same memory: far less than the events, let alone the trace."""
    small, large = tmp_path / "small.mpgrun", tmp_path / "large.mpgrun"
    lock_run(small, 200_000)
    lock_run(large, 1_600_000)
    peak_small, n_small = peak_of_export(small, tmp_path / "small.json")
    peak_large, n_large = peak_of_export(large, tmp_path / "large.json")
    assert n_large > 7 * n_small
    assert peak_large < 1.5 * peak_small, (peak_small, peak_large)
    assert peak_large < 1_600_000 * EVENT_DTYPE.itemsize / 4, peak_large
    assert trace_of(tmp_path / "large.json")["otherData"]["events"] == 1_600_000


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
