"""Scenario commands of the command line: ``scenarios``, ``run``, ``runs``.

``run`` validates everything before anything starts (exit code 2 and one sentence on bad input), then runs
the scenario in its own traced process tree with a progress bar, and ends with the lesson and a summary.
No Qt here.
"""
import argparse
import sys
import time

from .common import (EXIT_FAILED, EXIT_OK, EXIT_USAGE, ProgressBar, UsageError, add_max_size_option,
                     SummaryPrep, control_from_stdin, format_table, parse_size, print_summary, size_cap_sentence)


def parse_sets(items):
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; UsageError for an item without ``=``."""
    out = {}
    for item in items or ():
        if "=" not in item:
            raise UsageError("--set takes name=value, not %r: for example --set processes=4." % item)
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def cmd_run(args):
    from core.trace.runner import install_cancel_handlers
    max_size = parse_size(args.max_size)
    from ..history import context_meta
    from ..scenario_run import make_run, prepare
    scenario, params, method = prepare(args.scenario, args.start_method, parse_sets(args.set))
    run = make_run(scenario, params, method, out=args.out, home=args.home,
                   echo_output=() if args.quiet else ("stdout",), replace=args.force)
    run.spec.max_size = max_size
    if not args.quiet:
        run.observers.append(SummaryPrep())
    run.spec.meta.update(context_meta(scenario.name, params, method))
    run.claim()
    print("%s  (start method %s)" % (scenario.title, method), file=sys.stderr)
    run.start()
    install_cancel_handlers(run)
    if args.control_stdin:
        control_from_stdin(run)
    bar = ProgressBar() if not args.quiet else None
    t0 = time.monotonic()

    def tick(r):
        if bar is not None:
            done, total = r.sink.progress or (0, 0)
            bar.update(done, total, time.monotonic() - t0)

    status = run.wait(on_tick=tick)
    if bar is not None:
        bar.close()
    result = run.result
    if result:
        print()
        print(result["lesson"])
        if result.get("rows"):
            print()
            print(format_table(result["headers"], result["rows"]))
    if run.error and not run.storage_problem:
        print("mpgui: %s" % run.error, file=sys.stderr)
    if not args.quiet:
        print()
        print_summary(run.out_path, status)
    print("run file: %s" % run.out_path)
    capped = size_cap_sentence(run.size_cap, run.writer.created_perf)
    if capped:
        print("mpgui: %s" % capped, file=sys.stderr)
    if run.storage_problem:
        print("mpgui: %s" % run.storage_problem, file=sys.stderr)
        return EXIT_USAGE
    if status == "cancelled":
        print("mpgui: run cancelled; the run file keeps everything recorded so far.", file=sys.stderr)
        return run.cancel_exit_code
    if status != "done":
        if not run.error:
            print("mpgui: the scenario's main process ended with exit code %s; its output is in the run file."
                  % run.exit_code, file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_scenarios(args):
    from ..scenarios import catalog
    for sc in catalog().values():
        methods = ", ".join(sc.available_methods())
        print("%s — %s" % (sc.name, sc.title))
        print("    %s" % sc.description)
        print("    lesson: %s" % sc.lesson)
        print("    start methods: %s" % methods)
        for p in sc.params:
            print("    --set %s=%s    (%s; %s)" % (p.name, str(p.default).lower() if p.type == "bool" else p.default,
                                                  p.describe(), p.help))
        print()
    return EXIT_OK


def cmd_runs(args):
    from ..history import RunHistory
    history = RunHistory(args.home, readonly=True)
    try:
        runs = history.list(limit=args.limit)
    finally:
        history.close()
    if not runs:
        print("No runs yet: start one with 'main.py run SCENARIO' or 'main.py trace SCRIPT'.")
        return EXIT_OK
    from ..labels import params_text
    rows = []
    for r in runs:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["started"])) if r["started"] else "-"
        dur = "%.1f s" % (r["ended"] - r["started"]) if r["ended"] and r["started"] else "-"
        lesson = (r["lesson"] or "")
        rows.append((r["id"], when, r["scenario"] or r["title"] or r["kind"],
                     ", ".join(r["methods"]) or r["start_method"] or "-", r["status"], dur, r["events"],
                     params_text(r["params"]) or "-", (r["comparison"] or "-")[:8],
                     lesson[:60] + ("…" if len(lesson) > 60 else "")))
    print(format_table(["id", "started", "what", "methods", "status", "took", "events", "parameters", "compared",
                        "lesson"], rows))
    return EXIT_OK


def add_commands(sub):
    r = sub.add_parser("run", help="run a scenario headless, with a progress bar, then its lesson")
    r.add_argument("scenario", metavar="SCENARIO")
    r.add_argument("--start-method", dest="start_method", help="fork, spawn or forkserver (what the platform has)")
    r.add_argument("--set", action="append", metavar="NAME=VALUE", help="a parameter (repeatable)")
    r.add_argument("--out", help="run file to write (default: a new file in the run history)")
    r.add_argument("--force", action="store_true", help="replace the run file --out names if it holds a run")
    r.add_argument("--quiet", action="store_true", help="no progress bar, no scenario output")
    add_max_size_option(r)
    r.add_argument("--control-stdin", action="store_true", help=argparse.SUPPRESS)
    r.set_defaults(func=cmd_run)
    s = sub.add_parser("scenarios", help="the scenario catalog, with each scenario's parameters")
    s.set_defaults(func=cmd_scenarios)
    h = sub.add_parser("runs", help="the run history")
    h.add_argument("--limit", type=int, default=30)
    h.set_defaults(func=cmd_runs)
