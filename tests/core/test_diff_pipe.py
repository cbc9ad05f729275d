"""Pipe and its Connection ends: the same programs on the stdlib and on core, every start method."""
import array

import pytest

import mp_helpers as H
from mp_helpers import both, catch, ok, started

CLOSED = (OSError, "handle is closed")


def test_duplex_send_recv(start_method, traced):
    def prog(ctx):
        a, b = ctx.Pipe()
        r = [a.readable, a.writable, b.readable, b.writable, a.closed, isinstance(a.fileno(), int),
             a.fileno() != b.fileno(), a.poll(), a.poll(0.05), b.poll(0)]
        obj = {"n": 1, "l": [1, 2], "t": (None, 2.5)}
        a.send(obj)
        obj["n"] = 2                                # send() pickled it already
        r += [b.poll(), b.poll(5), b.recv(), b.poll()]
        b.send("back")
        r.append(a.recv())
        a.send_bytes(b"hello world")
        a.send_bytes(b"hello world", 6)
        a.send_bytes(b"hello world", 2, 3)
        a.send_bytes(bytearray(b"bytearray"))
        a.send_bytes(memoryview(b"memoryview")[4:])
        a.send_bytes(array.array("i", [1, 2, 3]), 1, 1)     # offset and size count bytes, not items
        a.send_bytes(b"")
        r += [b.recv_bytes() for _ in range(7)]
        with a, b:
            pass
        r += [a.closed, b.closed]
        return r

    assert both(prog, start_method) == ok([
        True, True, True, True, False, True, True, False, False, False, True, True,
        {"n": 1, "l": [1, 2], "t": (None, 2.5)}, False, "back",
        b"hello world", b"world", b"llo", b"bytearray", b"ryview", b"\0", b"",
        True, True])


def test_send_bytes_and_recv_bytes_errors(start_method):
    def prog(ctx):
        a, b = ctx.Pipe()
        r = [catch(a.send_bytes, b"abc", -1), catch(a.send_bytes, b"abc", 4), catch(a.send_bytes, b"abc", 1, -1),
             catch(a.send_bytes, b"abc", 1, 3), catch(a.send_bytes, b"abc", 3, 0), catch(b.recv_bytes, -1),
             catch(a.send_bytes, "not bytes")[0]]
        r.append(b.recv_bytes())                        # the empty message sent with offset 3, size 0
        a.send_bytes(b"0123456789")
        r += [catch(b.recv_bytes, 4), b.readable, b.closed, catch(b.recv), catch(b.send, 1)]
        rr, ww = ctx.Pipe(duplex=False)
        ww.send_bytes(b"0123456789")
        r += [catch(rr.recv_bytes, 9), rr.closed, rr.readable]    # a read-only end is closed instead
        for c in (a, b, rr, ww):
            c.close()
        return r

    res = both(prog, start_method)
    assert res == ok([(ValueError, "offset is negative"), (ValueError, "buffer length < offset"),
                      (ValueError, "size is negative"), (ValueError, "buffer length < offset + size"),
                      ok(None), (ValueError, "negative maxlength"), TypeError, b"",
                      (OSError, "bad message length"), False, False, (OSError, "connection is write-only"),
                      ok(None), (OSError, "bad message length"), True, True])


def test_recv_bytes_into(start_method, traced):
    def prog(ctx):
        a, b = ctx.Pipe()
        buf = bytearray(12)
        a.send_bytes(b"abcdef")
        r = [b.recv_bytes_into(buf), bytes(buf)]
        a.send_bytes(b"xyz")
        r += [b.recv_bytes_into(buf, 8), bytes(buf)]
        a.send_bytes(b"0123456789")
        small = bytearray(4)
        try:
            b.recv_bytes_into(small)
        except H.sub(ctx, "context").BufferTooShort as e:
            r.append(("BufferTooShort", e.args[0], type(e).__mro__[1].__name__))
        a.send_bytes(b"xy")
        r.append(catch(b.recv_bytes_into, buf, 11))         # 11 + 2 > 12
        r += [catch(b.recv_bytes_into, buf, -1), catch(b.recv_bytes_into, buf, 13)]
        arr = array.array("i", [0, 0, 0])
        a.send_bytes(array.array("i", [7, 8]))
        r += [b.recv_bytes_into(arr, 4), arr.tolist()]
        a.close()
        b.close()
        return r

    res = both(prog, start_method)[1]
    assert res[:5] == [6, b"abcdef" + bytes(6), 3, b"abcdef\0\0xyz\0", ("BufferTooShort", b"0123456789",
                                                                         "ProcessError")]
    assert res[5][0].__name__ == "BufferTooShort" and res[5][1] == "b'xy'"
    assert res[6:] == [(ValueError, "negative offset"), (ValueError, "offset too large"), 8, [0, 7, 8]]


