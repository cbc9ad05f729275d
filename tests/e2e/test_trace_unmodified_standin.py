"""The stand-in itself (core.standin), in interpreters started with its environment: what it replaces, what it
leaves to the stdlib and to core, and what it must not change (imports, sys.path, the sitecustomize it
hides, a program's own module named core)."""
import json
import os
import subprocess
import sys
import textwrap

from core import standin
from core.trace.procs import ROOT
from core.trace.runner import child_env

PROBE = textwrap.dedent('''
    import json, pickle, sys
    import concurrent.futures, multiprocessing, multiprocessing.managers, multiprocessing.pool
    import multiprocessing.queues, multiprocessing.shared_memory, multiprocessing.sharedctypes
    import multiprocessing.synchronize, multiprocessing.connection
    import core, core.queues, core.synchronize
    print(json.dumps({
        "Lock": type(multiprocessing.Lock()).__module__,
        "context Lock": type(multiprocessing.get_context("spawn").Lock()).__module__,
        "Process": multiprocessing.Process.__module__,
        "Pool": multiprocessing.pool.Pool.__module__,
        "SyncManager": multiprocessing.managers.SyncManager.__module__,
        "SharedMemory": multiprocessing.shared_memory.SharedMemory.__module__,
        "Value": multiprocessing.sharedctypes.Value.__module__,
        "executor": concurrent.futures.ProcessPoolExecutor.__module__,
        "executor is the module's": concurrent.futures.ProcessPoolExecutor
                                    is concurrent.futures.process.ProcessPoolExecutor,
        # left to the stdlib, on purpose
        "synchronize.Lock": multiprocessing.synchronize.Lock.__module__,
        "connection.Pipe": multiprocessing.connection.Pipe.__module__,
        "queues.Queue": multiprocessing.queues.Queue.__module__,
        "BaseManager": multiprocessing.managers.BaseManager.__module__,
        "ThreadPool": multiprocessing.pool.ThreadPool(1).map(abs, [-1]),
        "Pool subclass": type(type("MyPool", (multiprocessing.pool.Pool,), {})(1)).__mro__[2].__module__,
        "call queue": concurrent.futures.process._SafeQueue.__mro__[2].__module__,
        # what core builds on is still the stdlib's own
        "core's stdlib Queue": core.queues._std.Queue.__module__,
        "core's stdlib JoinableQueue": core.queues._std.JoinableQueue.__module__,
        "queue lock": type(multiprocessing.Queue()._rlock).__module__,
        "isinstance": isinstance(multiprocessing.Queue(), multiprocessing.queues.Queue),
        "JoinableQueue works": multiprocessing.JoinableQueue().__class__.__module__,
        "Pool()": type(multiprocessing.pool.Pool(1)).__module__,
        "isinstance Pool": [isinstance(p, multiprocessing.pool.Pool) for p in
                            (multiprocessing.Pool(1), multiprocessing.pool.ThreadPool(1), object())],
        "registry Pool": multiprocessing.managers.SyncManager._registry["Pool"][0] is multiprocessing.pool.Pool,
        "pickles Pool": pickle.loads(pickle.dumps(multiprocessing.pool.Pool)) is multiprocessing.pool.Pool,
    }))
''')


def python(code, env, cwd=None, args=()):
    return subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def with_standin(**extra):
    return standin.environment(dict(os.environ, **extra))


def test_the_program_environment_has_the_stand_in_only_when_asked(tmp_path):
    plain = child_env(str(tmp_path), {"PYTHONPATH": "/users/own"})
    assert standin.STANDIN_ENV not in plain and standin.BOOTSTRAP_DIR not in plain["PYTHONPATH"]
    env = child_env(str(tmp_path), {"PYTHONPATH": "/users/own"}, stand_in=True)
    assert env[standin.STANDIN_ENV] == "1"
    assert env["PYTHONPATH"].split(os.pathsep) == [standin.BOOTSTRAP_DIR, ROOT, "/users/own"]
    assert standin.STANDIN_ENV not in os.environ                        # the runner's own is untouched


