"""Commands that record and export runs: ``trace SCRIPT`` or ``trace -m MODULE`` (a user's program, unmodified,
traced: core stands in for multiprocessing in it) and ``export RUNFILE``.

A run never writes into another run's file: ``--out`` onto a run file is refused unless ``--force`` replaces it,
and onto any other file always.  No Qt here.
"""
import argparse
import os
import subprocess
import sys

from .common import (EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, add_max_size_option, control_from_stdin,
                     SummaryPrep, parse_size, print_summary, size_cap_sentence)


def _split_trace_args(rest):
    """``SCRIPT [ARGS...] [--out RUNFILE] [--force]``: a trailing ``--out X`` and ``--force`` (in either
    order) belong to us, the rest to the script (unless ``--out`` came before the script: the app always
    puts it there).  Returns (script and its args, out, force)."""
    out, force = None, False
    while True:
        if rest[-1:] == ["--force"] and not force:
            force, rest = True, rest[:-1]
        elif len(rest) >= 2 and rest[-2] == "--out" and out is None:
            out, rest = rest[-1], rest[:-2]
        else:
            return rest, out, force


def parse_env(items):
    """``["A=1", "B="]`` -> ``{"A": "1", "B": ""}``; UsageError for an item that is not NAME=VALUE."""
    out = {}
    for item in items or ():
        name, eq, value = item.partition("=")
        if not eq or not name.strip() or "\0" in item:
            raise UsageError("--env takes NAME=VALUE, not %r: for example --env DEBUG=1." % item)
        out[name.strip()] = value
    return out


def _module_findable(module, cwd, env, python=None):
    """Whether ``python -m module`` run in ``cwd`` with ``env`` finds the module's top-level package (found,
    not imported: nothing of the program runs here).  Another interpreter (``python``) is asked itself: its
    own packages are not ours."""
    import importlib.machinery
    top = module.split(".")[0]
    if python and python != sys.executable:
        code = "import importlib.util, sys; sys.exit(importlib.util.find_spec(sys.argv[1]) is None)"
        child_env = dict(os.environ, **env)
        try:
            return subprocess.run([python, "-c", code, top], cwd=cwd, env=child_env, timeout=30,
                                  stdin=subprocess.DEVNULL, capture_output=True).returncode == 0
        except (OSError, subprocess.SubprocessError):
            return False
    paths = [cwd] + [p for p in (env.get("PYTHONPATH") or os.environ.get("PYTHONPATH") or "").split(os.pathsep)
                     if p] + [p for p in sys.path if p]
    return top in sys.builtin_module_names or importlib.machinery.PathFinder.find_spec(top, paths) is not None


#: The Python versions core runs on (pyproject.toml's requires-python).
SUPPORTED_PYTHON = (3, 11)
#: Names tried on PATH for an interpreter, when the packaged app (which has none of its own) traces a program.
PYTHON_NAMES = ("python%d.%d" % SUPPORTED_PYTHON, "python3", "python")


def find_python(given=None):
    """The interpreter that runs a traced program: ``given`` (``--python``), else this one, or in the packaged
    app (whose executable is no Python) the first of PYTHON_NAMES on PATH.  UsageError with one sentence when
    there is none, or when it is not a Python core runs on."""
    import shutil
    frozen = getattr(sys, "frozen", False)
    if given:
        python = shutil.which(given) or (given if os.path.isfile(given) else None)
        if python is None:
            raise UsageError("--python %s: no such program; give the path of a Python %d.%d interpreter."
                             % ((given,) + SUPPORTED_PYTHON))
    elif not frozen:
        return sys.executable
    else:
        python = next((p for p in map(shutil.which, PYTHON_NAMES) if p), None)
        if python is None:
            raise UsageError("The packaged app has no Python of its own to run your program, and none is on PATH: "
                             "install Python %d.%d, or name one with --python PATH." % SUPPORTED_PYTHON)
    try:
        said = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                              capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        version = tuple(int(x) for x in said.stdout.split(".")) if said.returncode == 0 else None
    except (OSError, ValueError, subprocess.SubprocessError):
        version = None
    if version is None:
        raise UsageError("%s does not run as a Python interpreter: name one with --python PATH." % python)
    if version != SUPPORTED_PYTHON:
        raise UsageError("%s is Python %d.%d; core runs on Python %d.%d: name that interpreter with --python PATH."
                         % (python, version[0], version[1], SUPPORTED_PYTHON[0], SUPPORTED_PYTHON[1]))
    return python


