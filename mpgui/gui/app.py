"""Starts the app: ``python main.py`` (or the installed ``mpgui``), optionally with a run file to open."""
import argparse
import sys


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    ap = argparse.ArgumentParser(prog="mpgui", description="mpgui: a desktop lab for Python multiprocessing")
    ap.add_argument("runfile", nargs="?", help="a .mpgrun file to open")
    ap.add_argument("--home", help="data directory (run history and run files)")
    args = ap.parse_args(argv)
    from . import desktop
    desktop.prepare(args.home)           # or one sentence and exit code 2: the window cannot open here

    from PySide6 import QtWidgets
    import pyqtgraph as pg

    from . import theme
    from .main_window import MainWindow

    pg.setConfigOptions(antialias=False, foreground=theme.LANE_TEXT)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("mpgui")
    app.setOrganizationName("mpgui")
    app.setStyle("Fusion")
    app.setStyleSheet(theme.STYLE)
    win = MainWindow(home=args.home)
    win.show()
    if args.runfile:
        win.open_run(args.runfile)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
