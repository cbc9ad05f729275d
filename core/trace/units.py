"""How times and sizes read, everywhere they are shown: the command line's summaries, the app's tables,
tooltips and event log, the exports' labels.  One home, so a duration reads the same in every view.

Pure functions of numbers; no Qt, no numpy.
"""


def fmt_ns(ns):
    """A duration given in nanoseconds: ``"1.20 s"``, ``"3.4 ms"``, ``"56 µs"``, ``"789 ns"``; ``"-"`` for None."""
    if ns is None:
        return "-"
    if ns < 0:
        return "-" + fmt_ns(-ns)
    if ns >= 1e9:
        return "%.2f s" % (ns / 1e9)
    if ns >= 1e6:
        return "%.1f ms" % (ns / 1e6)
    if ns >= 1e3:
        return "%.0f µs" % (ns / 1e3)
    return "%d ns" % ns


def fmt_s(seconds):
    """A duration or an instant given in seconds, with the precision a timeline needs: ``"1.234 s"``,
    ``"5.67 ms"``, ``"89 µs"``."""
    if seconds < 0:
        return "-" + fmt_s(-seconds)
    if seconds >= 1:
        return "%.3f s" % seconds
    if seconds >= 1e-3:
        return "%.2f ms" % (seconds * 1e3)
    return "%.0f µs" % (seconds * 1e6)


def fmt_bytes(n):
    """A size in bytes: ``"512 B"``, ``"1.5 KiB"``, ``"20.0 MiB"``, ``"1.2 GiB"``."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024.0
    return ""        # pragma: no cover - the loop always returns