def test_the_bootstrap_spells_the_variable_core_sets():
    with open(os.path.join(standin.BOOTSTRAP_DIR, "sitecustomize.py")) as f:
        assert 'STANDIN_ENV = "%s"' % standin.STANDIN_ENV in f.read()


def test_a_traced_process_gets_cores_objects_and_core_keeps_the_stdlibs():
    r = python(PROBE, with_standin())
    assert r.returncode == 0, r.stderr
    seen = json.loads(r.stdout)
    assert seen == {
        "Lock": "core.synchronize", "context Lock": "core.synchronize", "Process": "core.process",
        "Pool": "multiprocessing.pool", "Pool()": "core.pool", "SyncManager": "core.managers",
        "SharedMemory": "core.shared_memory", "Value": "core.sharedctypes", "executor": "core.standin.futures",
        "executor is the module's": True, "call queue": "core.queues",
        "synchronize.Lock": "multiprocessing.synchronize", "connection.Pipe": "multiprocessing.connection",
        "queues.Queue": "multiprocessing.queues", "BaseManager": "multiprocessing.managers",
        "ThreadPool": [1], "Pool subclass": "multiprocessing.pool",
        "core's stdlib Queue": "multiprocessing.queues", "core's stdlib JoinableQueue": "multiprocessing.queues",
        "queue lock": "multiprocessing.synchronize", "isinstance": True, "JoinableQueue works": "core.queues",
        "registry Pool": True, "pickles Pool": True, "isinstance Pool": [True, True, False],
    }


def test_without_the_variable_nothing_is_replaced():
    env = with_standin()
    env.pop(standin.STANDIN_ENV)
    r = python("import multiprocessing.pool; print(multiprocessing.pool.Pool.__module__)", env)
    assert r.stdout == "multiprocessing.pool\n", r.stderr


def test_a_program_without_multiprocessing_imports_nothing_more_and_sees_the_same_path():
    code = "import sys; print(sorted(sys.modules)); print(sys.path); print(sys.modules['sitecustomize'].__file__)"
    env = dict(os.environ)
    plain = python(code, env)
    stood_in = python(code, standin.environment(dict(env)))
    assert stood_in.returncode == 0 and plain.returncode == 0, stood_in.stderr
    assert stood_in.stdout == plain.stdout
    assert "multiprocessing" not in stood_in.stdout and "'core'" not in stood_in.stdout


def test_the_resource_tracker_starts_as_the_stdlibs_does():
    # The stdlib starts its resource tracker with this command; it records nothing, so core stays out of it
    # (a run that made shared memory waits for its tracker to end).  Any other process still gets core.
    tracker = ("from multiprocessing.resource_tracker import main; import sys; "
               "print('core' in sys.modules, 'multiprocessing' in sys.modules)")
    other = "import multiprocessing.resource_tracker, sys; print('core' in sys.modules)"
    r = python(tracker, with_standin())
    assert r.stdout == "False True\n", r.stderr
    r = python(other, with_standin())
    assert r.stdout == "True\n", r.stderr


