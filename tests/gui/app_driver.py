"""Starts the real app through main.py's front door and drives it from inside (run as a program by tests).

    python tests/gui/app_driver.py REPORT.json MODE [APP ARGS...]

Modes, each ending the app by itself and writing what it saw to REPORT.json:

    scenario   pick lock_contention with small knobs, press Run, wait for the end, then grab the X screen
               (what the display server really shows, not Qt's own buffer) and count the timeline's pixels
               of the lock-hold colour; the picture goes beside the report as screen.png
    error      an exception escapes a Qt slot (a bug), then the app ends: where did its traceback go?

Nothing in the app is changed: the main window class is wrapped so that the driver starts once the window
is shown.
"""
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

#: How long a run of the small scenario may take before the driver gives up (the run takes about 2 s).
RUN_DEADLINE_S = 90.0
POLL_MS = 50


def main():
    report_path, mode, app_args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if mode == "error":
        sys.stdout = sys.stderr = None                # a windowed build has no console
    from PySide6 import QtCore

    import mpgui.gui.main_window as main_window

    report = {"mode": mode}

    def finish(**facts):
        from PySide6 import QtWidgets
        report.update(facts)
        report["platform"] = QtWidgets.QApplication.platformName()
        with open(report_path, "w") as f:
            json.dump(report, f)
        QtWidgets.QApplication.instance().quit()

    class DrivenWindow(main_window.MainWindow):
        def show(self):
            super().show()
            if not getattr(self, "_driven", False):
                self._driven = True
                QtCore.QTimer.singleShot(0, lambda: (drive_scenario if mode == "scenario" else drive_error)(
                    self, finish))

    main_window.MainWindow = DrivenWindow
    import main as front_door
    code = front_door.main(app_args)
    report.setdefault("exit", code)
    return code


def drive_error(win, finish):
    from PySide6 import QtCore

    def bug():
        raise RuntimeError("a bug in a slot, for the log")

    QtCore.QTimer.singleShot(0, bug)
    QtCore.QTimer.singleShot(200, lambda: finish(done=True))


def drive_scenario(win, finish):
    from PySide6 import QtCore

    win.resize(1400, 900)
    win.launcher.select("lock_contention")
    for name, value in (("processes", "2"), ("increments", "100"), ("hold_ms", "1"),
                        ("mode", "with lock")):
        win.launcher.fields[name].set_value(value)
    win.launcher.run_button.click()
    t0 = time.monotonic()
    timer = QtCore.QTimer(win)

    def poll():
        src = win.source
        ended = src is not None and src.state in ("done", "failed", "cancelled", "error")
        if ended and src.snapshot is not None and not win.launcher.stop_button.isEnabled():
            timer.stop()
            win.timeline.fit()
            # Let the window paint what the run left, then look at the display server's own pixels.
            QtCore.QTimer.singleShot(500, lambda: look(win, src, finish))
        elif time.monotonic() - t0 > RUN_DEADLINE_S:
            timer.stop()
            finish(state=getattr(src, "state", None), error="the run did not end in %.0f s" % RUN_DEADLINE_S)

    timer.timeout.connect(poll)
    timer.start(POLL_MS)


def look(win, src, finish):
    from PySide6 import QtCore, QtGui, QtWidgets

    from mpgui.gui import theme
    screen = QtWidgets.QApplication.primaryScreen()
    shot = screen.grabWindow(0)                                   # the whole X screen
    path = os.path.join(os.path.dirname(os.path.abspath(sys.argv[1])), "screen.png")
    shot.save(path)
    img = shot.toImage().convertToFormat(QtGui.QImage.Format_RGB32)
    dpr = shot.devicePixelRatio()
    top_left = win.timeline.mapToGlobal(QtCore.QPoint(0, 0)) - screen.geometry().topLeft()
    area = QtCore.QRect(int(top_left.x() * dpr), int(top_left.y() * dpr), int(win.timeline.width() * dpr),
                        int(win.timeline.height() * dpr)).intersected(img.rect())
    hold = QtGui.QColor(theme.LOCK_HOLD).rgb() & 0xFFFFFF
    hold_pixels = other = 0
    for y in range(area.top(), area.bottom() + 1, 2):
        for x in range(area.left(), area.right() + 1, 2):
            rgb = img.pixel(x, y) & 0xFFFFFF
            if rgb == hold:
                hold_pixels += 1
            elif rgb != 0xFFFFFF:
                other += 1
    finish(state=src.state, error=src.error, events=src.snapshot.events, lesson=win.launcher.lesson.text(),
           timeline_area=[area.x(), area.y(), area.width(), area.height()], hold_pixels=hold_pixels,
           other_pixels=other, screenshot=path, window_visible=win.isVisible())


if __name__ == "__main__":
    sys.exit(main())
