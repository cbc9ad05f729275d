"""How a run file's event chunks are coded: the ``codec`` of each row of its chunks table.

A chunk holds up to ``CHUNK_EVENTS`` records (EVENT_DTYPE).  Coded (CODEC_ZSTD, CODEC_ZSHUFFLE before it),
its times become differences from the record before, its records' bytes are grouped by position (all first
bytes, then all second bytes...), the positions that never change are stored once and the others packed.
Decoding checks what it is given against what the chunk says it holds and raises ChunkError (one sentence)
rather than return wrong events or unpack without bound.  numpy is imported where events are coded: a
runner that only claims and finishes a run file starts without it.  No Qt here.
"""
import zlib

from .events import RECORD_SIZE

#: How an event chunk's data is encoded (the chunks table's ``codec`` column).
CODEC_RAW = 0          # the EVENT_DTYPE records as they are
CODEC_ZSHUFFLE = 1     # ``t`` as the difference from the previous record, the records' bytes grouped by their
#                        position (all first bytes, then all second bytes...), positions that never change
#                        stored once, the others through zlib (what mpgui wrote before CODEC_ZSTD: still read)
CODEC_ZSTD = 2         # the same, the positions that change through one Zstandard frame (what is written now)
#: Zstandard's level for event chunks.  Measured on the byte positions of 8 chunks of a synthetic 2M-event
#: run (locks, semaphores, queues, pool tasks): zlib level 1 packed them 4.45 to 1 at 76 MB/s and unpacked
#: them at 190 MB/s; Zstandard level 1, 5.86 to 1 at 294 MB/s, 949 MB/s; level 3, 6.18 to 1 at 358 MB/s,
#: 1455 MB/s.  So level 3: a run file about 28% smaller, its events packed about 4.7x and unpacked about 7.6x
#: faster (the collector's work while a hot program runs; opening and exporting a run).
ZSTD_LEVEL = 3
#: The codec new event chunks are written with.
CODEC_WRITTEN = CODEC_ZSTD
#: zlib's level for CODEC_ZSHUFFLE chunks.  Measured on a hot lock loop's events, 10,000 a chunk, before positions that
#: never change were taken out: level 1 gave 2.1 bytes an event (raw: 48) for 130 ns of CPU an event; level 6,
#: 1.7 bytes for 350 ns; level 1 without grouping the bytes, 5.4 bytes; zlib's RLE and Huffman-only
#: strategies were no faster and larger.  Now: about 1.3 to 1.9 bytes for 85 to 95 ns.
ZLIB_LEVEL = 1
#: Events in a chunk, at most: a larger batch is stored as several chunks, so a reader that takes one chunk
#: at a time holds at most this many events (3 MiB).
CHUNK_EVENTS = 1 << 16


class ChunkError(ValueError):
    """An event chunk that cannot be decoded; the message says why."""


_RECORD_SIZE = RECORD_SIZE        # EVENT_DTYPE's
#: A CODEC_ZSHUFFLE chunk starts with a bit per byte position (little-endian, 6 bytes): set if that byte is
#: the same in every record of the chunk (a pid's high bytes, an unused payload...); those bytes follow, one
#: each, and zlib compresses only the other positions.
_MASK_BYTES = 6


def encode_events(events, codec=CODEC_WRITTEN):
    """``events`` (EVENT_DTYPE) as the data of a chunk of ``codec`` (CODEC_ZSTD, or CODEC_ZSHUFFLE as older
    versions wrote)."""
    import numpy as np
    n = len(events)
    rec = np.ascontiguousarray(events)
    grouped = np.empty((_RECORD_SIZE, n), dtype=np.uint8)            # byte position x record
    grouped[:] = rec.view(np.uint8).reshape(n, _RECORD_SIZE).T
    if n > 1:
        # Times go up by little within a thread: their differences compress far better (int64 wraps, so
        # any value comes back exactly).  ``t`` is the record's first 8 bytes.
        t = rec["t"]
        diff = np.empty(n, dtype=np.int64)
        diff[0] = t[0]
        np.subtract(t[1:], t[:-1], out=diff[1:])
        grouped[:8] = diff.view(np.uint8).reshape(n, 8).T
    constant = grouped.min(axis=1) == grouped.max(axis=1)
    mask = sum(1 << int(i) for i in np.flatnonzero(constant))
    head = [mask.to_bytes(_MASK_BYTES, "little"), grouped[constant, 0].tobytes()]
    if codec == CODEC_ZSTD:
        import zstandard
        # one frame holding its content's size, which the reader checks before it unpacks anything
        return b"".join(head + [zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(grouped[~constant])])
    if codec != CODEC_ZSHUFFLE:
        raise ValueError("events are encoded as CODEC_ZSTD or CODEC_ZSHUFFLE, not %r" % (codec,))
    deflate = zlib.compressobj(ZLIB_LEVEL)
    body = [deflate.compress(grouped[i]) for i in np.flatnonzero(~constant)]
    body.append(deflate.flush())
    return b"".join(head + body)