def test_the_sitecustomize_it_hides_still_runs(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import sys\nsys.hidden_site_ran = True\n")
    code = "import sys, sitecustomize; print(getattr(sys, 'hidden_site_ran', False), sitecustomize.__file__)"
    env = dict(os.environ, PYTHONPATH=str(site))
    plain = python(code, env)
    assert plain.stdout == "True %s\n" % (site / "sitecustomize.py")
    assert python(code, standin.environment(dict(env))).stdout == plain.stdout


def test_a_program_with_its_own_core_module_runs_untraced_and_says_why(tmp_path):
    (tmp_path / "core.py").write_text("NAME = 'the program own core'\n")
    (tmp_path / "prog.py").write_text(textwrap.dedent('''
        import multiprocessing, core
        def square(x):
            return x * x
        if __name__ == "__main__":
            with multiprocessing.Pool(2) as pool:
                print(pool.map(square, range(4)), core.NAME, multiprocessing.Pool.__module__)
    '''))
    run = [sys.executable, "prog.py"]
    plain = subprocess.run(run, cwd=str(tmp_path), capture_output=True, text=True, timeout=120)
    stood_in = subprocess.run(run, cwd=str(tmp_path), capture_output=True, text=True, timeout=120,
                              env=with_standin())
    assert stood_in.returncode == plain.returncode == 0
    assert stood_in.stdout == plain.stdout == "[0, 1, 4, 9] the program own core multiprocessing.context\n"
    said = stood_in.stderr.strip().splitlines()
    assert len(said) == 1 and "module named 'core' of its own" in said[0] and "rename" in said[0]


def test_a_python_the_program_starts_is_stood_in_too(tmp_path):
    (tmp_path / "inner.py").write_text("import multiprocessing.managers as m\nprint(m.SyncManager.__module__)\n")
    code = "import subprocess, sys; subprocess.run([sys.executable, 'inner.py'])"
    assert python(code, with_standin(), cwd=str(tmp_path)).stdout == "core.managers\n"


def test_the_stdlib_does_not_use_the_names_replaced_by_assignment():
    """Rule 1 of core.standin.stdlib, checked against this interpreter's own source: a replaced name the
    stdlib also calls at run time would make it build core's object where it builds its own.  One use is
    wanted: ShareableList makes its segment with the module's SharedMemory, so its segment is traced."""
    import ast
    import importlib
    import inspect

    from core.standin.stdlib import SUBMODULE_NAMES
    used = set()
    for std_name, (_, names) in SUBMODULE_NAMES.items():
        tree = ast.parse(inspect.getsource(importlib.import_module(std_name)))
        for owner in [tree] + [c for c in ast.walk(tree) if isinstance(c, ast.ClassDef)]:
            for fn in ast.iter_child_nodes(owner):
                if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    used |= {"%s.%s in %s.%s" % (std_name, n.id, getattr(owner, "name", ""), fn.name)
                             for n in ast.walk(fn)
                             if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in names}
    assert used == {"multiprocessing.shared_memory.SharedMemory in ShareableList.__init__"}


def test_a_shareable_list_is_recorded_once_whichever_module_made_it(tmp_path):
    """The stand-in's multiprocessing.shared_memory makes core's SharedMemory, which records itself: the
    ShareableList of either module records its segment once."""
    from core.trace.events import Kind
    from core.trace.store import RunFile
    (tmp_path / "lists.py").write_text(textwrap.dedent('''
        import multiprocessing.shared_memory as std
        import core.shared_memory
        for module in (std, core.shared_memory):
            sl = module.ShareableList([1, 2, 3])
            print(sum(sl))
            sl.shm.close()
            sl.shm.unlink()
    '''))
    out = tmp_path / "run.mpgrun"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), "trace", "--quiet", "lists.py", "--out",
                        str(out)], cwd=str(tmp_path), capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, MPGUI_HOME=str(tmp_path / "home")))
    assert r.returncode == 0, r.stderr
    with RunFile(out) as rf:
        model = rf.model()
        events = rf.read_all()[0]
    assert [text for _, kind, text in model.logs if kind == "stdout"] == ["6", "6"]
    creates = events[events["kind"] == Kind.SHM_CREATE]
    assert len(creates) == 2 and len(set(creates["uid"].tolist())) == 2
    assert len(events[events["kind"] == Kind.SHM_UNLINK]) == 2


def test_a_program_that_imports_core_first_gets_the_stand_in_too(tmp_path):
    """``import core`` imports multiprocessing while core is half made: the stand-in waits for core."""
    code = textwrap.dedent('''
        import core as multiprocessing
        import concurrent.futures, multiprocessing as std
        print(type(std.get_context()).__module__, std.pool.Pool.__module__,
              concurrent.futures.ProcessPoolExecutor.__module__)
    ''')
    r = python(code, with_standin(), cwd=str(tmp_path))
    assert (r.stdout, r.stderr) == ("core.context multiprocessing.pool core.standin.futures\n", "")
