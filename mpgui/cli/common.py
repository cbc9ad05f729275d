"""What every command of the command line shares: exit codes, the user-error type, tables, the progress bar
and the summary printed after a run.  No Qt here."""
import sys
import time

from core.trace.units import fmt_ns

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the user: the message is the one sentence to print."""


def user_errors():
    """The exceptions whose message is the one sentence for the user: bad input, and a history, home or run
    file that cannot be used (their modules word their messages so)."""
    from core.trace.store import RunFileError

    from ..history import HistoryError
    from ..scenarios import ParamError
    return (UsageError, HistoryError, RunFileError, ParamError)


def format_table(headers, rows):
    rows = [["" if c is None else str(c) for c in r] for r in rows]
    widths = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    return "\n".join(out)



class ProgressBar:
    """A one-line progress bar on a terminal (plain lines when stdout is not a terminal)."""

    def __init__(self, stream=None, width=30):
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.last = None
        self.last_plain = 0.0

    def update(self, done, total, elapsed):
        if total and total > 0:
            frac = min(1.0, done / total)
            bar = "#" * int(frac * self.width)
            text = "[%-*s] %d/%d  %.1f s" % (self.width, bar, done, total, elapsed)
        else:
            text = "running  %.1f s" % elapsed
        if text == self.last:
            return
        self.last = text
        if self.tty:
            self.stream.write("\r" + text)
            self.stream.flush()
        elif time.monotonic() - self.last_plain > 2.0:
            self.last_plain = time.monotonic()
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self):
        if self.tty and self.last:
            self.stream.write("\n")
            self.stream.flush()


def summary_text(summary, status=None):
    """The text printed after a run, from its ``core.trace.summary.RunSummary``."""
    lines = []
    procs = summary.processes
    roles = {}
    for p in procs:
        roles[p.role] = roles.get(p.role, 0) + 1
    lines.append("processes: %d (%s)" % (len(procs), ", ".join("%d %s" % (n, r) for r, n in sorted(roles.items()))))
    lines.append("events: %d recorded, %d dropped" % (summary.events, summary.dropped))
    if summary.tasks:
        lines.append("pool tasks: %d" % summary.tasks)
    lines.append("duration: %.2f s%s" % (summary.duration_s, "" if not status else "  (%s)" % status))
    rows = []
    for p in procs:
        lat = p.start_latency
        rows.append((p.pid, p.role, p.name, p.method or "-", fmt_ns(lat) if lat is not None else "-",
                     p.exit_text() or p.state))
    if rows:
        lines.append("")
        lines.append(format_table(["pid", "role", "name", "start method", "start latency", "exit"], rows))
    cont = summary.contention
    if cont:
        lines.append("")
        lines.append("most contended objects:")
        lines.append(format_table(
            ["object", "kind", "acquired", "waited", "total wait", "max wait", "total hold"],
            [(c.name, c.kind, c.acquired, c.contended, fmt_ns(c.wait_total_ns), fmt_ns(c.wait_max_ns),
              fmt_ns(c.hold_total_ns)) for c in cont]))
    return "\n".join(lines)


def print_summary(path, status):
    """Print the summary of the run file ``path`` (one streaming pass: bounded memory for any run)."""
    from core.trace.store import RunFile
    from core.trace.summary import summarize
    with RunFile(path) as rf:
        summary = summarize(rf)
    print(summary_text(summary, status))
    return summary
