"""``main.py trace`` on programs that use the standard library's multiprocessing and concurrent.futures and
know nothing of mpgui (tests/programs/): traced unmodified under every start method, each prints exactly
what it prints untraced and exits with the same code, and its run file shows its processes, pool tasks,
locks and queues."""
import collections
import os
import subprocess
import sys

import pytest

from core.trace.events import Kind, Outcome
from core.trace.model import Span, SpanEnd
from core.trace.store import RunFile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAIN = os.path.join(ROOT, "main.py")
PROGRAMS = os.path.join(ROOT, "tests", "programs")

#: Runs a program untraced, as python would, with METHOD as its default start method (what --start-method
#: does for a traced one: the program's own set_start_method still wins).
#:     python -c BASELINE METHOD (SCRIPT | -m MODULE) [ARGS...]
BASELINE = """
import multiprocessing.context as c, runpy, sys
c._default_context._default_context = c._concrete_contexts[sys.argv[1]]
if sys.argv[2] == "-m":
    sys.argv = sys.argv[3:]
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
else:
    sys.argv = sys.argv[2:]
    runpy.run_path(sys.argv[0], run_name="__main__")
"""


def untraced(method, program, *args):
    """The program run without mpgui (with ``method`` its default start method, or just as python runs it):
    a CompletedProcess."""
    cmd = [sys.executable] + (["-c", BASELINE, method] if method else []) + [*program, *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=PROGRAMS, timeout=120)


def traced(tmp_path, method, program, *args):
    """The program run by ``main.py trace``: (CompletedProcess, its run file's model, the run's meta)."""
    out = tmp_path / "run.mpgrun"
    cmd = [sys.executable, MAIN, "trace", "--cwd", PROGRAMS] + (["--start-method", method] if method else []) \
        + [*program, *args, "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=str(tmp_path), timeout=180,
                       env=dict(os.environ, MPGUI_HOME=str(tmp_path / "home")))
    assert out.exists(), r.stderr
    with RunFile(out) as rf:
        return r, rf.model(), rf.meta()


def program_stdout(model):
    """What the traced program printed, as the run file kept it."""
    return "".join(text + "\n" for _, kind, text in model.logs if kind == "stdout")


def same_behaviour(plain, run, model):
    """The traced program printed what it prints untraced (the command echoes it, then its summary) and ended
    with the same exit code, which the command passes on."""
    assert plain.stdout, plain.stderr
    assert program_stdout(model) == plain.stdout, (plain.stdout, run.stderr)
    assert run.stdout.startswith(plain.stdout)
    assert run.returncode == plain.returncode, run.stderr
    assert "mpgui:" not in run.stderr


def roles(model):
    """How many processes of each role the program had (the stdlib's helpers aside).  A pool worker the pool
    ended before it ran its first instruction (spawn is slow, the program quick) is one too."""
    return collections.Counter(p.role for p in model.procs.values() if p.role not in ("forkserver", "resource tracker"))


def spans(model, kind, name=None):
    sp = model.spans_array()
    sp = sp[sp["kind"] == kind]
    return sp if name is None else sp[[model.name_of(int(u)) == name for u in sp["uid"]]]


def uid_of(model, kind=None, name=None):
    found = [uid for uid, o in model.objects.items()
             if (kind is None or o.get("kind") == kind) and (name is None or o.get("name") == name)]
    assert len(found) == 1, (kind, name, [o for o in model.objects.values()])
    return found[0]


def messages(model, uid, kind):
    m = model.messages_array()
    return m[(m["uid"] == uid) & (m["kind"] == kind)]


def test_the_pool_examples_of_the_documentation(tmp_path, start_method):
    program = ["pool_docs.py"]
    plain = untraced(start_method, program)
    run, model, meta = traced(tmp_path, start_method, program)
    same_behaviour(plain, run, model)
    assert meta["status"] == "done"
    assert roles(model)["main"] == 1 and roles(model)["worker"] == 5 + 4
    workers = [p for p in model.procs.values() if p.role == "worker"]
    assert {p.method for p in workers} == {start_method}
    tasks = model.tasks_array()
    assert len(tasks) == 3 + 10 + 10 + 1 + 1 + 4 + 1
    ran = tasks[tasks["outcome"] == Outcome.OK]
    assert len(ran) == len(tasks) - 1                       # all but the sleep the pool was terminated under
    assert set(ran["worker"].tolist()) <= {p.pid for p in workers}
    assert (ran["used"] > 0).all()                          # and the program took every result


def test_locks_queues_and_events(tmp_path, start_method):
    program = ["lock_queue_event.py"]
    plain = untraced(start_method, program)
    run, model, meta = traced(tmp_path, start_method, program)
    same_behaviour(plain, run, model)
    assert run.returncode == 3 and meta["status"] == "failed" and meta["exit_code"] == 3
    assert roles(model) == {"main": 1, "process": 4}
    assert {p.name for p in model.procs.values() if p.role == "process"} >= {"producer-0", "producer-2"}
    lock = model.name_of(uid_of(model, "Lock"))
    assert len(spans(model, Span.LOCK_HOLD, lock)) == 150 + 1          # the producers', and the main process's
    waits = spans(model, Span.LOCK_WAIT, lock)
    assert (waits["end"] == SpanEnd.TIMEOUT).sum() == 1                 # the impatient process gave up
    queue = uid_of(model, "Queue")
    assert len(messages(model, queue, Kind.QUEUE_PUT)) == 150
    assert len(messages(model, queue, Kind.QUEUE_GET)) == 150
    assert len(spans(model, Span.EVENT_WAIT)) == 3                      # each producer waited for go