def test_one_way_pipe(start_method, traced):
    def prog(ctx):
        r_end, w_end = ctx.Pipe(duplex=False)
        r = [r_end.readable, r_end.writable, w_end.readable, w_end.writable,
             catch(r_end.send, 1), catch(r_end.send_bytes, b"x"), catch(w_end.recv), catch(w_end.recv_bytes),
             catch(w_end.poll), catch(w_end.recv_bytes_into, bytearray(3))]
        w_end.send([1, 2])
        r += [r_end.poll(5), r_end.recv()]
        w_end.close()
        r += [r_end.poll(0), catch(r_end.recv), catch(r_end.recv_bytes)]
        r_end.close()
        return r

    read_only, write_only = (OSError, "connection is read-only"), (OSError, "connection is write-only")
    assert both(prog, start_method) == ok([True, False, False, True, read_only, read_only, write_only,
                                           write_only, write_only, write_only, True, [1, 2], True,
                                           (EOFError, ""), (EOFError, "")])


def test_closed_ends(start_method, traced):
    def prog(ctx):
        a, b = ctx.Pipe()
        a.close()
        r = [a.closed, catch(a.send, 1), catch(a.recv), catch(a.fileno), catch(a.poll), catch(a.send_bytes, b"x"),
             a.close(), b.poll(1), catch(b.recv), catch(b.recv_bytes), catch(b.recv_bytes_into, bytearray(2))]
        r.append(catch(b.send, "to nobody")[0].__name__)
        b.close()
        r.append(b.closed)
        return r

    assert both(prog, start_method) == ok([True, CLOSED, CLOSED, CLOSED, CLOSED, CLOSED, None, True,
                                           (EOFError, ""), (EOFError, ""), (EOFError, ""), "BrokenPipeError",
                                           True])


def test_pipe_ends_in_children(start_method, traced):
    def prog(ctx):
        a, b = ctx.Pipe()
        p = ctx.Process(target=H.pipe_echo, args=(b,))
        r = []
        with started(p):
            b.close()                                # the child holds its own end now
            a.send(("obj", {"x": 1}))
            r.append(a.recv())
            a.send(("bytes", None))
            a.send_bytes(b"abc" * 50000)
            r.append(a.recv_bytes() == b"cba" * 50000)
            a.send(("stop", None))
            r.append(a.recv())
            r.append(catch(a.recv))                  # the child closed its end and exited
        r.append(p.exitcode)
        a.close()
        rd, wr = ctx.Pipe(duplex=False)
        w = ctx.Process(target=H.pipe_write_end, args=(wr, b"one way"))
        with started(w):
            wr.close()
            r += [rd.recv_bytes(), rd.recv(), catch(rd.recv)]
        rd.close()
        return r

    assert both(prog, start_method) == ok([("echo", {"x": 1}), True, ("count", 2), (EOFError, ""), 0,
                                           b"one way", 7, (EOFError, "")])


def test_connection_sent_over_a_pipe(start_method):
    """A Connection end sent to a running child through another pipe (pickled outside spawning)."""
    def prog(ctx):
        a, b = ctx.Pipe()
        x, y = ctx.Pipe()
        p = ctx.Process(target=H.pipe_receive_connection, args=(b,))
        with started(p):
            b.close()
            a.send(y)
            y.close()
            got = x.recv() if x.poll(10) else "nothing"
        a.close()
        x.close()
        return [got, p.exitcode]

    assert both(prog, start_method) == ok([("hello through a passed end", "Connection", True), 0])


@pytest.mark.parametrize("duplex", [True, False])
def test_connection_types_and_wait(start_method, duplex):
    def prog(ctx):
        conn = H.sub(ctx, "connection")
        a, b = ctx.Pipe(duplex)
        r = [type(a).__name__, isinstance(a, conn.Connection), conn.wait([a], 0)]
        b.send("ready")
        r.append(conn.wait([a], 5) == [a])
        r.append(a.recv())
        a.close()
        b.close()
        return r

    assert both(prog, start_method) == ok(["Connection", True, [], True, "ready"])
