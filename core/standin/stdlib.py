"""What the stand-in replaces in the standard library's multiprocessing, and what it leaves alone (and why).

``install()`` runs once per process, right after ``multiprocessing`` was first imported (see
``core.standin``).  It imports core first, so core's modules capture the stdlib's originals (core subclasses
them and builds its untraced internals from them), and only then points the names a program uses at core's
objects:

* every name of the package (``multiprocessing.Lock``, ``Pool``, ``Process``, ``get_context``,
  ``set_start_method``, ...): the bound methods of core's default context, as ``import core as
  multiprocessing`` gives them; a context from ``get_context()`` is core's, so its factory methods are too;
* the classes and functions programs import from submodules, listed in ``SUBMODULE_NAMES``.

Left alone, on purpose:

* ``multiprocessing.synchronize``'s classes: core's queues, conditions and events hold the stdlib's own
  locks and semaphores, and pickle checks that ``multiprocessing.synchronize.Lock`` *is* the class of a lock
  it sends to a child; replacing the name would make every queue unpicklable.  Programs get their locks
  from ``multiprocessing.Lock()`` or a context, which are traced.
* ``multiprocessing.connection.Pipe``: the stdlib's queues and managers make their internal pipes with it at
  call time; ``multiprocessing.Pipe()`` is traced.
* ``multiprocessing.queues.JoinableQueue``: core's JoinableQueue calls the stdlib class's ``__init__`` by
  that module attribute; ``multiprocessing.JoinableQueue()`` is traced.
* ``multiprocessing.shared_memory.ShareableList``: it builds its segment with the module's ``SharedMemory``,
  which is core's, so its segment is traced as it is.
* ``multiprocessing.context``, ``process``, ``pool.ThreadPool``, ``dummy``: what they hold is core's too,
  the stdlib's own (threads), or internals.

No Qt here, nothing of mpgui.
"""
import importlib

#: stdlib module -> (core module, names a program imports from it directly).  Each replaced name must be
#: one the stdlib does not itself use at call time for objects core builds (see the module docstring).
SUBMODULE_NAMES = {
    "multiprocessing.pool": ("core.pool", ("Pool",)),
    "multiprocessing.managers": ("core.managers", ("BaseManager", "SyncManager", "SharedMemoryManager")),
    # concurrent.futures.process subclasses multiprocessing.queues.Queue when it is imported: its call queue
    # is then a traced queue.
    "multiprocessing.queues": ("core.queues", ("Queue", "SimpleQueue")),
    "multiprocessing.shared_memory": ("core.shared_memory", ("SharedMemory",)),
    "multiprocessing.sharedctypes": ("core.sharedctypes", ("Value", "Array")),
}

#: The stdlib objects replaced in this process: [(module, name, original)].
_replaced = []


def installed():
    """Whether this process's multiprocessing gives out core's objects."""
    return bool(_replaced)


def replacements():
    """[(stdlib module, name, core's object)]: everything ``install`` changes, core imported first."""
    import multiprocessing

    import core
    out = [(multiprocessing, name, getattr(core, name)) for name in multiprocessing.__all__
           if hasattr(core, name) and getattr(core, name) is not getattr(multiprocessing, name)]
    for std_name, (core_name, names) in SUBMODULE_NAMES.items():
        std_mod = importlib.import_module(std_name)
        core_mod = importlib.import_module(core_name)
        out += [(std_mod, name, getattr(core_mod, name)) for name in names
                if getattr(core_mod, name, None) is not None and hasattr(std_mod, name)]
    return out


def install():
    """Make this process's multiprocessing give out core's traced objects (once; later calls do nothing)."""
    if _replaced:
        return
    changes = replacements()            # everything imported (and captured by core) before anything changes
    twins = {}
    for module, name, value in changes:
        original = getattr(module, name)
        _replaced.append((module, name, original))
        twins[id(original)] = value
        setattr(module, name, value)
    _retarget_manager_registries(twins)


def _retarget_manager_registries(twins):
    """A manager's registry (typeid -> callable, ...) is pickled into its server process, callables by
    reference, and pickle checks that the module attribute of that name *is* the callable: SyncManager's
    ``Pool`` (``multiprocessing.pool.Pool``) would no longer pickle once that name is core's Pool.  The
    registries programs use (core's managers) get core's twin instead; the server then makes traced pools."""
    from core import managers
    for cls in (managers.BaseManager, managers.SyncManager, managers.SharedMemoryManager):
        registry = vars(cls).get("_registry") if cls is not None else None
        for typeid, entry in list((registry or {}).items()):
            twin = twins.get(id(entry[0]))
            if twin is not None:
                registry[typeid] = (twin,) + tuple(entry[1:])

