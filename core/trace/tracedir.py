"""Trace directories: where a run's rings and meta files live while it is recorded, and who owns them.

A trace directory is made in RAM where the OS has it (/dev/shm), else the temp directory, by the process that
collects the run.  Its owners (the runner that made it, the collector process that drains it) hold a shared
lock on a file in it for as long as they live, so a directory whose lock can be taken exclusively belongs to
owners that were killed and could not remove it: such directories are removed when the next one is made.
Directories of live owners are never touched, whoever and wherever they are (another user's session, another
PID namespace).

No Qt here.
"""
import os
import shutil
import tempfile
import time
from typing import Dict

from .procs import pid_alive

TRACE_DIR_PREFIX = "mpgui-trace-"
#: A file in every trace directory that its owners keep locked (flock, shared) for as long as they live.
OWNER_LOCK = ".owner"

#: Locks on the trace directories this process owns (kept open: closing one releases the lock).
_owned: Dict[str, int] = {}


def make_trace_dir():
    """A fresh trace directory, in RAM where the OS has it (/dev/shm), else the temp directory.

    Its owner (this process) holds a shared lock on a file in it until the directory is removed or the owner
    dies, so a directory whose lock can be taken exclusively belongs to owners that were killed and could not
    remove it: those are removed here.  Directories of live owners are never touched, whoever and wherever they are
    (another user's session, another PID namespace)."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
    remove_stale_trace_dirs(base)
    d = tempfile.mkdtemp(prefix="%s%d-" % (TRACE_DIR_PREFIX, os.getpid()), dir=base)
    fd = os.open(os.path.join(d, OWNER_LOCK), os.O_RDWR | os.O_CREAT, 0o600)
    if not _try_lock(fd, shared=True):     # pragma: no cover - a fresh file nobody else knows of
        os.close(fd)
    else:
        _owned[d] = fd
    return d


def hold_trace_dir(d):
    """Share the ownership of trace directory ``d``, made by another live process (the collector process
    holds its runner's directory, so that it is not taken for stale while it drains it, even after the runner
    died).  False if ``d`` is gone (or being removed as stale)."""
    try:
        fd = os.open(os.path.join(d, OWNER_LOCK), os.O_RDWR)
    except OSError:
        return False
    if not _try_lock(fd, shared=True):
        os.close(fd)
        return False
    _owned[d] = fd
    return True


def release_trace_dir(d):
    """Remove a trace directory this process made, and drop its lock."""
    shutil.rmtree(d, ignore_errors=True)
    fd = _owned.pop(d, None)
    if fd is not None:
        os.close(fd)


def _try_lock(fd, shared=False):
    """Take a lock on ``fd`` (exclusive, or ``shared``) without waiting; True if taken (or if the OS has no
    flock)."""
    try:
        import fcntl
    except ImportError:                    # Windows: a directory in use cannot be removed anyway
        return True
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def remove_stale_trace_dirs(base):
    """Remove trace directories under ``base`` whose owner is gone (its lock is free)."""
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        if not name.startswith(TRACE_DIR_PREFIX):
            continue
        d = os.path.join(base, name)
        if d in _owned:
            continue
        try:
            fd = os.open(os.path.join(d, OWNER_LOCK), os.O_RDONLY)
        except FileNotFoundError:
            # Made by a version without the lock file, or being created right now: judge by the pid in the
            # name, and leave it alone unless that pid is gone and the directory is older than a minute.
            owner = name[len(TRACE_DIR_PREFIX):].split("-", 1)[0]
            try:
                old = time.time() - os.stat(d).st_mtime > 60
            except OSError:
                continue
            if old and owner.isdigit() and not pid_alive(int(owner)):
                shutil.rmtree(d, ignore_errors=True)
            continue
        except OSError:
            continue
        try:
            if _try_lock(fd):
                shutil.rmtree(d, ignore_errors=True)
        finally:
            os.close(fd)
