"""The event schema: every kind of record a traced process can write, and its binary layout.

A record is 48 bytes, fixed, written by ``recorder`` into a per-thread ring and read by ``collector``:

    t    i64  time.perf_counter_ns(): system-wide monotonic, so records of all processes share one axis
    uid  u64  the stable id of the object the event is about (a lock, a queue, a process, a pool...)
    a    i64  first payload (meaning depends on kind, documented below)
    b    i64  second payload
    kind u32  one of ``Kind``
    c    i32  third, small payload
    seq  u64  1-based sequence number within the ring (0 means "never written"), written after the rest

The collector overwrites ``seq`` with ``pid`` and ``tid`` (known per ring), giving ``EVENT_DTYPE``, the layout
stored in run files: the same bytes, no conversion.  Nothing here imports Qt or touches the OS.
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


class Kind(enum.IntEnum):
    """Event kinds. ``a``/``b``/``c`` give each kind's payloads; ``uid`` is the object's id."""

    # -- processes: uid = the Process object's uid ------------------------------------------------------
    PROC_CREATED = 1      # Process() constructed in the parent
    PROC_START = 2        # parent, after start(): a=child pid, b=StartMethod code, c=0
    PROC_BOOT = 3         # child, first instruction of the child's bootstrap: a=parent pid
    PROC_EXIT = 4         # child, end of run: a=exit code
    PROC_REAPED = 5       # parent saw the child end: a=pid, b=exitcode (negative: killed by signal -b)
    PROC_TERMINATE = 6    # parent asked: a=pid
    PROC_KILL = 7         # parent asked: a=pid
    PROC_JOIN = 8         # parent waited in join(): a=waited ns, b=1 if the child had ended, c=timed out

    # -- locks and semaphores: uid = the primitive ------------------------------------------------------
    ACQ_REQUEST = 10      # a blocking acquire has to wait: a=timeout in ns (-1 none)
    ACQ_OK = 11           # acquired: a=wait ns, b=value after (semaphores; -1 unknown), c=recursion depth
    ACQ_TIMEOUT = 12      # acquire gave up: a=wait ns (non-blocking failures have a=0)
    RELEASE = 13          # released: a=hold ns (-1 unknown), b=value after (-1 unknown), c=recursion depth
    RELEASE_ERROR = 14    # release refused (BoundedSemaphore over-release, RLock not owned): b=value

    # -- condition ---------------------------------------------------------------------------------------
    COND_WAIT = 20        # a=timeout ns (-1 none)
    COND_WOKEN = 21       # a=wait ns, b=1 notified / 0 timed out
    COND_NOTIFY = 22      # a=n requested (-1 all)

    # -- event ---------------------------------------------------------------------------------------------
    EVENT_SET = 30
    EVENT_CLEAR = 31
    EVENT_WAIT = 32       # a=timeout ns (-1 none)
    EVENT_WAIT_END = 33   # a=wait ns, b=flag returned

    # -- barrier -------------------------------------------------------------------------------------------
    BARRIER_ARRIVE = 40   # a=parties, b=generation, c=arrival index (waiting count after arrival - 1)
    BARRIER_PASS = 41     # a=wait ns, b=generation, c=index returned
    BARRIER_BROKEN = 42   # a=wait ns, b=generation
    BARRIER_ABORT = 43
    BARRIER_RESET = 44

    # -- queues: uid = the queue -----------------------------------------------------------------------------
    QUEUE_PUT = 50        # a=blocked ns, b=depth after (-1 unknown)
    QUEUE_SEND = 51       # feeder thread wrote the pickled item: a=bytes
    QUEUE_GET = 52        # a=blocked ns, b=bytes, c=depth after (-1 unknown)
    QUEUE_FULL = 53       # put gave up (queue.Full): a=blocked ns
    QUEUE_EMPTY = 54      # get gave up (queue.Empty): a=blocked ns
    QUEUE_TASK_DONE = 55  # a=unfinished tasks after
    QUEUE_JOIN = 56       # join() returned: a=blocked ns
    QUEUE_JOIN_WAIT = 57  # join() started

    # -- pipes / connections: uid = the connection end ---------------------------------------------------
    PIPE_SEND = 60        # a=bytes, b=blocked ns
    PIPE_RECV = 61        # a=bytes, b=blocked ns (time inside recv)
    PIPE_CLOSE = 62

    # -- shared memory: uid = the segment ------------------------------------------------------------------
    SHM_CREATE = 70       # a=size
    SHM_ATTACH = 71       # a=size
    SHM_CLOSE = 72
    SHM_UNLINK = 73

    # -- managers: uid = the proxy's referent (one per shared object) ----------------------------------------
    MANAGER_CALL = 80     # a=duration ns, b=method string id, c=1 if it raised
    MANAGER_START = 81    # a=server pid

    # -- core.ipc ------------------------------------------------------------------------------------------
    IPC_SEND = 90         # a=bytes, b=IpcKind, c=0
    IPC_RECV = 91         # a=bytes, b=IpcKind, c=0
    SIGNAL_SEND = 92      # a=signal number, b=target pid
    SIGNAL_RECV = 93      # a=signal number

    # -- pool: uid = the Pool; job ids are small ints per pool; task index = position in the call ---------
    POOL_CREATED = 100    # a=processes, b=maxtasksperchild (0 none)
    POOL_JOB = 101        # a job was submitted: a=job id, b=number of tasks (-1 unknown yet), c=JobMethod
    POOL_CHUNK_QUEUED = 102   # a=job id, b=first task index, c=chunk size.  Also re-emitted (caller: at
    #                           submission or as the feeder reads; manager: when a dead worker's untouched
    #                           tasks are requeued, possibly from mid-chunk) before the matching CHUNK_SENT
    POOL_CHUNK_SENT = 103     # a=job id, b=first task index, c=worker pid (emitted just before the write)
    POOL_TASK = 104       # worker ran one task: a=job id, b=task index, c=Outcome; t is the end; see POOL_TASK_T0
    POOL_TASK_T0 = 105    # precedes each POOL_TASK in the same ring: a=job id, b=task index, t is the start
    POOL_TASK_LOST = 106  # parent failed a task: a=job id, b=task index, c=Outcome: LOST (its worker died;
    #                       also a task the worker had finished but not yet reported), TIMEOUT, CANCELLED
    #                       (terminate), ERROR (failed in the parent: argument not picklable, input raised)
    POOL_RESULT_USED = 107    # the caller consumed a result: a=job id, b=task index (-1 whole job: get())
    POOL_WORKER_UP = 108      # worker started: a=worker pid, b=worker number (1, 2, ... per pool)
    POOL_WORKER_INIT = 109    # worker finished its initializer (ready for work): a=duration ns, b=worker
    #                           pid; emitted by the parent with the worker's timestamp
    POOL_WORKER_EXIT = 110    # parent saw a worker end: a=worker pid, b=exitcode (-1 unknown), c=WorkerExit
    POOL_JOB_DONE = 111       # a=job id, c=1 if it failed
    POOL_GROUP_T0 = 113       # a worker starts a group of tasks too short to record one by one (see
                              # core.pool.GROUP_BELOW_NS): a=job id, b=first task index, c=count; t the start
    POOL_GROUP = 114          # the group ended (same payloads; t the end).  Its tasks share the group's time
                              # equally; a task of it that failed was recorded alone (T0/TASK, ERROR) first
    POOL_CLOSED = 112         # c=1 terminate, 0 close

    # -- free-form ------------------------------------------------------------------------------------------
    MARK = 120            # a=string id of a label, b=value
    COUNTER = 121         # a=value, b=string id of the counter's name
    PROGRESS = 122        # uid=string id of what progresses, a=done, b=total (-1 unknown)
    PHASE = 123           # a scenario phase began: a=string id of its label


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


#: The kinds of shared objects a registration can name, in the order the GUI lists them.
OBJECT_KINDS = ("Process", "Lock", "RLock", "Semaphore", "BoundedSemaphore", "Condition", "Event", "Barrier",
                "Queue", "SimpleQueue", "JoinableQueue", "Connection", "Value", "Array", "SharedMemory",
                "ShareableList", "Manager", "Proxy", "Pool", "FileChannel", "SocketChannel", "SignalChannel")
