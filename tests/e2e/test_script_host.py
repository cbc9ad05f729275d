"""``main.py _run-script SCRIPT``, the packaged app's stand-in for ``python SCRIPT`` (used by spawn_main_guard
there), behaves as ``python SCRIPT`` does: same output, same exit code, same failure of a child that starts
a process from the script's top level.  The packaged app itself is tested in test_frozen_app.py."""
import os
import subprocess
import sys

import pytest

from mpgui.scenarios.spawn_main_guard import BOOTSTRAP_ERROR, outcome, script_env, script_text

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAIN = os.path.join(ROOT, "main.py")
SCRIPT_TIMEOUT = 90

needs_spawn_like = pytest.mark.parametrize("method", [m for m in ("spawn", "forkserver")
                                                      if m in __import__("multiprocessing").get_all_start_methods()])


def run(cmd, cwd):
    p = subprocess.run(cmd, cwd=cwd, env=script_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=SCRIPT_TIMEOUT)
    return outcome(p.returncode, p.stdout, p.stderr, 0.0)


@needs_spawn_like
@pytest.mark.parametrize("guarded", [False, True], ids=["unguarded", "guarded"])
def test_a_script_runs_as_under_python(tmp_path, method, guarded):
    path = tmp_path / ("guarded.py" if guarded else "unguarded.py")
    path.write_text(script_text(method, guarded))
    python = run([sys.executable, str(path)], str(tmp_path))
    host = run([sys.executable, MAIN, "_run-script", str(path)], str(tmp_path))
    for key in ("script_exit", "child_exitcode", "child_ran", "top_level_runs", "names", "bootstrap_error"):
        assert host[key] == python[key], (key, host, python)
    assert host["child_ran"] is guarded
    assert host["bootstrap_error"] is not guarded
    if not guarded:
        assert host["child_exitcode"] == 1 and BOOTSTRAP_ERROR in " ".join(host["stderr"].split())


def test_argv_exit_code_and_errors_are_python_s(tmp_path):
    (tmp_path / "prog.py").write_text("import sys\nprint(sys.argv[1:], __name__)\nsys.exit(int(sys.argv[1]))\n")
    p = subprocess.run([sys.executable, MAIN, "_run-script", str(tmp_path / "prog.py"), "3", "x"],
                       capture_output=True, text=True, timeout=SCRIPT_TIMEOUT)
    assert p.returncode == 3 and p.stdout.strip() == "['3', 'x'] __main__"
    (tmp_path / "boom.py").write_text("raise ValueError('boom')\n")
    p = subprocess.run([sys.executable, MAIN, "_run-script", str(tmp_path / "boom.py")], capture_output=True,
                       text=True, timeout=SCRIPT_TIMEOUT)
    assert p.returncode == 1 and "ValueError: boom" in p.stderr and "Traceback" in p.stderr
    p = subprocess.run([sys.executable, MAIN, "_run-script", str(tmp_path / "not-a-module.py")],
                       capture_output=True, text=True, timeout=SCRIPT_TIMEOUT)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1
