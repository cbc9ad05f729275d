"""The headless command line: ``python main.py COMMAND ...`` (and the installed ``mpgui COMMAND``).

    trace [--start-method M] SCRIPT [ARGS...] [--out RUNFILE] [--force]
                                                run a script that uses core, record everything, summarise
    export RUNFILE --chrome FILE.json [--csv DIR]
    run SCENARIO [--start-method M] [--set name=value ...] [--out RUNFILE [--force]]
    runs                                        the run history
    scenarios                                   the scenario catalog with parameters

Errors a user can cause are reported in one sentence that says what to do, with exit code 2; nothing here
prints a traceback for them.  A run never writes into another run's file: ``--out`` onto a run file is
refused unless ``--force`` replaces it, and onto any other file always.  No Qt here.
"""
import argparse
import os
import sys
import time

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the user: the message is the one sentence to print."""


def _user_errors():
    """The exceptions whose message is the one sentence for the user: bad input, and a history, home or run
    file that cannot be used (their modules word their messages so)."""
    from .history import HistoryError
    from .trace.store import RunFileError
    return (UsageError, HistoryError, RunFileError)


# ----------------------------------------------------------------------------------------------------------
# formatting helpers
# ----------------------------------------------------------------------------------------------------------

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


def fmt_ns(ns):
    if ns is None:
        return "-"
    if ns >= 1e9:
        return "%.2f s" % (ns / 1e9)
    if ns >= 1e6:
        return "%.1f ms" % (ns / 1e6)
    if ns >= 1e3:
        return "%.0f us" % (ns / 1e3)
    return "%d ns" % ns


def fmt_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024.0


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


# ----------------------------------------------------------------------------------------------------------
# summaries
# ----------------------------------------------------------------------------------------------------------

def summary_text(model, status=None, top=5):
    lines = []
    s = model.summary()
    procs = model.processes_table()
    roles = {}
    for p in procs:
        roles[p.role] = roles.get(p.role, 0) + 1
    lines.append("processes: %d (%s)" % (len(procs), ", ".join("%d %s" % (n, r) for r, n in sorted(roles.items()))))
    lines.append("events: %d recorded, %d dropped" % (s["events"], s["dropped"]))
    if s["tasks"]:
        lines.append("pool tasks: %d" % s["tasks"])
    lines.append("duration: %.2f s%s" % (s["duration_s"], "" if not status else "  (%s)" % status))
    rows = []
    for p in procs:
        lat = p.start_latency
        rows.append((p.pid, p.role, p.name, p.method or "-", fmt_ns(lat) if lat is not None else "-",
                     p.exit_text() or p.state))
    if rows:
        lines.append("")
        lines.append(format_table(["pid", "role", "name", "start method", "start latency", "exit"], rows))
    cont = [c for c in model.contention() if c["acquired"] or c["contended"]][:top]
    if cont:
        lines.append("")
        lines.append("most contended objects:")
        lines.append(format_table(
            ["object", "kind", "acquired", "waited", "total wait", "max wait", "total hold"],
            [(c["name"], c["kind"], c["acquired"], c["contended"], fmt_ns(c["wait_total_ns"]),
              fmt_ns(c["wait_max_ns"]), fmt_ns(c["hold_total_ns"])) for c in cont]))
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# commands
# ----------------------------------------------------------------------------------------------------------

def _split_trace_args(rest):
    """``SCRIPT [ARGS...] [--out RUNFILE] [--force]``: a trailing ``--out X`` and ``--force`` (in either
    order) belong to us, the rest to the script.  Returns (script and its args, out, force)."""
    out, force = None, False
    while True:
        if rest[-1:] == ["--force"] and not force:
            force, rest = True, rest[:-1]
        elif len(rest) >= 2 and rest[-2] == "--out" and out is None:
            out, rest = rest[-1], rest[:-2]
        else:
            return rest, out, force


def cmd_trace(args):
    from .history import RunHistory
    from .runner import MAIN_GUARD_ADVICE, TracedRun, install_cancel_handlers
    from .trace.store import RunFile
    rest, trailing_out, trailing_force = _split_trace_args(args.script_and_args)
    if not rest:
        raise UsageError("Name the script to trace: main.py trace SCRIPT [ARGS...] --out RUNFILE.")
    script, script_args = rest[0], rest[1:]
    if not os.path.isfile(script):
        raise UsageError("No such script: %s. Give the path of a Python file that uses core "
                         "(import core as multiprocessing)." % script)
    if getattr(sys, "frozen", False):
        raise UsageError("The packaged app cannot run Python scripts; trace them with 'python main.py trace'.")
    env = None
    if args.start_method:
        import multiprocessing
        from .context import START_METHOD_ENV
        if args.start_method not in multiprocessing.get_all_start_methods():
            raise UsageError("This platform has no %r start method: choose one of %s."
                             % (args.start_method, ", ".join(multiprocessing.get_all_start_methods())))
        env = {START_METHOD_ENV: args.start_method}
    history = RunHistory(args.home)
    out = args.out or trailing_out or history.new_run_path("trace-" + os.path.splitext(os.path.basename(script))[0])
    run = TracedRun([sys.executable, script] + script_args, out, kind="trace", history=history,
                    title="trace %s" % os.path.basename(script), echo_output=not args.quiet,
                    meta={"script": os.path.abspath(script), "args": script_args}, start_method=args.start_method,
                    env=env, replace=args.force or trailing_force, stdin=None)
    install_cancel_handlers(run)
    run.start()
    status = run.wait()
    print("", file=sys.stderr)
    with RunFile(out) as rf:
        model = rf.model()
    print(summary_text(model, status))
    print("run file: %s" % out)
    if run.storage_problem:
        print("mpgui: %s" % run.storage_problem, file=sys.stderr)
        return EXIT_USAGE
    if status == "cancelled":
        return run.cancel_exit_code
    if run.missing_main_guard:
        print("mpgui: %s" % MAIN_GUARD_ADVICE, file=sys.stderr)
    return run.exit_code if run.exit_code and run.exit_code > 0 else (EXIT_OK if status == "done" else EXIT_FAILED)


def _resolve_run(spec, home):
    """A run file path, or a run id (prefix) from the history."""
    if os.path.exists(spec):
        return spec
    from .history import RunHistory
    try:
        h = RunHistory(home, readonly=True)
        d = h.get(spec)
    except Exception:
        d = None
    if d is not None:
        return d["path"]
    raise UsageError("No run file or run id %r: give the path of a .mpgrun file, or an id from 'main.py runs'."
                     % spec)


def _check_outputs(chrome, csv_dir):
    """UsageError for export targets that cannot be: a directory for the JSON file, a file for the CSV
    directory, a missing or unwritable directory to write into."""
    if chrome:
        parent = os.path.dirname(os.path.abspath(chrome))
        if os.path.isdir(chrome):
            raise UsageError("--chrome %s is a directory: give the name of the JSON file to write." % chrome)
        if not os.path.isdir(parent):
            raise UsageError("Cannot write %s: the directory %s does not exist; create it or choose another path."
                             % (chrome, parent))
        if not os.access(parent, os.W_OK):
            raise UsageError("Cannot write %s: %s is not writable; choose a path in a directory you can write to."
                             % (chrome, parent))
    if csv_dir:
        if os.path.exists(csv_dir) and not os.path.isdir(csv_dir):
            raise UsageError("--csv %s is a file: give a directory for the CSV tables (it is created if missing)."
                             % csv_dir)


def cmd_export(args):
    from .trace.export import write_chrome, write_csv
    from .trace.store import RunFile
    if not args.chrome and not args.csv:
        raise UsageError("Say what to export: --chrome FILE.json and/or --csv DIR.")
    path = _resolve_run(args.runfile, args.home)
    _check_outputs(args.chrome, args.csv)         # before reading a run that may take a while
    with RunFile(path) as rf:
        model = rf.model()
        events = rf.read_all()[0] if args.csv else None
        problems = list(rf.problems)
    try:
        if args.chrome:
            n = write_chrome(model, args.chrome)
            print("wrote %s (%d trace events; open it in https://ui.perfetto.dev)" % (args.chrome, n))
        if args.csv:
            files = write_csv(model, args.csv, events)
            print("wrote %d CSV files to %s" % (len(files), args.csv))
    except OSError as e:
        raise UsageError("Cannot write %s (%s): choose a path in a directory you can write to."
                         % (e.filename or args.chrome or args.csv, e.strerror or e)) from None
    if problems:
        print("the run file is damaged; exported what was valid. Skipped: %s" % "; ".join(problems),
              file=sys.stderr)
    return EXIT_OK


def build_parser():
    p = argparse.ArgumentParser(prog="mpgui", description="mpgui: a desktop lab for Python multiprocessing. "
                                "Without a command, opens the app.")
    p.add_argument("--home", help="mpgui's data directory (run history and run files); default: "
                   "$MPGUI_HOME or the user's data directory")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("trace", help="run a Python script that uses core and record everything it does")
    t.add_argument("--out", help="run file to write (default: a new file in the run history)")
    t.add_argument("--start-method", dest="start_method", help="the script's default start method (fork, spawn or "
                   "forkserver, what the platform has), where it chooses none itself")
    t.add_argument("--force", action="store_true", help="replace the run file --out names if it holds a run")
    t.add_argument("--quiet", action="store_true", help="do not echo the script's output")
    t.add_argument("script_and_args", nargs=argparse.REMAINDER, metavar="SCRIPT [ARGS...] [--out RUNFILE] [--force]")
    t.set_defaults(func=cmd_trace)

    e = sub.add_parser("export", help="export a run to Chrome/Perfetto JSON and/or CSV")
    e.add_argument("runfile", metavar="RUNFILE", help="a .mpgrun file, or a run id from 'runs'")
    e.add_argument("--chrome", metavar="FILE.json", help="write Chrome Trace Event JSON (Perfetto opens it)")
    e.add_argument("--csv", metavar="DIR", help="write CSV tables into this directory")
    e.set_defaults(func=cmd_export)

    try:
        from . import scenario_cli
    except ImportError:
        scenario_cli = None
    if scenario_cli is not None:
        scenario_cli.add_commands(sub)
    return p


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.func(args)
    except _user_errors() as e:           # evaluated only when something was raised: no imports before
        print("mpgui: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mpgui: interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:                 # output piped into a program that stopped reading (| head)
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
