"""Traced shared memory: the stdlib's SharedMemory and ShareableList with create, attach, close and unlink
recorded.  A segment's uid is derived from its OS name, so every process that attaches it reports events
about the same object.
"""
import hashlib

from multiprocessing import shared_memory as _std

from .trace import recorder
from .trace.events import Kind

__all__ = ["SharedMemory", "ShareableList"]


def segment_uid(name):
    """A run-wide stable id for a segment, from its name (top bit pattern keeps it apart from pid-based ids)."""
    digest = hashlib.blake2b(name.encode(), digest_size=7).digest()
    return int.from_bytes(digest, "little") | (1 << 62)


def _record(kind, shm, created=None):
    if not recorder.ENABLED:
        return
    uid = segment_uid(shm.name)
    if created is not None:
        recorder.register_object(uid, "SharedMemory", shm.name, size=shm.size, created=created)
    recorder.emit(kind, uid, shm.size)


class SharedMemory(_std.SharedMemory):
    """Creates a new shared memory block or attaches to an existing one (traced)."""

    def __init__(self, name=None, create=False, size=0):
        super().__init__(name, create, size)
        _record(Kind.SHM_CREATE if create else Kind.SHM_ATTACH, self, created=bool(create))

    def close(self):
        closing = self._mmap is not None
        super().close()
        if closing:
            _record(Kind.SHM_CLOSE, self)

    def unlink(self):
        super().unlink()
        _record(Kind.SHM_UNLINK, self)


class ShareableList(_std.ShareableList):
    """The stdlib's ShareableList; its segment's create/attach is recorded under the segment's name."""

    def __init__(self, sequence=None, *, name=None):
        super().__init__(sequence, name=name)
        if type(self.shm) is SharedMemory:
            return                  # made by core's SharedMemory (core stands in for the stdlib's): recorded
        self.shm.__class__ = SharedMemory      # same layout: its close()/unlink() are then traced too
        _record(Kind.SHM_CREATE if sequence is not None else Kind.SHM_ATTACH, self.shm,
                created=sequence is not None)
