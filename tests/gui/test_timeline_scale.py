"""The timeline at any scale (pytest-qt, offscreen): what a frame draws matches the bars at every zoom, from
the level of detail or exactly; snapshots share the model's columns; the live view skips detail rather than
fall behind, says so, and shows the whole run once it ends; the event log reads the run file, not the model.
"""
import os
import sys
import threading
import time

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from core.trace.arrays import EVENT_DTYPE
from core.trace.collector import Batch
from core.trace.events import Kind
from core.trace.model import RunModel
from core.trace.store import RunFile, RunWriter
from mpgui.gui import runsource, snapshot, theme, timeline_data
from mpgui.gui.events_view import EventLogView
from mpgui.gui.timeline import LAYOUT, TimelineView

T0 = 10 ** 12
LANES = 6
LOCK = 7


def hold_events(n, seed=1, span_s=20.0):
    """``n`` holds per lane, of durations from 100 ns to 100 ms, each lane's one after the other."""
    rng = np.random.default_rng(seed)
    rows = []
    for lane in range(LANES):
        d = (10 ** rng.uniform(2, 8, n)).astype(np.int64)
        gap = rng.exponential(span_s * 1e9 / n, n).astype(np.int64)
        start = T0 + np.cumsum(d + gap) - d
        ev = np.zeros(2 * n, EVENT_DTYPE)
        ev["t"][0::2], ev["t"][1::2] = start, start + d
        ev["kind"][0::2], ev["kind"][1::2] = int(Kind.ACQ_OK), int(Kind.RELEASE)
        ev["uid"], ev["b"] = LOCK, -1
        ev["c"][0::2] = 1
        ev["pid"] = ev["tid"] = 1000 + lane
        rows.append(ev)
    return np.concatenate(rows)


def model_of(events, chunk=50_000):
    """The model of ``events`` read as the app reads a run: in time order (``in_time_order``), in chunks."""
    events = events[np.argsort(events["t"], kind="stable")]
    m = RunModel()
    m.set_meta({"created_perf": T0})
    m.ingest(None, [{"t": "proc", "pid": 1000 + i, "ppid": 1, "role": "worker", "name": "worker %d" % i}
                    for i in range(LANES)])
    for lo in range(0, len(events), chunk):
        m.ingest(events[lo:lo + chunk])
    return m


def pixels(lo, hi, vx0, pw, width):
    """The pixel columns [lo, hi] (seconds) touches."""
    a = np.clip(np.floor((lo - vx0) / pw).astype(np.int64), 0, width - 1)
    b = np.clip(np.floor((hi - vx0) / pw).astype(np.int64), 0, width - 1)
    out = np.zeros(width, bool)
    for i, j in zip(a.tolist(), b.tolist()):
        out[i:j + 1] = True
    return out


def dilate(mask, k):
    out = mask.copy()
    for s in range(1, k + 1):
        out[s:] |= mask[:-s]
        out[:-s] |= mask[s:]
    return out


@pytest.fixture
def view(qtbot):
    v = TimelineView()
    qtbot.addWidget(v)
    v.resize(1000, 500)
    v.show()
    return v


