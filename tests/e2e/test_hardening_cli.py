"""Hardening of the runner, run files, the history and the command line: private files, runs that cannot
collide, odd paths, a killed runner, one sentence (never a traceback) for every mistake a user can make, a
disk that fills, damaged run files, and the signals and options of ``trace`` and ``run``."""
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from core.history import RunHistory
from core.trace.store import RunFile, RunWriter

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAIN = os.path.join(ROOT, "main.py")

PROGRAM = textwrap.dedent('''
    import core as multiprocessing

    def work(lock, n):
        for _ in range(n):
            with lock:
                pass

    if __name__ == "__main__":
        lock = multiprocessing.Lock(name="db")
        ps = [multiprocessing.Process(target=work, args=(lock, 50)) for _ in range(2)]
        for p in ps:
            p.start()
        for p in ps:
            p.join()
        print("program done")
''')


def run_cli(args, home, timeout=120, **kw):
    env = dict(os.environ, MPGUI_HOME=str(home))
    env.update(kw.pop("env", {}))
    return subprocess.run([sys.executable, MAIN] + [str(a) for a in args], capture_output=True, text=True,
                          env=env, timeout=timeout, **kw)


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
