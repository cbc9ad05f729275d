"""The stand-in: core in place of the standard library's multiprocessing, in a program that was not written
for it, and in every process that program starts.

``main.py trace`` records programs that ``import multiprocessing``, ``from multiprocessing import Pool, Lock``
or use ``concurrent.futures.ProcessPoolExecutor``, without a line changed.  The runner starts the program
with ``bootstrap/`` first on its PYTHONPATH and ``MPGUI_STANDIN=1`` (``environment()``); every interpreter of
the tree inherits both (spawn children, the forkserver and the resource tracker are fresh interpreters with
the parent's environment), so each imports ``bootstrap/sitecustomize.py`` at start-up.  That module only
watches for two imports (and for core's own, which they wait for if it is under way):

    import multiprocessing               ->  stdlib.install():  the package's names and the classes programs
                                             import from its submodules become core's
    import concurrent.futures.process    ->  futures.install(): its ProcessPoolExecutor becomes the traced one

Nothing else changes: a program that never imports multiprocessing imports nothing more than it would, and
what a program sees of multiprocessing has the stdlib's signatures, results and exceptions (core's promise).
core itself keeps the stdlib's originals: its modules captured them when they were imported, before the
stand-in replaced anything.

Outside the traced tree nothing changes: the stand-in lives in the program's environment only, never in the
runner's or the app's.  No Qt here, and nothing of mpgui.
"""
import os
import sys

#: Set to "1" in a traced program's environment: the bootstrap installs the stand-in only then.  (The
#: bootstrap, which must not import core, spells the same name.)
STANDIN_ENV = "MPGUI_STANDIN"

#: The folder put first on a traced program's PYTHONPATH: it holds the bootstrap ``sitecustomize``.  (In the
#: packaged app, the one in the copy of core's source it carries for outside Pythons.)
BOOTSTRAP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bootstrap")
if getattr(sys, "frozen", False):
    BOOTSTRAP_DIR = os.path.join(getattr(sys, "_MEIPASS", ""), "source", "core", "standin", "bootstrap")


def environment(env):
    """``env`` (a program's environment, changed in place and returned) with the stand-in switched on: the
    bootstrap folder first on PYTHONPATH (before any other ``sitecustomize``, which it then imports itself)."""
    paths = [BOOTSTRAP_DIR] + [p for p in (env.get("PYTHONPATH") or "").split(os.pathsep)
                               if p and os.path.abspath(p) != BOOTSTRAP_DIR]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env[STANDIN_ENV] = "1"
    return env


def install_stdlib(module=None):
    """The bootstrap's hook for ``multiprocessing``: see ``stdlib.install``."""
    from . import stdlib
    stdlib.install()


def install_futures(module):
    """The bootstrap's hook for ``concurrent.futures.process``: see ``futures.install``.  Only where the
    stand-in is in place (the executor's queues are then core's)."""
    from . import futures, stdlib
    if stdlib.installed():
        futures.install(module)
