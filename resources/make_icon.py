"""Draws the app's icon: three process lanes with task bars, as the timeline shows them.

    python resources/make_icon.py

Writes resources/mpgui.png (256 px) and resources/mpgui.ico (16 to 256 px, PNG-compressed entries, which
Windows reads since Vista); the packaged app's executables carry the .ico.
"""
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6 import QtCore, QtGui  # noqa: E402

from mpgui.gui import theme  # noqa: E402

SIZES = (16, 24, 32, 48, 64, 128, 256)
#: Lanes as (start, end) fractions of the width, and their bar colours: the timeline's task outcomes.
LANES = (((0.10, 0.55), theme.TASK_OK), ((0.30, 0.90), theme.TASK_RUNNING), ((0.18, 0.70), theme.TASK_TIMEOUT))


def draw(size):
    img = QtGui.QImage(size, size, QtGui.QImage.Format_ARGB32)
    img.fill(QtCore.Qt.transparent)
    p = QtGui.QPainter(img)
    p.setRenderHint(QtGui.QPainter.Antialiasing)
    s = float(size)
    p.setPen(QtCore.Qt.NoPen)
    p.setBrush(QtGui.QColor(theme.ROLE_COLORS["main"]))
    p.drawRoundedRect(QtCore.QRectF(0, 0, s, s), s * 0.18, s * 0.18)
    lane_h = s * 0.2
    gap = (s - 3 * lane_h) / 4
    for i, ((a, b), colour) in enumerate(LANES):
        y = gap + i * (lane_h + gap)
        p.setBrush(QtGui.QColor("#3a4350"))
        p.drawRoundedRect(QtCore.QRectF(s * 0.06, y, s * 0.88, lane_h), lane_h * 0.25, lane_h * 0.25)
        p.setBrush(QtGui.QColor(colour))
        p.drawRoundedRect(QtCore.QRectF(s * a, y, s * (b - a), lane_h), lane_h * 0.25, lane_h * 0.25)
    p.end()
    return img


def png_bytes(img):
    buf = QtCore.QBuffer()
    buf.open(QtCore.QIODevice.WriteOnly)
    img.save(buf, "PNG")
    return bytes(buf.data())


def ico_bytes(images):
    """An .ico holding one PNG-compressed image per size."""
    pngs = [png_bytes(img) for img in images]
    out = struct.pack("<HHH", 0, 1, len(pngs))
    offset = 6 + 16 * len(pngs)
    for img, data in zip(images, pngs):
        side = img.width() if img.width() < 256 else 0           # 0 means 256
        out += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(data), offset)
        offset += len(data)
    return out + b"".join(pngs)


def main():
    images = [draw(n) for n in SIZES]
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "mpgui.png"), "wb") as f:
        f.write(png_bytes(images[-1]))
    with open(os.path.join(here, "mpgui.ico"), "wb") as f:
        f.write(ico_bytes(images))


if __name__ == "__main__":
    main()
