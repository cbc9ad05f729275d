"""The GUI tests' shared fixtures: the app's main window as a user gets it (the app's style, a history and
settings of the test's own), closed after the test."""
import pytest
from PySide6 import QtCore, QtWidgets

from mpgui.gui import theme
from mpgui.gui.main_window import MainWindow


@pytest.fixture
def settings(tmp_path):
    """The window's settings, in the test's own file (never the user's)."""
    return QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.IniFormat)


@pytest.fixture
def window(qtbot, tmp_path, settings):
    """The main window, shown, with its history in the test's own home."""
    QtWidgets.QApplication.instance().setStyleSheet(theme.STYLE)
    w = MainWindow(home=str(tmp_path / "home"), settings=settings)
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    yield w
    w.close()
