"""``main.py selftest [--start-method M ...]``: does multiprocessing work here, in this build?

Meant first for the packaged app, where every child process is the app's executable started again: under
each start method this platform has (or the ones named), it starts real processes and checks what comes
back: Process, Pool (a worker killed in the middle of a task: the task fails with WorkerLostError, the pool
goes on), Queue, Pipe, Lock, Barrier, Manager and SharedMemory; then one short scenario run by the runner
as the app runs it (its main process started as a separate program), whose trace must hold every lock
hold the scenario made; then the app's main window (offscreen, in a process of its own) opens that run
and must draw its lock holds.  One line per check; exit code 0 when all passed, 1 otherwise.

Every wait has a deadline, and a watchdog ends the whole self-test (and every process it started) if a
check hangs anyway: it reports, it never hangs.  It leaves nothing behind: no process, no segment, no run
in the user's history (the scenario's run goes to a temporary directory).

Qt is imported only in the window check's own process (``selftest --show-run RUNFILE``): the self-test's
process forks, and must not hold Qt's threads when it does.
"""
import os
import signal
import sys
import tempfile
import threading
import time

#: How long one wait inside a check may take (a spawned child starts in well under a second).
WAIT_S = 60.0
#: The whole self-test is ended (and fails) past this: no check may hang it.
WATCHDOG_S = 600.0
#: The scenario run: short, one start method, and every lock hold recorded.
SCENARIO = "lock_contention"
SCENARIO_PARAMS = {"processes": "2", "increments": "200", "hold_ms": "1", "mode": "with lock"}
#: The window check: the timeline must show at least this many pixels of the lock-hold colour.
MIN_HOLD_PIXELS = 200

EXIT_OK = 0
EXIT_FAILED = 1
#: The hidden command of the window check's process (main.py dispatches it to mpgui.gui.selftest_window).
SHOW_RUN_COMMAND = "_show-run"


class CheckFailed(Exception):
    """A check saw something other than what it expected; the message says what."""


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


# -- what the children run (module-level: a spawned child imports them by name) -------------------------------

def _put_pid_and_square(q, x):
    q.put((os.getpid(), x * x))


def _square(x):
    return x * x


_report_q = None


def _pool_init(q):
    global _report_q
    _report_q = q


def _report_then_sleep(seconds):
    _report_q.put(os.getpid())
    time.sleep(seconds)
    return "not killed"


def _produce(q, n):
    for i in range(n):
        q.put(i)
    q.put(None)


def _echo_doubled(conn):
    while True:
        msg = conn.recv()
        if msg is None:
            break
        conn.send(msg * 2)
    conn.close()


def _add_under_lock(lock, counter, n):
    for _ in range(n):
        with lock:
            counter.value += 1


def _pass_barrier(barrier, q):
    q.put(barrier.wait(timeout=WAIT_S))


def _write_into_dict(d, key):
    d[key] = os.getpid()


def _write_into_segment(name, data):
    from core import shared_memory
    shm = shared_memory.SharedMemory(name=name)
    try:
        shm.buf[:len(data)] = data
    finally:
        shm.close()


# -- the checks: each returns a short text of what it saw, or raises ----------------------------------------

def _join_all(procs):
    for p in procs:
        p.join(WAIT_S)
    alive = [p for p in procs if p.is_alive()]
    for p in alive:
        p.kill()
        p.join(WAIT_S)
    expect(not alive, "%d process(es) did not end within %.0f s" % (len(alive), WAIT_S))
    codes = [p.exitcode for p in procs]
    expect(all(c == 0 for c in codes), "exit codes %s" % codes)


def check_process(ctx):
    q = ctx.Queue()
    p = ctx.Process(target=_put_pid_and_square, args=(q, 7), name="selftest-child")
    p.start()
    try:
        pid, value = q.get(timeout=WAIT_S)
    finally:
        _join_all([p])
    expect(value == 49 and pid == p.pid and pid != os.getpid(), "got %r from pid %s" % (value, pid))
    return "child %d returned 49, exit code 0" % pid


def check_pool(ctx):
    import core
    q = ctx.Queue()
    with ctx.Pool(2, initializer=_pool_init, initargs=(q,)) as pool:
        first = pool.map(_square, range(20), chunksize=3)
        expect(first == [x * x for x in range(20)], "map returned %r" % first)
        doomed = pool.apply_async(_report_then_sleep, (WAIT_S,))
        victim = q.get(timeout=WAIT_S)
        os.kill(victim, signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)
        try:
            doomed.get(timeout=WAIT_S)
        except core.WorkerLostError:
            pass
        except Exception as e:
            raise CheckFailed("the killed worker's task failed with %s: %s, not WorkerLostError"
                              % (type(e).__name__, e)) from e
        else:
            raise CheckFailed("the task of a killed worker returned a result")
        after = pool.map(_square, range(10))
        expect(after == [x * x for x in range(10)], "after the kill, map returned %r" % after)
        pool.close()
        pool.join()
    return "map right; worker %d killed mid-task: WorkerLostError, then map right again" % victim


