"""The headless command line: ``python main.py COMMAND ...`` (and the installed ``mpgui COMMAND``).

    trace [--start-method M] [--cwd DIR] [--env NAME=VALUE ...] (SCRIPT | -m MODULE) [ARGS...] [--out RUNFILE]
                                                run a program that uses multiprocessing, concurrent.futures or
                                                core, unmodified; record everything, summarise
    export RUNFILE --chrome FILE.json [--csv DIR]
    run SCENARIO [--start-method M] [--set name=value ...] [--out RUNFILE [--force]]
    runs                                        the run history
    compare SCENARIO [--methods M,M] [--repeat N] [--set name=value ...] [--json]
    compare RUN RUN [...] [--json]              a scenario under every start method, N times each, or runs
                                                from the history, side by side
    scenarios                                   the scenario catalog with parameters
    selftest [--start-method M]                 check that multiprocessing and tracing work here

Each command lives in a module of this package and registers itself with ``add_commands``.  Errors a user
can cause are reported in one sentence that says what to do, with exit code 2; nothing here prints a
traceback for them.  No Qt here.
"""
import argparse
import os
import sys

from .. import selftest
from . import compare, record, scenarios
from .common import EXIT_OK, EXIT_USAGE, user_errors


def build_parser():
    p = argparse.ArgumentParser(prog="mpgui", description="mpgui: a desktop lab for Python multiprocessing. "
                                "Without a command, opens the app.")
    p.add_argument("--home", help="mpgui's data directory (run history and run files); default: "
                   "$MPGUI_HOME or the user's data directory")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    record.add_commands(sub)
    scenarios.add_commands(sub)
    compare.add_commands(sub)
    selftest.add_command(sub)
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
    except user_errors() as e:           # evaluated only when something was raised: no imports before
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
