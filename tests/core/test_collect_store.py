"""Run files at scale: event chunks are compressed and read back identical, files written before compression
still read, chunks can be read one at a time, and a run file stops growing at its size cap."""
import os
import sqlite3

import numpy as np

from core.trace.arrays import EVENT_DTYPE
from core.trace.collector import Batch
from core.trace.events import Kind
from core.trace.store import RunFile, RunWriter


def lock_events(n, seed=0, pids=(101, 102)):
    """``n`` events as a hot lock loop records them: per thread, ACQ_OK and RELEASE in turn, time going up."""
    rng = np.random.default_rng(seed)
    ev = np.zeros(n, EVENT_DTYPE)
    per = n // len(pids)
    for i, pid in enumerate(pids):
        part = ev[i * per:(i + 1) * per] if i < len(pids) - 1 else ev[i * per:]
        m = len(part)
        part["t"] = 10**12 + np.cumsum(rng.integers(200, 3000, m))
        part["uid"] = (7 << 24) | 1
        part["kind"] = np.where(np.arange(m) % 2 == 0, int(Kind.ACQ_OK), int(Kind.RELEASE))
        part["a"] = np.where(np.arange(m) % 2 == 0, rng.integers(0, 5000, m) * (rng.random(m) < 0.1),
                             rng.integers(300, 2000, m))
        part["b"] = -1
        part["c"] = np.where(np.arange(m) % 2 == 0, 1, 0)
        part["pid"] = pid
        part["tid"] = pid
    return ev


def test_compressed_chunks_read_back_identical_and_small(tmp_path):
    path = tmp_path / "c.mpgrun"
    w = RunWriter(path, {})
    batches = [lock_events(20_000, seed=s) for s in range(5)]
    odd = np.zeros(3, EVENT_DTYPE)                         # extremes of every field survive the encoding
    for f in ("t", "uid", "a", "b", "kind", "c", "pid", "tid"):
        info = np.iinfo(odd[f].dtype)
        odd[f] = [info.min, info.max, 0]
    batches.append(odd)
    for b in batches:
        w.add_batch(Batch(b))
    w.close()
    expected = np.concatenate(batches)
    with RunFile(path) as rf:
        events = rf.read_all()[0]
        chunks = list(rf.iter_chunks())
        stored = rf._db.execute("SELECT sum(length(data)) FROM chunks").fetchone()[0]
        assert rf.problems == []
    assert events.dtype == EVENT_DTYPE
    assert events.tobytes() == expected.tobytes()
    assert np.concatenate(chunks).tobytes() == expected.tobytes()
    assert stored * 5 < expected.nbytes, (stored, expected.nbytes)      # 48 bytes an event, raw


def test_large_batches_are_stored_in_bounded_chunks(tmp_path):
    from core.trace.store import CHUNK_EVENTS
    path = tmp_path / "big.mpgrun"
    w = RunWriter(path, {})
    ev = lock_events(CHUNK_EVENTS * 2 + 5)
    w.add_batch(Batch(ev))
    w.close()
    with RunFile(path) as rf:
        sizes = [len(c) for c in rf.iter_chunks()]
        assert rf.read_all()[0].tobytes() == ev.tobytes()
    assert sizes == [CHUNK_EVENTS, CHUNK_EVENTS, 5]


