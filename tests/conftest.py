"""Shared fixtures: start methods, leak checks, and a traced-run harness.

Every test is checked for leaks: no child process may outlive it (the stdlib's long-lived helpers, the
forkserver and the resource tracker, excepted) and no shared-memory segment or named semaphore its process
tree created may be left in /dev/shm.  The check looks only at what the test made (tests/sitecustomize.py
logs every segment its processes create), so it holds while other programs use shared memory too.
"""
import gc
import multiprocessing
import os
import sys
import time

import psutil
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

START_METHODS = multiprocessing.get_all_start_methods()
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")     # no screen needed, before any Qt import


def _load_test_site():
    """tests/sitecustomize.py under a name of its own (an interpreter may have a sitecustomize already)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("mpgui_test_site", os.path.join(ROOT, "tests",
                                                                                  "sitecustomize.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


sitecustomize = _load_test_site()     # logs the segments each test's processes create
sitecustomize.install()


def pytest_configure(config):
    # Children started with spawn/forkserver must import core and the tests' helper modules.
    paths = [ROOT, os.path.join(ROOT, "tests")]
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(paths + ([old] if old else []))


@pytest.fixture(params=START_METHODS)
def start_method(request):
    """Each test using this runs once per start method the platform has."""
    return request.param


def _helper_pids():
    """Long-lived stdlib helpers that legitimately outlive a test: the forkserver and resource tracker."""
    pids = set()
    try:
        from multiprocessing import forkserver, resource_tracker
        pids.add(getattr(forkserver._forkserver, "_forkserver_pid", None))
        pids.add(getattr(resource_tracker._resource_tracker, "_pid", None))
    except Exception:
        pass
    return {p for p in pids if p}


def _segment_file(rtype, name):
    """The /dev/shm file of a registered resource: ``/psm_x`` -> ``psm_x``, semaphore ``/mp-x`` -> ``sem.mp-x``."""
    base = name.lstrip("/")
    return ("sem." + base) if rtype == "semaphore" else base


def _created_segments(log):
    """The /dev/shm files this test's process tree registered with the resource tracker (see sitecustomize)."""
    try:
        with open(log) as f:
            lines = f.read().split("\n")
    except OSError:
        return set()
    out = set()
    for line in lines:
        rtype, _, name = line.partition(" ")
        if name and rtype in ("shared_memory", "semaphore"):
            out.add(_segment_file(rtype, name))
    return out


def _existing(names):
    return {n for n in names if os.path.exists(os.path.join("/dev/shm", n))}


def _children():
    me = psutil.Process()
    helpers = _helper_pids()
    out = []
    for c in me.children(recursive=True):     # the forkserver's children are ours too
        try:
            if c.pid not in helpers and c.status() != psutil.STATUS_ZOMBIE:
                out.append(c)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.fixture(autouse=True)
def no_leaks(request, tmp_path_factory):
    """Fail a test that leaves a child process, a shared-memory segment or a named semaphore behind.

    Only what this test's own process tree made is checked, and only that is cleaned up: other programs
    (another test session, anything else on the machine) may create and remove segments meanwhile."""
    log = str(tmp_path_factory.mktemp("shmlog") / "created")
    saved = os.environ.get(sitecustomize.LOG_ENV)
    os.environ[sitecustomize.LOG_ENV] = log
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(sitecustomize.LOG_ENV, None)
        else:
            os.environ[sitecustomize.LOG_ENV] = saved
    deadline = time.monotonic() + 5.0
    left = _children()
    while left and time.monotonic() < deadline:
        multiprocessing.active_children()       # reaps finished stdlib children
        time.sleep(0.05)
        left = _children()
    gc.collect()        # the stdlib unlinks named semaphores when their objects are collected
    created = _created_segments(log)
    leaked_shm = set()
    deadline = time.monotonic() + 2.0
    while created and time.monotonic() < deadline:
        leaked_shm = _existing(created)
        if not leaked_shm:
            break
        time.sleep(0.05)
    problems = []
    if left:
        desc = []
        for c in left:
            try:
                desc.append("%d %s" % (c.pid, " ".join(c.cmdline())[:120]))
            except psutil.Error:
                desc.append(str(c.pid))
            try:
                c.kill()
            except psutil.Error:
                pass
        problems.append("child processes left behind: %s" % "; ".join(desc))
    if leaked_shm:
        for n in leaked_shm:
            try:
                os.unlink(os.path.join("/dev/shm", n))
            except OSError:
                pass
        problems.append("shared memory left behind: %s" % sorted(leaked_shm))
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)


class TraceSession:
    """Tracing switched on for this test's process and its children, collected into memory."""

    def __init__(self):
        from core.trace import collector, tracedir, recorder
        self._recorder = recorder
        self.dir = tracedir.make_trace_dir()
        self.batches = []
        self._env = os.environ.get(recorder.TRACE_ENV)
        recorder.enable(self.dir)
        self.collector = collector.Collector(self.dir, self.batches.append).start()
        self._stopped = False

    def stop(self):
        """Stop collecting (drains everything) and switch tracing off; returns the RunModel."""
        if not self._stopped:
            self._stopped = True
            self._recorder.disable()
            if self._env is not None:
                os.environ[self._recorder.TRACE_ENV] = self._env
            self.collector.stop()
        return self.model()

    def model(self):
        import numpy as np
        from core.trace.arrays import EVENT_DTYPE
        from core.trace.model import RunModel
        m = RunModel()
        events = [b.events for b in self.batches if len(b.events)]
        m.ingest(np.concatenate(events) if events else np.zeros(0, EVENT_DTYPE),
                 [r for b in self.batches for r in b.metas])
        m.dropped = self.collector.dropped_total
        return m

    def events(self):
        import numpy as np
        from core.trace.arrays import EVENT_DTYPE
        events = [b.events for b in self.batches if len(b.events)]
        return np.concatenate(events) if events else np.zeros(0, EVENT_DTYPE)


@pytest.fixture
def trace_session():
    """A TraceSession for the test; ``trace_session.stop()`` returns the model (teardown stops it anyway)."""
    session = TraceSession()
    try:
        yield session
    finally:
        session.stop()
