"""Hardening of the runner, run files, the history and the command line: private files, runs that cannot
collide, odd paths, a killed runner, one sentence (never a traceback) for every mistake a user can make, a
disk that fills, damaged run files, and the signals and options of ``trace`` and ``run``."""
import contextlib
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from mpgui.history import RunHistory
from core.trace.store import RunFile, RunWriter
from test_runner import wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAIN = os.path.join(ROOT, "main.py")

LOCK_PROGRAM = textwrap.dedent('''
    import core as multiprocessing

    def work(lock, n):
        for _ in range(n):
            with lock:
                pass

    if __name__ == "__main__":
        lock = multiprocessing.Lock(name="db")
        ps = [multiprocessing.Process(target=work, args=(lock, %d)) for _ in range(2)]
        for p in ps:
            p.start()
        for p in ps:
            p.join()
        print("program done")
''')
#: A small traced program: two processes take one lock in turns.
PROGRAM = LOCK_PROGRAM % 50


def run_command(argv, home, timeout=120, **kw):
    env = dict(os.environ, MPGUI_HOME=str(home))
    env.update(kw.pop("env", {}))
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env, timeout=timeout, **kw)


def run_cli(args, home, timeout=120, **kw):
    return run_command([sys.executable, MAIN] + list(args), home, timeout, **kw)