def test_a_manager_and_its_proxies(tmp_path, start_method):
    program = ["manager_docs.py"]
    plain = untraced(start_method, program)
    run, model, meta = traced(tmp_path, start_method, program)
    same_behaviour(plain, run, model)
    assert roles(model) == {"main": 1, "manager": 1, "process": 1}
    child = next(p.pid for p in model.procs.values() if p.role == "process")
    calls = spans(model, Span.MANAGER_CALL)
    assert (calls["pid"] == child).sum() >= 6          # three items set, a reverse, the lock, the namespace
    kinds = {o.get("kind") for o in model.objects.values()}
    assert {"Manager", "Proxy"} <= kinds


def test_a_process_pool_executor_whose_map_raises(tmp_path, start_method):
    program = ["executor_error.py"]
    plain = untraced(start_method, program)
    run, model, meta = traced(tmp_path, start_method, program)
    same_behaviour(plain, run, model)
    assert run.returncode == 1 and "ZeroDivisionError" in plain.stderr and "ZeroDivisionError" in run.stderr
    workers = [p for p in model.procs.values() if p.role == "worker"]
    assert 1 <= len(workers) <= 2 and {p.method for p in workers} == {start_method}
    pool = uid_of(model, "Pool", "ProcessPoolExecutor#1")
    tasks = model.tasks_array()
    assert set(tasks["pool"].tolist()) == {pool}
    by_job = {job: tasks[tasks["job"] == job] for job in (1, 2, 3)}
    assert len(by_job[1]) == 6 and (by_job[1]["outcome"] == Outcome.OK).all()     # map: a task per element
    assert (by_job[1]["used"] > 0).all()
    assert by_job[2]["index"].tolist() == [0, 1, 2, 3]                # the submits: one job, in their order
    assert (by_job[2]["outcome"] == Outcome.OK).all() and (by_job[2]["used"] > 0).all()
    outcomes = dict(zip(by_job[3]["index"].tolist(), by_job[3]["outcome"].tolist()))
    assert outcomes[3] == Outcome.ERROR and [outcomes[i] for i in (0, 1, 2)] == [Outcome.OK] * 3
    assert set(tasks[tasks["outcome"] == Outcome.OK]["worker"].tolist()) <= {p.pid for p in workers}
    calls = uid_of(model, "Queue", "ProcessPoolExecutor#1 call queue")
    gets = messages(model, calls, Kind.QUEUE_GET)
    assert len(gets) >= 6 + 4 + 3 and set(gets["pid"].tolist()) <= {p.pid for p in workers}


def test_a_module_run_as_python_m_runs_it(tmp_path, start_method):
    program = ["-m", "mpmodule.squares"]
    plain = untraced(start_method, program, "5")
    run, model, meta = traced(tmp_path, start_method, program, "5")
    same_behaviour(plain, run, model)
    assert plain.stdout == "[0, 1, 4, 9, 16]\nmpmodule.squares\n"
    assert meta["module"] == "mpmodule.squares" and meta["args"] == ["5"]
    assert roles(model)["worker"] == 2 and len(model.tasks_array()) == 5


def test_a_program_that_sets_its_own_start_method_keeps_it(tmp_path, start_method):
    program = ["sets_start_method.py"]
    plain = untraced(start_method, program)
    run, model, meta = traced(tmp_path, start_method, program)
    same_behaviour(plain, run, model)
    assert plain.stdout.startswith("spawn\n")
    workers = [p for p in model.procs.values() if p.role == "worker"]
    assert len(workers) == 2 and {p.method for p in workers} == {"spawn"}


def test_a_program_without_multiprocessing_runs_as_it_would(tmp_path):
    program = ["no_multiprocessing.py"]
    plain = untraced(None, program, "a", "b c")
    assert plain.stdout.splitlines()[1] == "[]"                          # it imports no multiprocessing ...
    run, model, meta = traced(tmp_path, None, program, "a", "b c")
    same_behaviour(plain, run, model)                                    # ... nor does the stand-in
    assert meta["status"] == "done"
    assert [(p.pid, p.exitcode) for p in model.procs.values()] == [(meta["program_pid"], 0)]
    assert [(p.role, p.name) for p in model.procs.values()] == [("main", "MainProcess")]   # not "process"
    assert "main  MainProcess" in run.stdout                             # the summary's table says so too


@pytest.mark.parametrize("args, said", [
    (["-m"], "Name the module to trace"),
    (["-m", "no_such_module_here"], "No module named no_such_module_here"),
    (["-m", "not-a-name"], "is not a module name"),
    (["-m", "pool_docs.py"], "names a file: give -m the module's name (pool_docs)"),
    (["nope.py"], "No such script"),
    (["--cwd", "/no/such/folder", "x.py"], "is not a folder"),
    (["--env", "NOEQUALS", "pool_docs.py"], "--env takes NAME=VALUE"),
])
def test_what_cannot_be_traced_is_one_sentence(tmp_path, args, said):
    r = subprocess.run([sys.executable, MAIN, "trace"] + args, capture_output=True, text=True, cwd=PROGRAMS,
                       env=dict(os.environ, MPGUI_HOME=str(tmp_path)), timeout=60)
    assert r.returncode == 2 and said in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0
    assert not os.path.exists(os.path.join(str(tmp_path), "runs"))
