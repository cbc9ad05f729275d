"""The timeline's "unblocked by" arrows: from each release (a notify, a set, a barrier's last arrival, a put)
to the wait it ended, for the object or the process selected on the timeline.

The links come from ``core.trace.contention`` (``read_links`` reads a run file's, off the Qt thread; a view
that computed them already hands them over).  ``selected_links`` keeps those of the selection, ``arrows_of``
places them on the rows shown, ``paint_arrows`` draws those in view, and ``handoffs_text`` says how many
there are (beyond MAX_ARROWS in view none is drawn: the view asks to zoom in).  The view
(``timeline.TimelineView``) keeps the selection and the links; the item (``timeline_item``) paints.
"""
import numpy as np
from PySide6 import QtCore

from core.trace import contention

from .timeline_layers import lane_keys

#: "Unblocked by" arrows drawn at most (in view): beyond, the view asks to zoom in.
MAX_ARROWS = 3000
#: Where an arrow leaves its row (the releasing thread's holds' band) and where it enters its row (the
#: waiting thread's waits' band), as a share of the row's height from its top.
FROM_Y, TO_Y = 0.86, 0.72
#: The length of an arrow head's sides, in pixels.
HEAD_PX = 5.0


def read_links(path):
    """The "unblocked by" links (``contention.LINK_DTYPE``) of the run file at ``path``: slow, run it in the
    background."""
    from core.trace.store import RunFile
    with RunFile(path) as rf:
        return contention.handoffs(contention.Records(rf.iter_chunks(), read_only=True))


def selected_links(links, uid=None, pid=None):
    """The links into waits on object ``uid`` (if given) and from or to process ``pid`` (if given)."""
    sel = np.ones(len(links), bool)
    if uid is not None:
        sel &= links["uid"] == np.uint64(uid)
    if pid is not None:
        sel &= (links["from_pid"] == pid) | (links["to_pid"] == pid)
    return links[sel]


def arrows_of(d, lanes_of, links):
    """(x0, y0, x1, y1) arrays of the arrows drawing ``links`` on TimelineData ``d``'s rows (``lanes_of``:
    lane keys -> row indexes, -1 for a key not shown): from the releasing thread's row (its holds' band) at the
    release to the waiting thread's row (its waits' band) at the wait's end; links between rows not shown
    are left out."""
    codes = np.array([(t.parent << 32) | (t.uid & 0xFFFFFFFF) for t in d.threads], np.int64)
    keys = np.array([t.pid for t in d.threads], np.int64)
    order = np.argsort(codes)
    codes, keys = codes[order], keys[order]
    src_keys = lane_keys(links["from_pid"], links["from_tid"], codes, keys)
    dst_keys = lane_keys(links["to_pid"], links["to_tid"], codes, keys)
    y0 = lanes_of(src_keys).astype(np.float64)
    y1 = lanes_of(dst_keys).astype(np.float64)
    keep = (y0 >= 0) & (y1 >= 0)
    x0 = (links["from_t"][keep] - d.t0) / 1e9
    x1 = (links["to_t"][keep] - d.t0) / 1e9
    return x0, y0[keep] + FROM_Y, x1, y1[keep] + TO_Y


def in_view(arrows, vx0, vx1):
    """Which ``arrows`` cross the x range [vx0, vx1] (a mask)."""
    x0, _, x1, _ = arrows
    return (np.maximum(x0, x1) >= vx0) & (np.minimum(x0, x1) <= vx1)


def handoffs_text(what, n):
    """What the view says of the arrows of ``what`` (an object's name, a process) with ``n`` in view."""
    if n > MAX_ARROWS:
        return "%s: %d handoffs in view, zoom in to draw them" % (what, n)
    return "%s: %d handoff%s in view (unblocked by)" % (what, n, "" if n == 1 else "s")


def paint_arrows(p, arrows, pen, vx0, vx1):
    """Draw the ``arrows`` in view with QPainter ``p`` (in view coordinates; the heads are drawn in pixels)
    and ``pen``, unless more than MAX_ARROWS are."""
    x0, y0, x1, y1 = arrows
    keep = np.flatnonzero(in_view(arrows, vx0, vx1))
    if not len(keep) or len(keep) > MAX_ARROWS:
        return
    tr = p.transform()
    p.save()
    p.resetTransform()
    p.setPen(pen)
    head = HEAD_PX
    for i in keep.tolist():
        a = tr.map(QtCore.QPointF(float(x0[i]), float(y0[i])))
        b = tr.map(QtCore.QPointF(float(x1[i]), float(y1[i])))
        p.drawLine(a, b)
        dx, dy = b.x() - a.x(), b.y() - a.y()
        n = max((dx * dx + dy * dy) ** 0.5, 1e-9)
        ux, uy = dx / n, dy / n
        p.drawLine(b, QtCore.QPointF(b.x() - head * (ux - 0.5 * uy), b.y() - head * (uy + 0.5 * ux)))
        p.drawLine(b, QtCore.QPointF(b.x() - head * (ux + 0.5 * uy), b.y() - head * (uy - 0.5 * ux)))
    p.restore()