def traced_program(rest, as_module, cwd, env, python=None):
    """What ``trace`` runs, from ``rest`` (SCRIPT or MODULE, then its arguments): (command line, title, what
    the run file's meta says of it, run file stem).  UsageError with one sentence when there is nothing
    runnable to trace (the app's Trace dialog says the same sentence as you type)."""
    if as_module:
        if not rest:
            raise UsageError("Name the module to trace: main.py trace -m MODULE [ARGS...].")
        module, prog_args = rest[0], rest[1:]
        if not all(part.isidentifier() for part in module.split(".")):
            raise UsageError("%r is not a module name (like pkg.tool): give -m the name python -m takes." % module)
        if module.endswith(".py"):
            raise UsageError("%s names a file: give -m the module's name (%s), or trace the file as a script."
                             % (module, module[:-3]))
        if not _module_findable(module, cwd, env, python):
            raise UsageError("No module named %s in %s or on the path: run from the folder that holds it "
                             "(--cwd DIR), or add its folder with --env PYTHONPATH=DIR." % (module, cwd))
        return ([python or sys.executable, "-m", module] + prog_args, "trace -m %s" % module,
                {"module": module, "args": prog_args, "cwd": cwd}, module)
    if not rest:
        raise UsageError("Name the program to trace: main.py trace SCRIPT [ARGS...], or main.py trace -m MODULE "
                         "[ARGS...].")
    script, prog_args = rest[0], rest[1:]
    path = os.path.join(cwd, script)
    if not os.path.isfile(path):
        raise UsageError("No such script: %s. Give the path of a Python file (one that uses multiprocessing, "
                         "concurrent.futures or core), or a module with -m." % path)
    # The script as given (relative to cwd, where it runs): its sys.argv[0] is what python would give it.
    return ([python or sys.executable, script] + prog_args, "trace %s" % os.path.basename(script),
            {"script": os.path.abspath(path), "args": prog_args, "cwd": cwd},
            os.path.splitext(os.path.basename(script))[0])


