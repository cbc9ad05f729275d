"""``compare``: a scenario under several start methods, N times each, or runs from the history, side by side.

    compare SCENARIO [--methods fork,spawn,forkserver] [--repeat N] [--set name=value ...] [--json]
    compare RUN RUN [...] [--json]          run ids from 'runs' (or .mpgrun files)
    compare COMPARISON [--json]             the runs of an earlier comparison again

The first form runs the scenario with the same parameters under every start method it has here (or the ones
``--methods`` names), ``--repeat`` times each (default 3), one after another and interleaved (fork, spawn,
forkserver, fork, ...), each an ordinary run (``mpgui/scenario_run.py``, one run file each, in the history
with the comparison's id).  A scenario that runs several start methods inside one run (a ``methods``
parameter) runs only the run's method here.  Then it prints a table of figures (``mpgui.compare``) per method,
mean ± standard deviation [min..max] over the repeats, and how each method differs from the best with the
ratio's uncertainty; ``--json`` makes the last line one JSON object.

Bad input (an unknown scenario, method or parameter, a method the platform lacks, a run that does not exist)
is one sentence and exit code 2, before anything starts.  Ctrl+C, SIGTERM or ``cancel`` on stdin (the app's
Stop, with ``--control-stdin``) cancel the run going on and the ones not started yet; what finished is
compared.  With ``--control-stdin`` the command also says on stdout, one JSON object a line, when each run
starts and ends (the app opens the comparison as the runs finish).  No Qt here.
"""
import argparse
import json
import os
import sys
import time
import uuid

from ..history import RunHistory, context_meta
from ..labels import DEFAULT_REPEAT
from .common import (EXIT_FAILED, EXIT_OK, EXIT_USAGE, ProgressBar, UsageError, add_max_size_option,
                     control_from_stdin, format_table, parse_size)
from .scenarios import parse_sets

#: The most repeats a comparison takes (each is a whole run).
MAX_REPEAT = 100
#: What the command says on stdout for the app, one JSON object a line, starts with this key.
EVENT_KEY = "compare"


class ComparisonRuns:
    """The runs of a comparison as one thing to cancel (Ctrl+C, SIGTERM, the app's Stop): the run going on is
    cancelled and no other starts.  Stands where ``install_cancel_handlers`` and ``control_from_stdin`` expect
    a run."""

    def __init__(self):
        self.current = None
        self.cancelled = False
        self.cancel_signal = None
        self.finalized = False

    def cancel(self, signum=None):
        if signum is not None and self.cancel_signal is None:
            self.cancel_signal = signum
        self.cancelled = True
        if self.current is not None:
            self.current.cancel(signum)

    def signal_process(self, pid, kill=True):
        if self.current is None:
            return "No run is going on: pid %d was not signalled." % pid
        return self.current.signal_process(pid, kill)

    @property
    def cancel_exit_code(self):
        return 128 + int(self.cancel_signal or 2)


def _methods(text, scenario):
    """The start methods ``--methods`` names (default: every one the scenario has here), each checked."""
    if not text:
        return scenario.available_methods()
    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise UsageError("--methods takes start methods separated by commas, for example --methods fork,spawn.")
    out = []
    for m in names:
        scenario.check_method(m)                # ParamError with one sentence if the platform lacks it
        if m not in out:
            out.append(m)
    return out


def _say(args, **event):
    """One JSON line on stdout for the app (``--control-stdin``)."""
    if args.control_stdin:
        print(json.dumps(dict({EVENT_KEY: event.pop("event")}, **event)), flush=True)


