"""What every command of the command line shares: exit codes, the user-error type, tables, the progress bar,
the app's control of a runner through stdin, the size cap option and the summary printed after a run.
No Qt here."""
import re
import sys
import threading
import time

from core.trace.units import fmt_bytes, fmt_ns

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



def control_from_stdin(run):
    """For the app driving this runner, one command per line on stdin (the same on every platform, unlike
    signals): ``cancel``; ``kill PID`` or ``term PID`` for one process of the run's tree (the runner owns the
    tree and refuses other pids).  Stdin closing (the app is gone) cancels the run."""
    import threading

    def watch():
        for line in sys.stdin:
            words = line.split()
            if words == ["cancel"]:
                break
            if len(words) == 2 and words[0] in ("kill", "term") and words[1].isdigit():
                print("mpgui: %s" % run.signal_process(int(words[1]), kill=words[0] == "kill"),
                      file=sys.stderr, flush=True)
        run.cancel()

    threading.Thread(target=watch, name="mpgui-control", daemon=True).start()


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
    roles: dict = {}
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


class SummaryPrep:
    """A run observer that imports the summary's modules (numpy most of all: about 0.1 s) in a thread of its
    own once the program ends, while the runner waits for the helpers and the collector: the summary printed
    next does not wait for them.  Pass it to ``TracedRun(observers=...)``."""

    def run_started(self, run):
        pass

    def program_ended(self, run):
        threading.Thread(target=_import_summary, name="mpgui-summary-import", daemon=True).start()

    def run_finished(self, run):
        pass


def _import_summary():
    import core.trace.summary  # noqa: F401 (imported for print_summary: the import lock makes it wait for this)


def print_summary(path, status):
    """Print the summary of the run file ``path`` (one streaming pass: bounded memory for any run)."""
    from core.trace.store import RunFile
    from core.trace.summary import summarize
    with RunFile(path) as rf:
        summary = summarize(rf)
    print(summary_text(summary, status))
    return summary


# -- the run file's size cap ---------------------------------------------------------------------------------

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text):
    """``--max-size``: bytes from ``2G``, ``500M``, ``1.5g``, ``64MiB`` or a plain number of bytes; ``0`` means
    no cap (None).  UsageError with one sentence otherwise."""
    from core.trace.store import MIN_MAX_SIZE
    m = _SIZE.match(text or "")
    if not m:
        raise UsageError("--max-size takes a size such as 2G, 500M or 64M (or 0 for no limit), not %r." % text)
    size = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if size == 0:
        return None
    if size < MIN_MAX_SIZE:
        raise UsageError("--max-size %s is too small: a run file needs at least %s; give 1M or more."
                         % (text, fmt_bytes(MIN_MAX_SIZE)))
    return size


def add_max_size_option(parser):
    from core.trace.store import DEFAULT_MAX_SIZE
    parser.add_argument("--max-size", dest="max_size", metavar="SIZE", default=str(DEFAULT_MAX_SIZE >> 30) + "G",
                        help="cap the run file's size (e.g. 500M, 2G; 0: no cap); past it the run goes on and new "
                             "events are dropped and counted (default: %(default)s)")


def size_cap_sentence(cap, created_perf=None):
    """One sentence about a run file that reached its size cap (its ``size_cap`` metadata), or None."""
    if not cap or cap.get("hit_perf") is None:
        return None
    when = ""
    if created_perf:
        when = " %.1f s into the run" % ((cap["hit_perf"] - created_perf) / 1e9)
    return ("The run file reached its size cap (%s)%s: the run went on, and %d later events were dropped; "
            "give --max-size a larger size (or 0) to keep them." % (fmt_bytes(cap.get("limit") or 0), when,
                                                                     cap.get("events_dropped", 0)))
