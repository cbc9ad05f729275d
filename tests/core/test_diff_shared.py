"""Value, Array, RawValue, RawArray, SharedMemory, ShareableList: the same programs on the stdlib and on
core.  Every segment a test creates is unlinked before it ends (the leak check watches /dev/shm)."""
import ctypes
import os
import pickle

import mp_helpers as H
from mp_helpers import both, both_modules, catch, ok, started

SHM_NAME = "psm_mpgui_diff_%d" % os.getpid()
SL_NAME = "psm_mpgui_diff_sl_%d" % os.getpid()


def test_value(start_method, traced):
    def prog(ctx):
        v = ctx.Value("i", 7)
        lock = v.get_lock()
        r = [type(v).__name__, v.value, H.norm(repr(v)), type(v.get_obj()).__name__, type(lock).__name__,
             lock.acquire(), lock.acquire(), lock.release(), lock.release()]
        with v:
            v.value += 1
        r.append(v.value)
        v.value = 3
        r += [v.value, catch(setattr, v, "value", "x")[0], ctx.Value("d", 1.5).value,
              ctx.Value(ctypes.c_double, 2.0).value, ctx.Value("i").value, ctx.Value("c", b"a").value,
              ctx.Value("b", -3).value, ctx.Value("q", 2 ** 40).value]
        raw = ctx.Value("i", 5, lock=False)
        r += [type(raw).__name__, raw.value, catch(getattr, raw, "get_lock")]
        lk = ctx.Lock()
        w = ctx.Value("i", 1, lock=lk)
        r += [w.get_lock() is lk, ctx.Value("i", 1, lock=None).get_lock() is not None,
              catch(ctx.Value, "i", 1, lock="notalock"), catch(ctx.Value, "i", "x")[0], catch(ctx.Value, "Z", 1)[0]]
        return r

    assert both(prog, start_method) == ok([
        "Synchronized", 7, "<Synchronized wrapper for c_int(7)>", "c_int", "RLock", True, True, None, None, 8, 3,
        TypeError, 1.5, 2.0, 0, b"a", -3, 2 ** 40, "c_int", 5,
        (AttributeError, "'c_int' object has no attribute 'get_lock'"), True, True,
        (AttributeError, "'notalock' has no method 'acquire'"), TypeError, TypeError])


def test_array(start_method, traced):
    def prog(ctx):
        a = ctx.Array("i", [1, 2, 3])
        r = [type(a).__name__, len(a), a[:], a[1], a[-1], a[0:2], list(a), H.norm(repr(a)),
             type(a.get_obj()).__name__, type(a.get_lock()).__name__]
        a[0:2] = [9, 8]
        a[2] = 7
        r += [a[:], catch(a.__setitem__, slice(0, 2), [1]), catch(a.__getitem__, 5), catch(a.__setitem__, 1, "x")[0]]
        with a:
            a[0] += 1
        r += [a[0], ctx.Array("i", 4)[:], ctx.Array("d", [0.5, 1.5])[:]]
        s = ctx.Array("c", b"hello")
        r += [type(s).__name__, s.value, s.raw]
        s.value = b"hi"
        r += [s.value, s.raw, s[:]]
        raw = ctx.Array("d", 3, lock=False)
        r += [type(raw).__name__, raw[:], catch(getattr, raw, "get_lock")[0]]
        lk = ctx.Lock()
        r += [ctx.Array("i", [1, 2], lock=lk).get_lock() is lk, catch(ctx.Array, "i", [1, 2], lock=3),
              catch(ctx.Array, "i", ["x"])[0], catch(ctx.Array, "i", -1)[0]]
        return r

    assert both(prog, start_method) == ok([
        "SynchronizedArray", 3, [1, 2, 3], 2, 3, [1, 2], [1, 2, 3],
        "<SynchronizedArray wrapper for <multiprocessing.sharedctypes.c_int_Array_3 object at 0x?>>",
        "c_int_Array_3", "RLock", [9, 8, 7], (ValueError, "Can only assign sequence of same size"),
        (IndexError, "invalid index"), TypeError, 10, [0, 0, 0, 0], [0.5, 1.5], "SynchronizedString", b"hello",
        b"hello", b"hi", b"hi\0lo", b"hi\0lo", "c_double_Array_3", [0.0, 0.0, 0.0], AttributeError, True,
        (AttributeError, "3 has no method 'acquire'"), TypeError, ValueError])