OLD_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE regs(id INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE chunks(id INTEGER PRIMARY KEY, n INTEGER NOT NULL, t0 INTEGER NOT NULL, t1 INTEGER NOT NULL,
                    data BLOB NOT NULL);
CREATE TABLE samples(id INTEGER PRIMARY KEY, t INTEGER NOT NULL, body TEXT NOT NULL);
CREATE TABLE drops(ring TEXT PRIMARY KEY, dropped INTEGER NOT NULL);
CREATE TABLE log(id INTEGER PRIMARY KEY, t INTEGER NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL);
"""


def write_old_run_file(path, parts):
    """A run file as version one wrote it: no codec column, every chunk the raw records."""
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.executemany("INSERT INTO meta(key, value) VALUES(?, ?)",
                   [("format", '"mpgui-run"'), ("version", "1"), ("status", '"done"')])
    for ev in parts:
        db.execute("INSERT INTO chunks(n, t0, t1, data) VALUES(?, ?, ?, ?)",
                   (len(ev), int(ev["t"].min()), int(ev["t"].max()), ev.tobytes()))
    db.execute("INSERT INTO regs(body) VALUES(?)", ('{"t":"proc","pid":101,"role":"main","name":"M"}',))
    db.commit()
    db.close()


def test_run_files_without_compression_still_read(tmp_path):
    path = tmp_path / "old.mpgrun"
    parts = [lock_events(1000, seed=1), lock_events(500, seed=2)]
    write_old_run_file(path, parts)
    with RunFile(path) as rf:
        events, regs, _, _ = rf.read_all()
        chunks = list(rf.iter_chunks())
        assert rf.problems == []
        assert rf.model().events_seen == 1500
    assert events.tobytes() == np.concatenate(parts).tobytes()
    assert [c.tobytes() for c in chunks] == [p.tobytes() for p in parts]
    assert regs[0]["name"] == "M"


def test_a_damaged_compressed_chunk_is_skipped_and_reported(tmp_path):
    path = tmp_path / "d.mpgrun"
    w = RunWriter(path, {})
    good = lock_events(1000, seed=3)
    w.add_batch(Batch(lock_events(1000, seed=4)))
    w.add_batch(Batch(good))
    w.close()
    db = sqlite3.connect(path)
    db.execute("UPDATE chunks SET data=substr(data, 1, length(data) / 2) WHERE id=(SELECT min(id) FROM chunks)")
    db.commit()
    db.close()
    with RunFile(path) as rf:
        assert rf.read_all()[0].tobytes() == good.tobytes()
        assert [c.tobytes() for c in rf.iter_chunks()] == [good.tobytes()]
        assert len(rf.problems) == 1 and "event chunk" in rf.problems[0]


def test_chunks_packed_by_zlib_as_the_previous_version_did_still_read(tmp_path):
    """A run file whose chunks the previous version packed with zlib (CODEC_ZSHUFFLE), and one that a run
    went on writing with this version: every chunk reads back, whatever its codec."""
    from core.trace.store import CODEC_WRITTEN, CODEC_ZSHUFFLE, CODEC_ZSTD, encode_events
    assert CODEC_WRITTEN == CODEC_ZSTD
    path = tmp_path / "z.mpgrun"
    old, new = lock_events(3000, seed=5), lock_events(2000, seed=6)
    w = RunWriter(path, {})
    w.add_batch(Batch(new))
    w.close()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO chunks(n, t0, t1, data, codec) VALUES(?, ?, ?, ?, ?)",
               (len(old), int(old["t"].min()), int(old["t"].max()), encode_events(old, CODEC_ZSHUFFLE),
                CODEC_ZSHUFFLE))
    db.commit()
    codecs = [c for (c,) in db.execute("SELECT codec FROM chunks ORDER BY id")]
    db.close()
    assert codecs == [CODEC_ZSTD, CODEC_ZSHUFFLE]
    with RunFile(path) as rf:
        assert [c.tobytes() for c in rf.iter_chunks()] == [new.tobytes(), old.tobytes()]
        assert rf.problems == []


def test_damaged_zstandard_chunks_are_skipped_and_reported(tmp_path):
    """Cut short, a header that claims another size, garbage: each chunk is skipped with a sentence, the
    good chunk beside them is read, and nothing unpacks to more than the chunk says it holds."""
    path = tmp_path / "zd.mpgrun"
    good = lock_events(1000, seed=7)
    w = RunWriter(path, {})
    for seed in (8, 9, 10):
        w.add_batch(Batch(lock_events(1000, seed=seed)))
    w.add_batch(Batch(good))
    w.close()
    db = sqlite3.connect(path)
    ids = [i for (i,) in db.execute("SELECT id FROM chunks ORDER BY id")]
    db.execute("UPDATE chunks SET data=substr(data, 1, length(data) - 40) WHERE id=?", (ids[0],))
    db.execute("UPDATE chunks SET n=n * 2 WHERE id=?", (ids[1],))
    (data,) = db.execute("SELECT data FROM chunks WHERE id=?", (ids[2],)).fetchone()
    db.execute("UPDATE chunks SET data=? WHERE id=?", (data[:12] + os.urandom(len(data) - 12), ids[2]))
    db.commit()
    db.close()
    with RunFile(path) as rf:
        assert [c.tobytes() for c in rf.iter_chunks()] == [good.tobytes()]
        assert len(rf.problems) == 3 and all("event chunk" in p for p in rf.problems), rf.problems


def test_a_zstandard_chunk_that_lost_its_count_is_counted_from_its_data(tmp_path):
    path = tmp_path / "zc.mpgrun"
    ev = lock_events(1500, seed=11)
    w = RunWriter(path, {})
    w.add_batch(Batch(ev))
    w.close()
    db = sqlite3.connect(path)
    db.execute("UPDATE chunks SET n='lost'")
    db.commit()
    db.close()
    with RunFile(path) as rf:
        assert [c.tobytes() for c in rf.iter_chunks()] == [ev.tobytes()]
        assert len(rf.problems) == 1 and "1500 events were counted" in rf.problems[0]


def test_a_chunk_from_a_newer_version_is_skipped_and_reported(tmp_path):
    path = tmp_path / "n.mpgrun"
    w = RunWriter(path, {})
    w.add_batch(Batch(lock_events(100)))
    w.close()
    db = sqlite3.connect(path)
    db.execute("UPDATE chunks SET codec=99")
    db.commit()
    db.close()
    with RunFile(path) as rf:
        assert len(rf.read_all()[0]) == 0
        assert "newer" in rf.problems[0]


def noise_events(n, seed):
    """Events that compress badly: every field random."""
    rng = np.random.default_rng(seed)
    ev = np.frombuffer(rng.bytes(n * EVENT_DTYPE.itemsize), dtype=EVENT_DTYPE).copy()
    return ev


def test_the_size_cap_drops_and_counts_events_and_the_run_goes_on(tmp_path):
    path = tmp_path / "capped.mpgrun"
    cap = 2 << 20
    w = RunWriter(path, {}, max_size=cap)
    sent = 0
    for i in range(40):                                      # about 4 MiB of events that do not compress
        ev = noise_events(2000, seed=i)
        sent += len(ev)
        assert w.add_batch(Batch(ev, metas=[{"t": "str", "id": i, "s": "label %d" % i}], drops={"r": i}))
        assert w.add_log("stdout", "line %d" % i)
        assert w.failure is None                              # the cap is no failure: the run goes on
    assert w.capped
    w.finish(status="done", events=w.events_written, dropped=w.dropped)
    w.close()
    size = os.path.getsize(path)
    assert size <= cap + (64 << 10), size                     # the final status may take a page more
    with RunFile(path) as rf:
        meta = rf.meta()
        stored = sum(len(c) for c in rf.iter_chunks())
        logs = rf.read_all()[3]
        regs = rf.read_all()[1]
        dropped = rf.dropped()
    assert stored == w.events_written and 0 < stored < sent
    cap_info = meta["size_cap"]
    assert meta["max_size"] == cap and cap_info["limit"] == cap
    assert cap_info["events_dropped"] == sent - stored
    assert isinstance(cap_info["hit_perf"], int)
    assert dropped == 39 + (sent - stored) == w.dropped        # the rings' drops and the cap's
    # after the events stopped, the rest of the run still went in
    assert [t for _, _, t in logs] == ["line %d" % i for i in range(40)]
    assert len(regs) == 40


def test_no_cap_no_cap_metadata(tmp_path):
    path = tmp_path / "free.mpgrun"
    w = RunWriter(path, {})
    w.add_batch(Batch(noise_events(1000, seed=1)))
    w.close()
    with RunFile(path) as rf:
        meta = rf.meta()
    assert meta["max_size"] is None and "size_cap" not in meta