def cmd_trace(args):
    from core.trace.runner import MAIN_GUARD_ADVICE, RunSpec, TracedRun, install_cancel_handlers

    from ..history import RunHistory
    max_size = parse_size(args.max_size)
    if args.cwd and not os.path.isdir(args.cwd):
        raise UsageError("--cwd %s is not a folder: give the folder the program runs in." % args.cwd)
    env = parse_env(args.env)
    if args.start_method:
        import multiprocessing
        from core.context import START_METHOD_ENV
        if args.start_method not in multiprocessing.get_all_start_methods():
            raise UsageError("This platform has no %r start method: choose one of %s."
                             % (args.start_method, ", ".join(multiprocessing.get_all_start_methods())))
        env[START_METHOD_ENV] = args.start_method
    as_module = args.module is not None
    rest = args.module if as_module else args.script_and_args
    trailing_out = trailing_force = None
    if args.out is None:                # otherwise a trailing --out X is the program's own argument
        rest, trailing_out, trailing_force = _split_trace_args(rest)
    python = find_python(args.python)
    argv, title, what, stem = traced_program(rest, as_module, os.path.abspath(args.cwd or os.curdir), env, python)
    history = RunHistory(args.home)
    out = args.out or trailing_out or history.new_run_path("trace-" + stem)
    spec = RunSpec(argv, out, kind="trace", title=title, echo_output=() if args.quiet else ("stdout", "stderr"),
                   start_method=args.start_method, meta=what, env=env or None, cwd=what["cwd"],
                   replace=bool(args.force or trailing_force), stand_in=True,
                   stdin=subprocess.DEVNULL if args.control_stdin else None, max_size=max_size)
    run = TracedRun(spec, observers=[history, SummaryPrep()])
    install_cancel_handlers(run)
    run.start()
    if args.control_stdin:
        control_from_stdin(run)
    status = run.wait()
    print("", file=sys.stderr)
    summary = print_summary(out, status)
    print("run file: %s" % out)
    capped = size_cap_sentence(summary.size_cap, summary.meta.get("created_perf"))
    if capped:
        print("mpgui: %s" % capped, file=sys.stderr)
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
    from ..history import RunHistory
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
    from core.trace.export import export_run
    from core.trace.store import RunFile
    if not args.chrome and not args.csv:
        raise UsageError("Say what to export: --chrome FILE.json and/or --csv DIR.")
    path = _resolve_run(args.runfile, args.home)
    _check_outputs(args.chrome, args.csv)         # before reading a run that may take a while
    with RunFile(path) as rf:
        try:                                      # one pass over the chunks: memory bounded whatever the run's size
            n, files = export_run(rf, chrome=args.chrome, csv_dir=args.csv)
        except OSError as e:
            raise UsageError("Cannot write %s (%s): choose a path in a directory you can write to."
                             % (e.filename or args.chrome or args.csv, e.strerror or e)) from None
        problems = list(rf.problems)
    if args.chrome:
        print("wrote %s (%d trace events; open it in https://ui.perfetto.dev)" % (args.chrome, n))
    if args.csv:
        print("wrote %d CSV files to %s" % (len(files), args.csv))
    if problems:
        print("the run file is damaged; exported what was valid. Skipped: %s" % "; ".join(problems),
              file=sys.stderr)
    return EXIT_OK


def add_commands(sub):
    t = sub.add_parser("trace", help="run a Python program that uses multiprocessing, concurrent.futures or core, "
                       "unmodified, and record everything it does",
                       description="Runs SCRIPT (or -m MODULE, as python -m does) with core standing in for "
                       "multiprocessing in it and in every process it starts, and records it.")
    t.add_argument("--out", help="run file to write (default: a new file in the run history)")
    t.add_argument("--start-method", dest="start_method", help="the program's default start method (fork, spawn "
                   "or forkserver, what the platform has), where it chooses none itself")
    t.add_argument("--force", action="store_true", help="replace the run file --out names if it holds a run")
    t.add_argument("--quiet", action="store_true", help="do not echo the program's output")
    t.add_argument("--python", metavar="PATH", help="the Python that runs the program (default: this one; the "
                   "packaged app, which has none, looks for python3.11, python3 or python on PATH)")
    t.add_argument("--cwd", metavar="DIR", help="the folder the program runs in (default: the current one)")
    t.add_argument("--env", action="append", metavar="NAME=VALUE", help="an environment variable for the "
                   "program (repeatable)")
    t.add_argument("--control-stdin", action="store_true", help=argparse.SUPPRESS)
    t.add_argument("-m", dest="module", nargs=argparse.REMAINDER, metavar="MODULE [ARGS...]",
                   help="run a module as python -m does; what follows is the module's")
    add_max_size_option(t)
    t.add_argument("script_and_args", nargs=argparse.REMAINDER, metavar="SCRIPT [ARGS...] [--out RUNFILE] [--force]")
    t.set_defaults(func=cmd_trace)

    e = sub.add_parser("export", help="export a run to Chrome/Perfetto JSON and/or CSV")
    e.add_argument("runfile", metavar="RUNFILE", help="a .mpgrun file, or a run id from 'runs'")
    e.add_argument("--chrome", metavar="FILE.json", help="write Chrome Trace Event JSON (Perfetto opens it)")
    e.add_argument("--csv", metavar="DIR", help="write CSV tables into this directory")
    e.set_defaults(func=cmd_export)
