"""The contention panel, after real runs of the scenarios (pytest-qt, offscreen): what it shows live and for a
saved run, read back from its widgets and the pictures and figures they were drawn from."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from PySide6 import QtCore

from core.trace.events import Kind
from core.trace.model import Span
from core.trace.units import fmt_ns
from core.trace.store import RunFile
from mpgui.gui import contention_data
from mpgui.gui.contention_view import DETAIL_GENERATIONS, DETAIL_PROCESSES

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN_TIMEOUT_MS = 120_000
FIGURES_TIMEOUT_MS = 60_000


@pytest.fixture
def window(window):
    """The main window (tests/gui/conftest.py) with the Contention tab shown."""
    window.tabs.setCurrentWidget(window.contention)
    return window


def start(qtbot, window, scenario, **params):
    window.launcher.select(scenario)
    for k, v in params.items():
        window.launcher.fields[k].set_value(v)
    assert window.launcher.run_button.isEnabled(), window.launcher.error.text()
    qtbot.mouseClick(window.launcher.run_button, QtCore.Qt.LeftButton)
    qtbot.waitUntil(lambda: window.source is not None, timeout=10_000)


def watch_until_done(qtbot, window):
    """Every state picture the panel drew while the run went, until the run ended and its figures came."""
    seen = []

    def done():
        pic = window.contention.picture
        if pic is not None and (not seen or seen[-1] is not pic):
            seen.append(pic)
        return window.source.state in ("done", "failed", "cancelled", "error")

    qtbot.waitUntil(done, timeout=RUN_TIMEOUT_MS)
    assert window.source.state == "done", window.source.error
    wait_for_final_figures(qtbot, window)
    return seen


def wait_for_final_figures(qtbot, window):
    panel = window.contention
    qtbot.waitUntil(lambda: panel._final and panel._analysis is not None and not panel._busy
                    and panel.figures is not None, timeout=FIGURES_TIMEOUT_MS)
    return panel.figures


def uid_named(figs, name):
    found = [u for u, n in figs.names.items() if n == name]
    assert found, "no object named %r in %s" % (name, sorted(figs.names.values()))
    return found[0]


def of(picture, name):
    return [o for o in picture.objects if o.name == name]


def test_a_live_lock_contention_run_shows_the_holder_and_the_waiters_in_order(qtbot, window):
    start(qtbot, window, "lock_contention", processes="3", increments="40", hold_ms="10", mode="with lock")
    seen = watch_until_done(qtbot, window)
    live = [o for pic in seen if pic.live for o in of(pic, "counter lock")]
    assert live, "the panel never showed the counter lock live"
    # a Lock has at most one holder, who is not among its waiters; waiters are listed in the order they came
    assert all(len(o.holders) <= 1 for o in live)
    contended = [o for o in live if o.holders and o.waiters]
    assert contended, "no live picture showed a holder with waiters (3 workers holding the lock 10 ms each)"
    workers = {p.pid for p in window.source.snapshot.procs if p.name.startswith("incrementer")}
    for o in contended:
        assert {o.holders[0].pid} <= workers and {w.pid for w in o.waiters} <= workers
        assert o.holders[0].pid not in {w.pid for w in o.waiters}
        assert [w.since for w in o.waiters] == sorted(w.since for w in o.waiters)
    # the tree says it in words: the holder, then each waiter with its rank
    tree = window.contention.state_tree
    assert any(tree.topLevelItem(i).text(0) == "counter lock" for i in range(tree.topLevelItemCount()))


def test_a_semaphore_run_never_shows_more_holders_than_its_value(qtbot, window):
    start(qtbot, window, "semaphore", processes="5", slots="2", rounds="6", hold_ms="20")
    seen = watch_until_done(qtbot, window)
    live = [o for pic in seen if pic.live for o in of(pic, "resource slots")]
    assert live and all(len(o.holders) <= 2 for o in live)
    for o in live:
        if o.value is not None:
            assert o.value >= 0 and len(o.holders) <= o.initial == 2
    figs = window.contention.figures
    uid = uid_named(figs, "resource slots")
    held = figs.holders[uid]
    assert held["holders"].max() == 2 and held["value"].min() == 0
    # replayed at moments of the saved run: in stretches where both slots were taken while a worker waited
    # for one, the state names two holders and the waiter; and never more than two holders anywhere
    panel = window.contention
    links = figs.links[uid]
    full = np.flatnonzero(held["holders"][:-1] == 2)
    moments = []
    for i in full.tolist():
        lo, hi = int(held["t"][i]), int(held["t"][i + 1])
        waiting = links[(links["wait_t0"] < hi) & (links["to_t"] > lo)]
        if len(waiting):
            lo, hi = max(lo, int(waiting["wait_t0"].max())), min(hi, int(waiting["to_t"].min()))
            if hi - lo > 2:
                moments.append((lo + hi) // 2)
    assert moments, "no stretch with both slots taken and a worker waiting"
    for t in moments[:: max(1, len(moments) // 4)]:
        with qtbot.waitSignal(panel.sigState, timeout=10_000) as got:
            panel.set_cursor((t - figs.t0) / 1e9)
        slots = of(got.args[0], "resource slots")[0]
        assert len(slots.holders) == 2 and slots.waiters and slots.value == 0
    for at in np.linspace(0.1, window.source.snapshot.elapsed, 5).tolist():
        with qtbot.waitSignal(panel.sigState, timeout=10_000) as got:
            panel.set_cursor(at)
        slots = of(got.args[0], "resource slots")
        assert slots and len(slots[0].holders) <= 2


def test_a_barrier_run_shows_every_generation_and_the_broken_barriers(qtbot, window):
    start(qtbot, window, "barrier", processes="3", phases="3", work_ms="20", slowdown="2", timeout="0.2")
    watch_until_done(qtbot, window)
    panel = window.contention
    figs = panel.figures
    phase = figs.generations[uid_named(figs, "phase barrier")]
    assert [g.generation for g in phase] == [0, 1, 2]
    workers = {p.pid for p in window.source.snapshot.procs if p.name.startswith("phase-worker")}
    for g in phase:
        assert g.parties == 3 and {pid for pid, _ in g.arrivals} == workers and g.released is not None
        assert not g.broken and g.released >= max(t for _, t in g.arrivals)
    for name in ("stranded barrier", "aborted barrier"):
        gens = figs.generations[uid_named(figs, name)]
        assert len(gens) == 1 and gens[0].broken and len(gens[0].arrivals) == 3 and gens[0].parties == 4
    # on screen: the generations table of the stranded barrier, and the state page
    panel.pages.setCurrentIndex(1)
    panel.details.setCurrentIndex(DETAIL_GENERATIONS)
    panel._select_uid(uid_named(figs, "stranded barrier"))
    table = panel.gen_table
    assert table.rowCount() == 1 and table.item(0, 4).text() == "broken"
    assert table.item(0, 1).text() == "3 of 4"
    panel._select_uid(uid_named(figs, "phase barrier"))
    assert [table.item(r, 4).text() for r in range(table.rowCount())] == ["passed"] * 3
    end = {o.name: o for o in window.source.snapshot.state.objects}
    assert end["stranded barrier"].broken and end["aborted barrier"].broken and not end["phase barrier"].broken
    assert "broken" in end["aborted barrier"].state_text()


def test_unblocked_by_links_each_contended_acquire_to_the_release_before_it(qtbot, window):
    start(qtbot, window, "lock_contention", processes="3", increments="40", hold_ms="5", mode="with lock")
    watch_until_done(qtbot, window)
    figs = window.contention.figures
    uid = uid_named(figs, "counter lock")
    with RunFile(window.source.path) as rf:
        ev = rf.read_all()[0]
    ev = ev[ev["uid"] == np.uint64(uid)]
    rel = ev[(ev["kind"] == Kind.RELEASE) & (ev["c"] <= 0)]
    rel = rel[np.argsort(rel["t"], kind="stable")]
    contended = ev[(ev["kind"] == Kind.ACQ_OK) & (ev["a"] > 0)]
    assert len(contended) >= 3          # the workers overlap for most of their 200 ms each
    links = window.contention._all_links_of(uid)
    by_end = {(int(ln["to_pid"]), int(ln["to_t"])): ln for ln in links}
    for acq in contended:
        before = rel[rel["t"] <= acq["t"]]
        if not len(before) or before["pid"][-1] == acq["pid"]:
            continue            # the first acquisition, or it took the lock back from itself
        ln = by_end[(int(acq["pid"]), int(acq["t"]))]
        assert int(ln["from_t"]) == int(before["t"][-1]) and int(ln["from_pid"]) == int(before["pid"][-1])
        assert int(ln["latency"]) == int(acq["t"]) - int(before["t"][-1]) >= 0
        assert int(ln["wait_t0"]) == int(acq["t"]) - int(acq["a"])
    # a wait clicked on the timeline: the panel says who let it go and the handoff
    ln = links[-1]
    window.contention.show_wait(uid, int(ln["to_pid"]), int(ln["to_tid"]), int(ln["to_t"]))
    text = window.contention.handoff_label.text()
    assert "unblocked by" in text and "pid %d" % int(ln["from_pid"]) in text and "handoff" in text


def test_the_figures_are_computed_off_the_qt_thread_and_answer_a_range(qtbot, window, monkeypatch):
    read_in = []
    real = contention_data.RunAnalyser.report

    def spy(self):
        read_in.append(threading.current_thread())
        return real(self)

    monkeypatch.setattr(contention_data.RunAnalyser, "report", spy)
    start(qtbot, window, "lock_contention", processes="2", increments="40", hold_ms="5", mode="with lock")
    watch_until_done(qtbot, window)
    assert read_in and all(t is not threading.main_thread() for t in read_in)
    panel = window.contention
    whole = panel.figures.objects
    uid = uid_named(panel.figures, "counter lock")
    total = int(whole["acquired"][whole["uid"] == np.uint64(uid)][0])
    # up to the gap between its middle two holds, then from it: their acquisitions add up to the whole run's
    # (the gap, not a handoff: on a busy machine one worker can finish before the other starts, and then no
    # hold is handed from one to the other)
    spans = window.source.model.spans_array()
    holds = np.sort(spans[(spans["kind"] == Span.LOCK_HOLD) & (spans["uid"] == np.uint64(uid))], order="t0")
    k = len(holds) // 2
    half = ((int(holds["t1"][k - 1]) + int(holds["t0"][k])) / 2 - panel.figures.t0) / 1e9
    counts, held, pids = [], [], set()
    for lo, hi in ((0.0, half), (half, window.source.snapshot.elapsed + 1.0)):
        with qtbot.waitSignal(panel.sigFigures, timeout=FIGURES_TIMEOUT_MS) as got:
            panel.set_range(lo, hi)
        o = got.args[0].objects
        counts.append(int(o["acquired"][o["uid"] == np.uint64(uid)].sum()))
        # who held it in that range, and for how long: every hold released in it, by the workers that held
        # it then (one hold may straddle the boundary: acquired in the first range, released in the second;
        # on a busy machine one worker may have finished its share before the second range)
        holders = got.args[0].by_process[uid]
        held.append(int(holders["holds"].sum()))
        pids |= set(holders["pid"].tolist())
        assert abs(held[-1] - counts[-1]) <= 1 and 1 <= len(holders) <= 2
        assert (holders["hold_max"] <= holders["hold_total"]).all() and (holders["hold_max"] >= 5_000_000).all()
        panel.pages.setCurrentIndex(1)
        panel.details.setCurrentIndex(DETAIL_PROCESSES)
        panel._select_uid(uid)
        assert panel.process_table.rowCount() == len(holders)
    assert len(pids) == 2                                  # both workers, over the whole run
    assert sum(counts) == sum(held) == total == 80 and min(counts) > 0
    assert panel.range_label.text().startswith("Figures for ")


def test_a_run_file_that_went_away_gets_one_sentence_not_a_traceback(qtbot, window, tmp_path):
    out = str(tmp_path / "gone.mpgrun")
    subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), "run", "lock_contention", "--set", "processes=2",
                    "--set", "increments=20", "--set", "mode=with lock", "--out", out, "--quiet"], check=True,
                   timeout=120, capture_output=True, env=dict(os.environ, MPGUI_HOME=str(tmp_path / "home")))
    window.tabs.setCurrentWidget(window.processes)         # the panel is not asked for figures yet
    window.open_run(out)
    qtbot.waitUntil(lambda: window.source.state in ("done", "interrupted", "error"), timeout=RUN_TIMEOUT_MS)
    os.unlink(out)
    window.tabs.setCurrentWidget(window.contention)
    window.contention.pages.setCurrentIndex(1)
    label = window.contention.busy_label
    qtbot.waitUntil(lambda: label.text().startswith("The figures could not be computed"), timeout=30_000)
    assert label.text().endswith("open the run again.") and "\n" not in label.text()
    assert "Traceback" not in label.text()


def test_a_wait_clicked_on_the_timeline_says_who_let_it_go(qtbot, window):
    start(qtbot, window, "lock_contention", processes="3", increments="20", hold_ms="5", mode="with lock")
    watch_until_done(qtbot, window)
    figs = window.contention.figures
    uid = uid_named(figs, "counter lock")
    link = figs.links[uid][len(figs.links[uid]) // 2]
    # the bar of that wait on the timeline: its span ends when the wait did
    data = window.timeline.data
    spans = data.spans
    ref = next(i for i in range(len(spans)) if int(spans[i]["kind"]) == Span.LOCK_WAIT
               and int(spans[i]["pid"]) == int(link["to_pid"]) and int(spans[i]["t1"]) == int(link["to_t"]))
    window.tabs.setCurrentWidget(window.processes)
    wait = window.timeline.wait_of("waits", ref)          # what the timeline announces when the bar is clicked
    assert (wait["uid"], wait["t1"]) == (uid, int(link["to_t"]))
    window.timeline.sigWaitSelected.emit(wait)
    assert window.tabs.currentWidget() is window.contention
    qtbot.waitUntil(lambda: "unblocked by" in window.contention.handoff_label.text(), timeout=FIGURES_TIMEOUT_MS)
    text = window.contention.handoff_label.text()
    assert "pid %d" % int(link["from_pid"]) in text and fmt_ns(int(link["latency"])) in text


def test_an_object_selected_in_the_panel_or_on_the_timeline_is_selected_in_both(qtbot, window):
    start(qtbot, window, "lock_contention", processes="3", increments="20", hold_ms="5", mode="with lock")
    watch_until_done(qtbot, window)
    figs = window.contention.figures
    uid = uid_named(figs, "counter lock")
    window.timeline.select_object(uid)                    # its track clicked: the panel shows the object
    assert window.contention._selected_uid == uid
    window.timeline.clear_selection()
    assert window.timeline.selected_object is None
    window.contention.sigObjectSelected.emit(uid)         # its row clicked: the timeline draws its arrows
    assert window.timeline.selected_object == uid