def test_raw_values_and_helpers(start_method):
    def prog(ctx):
        sc = H.sub(ctx, "sharedctypes")
        rv, ra = ctx.RawValue("i", 3), ctx.RawArray("d", [1.0, 2.0])
        r = [type(rv).__name__, rv.value, type(ra).__name__, ra[:], ctx.RawArray("i", 3)[:],
             ctx.RawValue(ctypes.c_bool, True).value]
        cp = sc.copy(rv)
        cp.value = 10
        r += [type(cp).__name__, cp.value, rv.value]
        syn = sc.synchronized(ra)
        r += [type(syn).__name__, syn[:], type(sc.synchronized(rv)).__name__]
        r += [catch(pickle.dumps, rv), catch(pickle.dumps, ctx.Value("i", 1))]
        return r

    assert both(prog, start_method) == ok([
        "c_int", 3, "c_double_Array_2", [1.0, 2.0], [0, 0, 0], True, "c_int", 10, 3, "SynchronizedArray",
        [1.0, 2.0], "Synchronized",
        (TypeError, "cannot pickle 'mmap.mmap' object"),
        (RuntimeError, "Synchronized objects should only be shared between processes through inheritance")])


def test_shared_ctypes_across_processes(start_method, traced):
    def prog(ctx):
        val = ctx.Value("i", 1)
        arr = ctx.Array("i", [1, 2, 3])
        raw_val = ctx.RawValue("i", 4)
        raw_arr = ctx.RawArray("d", [0.0, 1.0])
        string = ctx.Array("c", b"shared")
        p = ctx.Process(target=H.shared_ctypes_worker, args=(val, arr, raw_val, raw_arr, string))
        with started(p):
            pass
        return [p.exitcode, val.value, arr[:], raw_val.value, raw_arr[:], string.value]

    assert both(prog, start_method) == ok([0, 6, [2, 4, 6], 12, [0.5, 1.5], b"SHARED"])


def test_shared_memory_local():
    def prog(mod):
        sm = H.sub(mod, "shared_memory")
        shm = sm.SharedMemory(SHM_NAME, create=True, size=16)
        try:
            r = [type(shm).__name__, shm.name, shm.size, len(shm.buf), bytes(shm.buf[:4]), repr(shm)]
            shm.buf[:5] = b"hello"
            other = sm.SharedMemory(SHM_NAME)
            r += [bytes(other.buf[:5]), other.size, other.name, other.close(), other.buf, other.close()]
            r.append(catch(sm.SharedMemory, SHM_NAME, create=True, size=16))
            r.append(catch(sm.SharedMemory, name=SHM_NAME, create=True, size=16))
            copy = pickle.loads(pickle.dumps(shm))
            r += [type(copy).__name__, bytes(copy.buf[:5])]
            copy.close()
        finally:
            shm.close()
            shm.unlink()
        r += [shm.buf, catch(sm.SharedMemory, SHM_NAME), catch(shm.unlink),
              catch(sm.SharedMemory, create=True, size=0), catch(sm.SharedMemory, create=True, size=-1),
              catch(sm.SharedMemory), catch(sm.SharedMemory, "psm_mpgui_missing")]
        anon = sm.SharedMemory(create=True, size=10)
        r += [anon.name.startswith("psm_"), anon.size]
        anon.close()
        anon.unlink()
        return r

    missing = (FileNotFoundError, "[Errno 2] No such file or directory: '/%s'" % SHM_NAME)
    assert both_modules(prog) == ok([
        "SharedMemory", SHM_NAME, 16, 16, bytes(4), "SharedMemory(%r, size=16)" % SHM_NAME, b"hello", 16, SHM_NAME,
        None, None, None, (FileExistsError, "[Errno 17] File exists: '/%s'" % SHM_NAME),
        (FileExistsError, "[Errno 17] File exists: '/%s'" % SHM_NAME), "SharedMemory", b"hello", None, missing,
        missing, (ValueError, "'size' must be a positive number different from zero"),
        (ValueError, "'size' must be a positive integer"), (ValueError, "'name' can only be None if create=True"),
        (FileNotFoundError, "[Errno 2] No such file or directory: '/psm_mpgui_missing'"), True, 10])