def run_comparison(args, scenario_name):
    """Run the scenario under each method, ``--repeat`` times; returns (the comparison's id, the methods, the
    run files of the runs that ended done, the exit code)."""
    from .. import compare
    from ..scenario_run import make_run, prepare
    from core.trace.runner import install_cancel_handlers
    if not 1 <= args.repeat <= MAX_REPEAT:
        raise UsageError("--repeat takes a number of runs per start method from 1 to %d, not %d."
                         % (MAX_REPEAT, args.repeat))
    max_size = parse_size(args.max_size)
    values = parse_sets(args.set)
    scenario, _, _ = prepare(scenario_name, None, values)
    methods = _methods(args.methods, scenario)
    if any(p.name == "methods" for p in scenario.params):
        if "methods" in values:
            raise UsageError("compare runs each start method in a run of its own: leave --set methods out "
                             "(%s runs only its run's method here) and name them with --methods." % scenario.name)
        values["methods"] = "chosen"
    scenario, params, _ = prepare(scenario_name, methods[0], values)
    RunHistory(args.home).close()          # a home that cannot be used says so before anything starts
    comparison = uuid.uuid4().hex[:12]
    plan = compare.plan(methods, args.repeat)
    holder = ComparisonRuns()
    install_cancel_handlers(holder)
    if args.control_stdin:
        control_from_stdin(holder)
    print("%s: %s, %d run(s) each, one after another (comparison %s)"
          % (scenario.name, ", ".join(methods), args.repeat, comparison), file=sys.stderr)
    done, code = [], EXIT_OK
    for i, (method, k) in enumerate(plan):
        if holder.cancelled:
            break
        run = make_run(scenario, params, method, home=args.home, echo_output=())
        run.spec.max_size = max_size
        run.spec.meta.update(context_meta(scenario.name, params, method, comparison))
        holder.current = run            # from here a cancel reaches this run, even before it starts
        if holder.cancelled:
            break
        info = {"comparison": comparison, "index": i, "total": len(plan), "method": method, "repeat": k,
                "run_id": run.run_id, "path": run.out_path}
        _say(args, event="started", **info)
        status = _one_run(run, "[%d/%d] %s, run %d of %d" % (i + 1, len(plan), method, k + 1, args.repeat),
                          args.quiet)
        _say(args, event="finished", status=str(status), **info)
        if run.storage_problem:
            print("mpgui: %s" % run.storage_problem, file=sys.stderr)
            code = EXIT_USAGE
            break
        if status == "done":
            done.append(run.out_path)
        elif status == "cancelled":
            code = holder.cancel_exit_code
            break
        else:
            print("mpgui: the %s run %s ended %s%s; the comparison goes on without it." % (
                method, run.run_id, status, (": %s" % run.error) if run.error else ""), file=sys.stderr)
            code = EXIT_FAILED
    holder.current = None
    holder.finalized = True
    if holder.cancelled:
        print("mpgui: comparison cancelled after %d of %d runs; the runs that finished are compared."
              % (len(done), len(plan)), file=sys.stderr)
        code = holder.cancel_exit_code
    return comparison, methods, done, code


def _one_run(run, what, quiet):
    bar = None if quiet else ProgressBar()
    print("%s: %s" % (what, run.out_path), file=sys.stderr)
    run.start()
    t0 = time.monotonic()

    def tick(r):
        if bar is not None:
            d, total = r.sink.progress or (0, 0)
            bar.update(d, total, time.monotonic() - t0)

    status = run.wait(on_tick=tick)
    if bar is not None:
        bar.close()
    print("%s: %s in %.1f s" % (what, status, time.monotonic() - t0), file=sys.stderr)
    return str(status)


def _resolve(spec, history):
    """(path, history row or None) of a run id (or id prefix) from the history, or of a run file."""
    row = history.get(spec) if history is not None else None
    if row is not None:
        return row["path"], row
    if os.path.isfile(spec):
        path = os.path.abspath(spec)
        if history is not None:
            row = next((r for r in history.list(limit=100000) if r["path"] == path), None)
        return path, row
    raise UsageError("No run %r: give run ids from 'main.py runs' (or .mpgrun files), at least two, or a "
                     "scenario to compare under every start method." % spec)


def load(specs, home):
    """RunFigures of the runs named (ids or files), in the order given."""
    from .. import compare
    history = RunHistory(home, readonly=True)
    try:
        found = [_resolve(s, history) for s in specs]
    finally:
        history.close()
    return [compare.read_run(path, row)[0] for path, row in found]


def figures_table(groups):
    """The figures, one row each, one column per group: mean ± sd [min..max] over its runs."""
    from .. import compare
    headers = ["figure"] + ["%s (%d run%s)" % (g.label, len(g.runs), "" if len(g.runs) == 1 else "s")
                            for g in groups]
    rows = []
    for f in compare.FIGURES:
        stats = [g.stat(f.key) for g in groups]
        if all(s is None for s in stats):
            continue
        rows.append(["%s (%s)" % (f.label, f.unit)] + [s.text(f.fmt) if s else "-" for s in stats])
    return format_table(headers, rows)


