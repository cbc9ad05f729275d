"""The timeline's label column (pytest-qt, offscreen): as wide as its longest label needs, never narrower
than its minimum, however short the lane names."""
import pytest

from mpgui.gui.timeline import TimelineView
from mpgui.gui.timeline_data import Lane, TimelineData
from mpgui.gui.timeline_rows import LABEL_MAX_PX, LABEL_MIN_PX


@pytest.fixture
def view(qtbot):
    v = TimelineView()
    qtbot.addWidget(v)
    v.resize(900, 400)
    v.show()
    return v


def test_short_lane_names_keep_the_label_columns_minimum_width(qtbot, view):
    view.set_data(TimelineData([Lane(7, "main · 7", "main", "running")], {}, [], 1.0))
    assert view.axis.needed_width() == LABEL_MIN_PX
    qtbot.waitUntil(lambda: view.axis.width() == LABEL_MIN_PX, timeout=10_000)


def test_long_lane_names_widen_the_label_column_up_to_its_bound(qtbot, view):
    lanes = [Lane(7, "main · 7", "main", "running"),
             Lane(8, "SpawnPoolWorker-1 · 8", "worker", "running"),
             Lane(9, "x" * 400 + " · 9", "worker", "running")]
    view.set_data(TimelineData(lanes, {}, [], 1.0))
    qtbot.waitUntil(lambda: view.axis.width() == LABEL_MAX_PX, timeout=10_000)
    view.set_data(TimelineData(lanes[:2], {}, [], 1.0))
    qtbot.waitUntil(lambda: LABEL_MIN_PX < view.axis.width() < LABEL_MAX_PX, timeout=10_000)
