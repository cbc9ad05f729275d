"""The CPU view (pytest-qt, offscreen): it plots the run's own processes, each and summed, with the whole
machine as a faint reference (another program's load must not show as the run's), on the timeline's time
axis (panned and zoomed together)."""
import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from core.trace.model import RunModel
from mpgui.gui import snapshot, theme
from mpgui.gui.cpu_view import CpuView, run_cpu
from mpgui.gui.timeline import TimelineView

T0 = 10 ** 12
MAIN, W1, W2 = 100, 101, 102


def busy_machine_run():
    """A run of three processes using little CPU (5%, 20%, 35% of a core) on a machine that another program
    keeps 90% busy (both cores): 20 samples, 0.1 s apart."""
    m = RunModel()
    m.set_meta({"created_perf": T0})
    m.ingest(None, [{"t": "proc", "pid": MAIN, "ppid": 1, "role": "main", "name": "MainProcess"},
                    {"t": "proc", "pid": W1, "ppid": MAIN, "role": "worker", "name": "worker-1"},
                    {"t": "proc", "pid": W2, "ppid": MAIN, "role": "worker", "name": "worker-2"}])
    samples = []
    for i in range(20):
        procs = [{"pid": MAIN, "cpu": 5.0, "rss": 10 << 20}, {"pid": W1, "cpu": 20.0, "rss": 20 << 20},
                 {"pid": W2, "cpu": 35.0, "rss": 30 << 20}]
        samples.append((T0 + i * 100_000_000, {"cores": [90.0, 90.0], "procs": procs}))
    m.ingest(None, (), samples)
    return m


@pytest.fixture
def views(qtbot):
    """A timeline over a CPU view, as the main window stacks them."""
    box = QtWidgets.QWidget()
    lay = QtWidgets.QVBoxLayout(box)
    tl, cpu = TimelineView(), CpuView()
    lay.addWidget(tl)
    lay.addWidget(cpu)
    qtbot.addWidget(box)
    box.resize(1000, 700)
    box.show()
    cpu.link_x(tl.plot, tl.stop_following)
    yield tl, cpu
    box.close()


def screen_x(plot, vb, x):
    """Where time ``x`` (s) is on the screen, in a plot."""
    scene = vb.mapViewToScene(QtCore.QPointF(x, 0.5))
    return plot.mapToGlobal(plot.mapFromScene(scene)).x()


def test_the_cpu_plot_is_the_runs_own_processes_with_the_machine_faint(qtbot, views):
    tl, cpu = views
    snap = snapshot.build(busy_machine_run())
    tl.set_data(snap.timeline)
    cpu.show_run(snap)
    times, total, per = run_cpu(snap)
    assert sorted(per) == [MAIN, W1, W2]
    assert np.allclose(total, 60.0)                 # 5 + 20 + 35: the run's, not the machine's 90% x 2
    # drawn: the summed curve is the run's; each process has its own curve, in its owner-slice colour
    x, y = cpu.total_curve.getData()
    assert len(x) == 20 and np.allclose(y, 60.0)
    assert sorted(cpu.proc_curves) == [MAIN, W1, W2]
    assert np.allclose(cpu.proc_curves[W2].getData()[1], 35.0)
    assert cpu.proc_curves[W1].opts["pen"].color().name() == theme.PROCESS_COLORS[W1 % 8]
    # the machine: a faint reference, in the same unit (100% = one core): 2 cores at 90%
    assert cpu.machine_curve.isVisible()
    assert np.allclose(cpu.machine_curve.getData()[1], 180.0)
    assert cpu.machine_curve.opts["pen"].color().name() == theme.CPU_MACHINE
    assert "run" in cpu.title.text()
    # the per-core curves (the machine's) only when asked
    assert not any(c.isVisible() for c in cpu.curves)


def test_the_cpu_plot_shares_the_timelines_time_axis(qtbot, views):
    tl, cpu = views
    snap = snapshot.build(busy_machine_run())
    tl.set_data(snap.timeline)
    cpu.show_run(snap)
    # the same origin: a process's first sample is at the same x on both
    assert np.isclose(cpu.proc_curves[W1].getData()[0][0], 0.0)
    # a moment is at the same place on the screen in both, whoever pans or zooms
    cvb = cpu.plot.getViewBox()
    tl.set_follow(False)
    def lined_up(lo, hi):
        return all(abs(screen_x(tl.plot, tl.vb, x) - screen_x(cpu.plot, cvb, x)) <= 2 for x in (lo, (lo + hi) / 2, hi))
    qtbot.waitUntil(lambda: lined_up(0.0, 1.0), timeout=5000)
    tl.vb.setXRange(0.5, 1.2, padding=0)          # the timeline moves by itself (following a live run)
    qtbot.waitUntil(lambda: lined_up(0.5, 1.2), timeout=5000)
    cvb.setXRange(0.2, 0.4, padding=0)            # the user zooms the CPU plot
    cvb.sigRangeChangedManually.emit(cvb.state["mouseEnabled"])
    assert lined_up(0.2, 0.4) and not tl.follow
    tl.vb.setXRange(1.0, 1.9, padding=0)
    tl.vb.sigRangeChangedManually.emit(tl.vb.state["mouseEnabled"])     # the user pans the timeline
    assert lined_up(1.0, 1.9)
    assert not cpu.window_box.isVisible()        # the timeline decides the window
    # with no run, the machine's own cores again, on an axis of their own
    cpu.show_machine()
    assert cpu.window_box.isVisible() and not cpu.machine_curve.isVisible()


def test_the_legend_names_the_busiest_processes_and_every_process_keeps_its_curve(qtbot, views):
    from mpgui.gui.cpu_view import LEGEND_PROCESSES
    m = RunModel()
    m.set_meta({"created_perf": T0})
    n = LEGEND_PROCESSES + 4
    m.ingest(None, [{"t": "proc", "pid": 200 + i, "ppid": 1, "role": "worker", "name": "w%d" % i}
                    for i in range(n)])
    m.ingest(None, (), [(T0 + k * 100_000_000, {"cores": [50.0, 50.0],
                                                "procs": [{"pid": 200 + i, "cpu": 1.0 + i, "rss": 1 << 20}
                                                          for i in range(n)]}) for k in range(10)])
    tl, cpu = views
    cpu.show_run(snapshot.build(m))
    assert len(cpu.proc_curves) == n                                  # all drawn ...
    named = sorted(name for name in cpu._in_legend.values() if " · " in name)
    busiest = sorted("w%d · %d" % (i, 200 + i) for i in range(n - LEGEND_PROCESSES, n))
    assert named == busiest                                           # ... the busiest named
    assert "the run (sum)" in cpu._in_legend.values() and "whole machine" in cpu._in_legend.values()