def print_report(title, runs, groups, by_method, params_rows=(), as_json=False):
    from .. import compare
    print(title)
    if params_rows:
        print()
        print("what differs:")
        print(format_table(["parameter"] + [r.run_id[:12] or os.path.basename(r.path) for r in runs],
                           [[name] + values for name, values in params_rows]))
    print()
    if groups:
        print(figures_table(groups))
        diffs = compare.differences(groups)
        if diffs:
            print()
            for d in diffs:
                print(d.sentence())
    else:
        print("No run finished: nothing to compare.")
    print()
    print("runs: %s" % " ".join(r.run_id or r.path for r in runs))
    if as_json:
        print(json.dumps(compare.summary_json(runs, groups, by_method)))


def cmd_compare(args):
    from .. import compare
    from ..scenarios import catalog
    targets = args.targets
    is_scenario = targets[0] in catalog()
    if is_scenario and len(targets) > 1:
        raise UsageError("compare takes one scenario (to run under every start method) or two or more runs, "
                         "not both: %s." % " ".join(targets))
    if not is_scenario and (args.set or args.methods or args.repeat != DEFAULT_REPEAT):
        raise UsageError("--set, --methods and --repeat are for comparing a scenario's runs; %r is not a "
                         "scenario (main.py scenarios lists them)." % targets[0])
    if is_scenario:
        comparison, methods, paths, code = run_comparison(args, targets[0])
        history = RunHistory(args.home, readonly=True)
        try:
            rows = {r["path"]: r for r in history.comparison_runs(comparison)}
        finally:
            history.close()
        runs = [compare.read_run(p, rows.get(p))[0] for p in paths]
        by_method = compare.group_by_method(runs, methods)
        scenario = catalog()[targets[0]]
        title = "%s: %s\nparameters: %s" % (scenario.name, scenario.title, compare.params_text(
            runs[0].params if runs else {}) or "-")
        print_report(title, runs, by_method, by_method, as_json=args.json)
        return code
    if len(targets) == 1:
        history = RunHistory(args.home, readonly=True)
        try:
            rows = history.comparison_runs(targets[0])
        finally:
            history.close()
        if not rows:
            raise UsageError("%r is neither a scenario nor a comparison: give a scenario (main.py scenarios lists "
                             "them), a comparison id, or two or more run ids from 'main.py runs'." % targets[0])
        runs = [compare.read_run(r["path"], r)[0] for r in rows if os.path.exists(r["path"])]
        by_method = compare.group_by_method(runs)
        print_report("comparison %s: %s" % (targets[0], runs[0].what if runs else "-"), runs, by_method,
                     by_method, as_json=args.json)
        return EXIT_OK
    runs = load(targets, args.home)
    groups = compare.group_by_config(runs)
    print_report("%d runs: %s" % (len(runs), ", ".join(sorted({r.what for r in runs}))), runs, groups,
                 compare.group_by_method(runs), compare.parameter_rows(runs), as_json=args.json)
    return EXIT_OK


def add_commands(sub):
    c = sub.add_parser("compare", help="a scenario under every start method, N times each, or runs from the "
                       "history, side by side: figures with mean ± sd and the differences",
                       description="compare SCENARIO runs it under each start method --repeat times and compares "
                       "the methods; compare RUN RUN ... compares runs from the history.")
    c.add_argument("targets", nargs="+", metavar="SCENARIO | RUN", help="a scenario, or two or more run ids "
                   "from 'runs' (or .mpgrun files), or a comparison id")
    c.add_argument("--methods", help="start methods to compare, separated by commas (default: every one the "
                   "platform has)")
    c.add_argument("--repeat", type=int, default=DEFAULT_REPEAT, help="runs per start method "
                   "(default: %(default)s)")
    c.add_argument("--set", action="append", metavar="NAME=VALUE", help="a parameter of the scenario "
                   "(repeatable), the same for every run")
    c.add_argument("--json", action="store_true", help="end with one line of JSON: every run and each "
                   "method's figures")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    add_max_size_option(c)
    c.add_argument("--control-stdin", action="store_true", help=argparse.SUPPRESS)
    c.set_defaults(func=cmd_compare)
