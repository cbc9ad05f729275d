"""The event log reads every kind in words, and the timeline draws the model's moments as ticks with their
description (pytest-qt, offscreen, synthetic events)."""
import signal

import numpy as np
from PySide6 import QtCore, QtGui

from core.trace import schema
from core.trace.arrays import EVENT_DTYPE
from core.trace.events import Kind
from core.trace.model import RunModel
from mpgui.gui import theme
from mpgui.gui.events_view import EventLogView
from mpgui.gui.timeline import TimelineView
from mpgui.gui.timeline_data import build

MAIN, WORKER, CHAN = 100, 201, 55
MS = 1_000_000


def model_of(rows):
    """rows: (ms, kind, pid, uid, a, b, c)."""
    ev = np.zeros(len(rows), EVENT_DTYPE)
    for i, (t, kind, pid, uid, a, b, c) in enumerate(rows):
        ev[i] = (t * MS, uid, a, b, int(kind), c, pid, pid)
    m = RunModel(keep_events=True)
    m.set_meta({"created_perf": 0})
    m.ingest(ev, [{"t": "proc", "pid": MAIN, "ppid": 1, "role": "main", "name": "MainProcess"},
                  {"t": "proc", "pid": WORKER, "ppid": MAIN, "role": "process", "name": "listener"},
                  {"t": "obj", "uid": CHAN, "kind": "SignalChannel", "name": "pings"},
                  {"t": "str", "id": 9, "s": "get"}])
    return m


def test_the_event_log_describes_every_kind_in_words(qtbot):
    rows = [(i + 1, kind, MAIN, CHAN, 3, 1, 1) for i, kind in enumerate(Kind)]
    m = model_of(rows)
    view = EventLogView()
    qtbot.addWidget(view)
    view.refresh(m)
    table = view.model
    assert table.rowCount() == len(rows)
    for r in range(table.rowCount()):
        kind = Kind(int(m.events.view()["kind"][table.rows[r]]))
        details = table.data(table.index(r, 5))
        assert details == schema.describe(kind, 3, 1, 1, {9: "get"})
        assert "a=" not in details and "b=" not in details and "c=" not in details, (kind, details)
        assert table.data(table.index(r, 3)) == kind.name.lower().replace("_", " ")
    sig = [r for r in range(table.rowCount()) if table.data(table.index(r, 3)) == "signal recv"][0]
    assert table.data(table.index(sig, 5)) == "handled SIGQUIT"
    assert table.data(table.index(sig, 4)) == "pings"


def test_the_timeline_draws_moments_as_ticks_with_their_description(qtbot):
    m = model_of([(0, Kind.PROC_BOOT, WORKER, 0, MAIN, 0, 0),
                  (400, Kind.SIGNAL_SEND, MAIN, CHAN, signal.SIGUSR1, WORKER, 0),
                  (420, Kind.SIGNAL_RECV, WORKER, CHAN, signal.SIGUSR1, 0, 0),
                  (700, Kind.PROC_TERMINATE, MAIN, 0, WORKER, 0, 0),
                  (1000, Kind.PROC_EXIT, WORKER, 0, 0, 0, 0)])
    view = TimelineView()
    qtbot.addWidget(view)
    view.resize(900, 300)
    view.show()
    data = build(m)
    view.set_data(data)
    view.fit()
    moments = data.layers["moments"]
    assert len(moments) == 3
    lanes = {lane.pid: i for i, lane in enumerate(data.lanes)}
    assert moments.pid.tolist() == [MAIN, WORKER, WORKER]         # the terminate request: on its target

    # drawn: the ticks' colour is on screen, and only where the moments are
    def tick_pixels():
        img = view.plot.grab().toImage()
        want = QtGui.QColor(theme.SIGNAL_MOMENT).rgb()
        return sum(1 for y in range(0, img.height(), 2) for x in range(img.width()) if img.pixel(x, y) == want)
    qtbot.waitUntil(lambda: tick_pixels() > 10, timeout=5000)

    # hovering one tells what happened, in words
    pw = view.vb.viewPixelSize()[0]
    hit = view.item.hit(0.42, lanes[WORKER] + 0.2, pw)
    assert hit is not None and hit[0] == "moments"
    text = view.describe(*hit)
    assert "signal recv pings" in text and "handled SIGUSR1" in text and "listener (pid %d)" % WORKER in text
    hit = view.item.hit(0.70, lanes[WORKER] + 0.2, pw)
    text = view.describe(*hit)
    assert "asked pid %d to terminate (SIGTERM), by MainProcess (pid %d)" % (WORKER, MAIN) in text
    scene = view.vb.mapViewToScene(QtCore.QPointF(0.42, lanes[WORKER] + 0.2))
    assert view._hit_at(scene) == ("moments", 1)