#: Decoded records are put together this many at a time (their bytes come grouped by place in the record: a
#: block's groups stay in the processor's cache while its records are written).
_TRANSPOSE_BLOCK = 4096


def decode_events(data, n, codec, scratch=None):
    """A chunk's ``n`` events (EVENT_DTYPE, a fresh array) from its ``data``; ChunkError if they cannot be.
    ``scratch``: a list holding a working buffer (or nothing) that a caller decoding chunk after chunk keeps
    and passes again, so the buffer is reused instead of new memory for each chunk."""
    import numpy as np

    from .arrays import EVENT_DTYPE
    size = n * _RECORD_SIZE
    if codec == CODEC_RAW:
        if len(data) != size:
            raise ChunkError("is truncated (%d of %d bytes)" % (len(data), size))
        return np.frombuffer(data, dtype=EVENT_DTYPE).copy()
    if codec not in (CODEC_ZSHUFFLE, CODEC_ZSTD):
        raise ChunkError("has an encoding this version does not know (%r; written by a newer mpgui?)" % (codec,))
    mask = int.from_bytes(data[:_MASK_BYTES], "little")
    if len(data) < _MASK_BYTES or mask >> _RECORD_SIZE:
        raise ChunkError("has a damaged header")
    constant = np.array([(mask >> i) & 1 for i in range(_RECORD_SIZE)], dtype=bool)
    k = int(constant.sum())
    values = np.frombuffer(data, dtype=np.uint8, count=k, offset=_MASK_BYTES) \
        if len(data) >= _MASK_BYTES + k else None
    if values is None:
        raise ChunkError("is truncated (%d bytes)" % len(data))
    expected = (_RECORD_SIZE - k) * n
    raw = _unpack(data[_MASK_BYTES + k:], codec, expected)
    if scratch and len(scratch[0]) >= _RECORD_SIZE * n:
        buf = scratch[0]
    else:
        buf = np.empty(_RECORD_SIZE * n, dtype=np.uint8)
        if scratch is not None:
            scratch[:] = [buf]
    grouped = buf[:_RECORD_SIZE * n].reshape(_RECORD_SIZE, n)
    grouped[constant] = values[:, None]
    grouped[~constant] = np.frombuffer(raw, dtype=np.uint8).reshape(_RECORD_SIZE - k, n)
    rec = np.empty(n, dtype=EVENT_DTYPE)
    out = rec.view(np.uint8).reshape(n, _RECORD_SIZE)
    for s in range(0, n, _TRANSPOSE_BLOCK):
        out[s:s + _TRANSPOSE_BLOCK] = grouped[:, s:s + _TRANSPOSE_BLOCK].T
    t = rec["t"]
    np.cumsum(t, out=t)
    return rec


def _unpack(body, codec, expected):
    """The ``expected`` bytes a chunk's body holds; ChunkError if it holds anything else (damage cannot make
    it unpack to more than that)."""
    if codec == CODEC_ZSTD:
        import zstandard
        try:
            size = zstandard.frame_content_size(body)
            if size != expected:
                raise ChunkError("says it holds %d bytes instead of %d" % (size, expected) if size >= 0
                                 else "has a damaged header")
            raw = zstandard.ZstdDecompressor().decompress(body, max_output_size=expected)
        except zstandard.ZstdError as e:
            raise ChunkError("cannot be decompressed (%s)" % e) from None
        if len(raw) != expected:
            raise ChunkError("decompresses to %d bytes instead of %d" % (len(raw), expected))
        return raw
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(body, expected + 1)
    except zlib.error as e:
        raise ChunkError("cannot be decompressed (%s)" % e) from None
    if len(raw) != expected or not inflater.eof:
        raise ChunkError("decompresses to %d bytes instead of %d" % (len(raw), expected))
    return raw


def count_from_data(data, codec):
    """How many events a chunk's data holds (for a chunk that lost its count), or None if it does not say."""
    if codec in (CODEC_ZSHUFFLE, CODEC_ZSTD):
        mask = int.from_bytes(data[:_MASK_BYTES], "little")
        varying = _RECORD_SIZE - bin(mask).count("1")
        if mask >> _RECORD_SIZE or not varying:
            return None
        body = data[_MASK_BYTES + _RECORD_SIZE - varying:]
        if codec == CODEC_ZSTD:
            import zstandard
            try:
                size = zstandard.frame_content_size(body)
            except zstandard.ZstdError:
                return None
            return size // varying if 0 < size <= CHUNK_EVENTS * varying and not size % varying else None
        try:
            inflater = zlib.decompressobj()
            size = len(inflater.decompress(body, CHUNK_EVENTS * varying + 1))
        except zlib.error:
            return None
        return size // varying if size and not size % varying else None
    size = len(data)
    return size // _RECORD_SIZE if size and not size % _RECORD_SIZE else None
