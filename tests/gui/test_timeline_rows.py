"""The timeline readable at scale (pytest-qt, offscreen): labels not cut, 64+ lanes scroll, groups collapse,
threads get sub-lanes, phase labels do not overlap, an empty timeline says what to do."""
import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from core.trace import contention
from core.trace.arrays import EVENT_DTYPE
from core.trace.events import Kind
from core.trace.model import RunModel
from mpgui.gui import timeline_data
from mpgui.gui.timeline import MIN_ROW_PX, TimelineView

T0 = 10 ** 12
MAIN = 50
WORKERS = 70
LOCK = 9
FEEDER = 777


def events(rows):
    ev = np.zeros(len(rows), EVENT_DTYPE)
    for i, (t, kind, pid, tid, a, c) in enumerate(rows):
        ev[i] = (T0 + t, LOCK, a, -1, int(kind), c, pid, tid)
    return ev


def big_run(phases=()):
    """The main process (with a second thread that waited for the lock) and 70 pool workers, each holding
    the lock once; ``phases``: (t ns, label) marks."""
    m = RunModel()
    m.set_meta({"created_perf": T0})
    regs = [{"t": "proc", "pid": MAIN, "ppid": 1, "role": "main", "name": "MainProcess"},
            {"t": "obj", "uid": LOCK, "kind": "Lock", "name": "the lock"}]
    regs += [{"t": "proc", "pid": 1000 + i, "ppid": MAIN, "role": "worker", "name": "SpawnPoolWorker-%d" % i}
             for i in range(WORKERS)]
    rows = [(0, Kind.ACQ_REQUEST, MAIN, FEEDER, -1, 0), (5_000_000, Kind.ACQ_OK, MAIN, FEEDER, 5_000_000, 1),
            (6_000_000, Kind.RELEASE, MAIN, FEEDER, 1_000_000, 0)]
    for i in range(WORKERS):
        t = 10_000_000 + i * 2_000_000
        rows += [(t, Kind.ACQ_OK, 1000 + i, 1000 + i, 0, 1), (t + 1_000_000, Kind.RELEASE, 1000 + i, 1000 + i,
                                                             1_000_000, 0)]
    for t, label in phases:
        regs.append({"t": "str", "id": 500 + len(regs), "s": label})
        rows.append((t, Kind.PHASE, MAIN, MAIN, 500 + len(regs) - 1, 0))
    ev = events(rows)
    ev["uid"][ev["kind"] == int(Kind.PHASE)] = 0
    m.ingest(ev[np.argsort(ev["t"], kind="stable")], regs)
    return m


@pytest.fixture
def view(qtbot):
    v = TimelineView()
    qtbot.addWidget(v)
    v.resize(1100, 600)
    v.show()
    return v


def click_row(qtbot, view, i, x=None):
    (vx0, vx1), _ = view.vb.viewRange()
    scene = view.vb.mapViewToScene(QtCore.QPointF((vx0 + vx1) / 2 if x is None else x, i + 0.5))
    qtbot.mouseClick(view.plot.viewport(), QtCore.Qt.LeftButton, pos=view.plot.mapFromScene(scene))


def test_many_lanes_scroll_with_their_labels_whole_and_groups_collapse(qtbot, view):
    data = timeline_data.build(big_run())
    view.set_data(data)
    view.fit()
    QtWidgets.QApplication.processEvents()
    rows = view.rows()
    kinds = [r.kind for r in rows]
    assert kinds.count("process") == WORKERS + 1
    # labels are whole: no "SpawnPoolW…r-5"
    texts = view.axis.tickStrings([i + 0.5 for i in range(len(rows))], 1, 1)
    assert texts == [r.label for r in rows]
    assert any("SpawnPoolWorker-69 · 1069" == t for t in texts)
    # the rows scroll: each at least MIN_ROW_PX high, the last reachable
    _, (y0, y1) = view.vb.viewRange()
    assert view.scrollbar.isVisible() and y1 - y0 < len(rows)
    assert view.vb.height() / (y1 - y0) >= MIN_ROW_PX - 0.5
    view.scroll_rows(1000)
    _, (y0, y1) = view.vb.viewRange()
    assert np.isclose(y1, len(rows))
    view.scroll_rows(-1000)
    _, (y0, y1) = view.vb.viewRange()
    assert np.isclose(y0, 0)
    # the workers' group collapses under its header, and expands again
    header = next(i for i, r in enumerate(rows) if r.kind == "header" and r.group == "worker")
    assert "pool workers (%d)" % WORKERS in rows[header].label
    click_row(qtbot, view, header)
    rows2 = view.rows()
    assert [r.kind for r in rows2].count("process") == 1 and "▸" in rows2[header].label
    assert not view.scrollbar.isVisible()
    click_row(qtbot, view, header)
    assert len(view.rows()) == len(rows)


def test_a_thread_that_recorded_something_gets_a_sub_lane(qtbot, view):
    data = timeline_data.build(big_run())
    view.set_data(data)
    view.fit()
    rows = view.rows()
    assert rows[0].kind == "process" and rows[0].pid == MAIN
    assert rows[1].kind == "thread" and rows[1].pid == MAIN and str(FEEDER) in rows[1].label
    # its wait and hold are on its sub-lane, not on the process's
    waits, holds = data.layers["waits"], data.layers["holds"]
    assert waits.pid.tolist() == [rows[1].key]
    assert rows[1].key in holds.pid.tolist() and MAIN not in holds.pid.tolist()
    hit = view.item.hit(0.003, 1 + 0.7, view.vb.viewPixelSize()[0])
    assert hit is not None and hit[0] == "waits"
    assert "thread %d" % FEEDER in view.describe(*hit)