def test_every_zoom_draws_the_bars_from_the_level_of_detail_or_exactly(qtbot, view):
    """At every zoom, from the whole run to a few microseconds: every bar in view is drawn (within a pixel),
    and nothing is drawn where no bar is (within the width of the cell that stands for it).  Wide views
    draw from the level of detail, narrow ones exactly."""
    events = hold_events(40_000)
    m = model_of(events)
    data = timeline_data.build(m)
    view.set_data(data)
    view.set_follow(False)
    holds = m.spans_array()
    pid, x0, x1 = holds["pid"], (holds["t0"] - data.t0) / 1e9, (holds["t1"] - data.t0) / 1e9
    lanes = {lane.pid: view.item.row_of(lane.pid) for lane in data.lanes}     # rows, as the view lays them out
    y_off = dict((name, y) for name, y, _ in LAYOUT)["holds"]
    paths = set()
    centre, width = float(x1.max()) / 2, float(x1.max()) * 1.02
    while width > 5e-6:
        vx0, vx1 = centre - width / 2, centre + width / 2
        view.vb.setXRange(vx0, vx1, padding=0)
        QtWidgets.QApplication.processEvents()
        view.plot.viewport().repaint()
        (rx0, rx1), _ = view.vb.viewRange()
        pw = view.vb.viewPixelSize()[0]
        ncols = int(round((rx1 - rx0) / pw)) + 1
        vis = data.layers["holds"].visible(data.t0 + int(rx0 * 1e9), data.t0 + int(rx1 * 1e9), max(int(pw * 1e9), 1))
        paths.add("cells" if vis.level is not None else "exact")
        rects, _ = view.item.drawn.get("holds", (np.zeros((0, 4)), None))
        widest = int(np.ceil(rects[:, 2].max() / pw)) + 1 if len(rects) else 1
        for p, row in lanes.items():
            mine = (pid == p) & (x1 >= rx0) & (x0 <= rx1)
            drawn = np.isclose(rects[:, 1], row + y_off)
            want = pixels(np.maximum(x0[mine], rx0), np.minimum(x1[mine], rx1), rx0, pw, ncols)
            got = pixels(rects[drawn, 0], rects[drawn, 0] + rects[drawn, 2], rx0, pw, ncols)
            assert not (want & ~dilate(got, 1)).any(), "a bar in view is not drawn (width %g s)" % width
            assert not (got & ~dilate(want, widest)).any(), "something is drawn where no bar is (%g s)" % width
        width /= 3
    assert paths == {"cells", "exact"}


def test_a_wide_view_of_many_bars_draws_few_rectangles(qtbot, view):
    m = model_of(hold_events(60_000, span_s=5.0))
    data = timeline_data.build(m)
    view.set_data(data)
    view.fit()
    QtWidgets.QApplication.processEvents()
    view.plot.viewport().repaint()
    assert len(m.spans) == LANES * 60_000
    assert 0 < view.item.rects_drawn <= LANES * 3 * view.plot.width()


def test_the_stretches_a_live_view_skipped_are_hatched_and_drawn_together(qtbot, view, monkeypatch):
    """Each stretch whose detail the live view skipped is hatched across every lane (over the process's
    lifetime bar, so it does not look like a time the process did nothing), the time between them is not;
    the frame draws them in one call however many there are (a live run skips one at almost every read)."""
    m = model_of(hold_events(200, span_s=5.0))
    data = timeline_data.build(m)
    data.t_end = 5.0
    wide = [(0.5 * k + 0.1, 0.5 * k + 0.3) for k in range(10)]           # 40 pixels each, 60 apart
    data.dropping = wide + [(0.5 * k + 0.3, 0.5 * k + 0.3 + 1e-4) for k in range(10)] * 40
    view.set_data(data)
    view.fit()
    view.vb.setXRange(0.0, 5.0, padding=0)
    calls = []
    draw = view.item._draw
    monkeypatch.setattr(view.item, "_draw", lambda p, rects, brush, pen=None: (
        calls.append(len(rects)) if brush is view.item._skipped else None, draw(p, rects, brush, pen)))
    QtWidgets.QApplication.processEvents()
    calls.clear()
    image = view.plot.viewport().grab().toImage()            # one frame
    assert calls == [len(data.dropping)], "the skipped stretches were not drawn in one call"
    hatch_color = QtGui.QColor(theme.MUTED_TEXT).name()

    def at(t, row):
        return view.plot.mapFromScene(view.vb.mapViewToScene(QtCore.QPointF(t, row)))

    for lane in data.lanes:
        row = view.item.row_of(lane.pid)
        top, bottom = at(0.0, row + 0.3).y(), at(0.0, row + 0.7).y()      # the middle of the lane
        hatch = np.array([[image.pixelColor(x, y).name() == hatch_color for y in range(top, bottom)]
                          for x in range(image.width())]).any(axis=1)
        for a, b in wide:
            assert hatch[at(a, 0).x() + 3:at(b, 0).x() - 3].any(), "a skipped stretch is not hatched in a lane"
            assert not hatch[at(b, 0).x() + 3:at(b + 0.2, 0).x() - 3].any(), "time not skipped is hatched"


