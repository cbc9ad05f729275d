"""The Qt binding the app runs on must not corrupt the interpreter (see the pin in pyproject.toml)."""
import sys

from PySide6 import QtCore, QtGui


def test_void_methods_keep_none_alive(qapp):
    """PySide6 6.12.0 on Python < 3.12 decrements None's refcount on every void call; the app would abort."""
    img = QtGui.QImage(16, 16, QtGui.QImage.Format_ARGB32)
    p = QtGui.QPainter(img)
    try:
        before = sys.getrefcount(None)
        for _ in range(2000):
            p.setPen(QtCore.Qt.NoPen)
            p.drawRect(QtCore.QRectF(0, 0, 1, 1))
        after = sys.getrefcount(None)
    finally:
        p.end()
    assert after >= before - 50, "this PySide6 leaks references to None (%d lost): install another version" % (
        before - after)
