"""main.py trace / export, end to end, as a user runs them."""
import json
import os
import subprocess
import sys
import textwrap
from collections import defaultdict

import pytest

from core.trace.events import Kind
from core.trace.store import RunFile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAIN = os.path.join(ROOT, "main.py")

USER_PROGRAM = textwrap.dedent('''
    import sys
    import core as multiprocessing

    def work(lock, q, n):
        for i in range(n):
            with lock:
                q.put(i)

    if __name__ == "__main__":
        multiprocessing.set_start_method(sys.argv[1])
        lock = multiprocessing.Lock(name="db")
        q = multiprocessing.Queue(name="results")
        ps = [multiprocessing.Process(target=work, args=(lock, q, 20)) for _ in range(2)]
        for p in ps:
            p.start()
        got = sorted(q.get() for _ in range(40))
        for p in ps:
            p.join()
        print("sum", sum(got))
        sys.exit(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
''')


def run_cli(args, home, timeout=120):
    env = dict(os.environ, MPGUI_HOME=str(home))
    return subprocess.run([sys.executable, MAIN] + args, capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=str(home))


@pytest.fixture
def program(tmp_path):
    path = tmp_path / "prog.py"
    path.write_text(USER_PROGRAM)
    return path


def test_trace_records_and_summarises(program, tmp_path, start_method):
    out = tmp_path / "run.mpgrun"
    r = run_cli(["trace", str(program), start_method, "--out", str(out)], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "sum 380" in r.stdout                      # the script's own output is echoed
    assert "1 main, 2 process" in r.stdout
    assert "db" in r.stdout and "most contended" in r.stdout
    with RunFile(out) as rf:
        meta = rf.meta()
        model = rf.model()
    assert meta["status"] == "done" and meta["exit_code"] == 0
    roles = sorted(p.role for p in model.procs.values() if p.traced)
    assert roles == ["main", "process", "process"]
    children = [p for p in model.procs.values() if p.role == "process"]
    assert all(p.method == start_method and p.exitcode == 0 for p in children)
    names = {o["name"] for o in model.objects.values()}
    assert {"db", "results"} <= names
    assert model.dropped == 0


def test_trace_passes_the_exit_code_through(program, tmp_path):
    r = run_cli(["trace", "--quiet", str(program), "fork", "3", "--out", str(tmp_path / "x.mpgrun")], tmp_path)
    assert r.returncode == 3
    with RunFile(tmp_path / "x.mpgrun") as rf:
        assert rf.meta()["status"] == "failed"


def test_trace_missing_script_is_one_sentence(tmp_path):
    r = run_cli(["trace", str(tmp_path / "nope.py")], tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "No such script" in r.stderr


def _trace(program, tmp_path):
    out = tmp_path / "run.mpgrun"
    r = run_cli(["trace", "--quiet", str(program), "fork", "--out", str(out)], tmp_path)
    assert r.returncode == 0, r.stderr
    return out


def test_export_chrome_json_is_well_formed(program, tmp_path):
    out = _trace(program, tmp_path)
    js = tmp_path / "t.json"
    r = run_cli(["export", str(out), "--chrome", str(js), "--csv", str(tmp_path / "csv")], tmp_path)
    assert r.returncode == 0, r.stderr
    data = json.loads(js.read_text())
    evs = data["traceEvents"]
    with RunFile(out) as rf:
        model = rf.model()
    named = {e["pid"] for e in evs if e["ph"] == "M" and e["name"] == "process_name"}
    assert {p.pid for p in model.procs.values() if p.traced} <= named
    # slices on one (pid, tid) nest or are disjoint
    by_thread = defaultdict(list)
    for e in evs:
        if e["ph"] == "X":
            by_thread[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
    assert any(k for k in by_thread)
    for key, slices in by_thread.items():
        slices.sort(key=lambda s: (s[0], -s[1]))
        stack = []
        for s0, s1 in slices:
            while stack and stack[-1] <= s0 + 1e-3:
                stack.pop()
            if stack:
                assert s1 <= stack[-1] + 1e-3, "overlapping slices on %s" % (key,)
            stack.append(s1)
    holds = [e for e in evs if e["ph"] == "X" and e["name"] == "hold db"]
    assert len(holds) == 40
    counters = [e for e in evs if e["ph"] == "C"]
    assert any(e["name"] == "results depth" for e in counters)
    starts = {e["id"] for e in evs if e["ph"] == "s"}
    finishes = {e["id"] for e in evs if e["ph"] == "f"}
    assert starts == finishes
    for name in ("processes.csv", "tasks.csv", "spans.csv", "messages.csv", "counters.csv", "events.csv"):
        assert (tmp_path / "csv" / name).exists()
    assert sum(1 for _ in open(tmp_path / "csv" / "spans.csv")) > 40


def test_export_of_a_damaged_run_exports_what_is_valid(program, tmp_path):
    out = _trace(program, tmp_path)
    data = bytearray(out.read_bytes())
    page = 4096
    assert len(data) >= 8 * page
    # Wreck the middle of the file (a page of event chunks), keep the header and schema pages.
    mid = (len(data) // 2) // page * page
    data[mid:mid + page] = b"\xff" * page
    out.write_bytes(bytes(data))
    js = tmp_path / "t.json"
    r = run_cli(["export", str(out), "--chrome", str(js)], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "damaged" in r.stderr and "Traceback" not in r.stderr
    assert json.loads(js.read_text())["traceEvents"]


def test_export_of_a_file_that_is_not_a_run(tmp_path):
    bogus = tmp_path / "x.mpgrun"
    bogus.write_text("hello")
    r = run_cli(["export", str(bogus), "--chrome", str(tmp_path / "t.json")], tmp_path)
    assert r.returncode == 2
    assert "not an mpgui run file" in r.stderr and "Traceback" not in r.stderr


def test_export_of_a_truncated_run(program, tmp_path):
    out = _trace(program, tmp_path)
    data = out.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    r = run_cli(["export", str(out), "--chrome", str(tmp_path / "t.json")], tmp_path)
    assert "Traceback" not in r.stderr
    if r.returncode == 0:
        assert "damaged" in r.stderr
        assert json.loads((tmp_path / "t.json").read_text())["traceEvents"]
    else:
        assert r.returncode == 2 and "damaged" in r.stderr


def test_run_file_query_api(program, tmp_path):
    """The small API a user reads a run with: processes, sync intervals, messages, counters, tasks."""
    out = _trace(program, tmp_path)
    with RunFile(out) as rf:
        procs = rf.processes()
        intervals = rf.sync_intervals()
        messages = rf.messages()
        counters = rf.counters()
        tasks = rf.tasks()
    assert sorted(p.role for p in procs if p.traced) == ["main", "process", "process"]
    holds = [i for i in intervals if i["object"] == "db" and i["kind"] == "lock_hold"]
    assert len(holds) == 40 and all(i["end_ns"] >= i["start_ns"] for i in holds)
    puts = messages[messages["kind"] == Kind.QUEUE_PUT]
    assert len(puts) == 40
    assert "results depth" in counters
    assert len(tasks) == 0                     # no pool in this program


def test_export_of_a_cut_run_whose_table_answers_rows_out_of_place(tmp_path):
    """The first half of a run file (a truncation seen beside busy processes): its chunks table answers "the
    rows after id 0" with the row of id 0 again, and reading on from the last id got looped forever.  The
    export ends, with what was valid and one sentence saying what was skipped."""
    import shutil
    cut = tmp_path / "cut.mpgrun"
    shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "cut_in_half.mpgrun"), cut)
    js = tmp_path / "t.json"
    r = run_cli(["export", str(cut), "--chrome", str(js)], tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("\n") == 1 and "damaged" in r.stderr and "out of place" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert json.loads(js.read_text())["traceEvents"]
