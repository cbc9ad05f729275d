"""Process trees: whether a process is alive, the members of a run's process tree, ending that tree, and the
guardian that ends it if its runner dies.  One home for this knowledge: the runner, the collector, the
history and the app's process table all ask here.

No Qt here.  The guardian itself is in ``guard`` (it imports nothing until it must end a tree).
"""
import errno
import os
import subprocess
import sys
from typing import List

import psutil

from .guard import RELEASE as GUARD_RELEASE, main as guard_main  # noqa: F401 (the guardian's names, here)

#: How long processes get to end after SIGTERM before SIGKILL.
TERM_GRACE = 0.8
#: The hidden command that runs the guardian in the packaged app (main.py dispatches it).
GUARD_COMMAND = "_run-guard"
#: Command-line marks of the stdlib's helper processes: they go last when a tree is ended (the resource
#: tracker releases what the program left once every other process is gone).
HELPER_MARKS = {"resource_tracker": "resource tracker", "forkserver": "forkserver"}

#: The directory holding the core package, put first on a guardian's path.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: The directory holding core's source for a Python outside this process (a traced program's): the checkout,
#: or in the packaged app the copy of core's source it carries (its own core is compiled into the bundle).
SOURCE_ROOT = os.path.join(getattr(sys, "_MEIPASS", ROOT), "source") if getattr(sys, "frozen", False) else ROOT


def own_session():
    """``subprocess.Popen`` keywords that start a process in a session (Windows: a process group) of its own,
    so a signal to this process's group does not reach it (the guardian)."""
    if os.name == "posix":
        return {"start_new_session": True}
    return {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}


def own_group(stdin=subprocess.DEVNULL):
    """``subprocess.Popen`` keywords that start a process in a process group of its own, in this process's
    session: a Ctrl+C or a signal to this process's group does not reach it (the program, the collector).

    Not a session of its own: on Linux the kernel schedules each session as one group ("autogroups"), and the
    collector, mostly asleep, in a session of its own beside a program keeping every core busy in another,
    waited up to 2.6 s for a CPU and the rings overflowed (drops in 3 of 14 runs of ``run lock_contention``
    with 1.2 million locked increments; in the app the event loop froze up to 2 s).  In one session they share
    its weight task by task: the collector polls every 10 to 20 ms and the program is not held back against
    the machine's other work.  A program given this process's stdin when it is a terminal (``trace`` from a
    shell) still gets a session of its own: in a background group of the terminal's session, reading it
    would stop the program (SIGTTIN)."""
    if os.name == "posix" and not (stdin is None and _stdin_is_a_terminal()):
        return {"process_group": 0}
    return own_session()


def _stdin_is_a_terminal():
    try:
        return os.isatty(sys.stdin.fileno())
    except (AttributeError, OSError, ValueError):      # no stdin at all
        return False


def pid_alive(pid):
    """Whether process ``pid`` exists and has not ended (a zombie, ended but not reaped, counts as ended)."""
    if not pid:
        return False
    if pid == os.getpid():
        return True
    try:
        if not psutil.pid_exists(pid):
            return False
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        try:
            os.kill(pid, 0)
        except OSError as e:
            return e.errno == errno.EPERM
        return True


def unlink_segment(name):
    """Remove a POSIX shared-memory segment by name (no-op where segments die with their handles)."""
    if os.name != "posix":
        return False
    try:
        import _posixshmem
        _posixshmem.shm_unlink(name if name.startswith("/") else "/" + name)
        return True
    except (OSError, ImportError):
        return False


def group_members(pgid):
    """The processes of process group ``pgid`` that have not ended.

    A zombie has ended: it is only waiting for its parent to read its exit status.  The stdlib's helpers (the
    resource tracker, the forkserver) end just after the program's main process, and their new parent may
    reap them late or never (the first process of a container often does not reap), so counting zombies
    made every run that started one wait out ``ORPHAN_GRACE`` and then try to kill what had ended."""
    out: List[psutil.Process] = []
    if pgid is None or os.name != "posix":
        return out
    if os.path.isdir("/proc/self"):
        for pid in _proc_group(pgid):
            try:
                out.append(psutil.Process(pid))
            except psutil.Error:
                pass
        return out
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pgid and p.pid != os.getpid() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except (OSError, psutil.Error):
            pass
    return out