def start_cli(args, home):
    """``main.py`` with ``args`` in the background, without stdin, its output captured as text."""
    return subprocess.Popen([sys.executable, MAIN] + [str(a) for a in args], env=dict(os.environ, MPGUI_HOME=str(home)),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@contextlib.contextmanager
def ended(p):
    """Whatever happens in the block, the command ``p`` does not outlive it."""
    try:
        yield p
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()


def assert_one_sentence(r, needle):
    """A mistake of the user's: exit code 2 and one line on stderr that says what to do, no traceback."""
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mpgui: "), r.stderr
    assert needle in lines[0], lines[0]


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def program(tmp_path):
    path = tmp_path / "prog.py"
    path.write_text(PROGRAM)
    return path


@pytest.fixture
def umask_022():
    """The usual umask, under which files are created world-readable unless asked otherwise."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


# ----------------------------------------------------------------------------------------------------------
# security: what a run records is private
# ----------------------------------------------------------------------------------------------------------

def test_run_files_history_and_data_directory_are_private(program, tmp_path, umask_022):
    home = tmp_path / "home"                 # mpgui creates it
    r = run_cli(["trace", "--quiet", program], home)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out" / "given.mpgrun"
    r = run_cli(["trace", "--quiet", program, "--out", out], home)
    assert r.returncode == 0, r.stderr
    assert mode(home) == 0o700 and mode(home / "runs") == 0o700
    assert mode(home / "history.sqlite") == 0o600
    files = list((home / "runs").iterdir()) + [out]
    assert any(f.name.endswith(".mpgrun") for f in files)
    assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}


def test_companion_files_of_live_databases_are_private(tmp_path, umask_022):
    writer = RunWriter(tmp_path / "live.mpgrun", {})
    history = RunHistory(tmp_path / "home")
    try:
        writer.add_log("stdout", "a line the program printed")
        history.begin("r1", str(tmp_path / "live.mpgrun"), "trace")
        live = [p for p in tmp_path.rglob("*") if p.is_file() and p.name.endswith(("-wal", "-shm"))]
        assert {p.name for p in live} >= {"live.mpgrun-wal", "live.mpgrun-shm", "history.sqlite-wal"}
        assert {p.name: mode(p) for p in live} == {p.name: 0o600 for p in live}
    finally:
        writer.close()
        history.close()


# ----------------------------------------------------------------------------------------------------------
# runs never share a run file
# ----------------------------------------------------------------------------------------------------------

def main_processes(path):
    with RunFile(path) as rf:
        return [p for p in rf.model().procs.values() if p.role == "main"]


def test_new_run_paths_are_distinct_within_one_second(tmp_path):
    history = RunHistory(tmp_path / "home")
    try:
        paths = [history.new_run_path("lock_contention") for _ in range(5)]
    finally:
        history.close()
    assert len(set(paths)) == 5
    # each name is taken as soon as it is handed out, so a concurrent runner cannot be given it too
    assert all(os.path.exists(p) and mode(p) == 0o600 for p in paths)


def test_concurrent_runs_of_one_scenario_get_a_file_each(tmp_path):
    home = tmp_path / "home"
    args = ["run", "lock_contention", "--set", "processes=1", "--set", "increments=10", "--quiet"]
    env = dict(os.environ, MPGUI_HOME=str(home))
    procs = [subprocess.Popen([sys.executable, MAIN] + args, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    files = sorted(f for f in (home / "runs").iterdir() if f.suffix == ".mpgrun")
    assert len(files) == 3
    assert [len(main_processes(f)) for f in files] == [1, 1, 1]


def test_out_onto_an_existing_run_file_refuses_unless_forced(program, tmp_path):
    out = tmp_path / "run.mpgrun"
    r = run_cli(["trace", "--quiet", program, "--out", out], tmp_path)
    assert r.returncode == 0, r.stderr
    with RunFile(out) as rf:
        first = rf.meta()["run_id"]
    r = run_cli(["trace", "--quiet", program, "--out", out], tmp_path)
    assert_one_sentence(r, "--force")
    assert "program done" not in r.stdout                      # refused before anything started
    with RunFile(out) as rf:
        assert rf.meta()["run_id"] == first
    assert len(main_processes(out)) == 1
    r = run_cli(["run", "lock_contention", "--set", "increments=10", "--quiet", "--out", out], tmp_path)
    assert_one_sentence(r, "--force")
    seen = {first}
    for forced in (["trace", "--quiet", "--force", program, "--out", out],
                   ["trace", "--quiet", program, "--out", out, "--force"],
                   ["run", "lock_contention", "--set", "increments=10", "--quiet", "--out", out, "--force"]):
        r = run_cli(forced, tmp_path)
        assert r.returncode == 0, r.stderr
        with RunFile(out) as rf:
            assert rf.meta()["run_id"] not in seen
            seen.add(rf.meta()["run_id"])
        assert len(main_processes(out)) == 1


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_out_onto_a_file_that_is_not_a_run_is_refused_and_kept(program, tmp_path, force):
    precious = tmp_path / "notes.txt"
    precious.write_text("my notes\n")
    r = run_cli(["trace", "--quiet"] + force + [program, "--out", precious], tmp_path)
    assert_one_sentence(r, "not an mpgui run file")
    assert precious.read_text() == "my notes\n"
    r = run_cli(["run", "lock_contention", "--quiet", "--out", precious] + force, tmp_path)
    assert_one_sentence(r, "not an mpgui run file")
    assert precious.read_text() == "my notes\n"
    r = run_cli(["trace", "--quiet", program, "--out", tmp_path], tmp_path)
    assert_one_sentence(r, "is a directory")


def test_out_onto_an_empty_reserved_file_is_used(program, tmp_path):
    """The app reserves a run file's name (an empty file) and hands it to the runner with --out."""
    history = RunHistory(tmp_path / "home")
    out = history.new_run_path("trace-prog")
    history.close()
    r = run_cli(["trace", "--quiet", program, "--out", out], tmp_path / "home")
    assert r.returncode == 0, r.stderr
    assert len(main_processes(out)) == 1


# ----------------------------------------------------------------------------------------------------------
# paths SQLite would read as URI syntax
# ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("odd", ["hash#dir", "what?dir", "both#a?C=1"])
def test_paths_with_uri_characters(program, tmp_path, odd):
    home = tmp_path / odd / "home"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    r = run_cli(["trace", "--quiet", program], home, cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert "1 main, 2 process" in r.stdout
    (run_file,) = [f for f in (home / "runs").iterdir() if f.suffix == ".mpgrun"]
    r = run_cli(["export", run_file, "--chrome", tmp_path / odd / "t.json"], home, cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert "damaged" not in r.stderr
    with RunFile(run_file) as rf:
        assert rf.meta()["status"] == "done"
    assert os.listdir(cwd) == []                  # no stray files named after pieces of the path
    assert sorted(os.listdir(tmp_path / odd)) == ["home", "t.json"]


# ----------------------------------------------------------------------------------------------------------
# a killed runner leaves nothing running
# ----------------------------------------------------------------------------------------------------------

FOREVER = textwrap.dedent('''
    import os, sys, time
    import core as multiprocessing

    def sleep_forever():
        time.sleep(3600)

    if __name__ == "__main__":
        from core import shared_memory
        shm = shared_memory.SharedMemory(create=True, size=4096)     # brings the stdlib's resource tracker
        p = multiprocessing.Process(target=sleep_forever, name="sleeper")
        p.start()
        pool = multiprocessing.Pool(2)
        pool.apply_async(sleep_forever)
        pids = [os.getpid(), p.pid] + [w.pid for w in pool._pool]
        with open(sys.argv[1] + ".tmp", "w") as f:
            f.write(" ".join(map(str, pids)))
        os.replace(sys.argv[1] + ".tmp", sys.argv[1])
        sys.stdin.read()            # a program may read its own stdin: here, until its end
        time.sleep(3600)
''')


def program_pids(pidfile):
    """The pids the program wrote, and the time by which they had started (``alive``'s ``born_by``): they
    wrote the file, so by now, with a second's room for coarse start times."""
    return [int(x) for x in pidfile.read_text().split()], time.time() + 1.0


def alive(pids, born_by=None):
    """Which of ``pids`` still run.  With ``born_by`` (a time.time()), only processes started by then count:
    once the program's processes end their pids may be given to other processes (the X server of a test
    beside this one, say), which are not ours to wait for or kill."""
    import psutil
    out = []
    for pid in pids:
        try:
            p = psutil.Process(pid)
            if p.status() != psutil.STATUS_ZOMBIE and (born_by is None or p.create_time() <= born_by):
                out.append(pid)
        except psutil.Error:
            pass
    return out


def test_killing_the_runner_of_trace_ends_the_program_tree(tmp_path):
    script = tmp_path / "forever.py"
    script.write_text(FOREVER)
    pidfile = tmp_path / "pids"
    runner = subprocess.Popen([sys.executable, MAIN, "trace", "--quiet", str(script), str(pidfile), "--out",
                               str(tmp_path / "f.mpgrun")], env=dict(os.environ, MPGUI_HOME=str(tmp_path)),
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pids, born_by = [], None
    try:
        wait_for(pidfile.exists, what="the program to start its processes")
        pids, born_by = program_pids(pidfile)
        assert len(alive(pids, born_by)) == 4
        runner.kill()
        runner.wait(timeout=10)
        wait_for(lambda: not alive(pids, born_by), timeout=15, what="the program's tree to end")
    finally:
        runner.stdin.close()
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        for pid in alive(pids, born_by):
            os.kill(pid, 9)


def test_trace_hands_its_stdin_to_the_program(tmp_path):
    script = tmp_path / "echo.py"
    script.write_text("import sys\nimport core\nprint('got', sys.stdin.readline().strip())\n")
    r = run_cli(["trace", script], tmp_path, input="hello from stdin\n")
    assert r.returncode == 0, r.stderr
    assert "got hello from stdin" in r.stdout


@pytest.mark.parametrize("runner_says, survives", [(b"done", True), (b"", False)])
def test_the_guardian_ends_the_tree_unless_released(tmp_path, runner_says, survives):
    """The guardian as the packaged app starts it (``main.py _run-guard PID``): end of its stdin without
    ``done`` means the runner died."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    try:
        guard = subprocess.run([sys.executable, MAIN, "_run-guard", str(sleeper.pid)], input=runner_says,
                               timeout=60)
        assert guard.returncode == 0
        if survives:
            assert sleeper.poll() is None
        else:
            assert sleeper.wait(timeout=10) is not None
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
        sleeper.wait()


# ----------------------------------------------------------------------------------------------------------
# one sentence, never a traceback
# ----------------------------------------------------------------------------------------------------------

def _drop_file_privileges():
    """For a command run as root: give up the capabilities that bypass file permissions (dac_override,
    dac_read_search, fowner), so an unreadable file or an unwritable directory is that to it too."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    PR_CAPBSET_DROP = 24
    for cap in (1, 2, 3):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            os._exit(99)


def as_user(args, home, **kw):
    """run_cli where file permissions apply (as root, without the capabilities that bypass them)."""
    if sys.platform != "linux" and os.geteuid() == 0:
        pytest.skip("needs Linux to run a command as root without its file privileges")
    if os.geteuid() == 0:
        kw["preexec_fn"] = _drop_file_privileges
    return run_cli(args, home, **kw)


@pytest.fixture
def run_file(program, tmp_path):
    out = tmp_path / "good.mpgrun"
    r = run_cli(["trace", "--quiet", program, "--out", out], tmp_path / "home")
    assert r.returncode == 0, r.stderr
    return out


def snapshot(path):
    return {p.name: p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name)}


def test_export_to_a_path_that_cannot_be_written(run_file, tmp_path):
    before = snapshot(run_file)
    r = run_cli(["export", run_file, "--chrome", tmp_path / "no" / "such" / "dir" / "t.json"], tmp_path)
    assert_one_sentence(r, "t.json")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    r = as_user(["export", run_file, "--chrome", locked / "t.json"], tmp_path)
    assert_one_sentence(r, "t.json")
    r = as_user(["export", run_file, "--csv", locked / "tables"], tmp_path)
    assert_one_sentence(r, "tables")
    assert os.listdir(locked) == []
    assert snapshot(run_file) == before


def test_export_csv_onto_a_file(run_file, tmp_path):
    target = tmp_path / "tables.csv"
    target.write_text("keep me\n")
    r = run_cli(["export", run_file, "--csv", target], tmp_path)
    assert_one_sentence(r, "directory")
    assert target.read_text() == "keep me\n"


def test_a_run_file_that_cannot_be_read(run_file, tmp_path):
    os.chmod(run_file, 0)
    try:
        r = as_user(["export", run_file, "--chrome", tmp_path / "t.json"], tmp_path)
    finally:
        os.chmod(run_file, 0o600)
    assert_one_sentence(r, str(run_file))
    assert not (tmp_path / "t.json").exists()


def test_a_directory_given_as_a_run_file(tmp_path):
    d = tmp_path / "adir.mpgrun"
    d.mkdir()
    r = run_cli(["export", d, "--chrome", tmp_path / "t.json"], tmp_path)
    assert_one_sentence(r, "directory")


@pytest.mark.parametrize("command", ["trace", "run", "runs"])
def test_home_that_is_a_file(program, tmp_path, command):
    home = tmp_path / "home"
    home.write_text("not a directory\n")
    args = {"trace": ["trace", "--quiet", program], "run": ["run", "lock_contention", "--quiet"],
            "runs": ["runs"]}[command]
    r = run_cli(["--home", home] + args, tmp_path)
    assert_one_sentence(r, "home")
    assert "program done" not in r.stdout
    assert home.read_text() == "not a directory\n"


@pytest.mark.parametrize("command", ["trace", "run"])
def test_home_that_cannot_be_written(program, tmp_path, command):
    home = tmp_path / "home"
    home.mkdir(mode=0o555)
    args = {"trace": ["trace", "--quiet", program], "run": ["run", "lock_contention", "--quiet"]}[command]
    r = as_user(["--home", home] + args, tmp_path)
    assert_one_sentence(r, "home")
    assert "program done" not in r.stdout
    assert os.listdir(home) == []


@pytest.mark.parametrize("command", ["trace", "run", "runs"])
def test_garbage_history(program, tmp_path, command):
    home = tmp_path / "home"
    home.mkdir()
    garbage = os.urandom(5000)
    (home / "history.sqlite").write_bytes(garbage)
    args = {"trace": ["trace", "--quiet", program], "run": ["run", "lock_contention", "--quiet"],
            "runs": ["runs"]}[command]
    r = run_cli(args, home)
    assert_one_sentence(r, "history.sqlite")
    assert "program done" not in r.stdout
    assert (home / "history.sqlite").read_bytes() == garbage


def test_runs_on_a_read_only_home_lists_the_runs(program, tmp_path):
    home = tmp_path / "home"
    r = run_cli(["trace", "--quiet", program], home)
    assert r.returncode == 0, r.stderr
    os.chmod(home, 0o555)
    try:
        r = as_user(["runs"], home)
    finally:
        os.chmod(home, 0o700)
    assert r.returncode == 0, r.stderr
    assert "trace prog.py" in r.stdout and "done" in r.stdout


# ----------------------------------------------------------------------------------------------------------
# a disk that fills during a run
# ----------------------------------------------------------------------------------------------------------

#: The largest file the runner (and its program) may write in the disk-full test: a few rings' worth.
FULL_AT = 3 << 20
#: Ring size (records) for that test: rings are files too, and must fit under the limit.
SMALL_RING = 8192

FLOOD = textwrap.dedent('''
    import sys
    import core as multiprocessing
    from core import shared_memory

    if __name__ == "__main__":
        shm = shared_memory.SharedMemory(create=True, size=4096)     # left for the runner to unlink
        with open(sys.argv[1], "w") as f:
            f.write(shm.name)
        lock = multiprocessing.Lock(name="flood")
        while True:                                                  # events until the recording stops us
            with lock:
                pass
''')


def _fill_at(limit):
    def preexec():
        import resource
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))   # writes past it fail with EFBIG
    return preexec


def _can_mount_a_small_disk():
    try:
        return subprocess.run(["unshare", "-Urm", "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _trace_until_full(tmp_path, disk_kind, args):
    """Run ``main.py`` with ``args`` (which write into ``disk/``) on a disk that fills: files limited to
    FULL_AT bytes (RLIMIT_FSIZE), or a tmpfs of that size in a mount namespace of the command's own (then
    the disk's contents are copied out to ``disk/`` when the command is done, before the tmpfs goes)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    env = {"MPGUI_TRACE_RING": str(SMALL_RING), "MPGUI_HOME": str(disk / "home")}
    if disk_kind == "file size limit":
        return run_cli(args, disk / "home", timeout=180, env=env, preexec_fn=_fill_at(FULL_AT))
    if not _can_mount_a_small_disk():
        pytest.skip("no unprivileged mount namespaces here (unshare -Urm)")
    copy = tmp_path / "copy"
    copy.mkdir()
    command = " ".join("'%s'" % a for a in [sys.executable, MAIN] + [str(a) for a in args])
    script = ('mount -t tmpfs -o size=%d tmpfs "$1" || exit 99; %s; rc=$?; cp -a "$1"/. "$2"/; exit $rc'
              % (FULL_AT, command))
    r = run_command(["unshare", "-Urm", "sh", "-c", script, "sh", disk, copy], disk / "home", timeout=180, env=env)
    assert r.returncode != 99, r.stderr
    os.rmdir(disk)
    copy.rename(disk)
    return r


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE and /dev/shm are Linux's")
@pytest.mark.parametrize("disk_kind", ["file size limit", "small tmpfs"])
def test_a_disk_that_fills_during_a_run(tmp_path, disk_kind):
    script = tmp_path / "flood.py"
    script.write_text(FLOOD)
    name_file = tmp_path / "shm-name"
    out = tmp_path / "disk" / "full.mpgrun"
    r = _trace_until_full(tmp_path, disk_kind, ["trace", "--quiet", script, name_file, "--out", out])
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("mpgui:")]
    assert len(errors) == 1 and "disk" in errors[0] and str(out) in errors[0], r.stderr
    with RunFile(out) as rf:
        meta = rf.meta()
        assert meta["status"] == "cut short"
        model = rf.model()
    # what was recorded before the disk filled is kept (how much fits depends on the machine, not asserted)
    assert [o["name"] for o in model.objects.values() if o.get("kind") == "Lock"] == ["flood"]
    assert any(c["name"] == "flood" and c["acquired"] > 0 for c in model.contention())
    history = RunHistory(tmp_path / "disk" / "home", readonly=True)
    try:
        (entry,) = history.list()
    finally:
        history.close()
    assert entry["status"] == "cut short"
    assert not os.path.exists(os.path.join("/dev/shm", name_file.read_text().lstrip("/")))


# ----------------------------------------------------------------------------------------------------------
# damaged run files export what is valid
# ----------------------------------------------------------------------------------------------------------

STEADY = textwrap.dedent('''
    import time
    import core as multiprocessing

    def work(lock, n):
        for i in range(n):
            with lock:
                pass
            if i % 200 == 0:
                time.sleep(0.002)          # a steady stream: the run file gets many chunks

    if __name__ == "__main__":
        lock = multiprocessing.Lock(name="steady")
        ps = [multiprocessing.Process(target=work, args=(lock, 60000)) for _ in range(2)]
        for p in ps:
            p.start()
        for p in ps:
            p.join()
''')


@pytest.fixture(scope="module")
def steady_run(tmp_path_factory):
    """A finished run file with many event chunks, and its events count; tests damage copies of it."""
    d = tmp_path_factory.mktemp("steady")
    script = d / "steady.py"
    script.write_text(STEADY)
    out = d / "steady.mpgrun"
    r = run_cli(["trace", "--quiet", script, "--out", out], d / "home")
    assert r.returncode == 0, r.stderr
    with RunFile(out) as rf:
        events = rf.model().events_seen
        chunks = rf._db.execute("SELECT count(*) FROM chunks").fetchone()[0]
    assert chunks >= 20, chunks
    return out, events


def damaged_copy(steady_run, tmp_path, *statements, loosen=False):
    """A copy of the steady run with ``statements`` applied (``loosen`` first drops the NOT NULL rules, as a
    damaged schema could)."""
    import shutil
    import sqlite3
    src, _ = steady_run
    path = tmp_path / "damaged.mpgrun"
    shutil.copy(src, path)
    db = sqlite3.connect(path)
    if loosen:
        db.execute("PRAGMA writable_schema=1")
        db.execute("UPDATE sqlite_master SET sql=replace(sql, 'NOT NULL', '') WHERE type='table'")
        db.commit()
        db.close()
        db = sqlite3.connect(path)
    for s in statements:
        db.execute(s)
    db.commit()
    db.close()
    return path


def export_events(path, tmp_path):
    """``main.py export`` of ``path``: (result, number of events the Chrome file shows)."""
    import json
    js = tmp_path / "t.json"
    r = run_cli(["export", path, "--chrome", js, "--csv", tmp_path / "csv"], tmp_path)
    n = 0
    if r.returncode == 0:
        n = json.loads(js.read_text())["otherData"]["events"]
    return r, n


FIRST_CHUNK = "(SELECT min(id) FROM chunks)"


@pytest.mark.parametrize("damage, loosen, lose_events", [
    (["INSERT INTO meta(key, value) VALUES(x'ff00', '1')"], False, False),                 # a key that is no text
    (["INSERT INTO meta(key, value) VALUES(NULL, '1')"], False, False),
    (["UPDATE meta SET value='\"abc\"' WHERE key='created_perf'"], False, False),          # a value of a wrong type
    (["UPDATE meta SET value='{' WHERE key='started_wall'"], False, False),                # a value that is no JSON
    (["UPDATE meta SET value=CAST(x'22ff22' AS TEXT) WHERE key='title'"], False, False),   # not UTF-8
    (["UPDATE meta SET key=CAST(x'ff' AS TEXT) WHERE key='title'"], False, False),
    (["UPDATE chunks SET n=NULL WHERE id=" + FIRST_CHUNK], True, False),                   # count lost, data whole
    (["UPDATE chunks SET n='many' WHERE id=" + FIRST_CHUNK], False, False),
    (["UPDATE chunks SET data=NULL WHERE id=" + FIRST_CHUNK], True, True),                 # data lost
    (["UPDATE regs SET body=CAST(x'7bff7d' AS TEXT) WHERE id=1"], False, False),
    (["INSERT INTO log(t, kind, text) VALUES(1, 'stdout', CAST(x'ff' AS TEXT))"], False, False),
    (["UPDATE samples SET body=CAST(x'7bff7d' AS TEXT) WHERE id=1"], False, False),
    (["INSERT INTO drops(ring, dropped) VALUES('x', NULL)"], True, False),
])
def test_a_damaged_run_file_exports_what_is_valid(steady_run, tmp_path, damage, loosen, lose_events):
    path = damaged_copy(steady_run, tmp_path, *damage, loosen=loosen)
    r, n = export_events(path, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "damaged" in r.stderr and "exported what was valid" in r.stderr
    total = steady_run[1]
    assert (n < total) if lose_events else (n == total), (n, total)


def test_a_run_file_cut_at_90_percent_exports_its_first_90_percent(steady_run, tmp_path):
    src, total = steady_run
    data = src.read_bytes()
    path = tmp_path / "cut.mpgrun"
    path.write_bytes(data[: len(data) * 9 // 10])
    r, n = export_events(path, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "damaged" in r.stderr and "Traceback" not in r.stderr
    assert total * 0.7 <= n < total, (n, total)


# ----------------------------------------------------------------------------------------------------------
# finished run files stand alone
# ----------------------------------------------------------------------------------------------------------

def companions(path):
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name) and p != path)


def test_finished_run_files_leave_no_wal_or_shm(program, tmp_path):
    traced = tmp_path / "traced.mpgrun"
    r = run_cli(["trace", program, "--out", traced], tmp_path)          # the summary reads the file
    assert r.returncode == 0, r.stderr
    assert companions(traced) == []
    scenario = tmp_path / "scenario.mpgrun"
    r = run_cli(["run", "lock_contention", "--set", "increments=10", "--out", scenario], tmp_path)
    assert r.returncode == 0, r.stderr
    assert companions(scenario) == []
    r = run_cli(["export", traced, "--chrome", tmp_path / "t.json"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert companions(traced) == []
    with RunFile(traced) as rf:
        rf.model()
    assert companions(traced) == []


def test_a_reader_of_a_live_run_leaves_no_wal_or_shm(tmp_path):
    """The app opens a run while it is recorded, and may close it after the runner is done or before."""
    for reader_closes_first in (False, True):
        path = tmp_path / ("live-%s.mpgrun" % reader_closes_first)
        writer = RunWriter(path, {})
        writer.add_log("stdout", "first line")
        reader = RunFile(path)
        assert [row[2] for row in reader.read_new()[3]] == ["first line"]
        if reader_closes_first:
            reader.close()
            writer.add_log("stdout", "second line")
            writer.close()
        else:
            writer.add_log("stdout", "second line")
            writer.close()
            assert [row[2] for row in reader.read_new()[3]] == ["second line"]
            reader.close()
        assert companions(path) == []
        with RunFile(path) as rf:
            assert [row[2] for row in rf.read_all()[3]] == ["first line", "second line"]
        assert companions(path) == []


# ----------------------------------------------------------------------------------------------------------
# signals: exit codes as shells give them, and never ignored
# ----------------------------------------------------------------------------------------------------------

#: The same with enough events that reading the run for its summary takes a while (a streaming pass: about
#: 0.4 s for these 1.6 million events).
MANY_EVENTS = LOCK_PROGRAM % 400000


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_the_summary_ends_the_command(tmp_path, sig, code):
    script = tmp_path / "many.py"
    script.write_text(MANY_EVENTS)
    out = tmp_path / "many.mpgrun"
    p = start_cli(["trace", "--quiet", script, "--out", out], tmp_path)
    with ended(p):
        # The runner's first line on stderr (its program's output is not echoed) comes when the run is
        # recorded and closed, just before it reads the whole run for its summary.
        assert p.stderr.readline() == "\n"
        p.send_signal(sig)
        stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == code, stderr
    assert "processes:" not in stdout and "Traceback" not in stderr
    with RunFile(out) as rf:
        assert rf.meta()["status"] == "done"


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_cancels_a_traced_run_with_the_shells_exit_code(tmp_path, sig, code):
    script = tmp_path / "forever.py"
    script.write_text(FOREVER)
    pidfile = tmp_path / "pids"
    out = tmp_path / "cancelled.mpgrun"
    p = start_cli(["trace", "--quiet", script, pidfile, "--out", out], tmp_path)
    pids, born_by = [], None
    try:
        with ended(p):
            wait_for(pidfile.exists, what="the program to start its processes")
            pids, born_by = program_pids(pidfile)
            p.send_signal(sig)
            stdout, stderr = p.communicate(timeout=60)
    finally:
        for pid in alive(pids, born_by):
            os.kill(pid, signal.SIGKILL)
    assert p.returncode == code, stderr
    assert "Traceback" not in stderr
    assert not alive(pids, born_by)
    with RunFile(out) as rf:
        assert rf.meta()["status"] == "cancelled"


# ----------------------------------------------------------------------------------------------------------
# trace: a script without the main guard, and --start-method
# ----------------------------------------------------------------------------------------------------------

NO_GUARD = {
    "process": textwrap.dedent('''
        import sys
        import core as multiprocessing

        def hello():
            print("child ran")

        ctx = multiprocessing.get_context(sys.argv[1])
        p = ctx.Process(target=hello)
        p.start()
        p.join()
        print("main done")
    '''),
    "pool": textwrap.dedent('''
        import sys
        import core as multiprocessing

        def square(x):
            return x * x

        with multiprocessing.get_context(sys.argv[1]).Pool(2) as pool:
            print(pool.map(square, range(4)))
    '''),
}


@pytest.mark.parametrize("kind", sorted(NO_GUARD))
def test_trace_of_a_script_without_the_main_guard_says_what_to_add(tmp_path, start_method, kind):
    if start_method == "fork":
        pytest.skip("fork does not import the main module again")
    script = tmp_path / "noguard.py"
    script.write_text(NO_GUARD[kind])
    out = tmp_path / "noguard.mpgrun"
    r = run_cli(["trace", "--quiet", script, start_method, "--out", out], tmp_path, timeout=180)
    assert r.returncode != 0
    errors = [line for line in r.stderr.splitlines() if line.startswith("mpgui:")]
    assert len(errors) == 1 and 'if __name__ == "__main__":' in errors[0], r.stderr
    with RunFile(out) as rf:
        meta = rf.meta()
    assert meta["status"] == "failed"
    assert 'if __name__ == "__main__":' in meta["error"]


METHOD_PROGRAM = textwrap.dedent('''
    import sys
    import core as multiprocessing

    def hello():
        pass

    if __name__ == "__main__":
        if len(sys.argv) > 1:
            multiprocessing.set_start_method(sys.argv[1])      # the program's own choice wins
        print("method", multiprocessing.get_start_method())
        p = multiprocessing.Process(target=hello)
        p.start()
        p.join()
''')


def test_trace_start_method_sets_the_programs_default(tmp_path, start_method):
    script = tmp_path / "method.py"
    script.write_text(METHOD_PROGRAM)
    out = tmp_path / "m.mpgrun"
    r = run_cli(["trace", "--start-method", start_method, script, "--out", out], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "method %s" % start_method in r.stdout
    with RunFile(out) as rf:
        children = [p for p in rf.model().procs.values() if p.traced and p.ppid and p.method]
        assert [p.method for p in children] == [start_method]
        assert rf.meta()["start_method"] == start_method
    other = [m for m in multiprocessing_methods() if m != start_method][:1]
    if other:                                   # a program that chooses its own method keeps it
        r = run_cli(["trace", "--start-method", start_method, script, other[0], "--out", out, "--force"], tmp_path)
        assert r.returncode == 0, r.stderr
        assert "method %s" % other[0] in r.stdout


def multiprocessing_methods():
    import multiprocessing
    return multiprocessing.get_all_start_methods()


def test_trace_refuses_a_start_method_the_platform_lacks(program, tmp_path):
    r = run_cli(["trace", "--start-method", "teleport", program], tmp_path)
    assert_one_sentence(r, "teleport")
    assert "program done" not in r.stdout
    assert not (tmp_path / "runs").exists() or os.listdir(tmp_path / "runs") == []
