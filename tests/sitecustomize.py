"""Test-suite hook, imported by every Python process the tests start (``tests/`` is on their PYTHONPATH).

It lets the leak check see exactly which shared-memory segments and named semaphores the test's own process
tree created: every registration with the stdlib's resource tracker (which every SharedMemory(create=True)
and every named SemLock makes in the process that creates it) is appended to the file named by
``MPGUI_TEST_SHM_LOG``, when that variable is set.  Nothing is changed for processes without it.

A ``sitecustomize`` of the interpreter's own, later on the path, is still imported.
"""
import os
import sys

LOG_ENV = "MPGUI_TEST_SHM_LOG"


def install():
    """Wrap ``multiprocessing.resource_tracker.register`` so created names are logged (idempotent)."""
    from multiprocessing import resource_tracker
    _wrap(resource_tracker)


def _wrap(resource_tracker):
    original = resource_tracker.register
    if getattr(original, "_mpgui_logged", False):
        return

    def register(name, rtype):
        path = os.environ.get(LOG_ENV)
        if path:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                try:
                    os.write(fd, ("%s %s\n" % (rtype, name)).encode())
                finally:
                    os.close(fd)
            except OSError:
                pass
        return original(name, rtype)

    register._mpgui_logged = True
    resource_tracker.register = register


class _WrapOnImport:
    """A meta-path finder that wraps the resource tracker's ``register`` when a program first imports it,
    so a process that never uses multiprocessing imports nothing more than it would."""

    NAME = "multiprocessing.resource_tracker"

    def find_spec(self, name, path, target=None):
        if name != self.NAME:
            return None
        import importlib.machinery
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        inner = spec.loader

        class Loader:
            def create_module(self, spec):
                return inner.create_module(spec)

            def exec_module(self, module):
                inner.exec_module(module)
                _wrap(module)

        spec.loader = Loader()
        return spec


def _chain():
    """Import the next ``sitecustomize`` on the path, if any (this module shadows it)."""
    here = os.path.dirname(os.path.abspath(__file__))
    import importlib.machinery
    import importlib.util
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)


if __name__ == "sitecustomize":          # imported by the interpreter at start-up (not by conftest)
    if os.environ.get(LOG_ENV):
        sys.meta_path.insert(0, _WrapOnImport())
    _chain()