def check_queue(ctx):
    q = ctx.Queue()
    n = 200
    p = ctx.Process(target=_produce, args=(q, n))
    p.start()
    got = []
    try:
        while True:
            item = q.get(timeout=WAIT_S)
            if item is None:
                break
            got.append(item)
    finally:
        _join_all([p])
    expect(got == list(range(n)), "received %d items out of order or missing" % len(got))
    return "%d items across, in order" % n


def check_pipe(ctx):
    parent, child = ctx.Pipe()
    p = ctx.Process(target=_echo_doubled, args=(child,))
    p.start()
    child.close()
    try:
        answers = []
        for msg in (1, "ab", [3]):
            parent.send(msg)
            expect(parent.poll(WAIT_S), "no answer to %r within %.0f s" % (msg, WAIT_S))
            answers.append(parent.recv())
        parent.send(None)
    finally:
        parent.close()
        _join_all([p])
    expect(answers == [2, "abab", [3, 3]], "answers %r" % answers)
    return "3 messages echoed both ways"


def check_lock(ctx):
    lock = ctx.Lock()
    counter = ctx.RawValue("i", 0)
    n, k = 500, 3
    procs = [ctx.Process(target=_add_under_lock, args=(lock, counter, n)) for _ in range(k)]
    for p in procs:
        p.start()
    _join_all(procs)
    expect(counter.value == n * k, "the counter is %d, not %d: the lock did not exclude" % (counter.value, n * k))
    return "%d increments from %d processes, none lost" % (n * k, k)


def check_barrier(ctx):
    parties = 3
    barrier = ctx.Barrier(parties)
    q = ctx.Queue()
    procs = [ctx.Process(target=_pass_barrier, args=(barrier, q)) for _ in range(parties - 1)]
    for p in procs:
        p.start()
    try:
        mine = barrier.wait(timeout=WAIT_S)
        indexes = sorted([mine] + [q.get(timeout=WAIT_S) for _ in procs])
    finally:
        _join_all(procs)
    expect(indexes == list(range(parties)), "wait() returned %s" % indexes)
    return "%d parties passed together" % parties


def check_manager(ctx):
    with ctx.Manager() as manager:
        d = manager.dict()
        p = ctx.Process(target=_write_into_dict, args=(d, "child"))
        p.start()
        _join_all([p])
        value = d.get("child")
        expect(value == p.pid, "the managed dict holds %r, not the child's pid %d" % (value, p.pid))
    return "a child wrote into a managed dict"


def check_shared_memory(ctx):
    from core import shared_memory
    data = b"mpgui selftest"
    shm = shared_memory.SharedMemory(create=True, size=64)
    try:
        p = ctx.Process(target=_write_into_segment, args=(shm.name, data))
        p.start()
        _join_all([p])
        seen = bytes(shm.buf[:len(data)])
    finally:
        shm.close()
        shm.unlink()
    expect(seen == data, "the segment holds %r" % seen)
    return "a child wrote %d bytes into a segment" % len(data)


CHECKS = (("process", check_process), ("pool", check_pool), ("queue", check_queue), ("pipe", check_pipe),
          ("lock", check_lock), ("barrier", check_barrier), ("manager", check_manager),
          ("shared_memory", check_shared_memory))


def scenario_checks(method, tmp):
    """Run the scenario as the app runs it, then show its run in the window; yields (name, text or exception)
    for 'scenario', 'tracing' and 'window'."""
    from mpgui.scenario_run import prepare, start_run
    from core.trace.model import Span
    from core.trace.store import RunFile
    scenario, params, method = prepare(SCENARIO, method, SCENARIO_PARAMS)
    out = os.path.join(tmp, "%s-%s.mpgrun" % (SCENARIO, method))
    run = start_run(scenario, params, method, out=out, home=os.path.join(tmp, "home"), echo_output=())
    timer = threading.Timer(WATCHDOG_S / 2, run.cancel)
    timer.start()
    try:
        status = run.wait()
    finally:
        timer.cancel()
    expected = int(params["processes"]) * int(params["increments"])
    if status == "done" and run.result:
        yield "scenario", "%s: %s" % (SCENARIO, run.result["lesson"])
    else:
        yield "scenario", CheckFailed("%s ended %s (exit code %s): %s" % (SCENARIO, status, run.exit_code,
                                                                          run.error or "no result"))
    try:
        with RunFile(out) as rf:
            model = rf.model()
        spans = model.spans_array()
        holds = int((spans["kind"] == Span.LOCK_HOLD).sum())
        traced = sum(1 for p in model.procs.values() if p.traced)
        expect(traced >= 1 + int(params["processes"]), "only %d traced processes" % traced)
        expect(holds == expected, "%d lock holds recorded, not %d" % (holds, expected))
        yield "tracing", "%d traced processes, all %d lock holds recorded" % (traced, holds)
    except Exception as e:
        yield "tracing", e
    try:
        yield "window", check_window(out)
    except Exception as e:
        yield "window", e


