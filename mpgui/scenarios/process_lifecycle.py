"""A Process's lifecycle: how it ends, and what the parent sees.

The notes' Process API, one case at a time, each measured:

* exit codes: a target that returns (0), raises (1), calls ``sys.exit(n)`` (n);
* ``join(timeout)`` returns when the timeout runs out even though the child still runs (``is_alive()`` is
  True, ``exitcode`` None);
* ``terminate()`` sends SIGTERM (exit code -15); a child that ignores SIGTERM survives it, ``kill()`` sends
  SIGKILL (-9), which cannot be ignored;
* ``sentinel`` with ``multiprocessing.connection.wait``: the parent waits on several children at once and
  learns which ended first (their sleeps begin together, on an Event, so start-up times do not blur it);
* ``daemon``: when a process ends, its daemon children are terminated; its other children are waited for.
  Shown with a middle process that starts a grandchild and ends as soon as the grandchild runs: a daemon
  grandchild is gone when the middle process ends (it was terminated), a non-daemon one makes the middle
  process wait for it.

Children say when their target has begun (an Event), so every case acts on a running child, not one still
starting up.
"""
import os
import signal
import sys
import time

import core

from .base import Param, Result, Scenario

DEADLINE = 60.0     # no case waits longer than this for a child, whatever the parameters


def returns():
    return None


def raises():
    raise ValueError("raised on purpose by the process_lifecycle scenario")


def exits(code):
    sys.exit(code)


def sleeps(running, seconds):
    """Say it is running (its target has begun), then sleep."""
    running.set()
    time.sleep(seconds)


def waits_then_sleeps(start_line, seconds):
    """Wait at the start line until every child and the parent are there, then sleep: the children's sleeps
    all begin together, however long each took to start (a spawn child on a busy machine, much longer than a
    unit)."""
    start_line.wait(DEADLINE)
    time.sleep(seconds)


def ignores_sigterm(running, seconds):
    """Ignore SIGTERM (terminate() then does nothing), say it is running, and sleep."""
    if hasattr(signal, "SIGTERM") and os.name == "posix":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    running.set()
    time.sleep(seconds)


def middle(method, daemon, seconds, running, report_to):
    """Start a grandchild (daemon or not) that sleeps ``seconds``; once it runs, report its pid and end."""
    ctx = core.get_context(method)
    g = ctx.Process(target=sleeps, args=(running, seconds), daemon=daemon,
                    name="daemon grandchild" if daemon else "non-daemon grandchild")
    g.start()
    running.wait(DEADLINE)
    report_to.send(g.pid)
    report_to.close()
    # returning here: multiprocessing terminates daemon children and joins the others before this process ends