class CountingLock:
    def __init__(self, lock):
        self.lock, self.taken = lock, 0

    def __enter__(self):
        self.taken += 1
        return self.lock.__enter__()

    def __exit__(self, *exc):
        return self.lock.__exit__(*exc)


def test_a_snapshot_shares_the_model_s_columns_and_takes_its_lock_once():
    events = hold_events(5_000)
    m = model_of(events[:30_000])
    builder = timeline_data.TimelineBuilder(m)
    snapshot.build(m, builder)
    m.ingest(events[30_000:])
    m.lock = CountingLock(m.lock)
    snap = snapshot.build(m, builder)
    assert m.lock.taken == 1
    src = snap.timeline.layers["holds"].source
    assert np.shares_memory(src.t0, m.spans.view("t0")), "the snapshot copied the spans"
    assert len(snap.timeline.layers["holds"]) == len(m.spans)


def writer_of(path):
    w = RunWriter(path, {"runner_pid": os.getpid(), "kind": "trace", "created_perf": T0})
    w.add_batch(Batch(np.zeros(0, EVENT_DTYPE), [{"t": "proc", "pid": 1000 + i, "ppid": 1, "role": "worker",
                                                  "name": "worker %d" % i} for i in range(LANES)]))
    return w


def test_the_live_view_skips_detail_it_cannot_keep_up_with_and_shows_it_all_at_the_end(qtbot, view, tmp_path,
                                                                                     monkeypatch):
    """A reader that could ingest only a few events per poll skips the older chunks (counted, shown hatched,
    the tool bar says so); when the run ends, the run is read again whole."""
    monkeypatch.setattr(runsource, "FIRST_RATE", 20_000)       # as if it ingested 20,000 events per second
    path = str(tmp_path / "fast.mpgrun")
    w = writer_of(path)
    events = hold_events(20_000)
    events = events[np.argsort(events["t"], kind="stable")]
    try:
        src = runsource.RunSource.open_file(path)
        qtbot.waitUntil(lambda: src.state == "running", timeout=10_000)
        for lo in range(0, len(events), 20_000):
            w.add_batch(Batch(events[lo:lo + 20_000]))
        qtbot.waitUntil(lambda: src.snapshot is not None and src.snapshot.events == len(events), timeout=10_000)
        snap = src.snapshot
        assert snap.dropping and snap.timeline.dropping
        view.set_data(snap.timeline)
        assert view.skipping.isVisibleTo(view)
        assert len(snap.timeline.layers["holds"]) < LANES * 20_000, "nothing was skipped"
    finally:
        w.finish(status="done")
        w.close()
    qtbot.waitUntil(lambda: src.state == "done", timeout=20_000)
    final = src.snapshot
    assert not final.dropping and final.events == len(events)
    assert len(final.timeline.layers["holds"]) == LANES * 20_000
    view.set_data(final.timeline)
    assert not view.skipping.isVisibleTo(view)
    src.close()


def test_the_event_log_reads_the_run_file_in_a_worker_and_never_waits_for_the_model(qtbot, tmp_path, monkeypatch):
    import mpgui.gui.events_view as events_view
    monkeypatch.setattr(events_view, "MAX_ROWS", 5_000)
    path = str(tmp_path / "run.mpgrun")
    w = writer_of(path)
    events = hold_events(2_000)
    w.add_batch(Batch(events[np.argsort(events["t"], kind="stable")]))
    w.finish(status="done")
    w.close()
    with RunFile(path) as rf:
        m = rf.model()
    assert m.events is None and m.path == path
    log = EventLogView()
    qtbot.addWidget(log)
    held = threading.Event()
    release = threading.Event()

    def hold_the_lock():
        with m.lock:
            held.set()
            release.wait(20)
    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    held.wait(5)
    try:
        started = time.monotonic()
        log.refresh(m)                          # the model's lock is taken elsewhere: this must not wait
        assert time.monotonic() - started < 5
        qtbot.waitUntil(lambda: log.model.rowCount() == 5_000, timeout=20_000)
    finally:
        release.set()
        holder.join()
    assert "first 5000 matching events of %d" % len(events) in log.count.text()
    acq = log.kind_box.findData(int(Kind.ACQ_OK))
    log.kind_box.setCurrentIndex(acq)
    log.proc_box.setCurrentIndex(log.proc_box.findData(1003))
    qtbot.waitUntil(lambda: log.model.rowCount() == 2_000, timeout=20_000)
    table = log.model
    assert {table.data(table.index(r, 3)) for r in range(table.rowCount())} == {"acq ok"}
    assert all(table.data(table.index(r, 1)).startswith("1003") for r in range(0, 2_000, 97))