def test_phase_labels_do_not_overlap(qtbot, view):
    phases = [(i * 4_000_000, "phase number %d" % i) for i in range(12)]
    data = timeline_data.build(big_run(phases))
    view.set_data(data)
    view.fit()
    QtWidgets.QApplication.processEvents()
    view.plot.viewport().repaint()
    boxes = []
    for line in view._marks:
        if line.label.isVisible():
            r = line.label.mapRectToScene(line.label.boundingRect())
            boxes.append(r)
    assert len(boxes) >= 3
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.intersects(b), "phase labels overlap"
    # zoomed in, every label has room
    view.vb.setXRange(0.0, 0.012, padding=0)
    QtWidgets.QApplication.processEvents()
    shown = [line for line in view._marks if line.value() <= 0.012]
    assert shown and all(line.label.isVisible() for line in shown)


def test_an_empty_timeline_says_what_to_do(qtbot, view):
    view.clear()
    QtWidgets.QApplication.processEvents()
    assert view.empty.isVisible()
    assert "Run" in view.empty.text() and "open" in view.empty.text().lower()
    view.set_data(timeline_data.build(big_run()))
    assert not view.empty.isVisible()


def test_a_range_dragged_with_shift_is_announced(qtbot, view):
    view.set_data(timeline_data.build(big_run()))
    view.fit()
    QtWidgets.QApplication.processEvents()
    got = []
    view.sigRangeSelected.connect(lambda a, b: got.append((a, b)))
    cursor = []
    view.sigCursor.connect(cursor.append)
    vp = view.plot.viewport()

    def at(x):
        return view.plot.mapFromScene(view.vb.mapViewToScene(QtCore.QPointF(x, 3.5)))
    shift = QtCore.Qt.ShiftModifier
    for kind, x, buttons in ((QtCore.QEvent.MouseButtonPress, 0.02, QtCore.Qt.LeftButton),
                             (QtCore.QEvent.MouseMove, 0.05, QtCore.Qt.LeftButton),
                             (QtCore.QEvent.MouseMove, 0.08, QtCore.Qt.LeftButton),
                             (QtCore.QEvent.MouseButtonRelease, 0.08, QtCore.Qt.NoButton)):
        p = QtCore.QPointF(at(x))
        ev = QtGui.QMouseEvent(kind, p, vp.mapToGlobal(p), QtCore.Qt.LeftButton, buttons, shift)
        QtWidgets.QApplication.sendEvent(vp, ev)
        QtWidgets.QApplication.processEvents()
    assert len(got) == 1
    a, b = got[0]
    assert abs(a - 0.02) < 0.002 and abs(b - 0.08) < 0.002
    # the cursor: where the mouse is, in seconds, as it moves over the plot
    p = QtCore.QPointF(at(0.06))

    def hovered():        # pyqtgraph drops moves that follow each other too closely: move until one counts
        QtWidgets.QApplication.sendEvent(vp, QtGui.QMouseEvent(QtCore.QEvent.MouseMove, p, vp.mapToGlobal(p),
                                                                QtCore.Qt.NoButton, QtCore.Qt.NoButton,
                                                                QtCore.Qt.NoModifier))
        return cursor and abs(cursor[-1] - 0.06) < 0.002
    qtbot.waitUntil(hovered, timeout=5000)


def test_a_timeline_without_tracks_has_its_processes_lanes_only(qtbot):
    """A comparison's timelines are sized to their processes: no headers, tracks or sub-lanes; a thread's
    bars are drawn on its process's lane."""
    view = TimelineView(tracks=False)
    qtbot.addWidget(view)
    view.resize(1100, 400)
    view.show()
    data = timeline_data.build(big_run())
    view.set_data(data)
    view.fit()
    rows = view.rows()
    assert [r.kind for r in rows] == ["process"] * (WORKERS + 1)
    assert [r.key for r in rows] == [lane.pid for lane in data.lanes]
    hit = view.item.hit(0.003, 0 + 0.7, view.vb.viewPixelSize()[0])
    assert hit is not None and hit[0] == "waits" and "thread %d" % FEEDER in view.describe(*hit)
    assert not view.counters_button.isVisible()
    _, (y0, y1) = view.vb.viewRange()               # every lane in view, however many: nothing scrolls
    assert not view.scrollbar.isVisible() and (y0, y1) == pytest.approx((0, WORKERS + 1))


def test_a_click_on_a_track_selects_its_object_and_a_second_click_lets_it_go(qtbot, view):
    view.set_data(timeline_data.build(big_run()))
    view.fit()
    got = []
    view.sigObjectSelected.connect(got.append)
    links = np.zeros(1, dtype=contention.LINK_DTYPE)
    links["uid"], links["from_pid"], links["from_tid"] = LOCK, 1000, 1000
    links["to_pid"], links["to_tid"], links["from_t"], links["to_t"] = 1001, 1001, T0 + 11_000_000, T0 + 12_000_000
    view.set_links(links)
    row = next(i for i, r in enumerate(view.rows()) if r.kind == "object")
    view.scroll_rows(1000)
    click_row(qtbot, view, row, x=0.008)            # off every bar (the thread's hold ends at 6 ms)
    assert got == [LOCK] and view.selected_object == LOCK
    x0, y0, x1, y1 = view.item.arrows               # the one link: worker 0's release to worker 1's wait
    assert len(x0) == 1 and np.isclose(x0[0], 0.011) and np.isclose(x1[0], 0.012)
    assert view.rows()[int(y0[0])].pid == 1000 and view.rows()[int(y1[0])].pid == 1001
    click_row(qtbot, view, row, x=0.008)
    assert view.selected_object is None and view.item.arrows is None
