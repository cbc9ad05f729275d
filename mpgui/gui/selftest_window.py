"""The self-test's window check, in a process of its own (``main.py _show-run RUNFILE``): the app's main
window opens a run and must draw its lock holds.  It is what proves a packaged app's GUI starts, which its
command line alone does not."""
import os
import tempfile
import time

from mpgui.selftest import EXIT_FAILED, EXIT_OK, MIN_HOLD_PIXELS, WAIT_S


def show_run(run_path):
    """In its own process: open ``run_path`` in the main window (offscreen) and count the timeline's pixels
    of the lock-hold colour.  Prints one line; exit code 0 if the holds are drawn."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6 import QtCore, QtGui, QtWidgets
    import pyqtgraph as pg

    from . import theme
    from .main_window import MainWindow
    pg.setConfigOptions(antialias=False, foreground=theme.LANE_TEXT)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["mpgui"])
    app.setStyle("Fusion")
    app.setStyleSheet(theme.STYLE)
    with tempfile.TemporaryDirectory(prefix="mpgui-selftest-", ignore_cleanup_errors=True) as tmp:
        settings = QtCore.QSettings(os.path.join(tmp, "settings.ini"), QtCore.QSettings.IniFormat)
        win = MainWindow(home=os.path.join(tmp, "home"), settings=settings)
        win.resize(1200, 800)
        win.show()
        win.open_run(run_path)
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline and (win.source is None or win.source.snapshot is None
                                                or win.source.state in ("loading", "starting", "running")):
            app.processEvents(QtCore.QEventLoop.AllEvents, 50)
        win.timeline.fit()
        for _ in range(10):
            app.processEvents(QtCore.QEventLoop.AllEvents, 20)
        img = win.timeline.grab().toImage().convertToFormat(QtGui.QImage.Format_RGB32)
        hold = QtGui.QColor(theme.LOCK_HOLD).rgb() & 0xFFFFFF
        pixels = sum(1 for y in range(img.height()) for x in range(0, img.width(), 2)
                     if img.pixel(x, y) & 0xFFFFFF == hold)
        state = win.source.state if win.source is not None else "no run"
        win.close()
        settings.sync()
    print("%s on Qt's %s platform: %s, the timeline shows %d lock-hold pixels"
          % ("window opened the run" if pixels >= MIN_HOLD_PIXELS else "window did not draw the run",
             app.platformName(), state, pixels))
    return EXIT_OK if pixels >= MIN_HOLD_PIXELS else EXIT_FAILED
