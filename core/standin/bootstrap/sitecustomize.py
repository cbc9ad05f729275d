"""The stand-in's bootstrap: imported at start-up by every interpreter of a traced program's tree.

The runner puts this folder first on the program's PYTHONPATH, so the interpreter imports this module as its
``sitecustomize``; spawn children, the forkserver, the resource tracker and any Python the program runs
inherit the environment and do the same.  With ``MPGUI_STANDIN=1`` it adds one finder to ``sys.meta_path``
that answers for three module names only, and only once: right after ``multiprocessing`` (or
``concurrent.futures.process``) has run its own code, it hands the module to ``core.standin``, which makes it
give out core's traced objects (after ``core`` itself, if that is being imported then).

It must cost nothing a program that never imports multiprocessing could notice: it imports nothing the
interpreter has not already loaded at start-up (``core`` is imported only by the hook), and it leaves
``sys.path`` as it would be without it (this folder is taken off once its work is done).  The
``sitecustomize`` it hides, if one is further on the path, is imported next, as the interpreter would have,
and takes its place in ``sys.modules``.

If the program has a module named ``core`` of its own, mpgui's cannot be imported beside it: the hook says so
in one line on stderr and the process runs untraced, unchanged.
"""
import os
import sys

#: core.standin.STANDIN_ENV (this module must not import core to learn it).
STANDIN_ENV = "MPGUI_STANDIN"

HERE = os.path.dirname(os.path.abspath(__file__))
#: The folder holding the core package (this file is core/standin/bootstrap/sitecustomize.py).
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))


class StandInFinder:
    """Finds nothing itself: asks the finders after it for the spec of a watched module, then wraps its
    loader so that the stand-in's hook runs right after the module's own code."""

    #: module name -> the function of ``core.standin`` that takes the freshly executed module (``core``
    #: itself: the hooks that had to wait for it, see ``run_hook``)
    HOOKS = {"multiprocessing": "install_stdlib", "concurrent.futures.process": "install_futures", "core": None}

    def find_spec(self, name, path, target=None):
        if name not in self.HOOKS:
            return None
        hook = self.HOOKS[name]
        for finder in sys.meta_path:
            if finder is self or isinstance(finder, StandInFinder) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = HookedLoader(spec.loader, hook)
                return spec
        return None


class HookedLoader:
    """A watched module's own loader, followed by the stand-in's hook."""

    def __init__(self, loader, hook):
        self.loader = loader
        self.hook = hook

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        # The module keeps its own loader for whatever asks it later (linecache, importlib.reload).
        module.__loader__ = self.loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        run_hook(self.hook, module)


#: Hooks that came while ``core`` itself was being imported: a program that imports core first (``import core
#: as multiprocessing``) imports multiprocessing from inside core's import, before core has its names.
_waiting_for_core = []


def run_hook(hook, module):
    """Hand ``module`` to ``core.standin`` now, or once core is imported if it is being imported."""
    if hook is None:                     # core's own code has run: what waited for it goes now
        waiting, _waiting_for_core[:] = list(_waiting_for_core), []
        for args in waiting:
            hand_over(*args)
        return
    core = sys.modules.get("core")
    if core is not None and getattr(getattr(core, "__spec__", None), "_initializing", False):
        _waiting_for_core.append((hook, module))
        return
    hand_over(hook, module)


def hand_over(hook, module):
    """``core.standin``'s ``hook`` takes ``module``: mpgui's core, never a module of the program with its name."""
    try:
        if not own_core():
            return
        import core.standin
        getattr(core.standin, hook)(module)
    except Exception as e:          # the program must still run as it would: untraced, and saying why
        sys.stderr.write("mpgui: could not trace %s in process %d (%s: %s); it runs untraced.\n"
                         % (module.__name__, os.getpid(), type(e).__name__, e))


_warned = []


def own_core():
    """Whether ``import core`` gives mpgui's core here (not a ``core`` module of the program's own)."""
    expected = os.path.join(ROOT, "core", "__init__.py")
    mod = sys.modules.get("core")
    if mod is not None:
        origin = getattr(mod, "__file__", None)
    else:
        import importlib.util
        spec = importlib.util.find_spec("core")          # a top-level name: nothing is imported
        origin = spec.origin if spec is not None else None
    if origin is not None and os.path.normcase(os.path.abspath(origin)) == os.path.normcase(expected):
        return True
    if not _warned:
        _warned.append(True)
        sys.stderr.write("mpgui: this program has a module named 'core' of its own (%s), which hides mpgui's: "
                         "its multiprocessing runs untraced; rename that module to trace it.\n" % origin)
    return False


def chain():
    """Import the ``sitecustomize`` this one hides (the next one on the path), as the interpreter would have.

    With the import system's own frozen modules, loaded in every interpreter: ``importlib.util`` would
    import contextlib and more into every process of the tree (about 10 ms)."""
    path_finder = sys.modules["_frozen_importlib_external"].PathFinder
    spec = path_finder.find_spec("sitecustomize", sys.path)
    if spec is None or spec.loader is None or os.path.dirname(os.path.abspath(spec.origin or "")) == HERE:
        return
    module = sys.modules["_frozen_importlib"].module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["sitecustomize"] = module       # what `import sitecustomize` gives without the stand-in


#: The command the stdlib's resource tracker runs (multiprocessing.resource_tracker.ResourceTracker): a
#: helper that records nothing of its own (the process that starts it notes it), so importing core there
#: would only delay it, and the end of every run that waits for it (about 30 ms).
TRACKER_COMMAND = "from multiprocessing.resource_tracker import main;"


def is_resource_tracker():
    argv = getattr(sys, "orig_argv", ())
    return "-c" in argv and any(a.startswith(TRACKER_COMMAND) for a in argv)


def main():
    # Off the path first: the chained sitecustomize must not find this one again, and the program sees the
    # sys.path it would see without the stand-in.
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
    if os.environ.get(STANDIN_ENV) == "1" and not any(isinstance(f, StandInFinder) for f in sys.meta_path) \
            and not is_resource_tracker():
        sys.meta_path.insert(0, StandInFinder())
        # Imported already (by a .pth file, say): hooked now, in the order the program would have needed them.
        for name in StandInFinder.HOOKS:
            if name in sys.modules:
                run_hook(StandInFinder.HOOKS[name], sys.modules[name])
    chain()


if __name__ == "sitecustomize":          # imported by the interpreter at start-up
    main()
