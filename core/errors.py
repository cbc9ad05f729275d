"""Errors core adds to the stdlib's: what a Pool raises where the stdlib would hang or wait forever."""
from multiprocessing.context import ProcessError

__all__ = ["WorkerLostError", "TaskTimeoutError", "PoolTerminatedError"]


class WorkerLostError(ProcessError):
    """A pool worker ended (killed, crashed, ``os._exit``) while it held tasks; those tasks failed.

    ``pid``, ``exitcode`` (negative: killed by signal ``-exitcode``) and ``tasks`` (the indexes of the
    failed tasks within their call) say which worker and which tasks.
    """

    def __init__(self, message, pid=None, exitcode=None, tasks=()):
        super().__init__(message)
        self.pid = pid
        self.exitcode = exitcode
        self.tasks = tuple(tasks)

    def __reduce__(self):
        return type(self), (self.args[0], self.pid, self.exitcode, self.tasks)


class TaskTimeoutError(ProcessError):
    """A pool task ran longer than its ``task_timeout``; its worker was killed and replaced."""

    def __init__(self, message, timeout=None, task=None, pid=None):
        super().__init__(message)
        self.timeout = timeout
        self.task = task
        self.pid = pid

    def __reduce__(self):
        return type(self), (self.args[0], self.timeout, self.task, self.pid)


class PoolTerminatedError(ProcessError):
    """The pool was terminated (``terminate()``, ``with`` exit, Ctrl+C, garbage collection) before the task
    completed.  The stdlib's results wait forever in that case; core's raise this."""