def ended(code):
    """How a child with exit code ``code`` ended, in words."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return "killed by %s" % signal.Signals(-code).name
        except ValueError:
            return "killed by signal %d" % -code
    return "ended, exit code %d" % code


def pid_alive(pid):
    try:
        import psutil
        return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except Exception:
        return False


class Cases:
    def __init__(self, ctx, p, report):
        self.ctx, self.p, self.report = ctx, p, report
        self.u = p["unit_s"]
        self.rows = []
        self.figures = {}

    def add(self, key, case, child, outcome, code, secs, **more):
        self.figures[key] = dict(exitcode=code, seconds=secs, **more)
        self.rows.append((case, child, outcome, "-" if code is None else code, "%.3f s" % secs))
        self.report.line("%s; child: %s -> %s (exit code %s, %.3f s)" % (case, child, outcome, code, secs))

    def exit_codes(self):
        for key, child, target, args in (("normal", "its target returns", returns, ()),
                                         ("exception", "its target raises ValueError", raises, ()),
                                         ("sys_exit", "its target calls sys.exit(%d)" % self.p["exit_code"], exits,
                                          (self.p["exit_code"],))):
            pr = self.ctx.Process(target=target, args=args, name=key)
            t0 = time.perf_counter()
            pr.start()
            pr.join(DEADLINE)
            self.add(key, "start(), join()", child, ended(pr.exitcode), pr.exitcode, time.perf_counter() - t0)

    def join_timeout_then_terminate(self):
        running = self.ctx.Event(name="sleeper running")
        pr = self.ctx.Process(target=sleeps, args=(running, 20 * self.u), name="sleeper")
        pr.start()
        running.wait(DEADLINE)                      # its target has begun
        t0 = time.perf_counter()
        pr.join(self.u)
        waited = time.perf_counter() - t0
        alive, code = pr.is_alive(), pr.exitcode
        self.add("join_timeout", "join(timeout=%g)" % self.u, "sleeps %g s" % (20 * self.u),
                 "join returned, child %s" % ("still alive" if alive else "ended"), code, waited, alive=alive)
        t0 = time.perf_counter()
        pr.terminate()
        pr.join(DEADLINE)
        self.add("terminate", "terminate(), join()", "the same sleeper", ended(pr.exitcode), pr.exitcode,
                 time.perf_counter() - t0)

    def terminate_vs_kill(self):
        running = self.ctx.Event(name="stubborn running")
        pr = self.ctx.Process(target=ignores_sigterm, args=(running, 20 * self.u), name="ignores SIGTERM")
        pr.start()
        running.wait(DEADLINE)                      # its SIGTERM handler is in place
        t0 = time.perf_counter()
        pr.terminate()
        pr.join(self.u)
        survived = pr.is_alive()
        self.add("terminate_ignored", "terminate(), join(%g)" % self.u, "ignores SIGTERM",
                 "still alive" if survived else ended(pr.exitcode), pr.exitcode, time.perf_counter() - t0,
                 survived=survived)
        t0 = time.perf_counter()
        pr.kill()
        pr.join(DEADLINE)
        self.add("kill", "kill(), join()", "the same child", ended(pr.exitcode), pr.exitcode,
                 time.perf_counter() - t0)

    def sentinels(self):
        from core.connection import wait
        lengths = [3 * self.u, 1 * self.u, 2 * self.u]
        start_line = self.ctx.Barrier(len(lengths) + 1, name="start line")
        procs = [self.ctx.Process(target=waits_then_sleeps, args=(start_line, s), name="sleeps %g s" % s)
                 for s in lengths]
        for pr in procs:
            pr.start()
        start_line.wait(DEADLINE)
        t0 = time.perf_counter()
        pending = {pr.sentinel: i for i, pr in enumerate(procs)}
        order, when = [], []
        deadline = time.monotonic() + DEADLINE
        while pending and time.monotonic() < deadline:
            for s in wait(list(pending), timeout=max(0.0, deadline - time.monotonic())):
                i = pending.pop(s)
                order.append(i)
                when.append(time.perf_counter() - t0)
        for pr in procs:
            pr.join(DEADLINE)
        self.add("sentinel", "connection.wait(sentinels)", "three sleep %s s" % " / ".join("%g" % s for s in lengths),
                 "ended in order %s" % order, None, time.perf_counter() - t0, order=order, ended_at=when,
                 lengths=lengths, exitcodes=[pr.exitcode for pr in procs])

    def daemon(self, daemon):
        method = self.ctx.get_start_method()
        sleep = (20 if daemon else 2) * self.u
        r, w = self.ctx.Pipe(duplex=False, name="grandchild pid")
        running = self.ctx.Event(name="grandchild running")
        mid = self.ctx.Process(target=middle, args=(method, daemon, sleep, running, w),
                               name="parent of a %s" % ("daemon" if daemon else "non-daemon"))
        t0 = time.perf_counter()
        mid.start()
        w.close()
        gpid = r.recv()
        r.close()
        mid.join(DEADLINE)
        lifetime = time.perf_counter() - t0
        alive = pid_alive(gpid)
        key = "daemon" if daemon else "non_daemon"
        self.add(key, "a %s grandchild" % ("daemon" if daemon else "non-daemon"),
                 "parent ends once it runs, grandchild sleeps %g s" % sleep,
                 "parent ended after %.2f s, grandchild %s" % (lifetime, "still alive" if alive else "gone"),
                 mid.exitcode, lifetime, grandchild_alive=alive, grandchild_sleep=sleep, middle_lifetime_s=lifetime,
                 grandchild_pid=gpid, middle_pid=mid.pid)


def run(ctx, p, report):
    c = Cases(ctx, p, report)
    steps = [("exit codes", c.exit_codes), ("join(timeout), terminate()", c.join_timeout_then_terminate)]
    if os.name == "posix":
        steps.append(("terminate() ignored, kill()", c.terminate_vs_kill))
    steps += [("sentinels", c.sentinels), ("daemon grandchild", lambda: c.daemon(True)),
              ("non-daemon grandchild", lambda: c.daemon(False))]
    for i, (label, fn) in enumerate(steps):
        report.phase(label)
        fn()
        report.progress(i + 1, len(steps))
    f = c.figures
    parts = ["Exit codes: %s for a target that returns, %s for one that raises, %s for sys.exit(%d)." % (
        f["normal"]["exitcode"], f["exception"]["exitcode"], f["sys_exit"]["exitcode"], p["exit_code"]),
        "join(timeout=%g) returned after %.2f s with the child %s (exitcode %s); terminate() then ended it with "
        "exit code %s." % (p["unit_s"], f["join_timeout"]["seconds"],
                           "still alive" if f["join_timeout"]["alive"] else "ended", f["join_timeout"]["exitcode"],
                           f["terminate"]["exitcode"])]
    if "kill" in f:
        parts.append("A child that ignores SIGTERM %s terminate(); kill() ended it with exit code %s." % (
            "survived" if f["terminate_ignored"]["survived"] else "did not survive", f["kill"]["exitcode"]))
    parts.append("connection.wait on the sentinels reported the children in the order they ended, %s." %
                 f["sentinel"]["order"])
    d, nd = f["daemon"], f["non_daemon"]
    parts.append("A daemon grandchild (sleeping %g s) was %s when its parent ended, %.2f s after the parent "
                 "started; a non-daemon one (sleeping %g s) kept its parent alive until it finished (%.2f s)." % (
                     d["grandchild_sleep"], "terminated" if not d["grandchild_alive"] else "STILL ALIVE",
                     d["middle_lifetime_s"], nd["grandchild_sleep"], nd["middle_lifetime_s"]))
    return Result(" ".join(parts), f, ("the parent", "the child", "outcome", "exit code", "time"), c.rows)


SCENARIO = Scenario(
    name="process_lifecycle",
    title="Process lifecycle: exit codes, join(timeout), terminate vs kill, sentinels, daemons",
    description="Children that return, raise, call sys.exit, get terminated or killed, are waited for with a "
                "timeout or through their sentinels, and daemon vs non-daemon grandchildren.",
    lesson="exitcode is 0, 1 or sys.exit's n, or -signal; join(timeout) may return before the child ends; "
           "terminate() can be ignored, kill() cannot; daemon children end with their parent.",
    params=(
        Param("unit_s", "float", 0.5, "Time unit of the cases (sleeps and join timeouts are multiples)", 0.02,
              5.0, unit="s"),
        Param("exit_code", "int", 3, "The n of the sys.exit(n) case", 0, 255),
    ),
    run=run,
    category="Processes",
)