def test_shareable_list_local():
    def prog(mod):
        sm = H.sub(mod, "shared_memory")
        sl = sm.ShareableList([1, 2.5, "abc", b"xy", None, True, 2], name=SL_NAME)
        try:
            r = [type(sl).__name__, list(sl), len(sl), sl[2], sl[-1], sl.index(2.5), sl.count(2), sl.count(None),
                 sl.format, sl.shm.name, type(sl.shm).__name__, repr(sl)]
            sl[0] = 99
            sl[2] = "xyz"
            sl[4] = None
            r += [list(sl), catch(sl.__setitem__, 2, "a much longer string than before")[0],
                  catch(sl.__getitem__, 10), catch(sl.index, "missing")]
            other = sm.ShareableList(name=SL_NAME)
            r += [list(other), other.format]
            other.shm.close()
            copy = pickle.loads(pickle.dumps(sl))
            r += [type(copy).__name__, list(copy)]
            copy.shm.close()
            empty = sm.ShareableList([])
            r += [list(empty), len(empty)]
            empty.shm.close()
            empty.shm.unlink()
        finally:
            sl.shm.close()
            sl.shm.unlink()
        r.append(catch(sm.ShareableList, name=SL_NAME)[0])
        return r

    res = both_modules(prog)[1]
    assert res[:8] == ["ShareableList", [1, 2.5, "abc", b"xy", None, True, 2], 7, "abc", 2, 1, 1, 1]
    assert res[9:11] == [SL_NAME, "SharedMemory"]
    assert res[12:16] == [[99, 2.5, "xyz", b"xy", None, True, 2], ValueError, (IndexError, "index out of range"),
                          (ValueError, "'missing' not in this container")]
    assert res[16] == [99, 2.5, "xyz", b"xy", None, True, 2]
    assert res[18:] == ["ShareableList", [99, 2.5, "xyz", b"xy", None, True, 2], [], 0, FileNotFoundError]


def test_shared_memory_across_processes(start_method, traced):
    def prog(ctx):
        modname = H.modname_of(ctx)
        sm = H.sub(ctx, "shared_memory")
        shm = sm.SharedMemory(SHM_NAME, create=True, size=32)
        sl = sm.ShareableList([1, 2.5, "abc"], name=SL_NAME)
        try:
            shm.buf[:4] = b"ABCD"
            q = ctx.SimpleQueue()
            ps = [ctx.Process(target=H.shm_attach_write, args=(modname, SHM_NAME, b"child", q)),
                  ctx.Process(target=H.shareable_list_attach, args=(modname, SL_NAME, q))]
            with started(*ps):
                got = sorted([q.get(), q.get()], key=repr)
            r = [got, [p.exitcode for p in ps], bytes(shm.buf[:5]), list(sl)]
            shm.buf[:4] = b"1234"
            ps = [ctx.Process(target=H.shm_passed, args=(shm, q)),
                  ctx.Process(target=H.shareable_list_passed, args=(sl, q))]
            with started(*ps):
                got = sorted([q.get(), q.get()], key=repr)
            r += [got, [p.exitcode for p in ps], bytes(shm.buf[:8]), list(sl)]
        finally:
            shm.close()
            shm.unlink()
            sl.shm.close()
            sl.shm.unlink()
        return r

    assert both(prog, start_method) == ok([
        [([1, 2.5, "abc"], "qd8s", 3), (b"ABCD\0", True, True)], [0, 0], b"child", [101, 2.5, "xyz"],
        [([101, 2.5, "xyz"], "ShareableList"), b"1234"], [0, 0], b"1234WXYZ", [101, -1.25, "xyz"]])


def test_shared_memory_manager(start_method):
    def prog(ctx):
        managers = H.sub(ctx, "managers")
        with managers.SharedMemoryManager(ctx=ctx) as smm:
            sl = smm.ShareableList([1, "two"])
            shm = smm.SharedMemory(8)
            r = [type(sl).__name__, list(sl), type(shm).__name__, shm.size >= 8]
            names = [sl.shm.name, shm.name]
            sl.shm.close()
            shm.close()
        r.append([catch(H.sub(ctx, "shared_memory").SharedMemory, n)[0] for n in names])   # unlinked
        return r

    assert both(prog, start_method) == ok(["ShareableList", [1, "two"], "SharedMemory", True,
                                           [FileNotFoundError, FileNotFoundError]])