def _proc_group(pgid):
    """The pids of group ``pgid``'s processes that have not ended, from /proc/<pid>/stat alone (Linux): one
    small read per process instead of psutil's several, as the runner asks at the end of every run, on
    machines with many processes."""
    me = os.getpid()
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                stat = f.read()
        except OSError:
            continue                           # ended meanwhile
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ')'
        fields = stat[stat.rfind(b")") + 2:].split(None, 3)
        if len(fields) >= 3 and int(fields[2]) == pgid and fields[0] != b"Z" and int(name) != me:
            out.append(int(name))
    return out


def _stdlib_helpers(procs):
    """pid -> role of the stdlib's helper processes among ``procs``, told by their command lines."""
    out = {}
    for p in procs:
        try:
            cmd = " ".join(p.cmdline())
        except psutil.Error:
            continue
        for mark, role in HELPER_MARKS.items():
            if "multiprocessing.%s" % mark in cmd:
                out[p.pid] = role
    return out


def but_trackers(procs):
    """``procs`` without the stdlib's resource trackers: a tracker records nothing and ends by itself once
    every holder of its pipe is gone (after unlinking what the program leaked), so a run need not wait for
    it before its last drain."""
    trackers = {pid for pid, role in _stdlib_helpers(procs).items() if role == HELPER_MARKS["resource_tracker"]}
    return [p for p in procs if p.pid not in trackers]


def _wait_procs(procs, timeout, child=None):
    """psutil.wait_procs, except for ``child`` (this process's own subprocess.Popen of one of them): waiting
    through psutil would reap it behind the Popen's back, which then reports exit code 0 for a process that
    was killed.  Returns the processes still alive."""
    others = [p for p in procs if child is None or p.pid != child.pid]
    _, alive = psutil.wait_procs(others, timeout=timeout)
    if child is not None and len(others) < len(procs):
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            alive.append(next(p for p in procs if p.pid == child.pid))
    return alive


def kill_tree(root_pid, pgid=None, grace=TERM_GRACE, spare_roles=None, child=None):
    """End ``root_pid``, its descendants and its process group: SIGTERM, then SIGKILL after ``grace``.
    Processes named in ``spare_roles`` (pid -> role, e.g. the resource tracker) go last, so they can clean up.
    ``child``: the subprocess.Popen through which this process started one of them (the runner's program):
    it is waited for through that object, so its exit code stays known.  Returns the pids that were still
    alive and had to be signalled."""
    procs = {}
    try:
        root = psutil.Process(root_pid)
        procs[root.pid] = root
        for c in root.children(recursive=True):
            procs[c.pid] = c
    except psutil.Error:
        pass
    for p in group_members(pgid):
        procs.setdefault(p.pid, p)
    procs.pop(os.getpid(), None)
    for pid, p in list(procs.items()):         # ended already (see group_members): nothing to end or wait for
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                del procs[pid]
        except psutil.Error:
            del procs[pid]
    spare_roles = {**(spare_roles or {}), **_stdlib_helpers(procs.values())}
    spare = {pid: p for pid, p in procs.items() if pid in spare_roles}
    first = [p for pid, p in procs.items() if pid not in spare]
    for p in first:
        try:
            p.terminate()
        except psutil.Error:
            pass
    alive = _wait_procs(first, grace, child)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    _wait_procs(alive, grace, child)
    if spare:
        # The resource tracker exits by itself once every process holding its pipe is gone.
        left = _wait_procs(list(spare.values()), 0.5, child)
        for p in left:
            try:
                p.kill()
            except psutil.Error:
                pass
        _wait_procs(left, grace, child)
    return list(procs)


def helper_path():
    """The import path of a helper process (the collector, the guardian): this process's, with the directory
    holding core first (the current directory, first for ``-c``, may hold another package named core)."""
    return [ROOT] + [p for p in sys.path if p and os.path.abspath(p) != ROOT]


def helper_python():
    """How a helper process starts Python: this interpreter without the site module.  Site's work (the
    installed packages' .pth files) is about 50 ms of CPU at each start, taken from the program when it starts
    beside it; the helper gets the import path from ``helper_path`` instead."""
    return [sys.executable, "-S"]


def guard_command(program_pid):
    """The command line of a guardian for the program ``program_pid`` (see the module docstring)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, GUARD_COMMAND, str(program_pid)]
    return helper_python() + [os.path.join(ROOT, "core", "trace", "guard.py"), str(program_pid)] + helper_path()


def tree_pids(root_pid, pgid=None):
    """The pids of ``root_pid``, its descendants and its process group (a run's tree)."""
    pids = set()
    try:
        root = psutil.Process(root_pid)
        pids.add(root.pid)
        pids.update(c.pid for c in root.children(recursive=True))
    except psutil.Error:
        pass
    pids.update(p.pid for p in group_members(pgid))
    pids.discard(os.getpid())
    return pids
