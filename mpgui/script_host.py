"""``main.py _run-script SCRIPT [ARGS...]``: run a Python file as the main program of this interpreter.

The packaged app has no ``python`` beside it: this command is its stand-in for ``python SCRIPT``, so that a
scenario that must run a separate little program (spawn_main_guard) works there too.  The script runs as
``__main__`` with its folder first on ``sys.path`` and ``sys.argv`` set as ``python`` sets them.

It runs under its module name (the file's stem), not from its path: multiprocessing's children then
re-import it by name (spawn and forkserver), as they re-import ``python SCRIPT``'s main module by path.  By
path would not do in a packaged app: a frozen Windows executable never re-runs its main module's path in
its children.  Either way the script's top level runs again in every child, and code there that starts a
process fails as it does under ``python``.

Only for files the app itself wrote: the script is not traced, and nothing here is part of a run.
"""
import os
import runpy
import sys
import traceback

SCRIPT_COMMAND = "_run-script"


def main(argv):
    if not argv:
        print("usage: %s SCRIPT [ARGS...]" % SCRIPT_COMMAND, file=sys.stderr)
        return 2
    path = os.path.abspath(argv[0])
    folder, name = os.path.split(path)
    module, ext = os.path.splitext(name)
    if ext != ".py" or not module.isidentifier() or not os.path.isfile(path):
        print("%s runs a Python file whose name is a module name (for example work.py): %s is not one."
              % (SCRIPT_COMMAND, argv[0]), file=sys.stderr)
        return 2
    sys.argv = [path] + list(argv[1:])
    sys.path.insert(0, folder)
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as e:
        code = e.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()          # as python prints an uncaught exception
        return 1
    return 0
