"""Child-process targets for the trace tests (importable by spawned children: tests/ is on PYTHONPATH)."""
import time

from core.trace import recorder
from core.trace.events import Kind


def hold_lock(lock, ready, seconds):
    with lock:
        ready.set()
        time.sleep(seconds)


def condition_event_barrier(cond, event, barrier):
    time.sleep(0.05)
    with cond:
        cond.notify()
    event.wait(10)
    barrier.wait(10)


def slow_consumer(q, n, delay):
    for _ in range(n):
        time.sleep(delay)
        q.get()


def echo(conn, n):
    for _ in range(n):
        conn.send_bytes(conn.recv_bytes())


def attach_and_write(name):
    from core.shared_memory import SharedMemory
    shm = SharedMemory(name)
    shm.buf[:5] = b"hello"
    shm.close()


def sleep_forever():
    time.sleep(60)


def record_then_wait(n, ready):
    for i in range(n):
        recorder.emit(int(Kind.MARK), 1, 0, i)
    ready.set()
    time.sleep(60)


def touch_lock(lock):
    with lock:
        pass


def socket_connect_with_key(address, authkey, q):
    """Connect a SocketChannel to ``address`` with ``authkey``; put on ``q`` the answer to a hello, or the
    refusal."""
    import os
    from multiprocessing import AuthenticationError
    from core.ipc import SocketChannel
    try:
        ch = SocketChannel.connect(address, authkey=authkey)
    except AuthenticationError as e:
        q.put(("refused", str(e)))
        return
    try:
        ch.send({"pid": os.getpid()})
        q.put(("got", ch.recv()))
    finally:
        ch.close()
