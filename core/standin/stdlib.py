"""What the stand-in replaces in the standard library's multiprocessing, and what it leaves alone (and why).

``install()`` runs once per process, right after ``multiprocessing`` was first imported (see
``core.standin``).  It imports core first, so core's modules capture the stdlib's originals (core subclasses
them and builds its untraced internals from them), and only then points the names a program uses at core's
objects:

* every name of the package (``multiprocessing.Lock``, ``Pool``, ``Process``, ``get_context``,
  ``set_start_method``, ...): the bound methods of core's default context, as ``import core as
  multiprocessing`` gives them; a context from ``get_context()`` is core's, so its factory methods are too;
* the classes and functions programs import from submodules (``SUBMODULE_NAMES``);
* ``multiprocessing.pool.Pool``, which the stdlib's own code also calls by that name (``ThreadPool``'s
  ``__init__`` is ``Pool.__init__``): a subclass of the stdlib's Pool whose own instances are core's Pools
  (``pool_class``).

Two rules decide what can be replaced by a plain assignment, and ``tests/e2e/test_trace_unmodified_standin.py``
checks the first against the stdlib's source:

1. The stdlib must not use the name at call time, inside its own functions: it would get core's object
   where it builds its own (``JoinableQueue.__init__`` calls ``Queue.__init__``, ``SharedMemoryManager``'s
   calls ``BaseManager.__init__``: core's queue and manager would call themselves).
2. No object of the stdlib's original class may still be pickled: pickle looks a class up by its module
   and name and refuses one that is not the very object it finds there.  Core's queues hold the stdlib's
   own locks (so ``multiprocessing.synchronize``'s names stay), and SyncManager's registry holds
   ``multiprocessing.pool.Pool`` (so core's registries get core's twin: ``_retarget_manager_registries``).

Left alone, therefore: ``multiprocessing.synchronize``'s classes (2), ``multiprocessing.queues``' classes (1;
concurrent.futures' call queue is made traced where it is defined, see ``futures``),
``multiprocessing.managers.BaseManager`` (1; a program's own manager class is the stdlib's, untraced),
``multiprocessing.connection.Pipe`` (the stdlib's queues and managers make their pipes with it), and
``multiprocessing.shared_memory.ShareableList`` (it makes its segment with the module's ``SharedMemory``,
which is core's: traced as it is).  Programs mostly reach all of these through ``multiprocessing.X()`` or
a context, which are traced.

No Qt here, nothing of mpgui.
"""
import importlib

#: stdlib module -> (core module, names programs import from it), each safe to assign (rules 1 and 2 above).
SUBMODULE_NAMES = {
    "multiprocessing.managers": ("core.managers", ("SyncManager", "SharedMemoryManager")),
    "multiprocessing.shared_memory": ("core.shared_memory", ("SharedMemory",)),
    "multiprocessing.sharedctypes": ("core.sharedctypes", ("Value", "Array")),
}

#: The stdlib objects replaced in this process: [(module, name, original)].
_replaced = []


def installed():
    """Whether this process's multiprocessing gives out core's objects."""
    return bool(_replaced)


def pool_class(std_pool, core_pool):
    """``multiprocessing.pool.Pool`` for a traced program: still the stdlib's class to the stdlib's own code
    (its static methods, ``ThreadPool``, a program's subclass of it), but calling it makes core's Pool, which
    ``isinstance`` counts as one, as it counts the stdlib's own pools (a ThreadPool)."""

    class PoolType(type(std_pool)):
        def __instancecheck__(cls, obj):
            return isinstance(obj, (core_pool, std_pool))

        def __subclasscheck__(cls, sub):
            return issubclass(sub, (core_pool, std_pool))

    class Pool(std_pool, metaclass=PoolType):
        def __new__(cls, *args, **kwargs):
            if cls is Pool:
                return core_pool(*args, **kwargs)
            return super().__new__(cls)

    Pool.__module__, Pool.__qualname__, Pool.__doc__ = std_pool.__module__, std_pool.__qualname__, core_pool.__doc__
    return Pool


def replacements():
    """[(stdlib module, name, core's object)]: everything ``install`` changes, core imported first."""
    import multiprocessing
    import multiprocessing.pool

    import core
    import core.pool
    out = [(multiprocessing, name, getattr(core, name)) for name in multiprocessing.__all__
           if hasattr(core, name) and getattr(core, name) is not getattr(multiprocessing, name)]
    for std_name, (core_name, names) in SUBMODULE_NAMES.items():
        std_mod = importlib.import_module(std_name)
        core_mod = importlib.import_module(core_name)
        out += [(std_mod, name, getattr(core_mod, name)) for name in names
                if getattr(core_mod, name, None) is not None and hasattr(std_mod, name)]
    out.append((multiprocessing.pool, "Pool", pool_class(multiprocessing.pool.Pool, core.pool.Pool)))
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
    reference: SyncManager's ``Pool`` (the stdlib's ``multiprocessing.pool.Pool``) would no longer pickle
    once that name is replaced (rule 2).  The registries programs use (core's managers) get the
    replacement instead; the server then makes traced pools."""
    from core import managers
    for cls in (managers.BaseManager, managers.SyncManager, managers.SharedMemoryManager):
        registry = vars(cls).get("_registry") if cls is not None else None
        for typeid, entry in list((registry or {}).items()):
            twin = twins.get(id(entry[0]))
            if twin is not None:
                registry[typeid] = (twin,) + tuple(entry[1:])