def test_a_followed_live_view_draws_each_new_snapshot_once(qtbot, monkeypatch):
    """Following a live run, each snapshot moves the view to the newest data and is drawn once, at the new
    range: not a second time when the move reaches the view's transform (the whole timeline twice a
    snapshot, competing with the reader for the interpreter)."""
    from mpgui.gui import timeline_item
    paints = []
    draw = timeline_item.TimelineItem.paint

    def counted(item, p, *args):
        paints.append(view.vb.viewRange()[0][1])
        return draw(item, p, *args)
    # patched before the view exists: Qt's wrapper of an item finds its paint method when it is made
    monkeypatch.setattr(timeline_item.TimelineItem, "paint", counted)
    view = TimelineView()
    qtbot.addWidget(view)
    view.resize(1000, 500)
    view.show()
    qtbot.waitExposed(view)
    events = hold_events(3000, span_s=4.0)
    events = events[np.argsort(events["t"], kind="stable")]
    model = model_of(events[:1000])
    builder = timeline_data.TimelineBuilder(model)
    assert view.follow
    for end in (2000, 4000, 8000, 16000):
        model.ingest(events[end // 2:end])
        view.set_data(snapshot.build(model, builder).timeline)
        qtbot.waitUntil(lambda: len(paints) > 0, timeout=10_000)
        qtbot.wait(300)
        paints.clear()
        model.ingest(events[end:end + 500])
        snap = snapshot.build(model, builder)
        view.set_data(snap.timeline)
        qtbot.waitUntil(lambda: len(paints) > 0, timeout=10_000)
        qtbot.wait(300)                                   # time for any paint the first one would ask for
        assert len(paints) == 1, paints
        assert paints[0] >= snap.timeline.t_end           # drawn at the range that shows the newest data


def test_spans_taken_in_batches_show_what_they_show_taken_whole(tmp_path, monkeypatch):
    """The timeline takes the model's new spans a batch at a time: locks, semaphores (their slots), queues
    and pool tasks show the same bars and cells, on the same lanes, at every zoom, whatever the batch."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
    import synthetic_run
    path = str(tmp_path / "run.mpgrun")
    synthetic_run.write_run(path, 60_000)
    shown = []
    for batch in (1 << 30, 997):
        monkeypatch.setattr(timeline_data, "SPAN_BATCH", batch)
        with RunFile(path) as rf:
            data = timeline_data.build(RunModel.from_run_file(rf))
        lanes = [(lane.pid, lane.label) for lane in data.lanes + data.threads + data.tracks]
        seen = []
        end = data.t0 + int(data.t_end * 1e9)
        for name, layer in sorted(data.layers.items()):
            for lo, hi, pixel in [(data.t0, end, (end - data.t0) // 1000), (data.t0 + (end - data.t0) // 3,
                                                                            data.t0 + (end - data.t0) // 3 + 10 ** 6,
                                                                            1000)]:
                vis = layer.visible(lo, hi, max(pixel, 1))
                bars = sorted(zip(*(a.tolist() for a in vis.bars)))
                cells = sorted(zip(*(a.tolist() for a in vis.cells))) if vis.cells is not None else None
                seen.append((name, lo - data.t0, vis.level, bars, cells))
        shown.append((lanes, seen))
    assert sum(len(s[3]) + len(s[4] or ()) for s in shown[0][1]) > 1000, "the run shows too little to compare"
    assert shown[0] == shown[1]