def check_window(run_path):
    """The app's main window, in a process of its own, opens the run and draws it
    (``mpgui.gui.selftest_window``, started as ``main.py _show-run RUNFILE``)."""
    import subprocess
    from .program import self_command
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    p = subprocess.run(self_command(SHOW_RUN_COMMAND, run_path), env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=2 * WAIT_S)
    said = (p.stdout.strip().splitlines() or [""])[-1]
    expect(p.returncode == 0, "the window did not show the run (exit code %s): %s" % (
        p.returncode, said or " ".join(p.stderr.split())[-300:]))
    return said


# -- running them ----------------------------------------------------------------------------------------------

def _line(ok, method, name, text, secs):
    return "%-4s  %-10s  %-13s  %s (%.2f s)" % ("ok" if ok else "FAIL", method, name, text, secs)


def _start_watchdog(deadline_s):
    """End the self-test, and every process it started, if it is still running after ``deadline_s``.  An
    alarm signal where there is one: a watchdog thread would make every fork below a fork of a threaded
    process (the deadlock the notes warn about)."""
    def bite(*_):
        print("FAIL  selftest did not finish within %.0f s: ending it" % deadline_s, flush=True)
        try:
            import psutil
            for child in psutil.Process().children(recursive=True):
                try:
                    child.kill()
                except psutil.Error:
                    pass
        finally:
            os._exit(EXIT_FAILED)

    if hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGALRM, bite)
        signal.alarm(int(deadline_s))
        return lambda: (signal.alarm(0), signal.signal(signal.SIGALRM, previous))
    t = threading.Timer(deadline_s, bite)              # Windows: no alarm, and no fork either
    t.daemon = True
    t.start()
    return t.cancel


def run(methods=None, out=None):
    """Run every check under each method; print one line per check to ``out``; return the exit code."""
    import core
    out = out or sys.stdout
    available = core.get_all_start_methods()
    methods = list(methods or available)
    unknown = [m for m in methods if m not in available]
    if unknown:
        print("mpgui: this platform has no start method %s; it has %s." % (", ".join(unknown),
                                                                             ", ".join(available)), file=sys.stderr)
        return 2
    stop_watchdog = _start_watchdog(WATCHDOG_S)
    failed = total = 0
    try:
        for method in methods:
            ctx = core.get_context(method)
            results = []
            for name, check in CHECKS:
                t0 = time.perf_counter()
                try:
                    results.append((name, check(ctx), time.perf_counter() - t0))
                except Exception as e:
                    results.append((name, e, time.perf_counter() - t0))
                _report(out, method, *results[-1])
            with tempfile.TemporaryDirectory(prefix="mpgui-selftest-") as tmp:
                t0 = time.perf_counter()
                try:
                    for name, seen in scenario_checks(method, tmp):
                        results.append((name, seen, time.perf_counter() - t0))
                        _report(out, method, *results[-1])
                        t0 = time.perf_counter()
                except Exception as e:
                    results.append(("scenario", e, time.perf_counter() - t0))
                    _report(out, method, *results[-1])
            total += len(results)
            failed += sum(1 for r in results if isinstance(r[1], BaseException))
    finally:
        stop_watchdog()
    print("selftest: %d checks under %s: %s" % (total, ", ".join(methods),
                                                  "all passed" if not failed else "%d FAILED" % failed), file=out)
    return EXIT_OK if not failed else EXIT_FAILED


def _report(out, method, name, seen, secs):
    if isinstance(seen, BaseException):
        text = str(seen) if isinstance(seen, CheckFailed) else "%s: %s" % (type(seen).__name__, seen)
        print(_line(False, method, name, " ".join(text.split()), secs), file=out, flush=True)   # one line
    else:
        print(_line(True, method, name, seen, secs), file=out, flush=True)


def add_command(sub):
    """Register ``selftest`` with the command line's subparsers."""
    s = sub.add_parser("selftest", help="check that processes, pools, queues, pipes, locks, barriers, managers, "
                                        "shared memory, tracing and a scenario work here (one line per check)")
    s.add_argument("--start-method", dest="start_methods", action="append", metavar="M",
                   help="check only this start method (repeatable; default: every one the platform has)")
    s.set_defaults(func=lambda args: run(args.start_methods))
