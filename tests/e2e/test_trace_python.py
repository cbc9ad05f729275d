"""``trace --python PATH`` runs the program with another interpreter (one with the program's own packages, or
in the packaged app any Python at all): core comes from this checkout, and an interpreter core does not run on
is refused in one sentence before anything starts."""
import os
import subprocess
import sys

from core.trace.store import RunFile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAIN = os.path.join(ROOT, "main.py")

PROGRAM = (
    "import multiprocessing as mp, sys\n"
    "def square(x):\n"
    "    return x * x\n"
    "if __name__ == '__main__':\n"
    "    print(sys.executable)\n"
    "    with mp.Pool(2) as p:\n"
    "        print(p.map(square, range(4)))\n")


def run_cli(args, tmp_path):
    env = dict(os.environ, MPGUI_HOME=str(tmp_path / "home"))
    return subprocess.run([sys.executable, MAIN] + args, env=env, cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_trace_with_another_python(tmp_path):
    script = tmp_path / "prog.py"
    script.write_text(PROGRAM)
    other = getattr(sys, "_base_executable", sys.executable)         # outside this virtual environment
    out = tmp_path / "p.mpgrun"
    r = run_cli(["trace", "--python", other, "--out", str(out), str(script)], tmp_path)
    assert r.returncode == 0, r.stderr
    ran_by, result = r.stdout.splitlines()[:2]
    assert os.path.samefile(ran_by, other) and result == "[0, 1, 4, 9]"
    with RunFile(out) as rf:
        model = rf.model()
    assert len(model.tasks_array()) == 4
    assert sum(1 for p in model.procs.values() if p.role == "worker") == 2


def test_an_interpreter_core_does_not_run_on_is_refused(tmp_path):
    script = tmp_path / "prog.py"
    script.write_text(PROGRAM)
    fake = tmp_path / "python3.99"
    fake.write_text("#!/bin/sh\necho 3.99\n")
    fake.chmod(0o755)
    not_python = tmp_path / "notpython"
    not_python.write_text("#!/bin/sh\nexit 3\n")
    not_python.chmod(0o755)
    for python, said in ((str(fake), "%s is Python 3.99; core runs on Python 3.11: name that interpreter with "
                                     "--python PATH." % fake),
                         (str(not_python), "%s does not run as a Python interpreter: name one with --python PATH."
                          % not_python),
                         ("no-such-python", "--python no-such-python: no such program; give the path of a Python "
                                            "3.11 interpreter.")):
        r = run_cli(["trace", "--python", python, str(script)], tmp_path)
        assert r.returncode == 2 and r.stderr.strip().splitlines() == ["mpgui: " + said], r.stderr
    assert not (tmp_path / "home" / "runs").exists() or not os.listdir(tmp_path / "home" / "runs")
