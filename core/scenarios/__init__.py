"""The scenario catalog: one module per workload, each making one lesson of the reference notes measurable.

Modules are listed explicitly (not discovered) so a frozen app (PyInstaller) bundles every one of them.
"""
import difflib
import importlib

from .base import MAX_PROCESSES, Param, ParamError, Reporter, Result, Scenario, processes_param  # noqa: F401

#: Every scenario module, in the order the catalog lists them.
MODULES = (
    "pool_methods",
    "lock_contention",
    "threads_vs_processes",
    "start_cost",
    "start_methods",
    "rlock",
    "semaphore",
    "chunksize",
    "barrier",
    "maxtasksperchild",
    "initializer_vs_args",
    "spawn_main_guard",
    "condition_event",
    "fork_with_thread",
    "process_lifecycle",
    "async_not_lazy",
    "queues",
    "pipe",
    "shared_data",
    "manager",
    "remote_manager",
    "ipc_kinds",
)

_catalog = None


def catalog():
    """name -> Scenario, in catalog order."""
    global _catalog
    if _catalog is None:
        out = {}
        for mod in MODULES:
            sc = importlib.import_module("%s.%s" % (__name__, mod)).SCENARIO
            out[sc.name] = sc
        _catalog = out
    return _catalog


def get(name):
    """The scenario called ``name``; ParamError (one sentence, with close names) if there is none."""
    cat = catalog()
    if name in cat:
        return cat[name]
    close = difflib.get_close_matches(name, list(cat), n=3, cutoff=0.5)
    hint = " Did you mean %s?" % " or ".join(repr(c) for c in close) if close else ""
    raise ParamError("Unknown scenario %r.%s List them with 'main.py scenarios'." % (name, hint))
