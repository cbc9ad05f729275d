"""The kinds of record a traced process can write, and their binary layout.

A record is 48 bytes, fixed, written by ``recorder`` into a per-thread ring and read by ``collector``:

    t    i64  time.perf_counter_ns(): system-wide monotonic, so records of all processes share one axis
    uid  u64  the stable id of what the event is about (a lock, a queue, a process, a pool...)
    a    i64  first payload slot
    b    i64  second payload slot
    kind u32  one of ``Kind``
    c    i32  third, small payload slot
    seq  u64  1-based sequence number within the ring (0 means "never written"), written after the rest

The collector overwrites ``seq`` with ``pid`` and ``tid`` (known per ring), giving ``EVENT_DTYPE``, the layout
stored in run files: the same bytes, no conversion.

What each kind's ``uid`` and payload slots mean is declared once, in ``schema`` (which readers import: the
model, the event log, the exports).  This module is imported by every traced process, so it holds only what
writing a record needs: it never imports numpy or Qt, never touches the OS, and stays small (a traced
process may compile it at every start).
"""
import enum

RECORD_FORMAT = "<qQqqIiQ"
RECORD_SIZE = 48
# numpy views of the same layouts (``RECORD_FIELDS`` in a ring, ``EVENT_FIELDS`` in a run file) are built in
# ``arrays``: this module is imported by every traced process and must not pull numpy in.
RECORD_FIELDS = [("t", "<i8"), ("uid", "<u8"), ("a", "<i8"), ("b", "<i8"), ("kind", "<u4"), ("c", "<i4"),
                 ("seq", "<u8")]
EVENT_FIELDS = [("t", "<i8"), ("uid", "<u8"), ("a", "<i8"), ("b", "<i8"), ("kind", "<u4"), ("c", "<i4"),
                ("pid", "<i4"), ("tid", "<i4")]
#: A queue, pipe or manager call, or an event or barrier wait, that took at least this long blocked: the
#: recorder then records its call site (CALLSITE), the analytics count it as a wait, the model draws it (its
#: MIN_BLOCKED_NS).  A lock knows exactly: it recorded a request.
BLOCKED_NS = 50_000


class Kind(enum.IntEnum):
    """Event kinds.  The numbers are stored in run files: never renumber one.  ``schema.SCHEMA`` says what
    each kind's ``uid`` and payload mean."""

    # processes
    PROC_CREATED = 1
    PROC_START = 2
    PROC_BOOT = 3
    PROC_EXIT = 4
    PROC_REAPED = 5
    PROC_TERMINATE = 6
    PROC_KILL = 7
    PROC_JOIN = 8
    # locks and semaphores
    ACQ_REQUEST = 10
    ACQ_OK = 11
    ACQ_TIMEOUT = 12
    RELEASE = 13
    RELEASE_ERROR = 14
    # condition
    COND_WAIT = 20
    COND_WOKEN = 21
    COND_NOTIFY = 22
    # event
    EVENT_SET = 30
    EVENT_CLEAR = 31
    EVENT_WAIT = 32
    EVENT_WAIT_END = 33
    # barrier
    BARRIER_ARRIVE = 40
    BARRIER_PASS = 41
    BARRIER_BROKEN = 42
    BARRIER_ABORT = 43
    BARRIER_RESET = 44
    # queues
    QUEUE_PUT = 50
    QUEUE_SEND = 51
    QUEUE_GET = 52
    QUEUE_FULL = 53
    QUEUE_EMPTY = 54
    QUEUE_TASK_DONE = 55
    QUEUE_JOIN = 56
    QUEUE_JOIN_WAIT = 57
    # pipes / connections
    PIPE_SEND = 60
    PIPE_RECV = 61
    PIPE_CLOSE = 62
    # shared memory
    SHM_CREATE = 70
    SHM_ATTACH = 71
    SHM_CLOSE = 72
    SHM_UNLINK = 73
    # managers
    MANAGER_CALL = 80
    MANAGER_START = 81
    # core.ipc
    IPC_SEND = 90
    IPC_RECV = 91
    SIGNAL_SEND = 92
    SIGNAL_RECV = 93
    # pool
    POOL_CREATED = 100
    POOL_JOB = 101
    POOL_CHUNK_QUEUED = 102
    POOL_CHUNK_SENT = 103
    POOL_TASK = 104
    POOL_TASK_T0 = 105
    POOL_TASK_LOST = 106
    POOL_RESULT_USED = 107
    POOL_WORKER_UP = 108
    POOL_WORKER_INIT = 109
    POOL_WORKER_EXIT = 110
    POOL_JOB_DONE = 111
    POOL_CLOSED = 112
    POOL_GROUP_T0 = 113
    POOL_GROUP = 114
    # free-form (scenarios and programs)
    MARK = 120
    COUNTER = 121
    PROGRESS = 122
    PHASE = 123
    # where a wait blocked
    CALLSITE = 124


class StartMethod(enum.IntEnum):
    UNKNOWN = 0
    FORK = 1
    SPAWN = 2
    FORKSERVER = 3

    @classmethod
    def of(cls, name):
        return {"fork": cls.FORK, "spawn": cls.SPAWN, "forkserver": cls.FORKSERVER}.get(name, cls.UNKNOWN)


class Outcome(enum.IntEnum):
    OK = 0
    ERROR = 1
    TIMEOUT = 2
    LOST = 3
    CANCELLED = 4


class JobMethod(enum.IntEnum):
    APPLY = 1
    MAP = 2
    IMAP = 3
    IMAP_UNORDERED = 4
    STARMAP = 5


class WorkerExit(enum.IntEnum):
    RECYCLED = 0      # maxtasksperchild reached, left on purpose
    DIED = 1          # ended without saying so: crash, kill, os._exit
    TIMED_OUT = 2     # killed by the pool for a task over its time
    STOPPED = 3       # terminate()/close()


class IpcKind(enum.IntEnum):
    FILE = 1
    SOCKET = 2
    SHARED_MEMORY = 3
    SIGNAL = 4
