"""Traced runs at scale, end to end: a run ends when its program ends, a hot program loses no events, a run
file stops growing at its size cap, and the summary comes from one streaming pass over the run."""
import ctypes
import os
import subprocess
import sys
import textwrap

import pytest

from core.trace.runner import ORPHAN_GRACE
from core.trace.store import RunFile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAIN = os.path.join(ROOT, "main.py")


def run_cli(args, home, timeout=180, preexec_fn=None, env=None):
    full_env = dict(os.environ, MPGUI_HOME=str(home))
    full_env.update(env or {})
    return subprocess.run([sys.executable, MAIN] + [str(a) for a in args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, preexec_fn=preexec_fn, stdin=subprocess.DEVNULL)


# ----------------------------------------------------------------------------------------------------------
# no dead time: the run ends when the program ends
# ----------------------------------------------------------------------------------------------------------

HELPERS = {
    # the stdlib's resource tracker: started by the first SharedMemory, outlives the main process briefly
    "resource tracker": textwrap.dedent('''
        import core as multiprocessing
        from core import shared_memory

        if __name__ == "__main__":
            segment = shared_memory.SharedMemory(create=True, size=4096)
            segment.close()
            segment.unlink()
    '''),
    # the forkserver: ends once the main process is gone
    "forkserver": textwrap.dedent('''
        import core as multiprocessing

        def nothing():
            pass

        if __name__ == "__main__":
            p = multiprocessing.get_context("forkserver").Process(target=nothing)
            p.start()
            p.join()
    '''),
}


def _become_subreaper():
    """Orphans of the command's tree become its children, and it reaps none but its own: as under a
    container's first process that does not reap, every helper that outlives the program's main process stays
    a zombie.  (Kept across exec.)"""
    PR_SET_CHILD_SUBREAPER = 36
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        os._exit(99)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="child subreapers are Linux's")
@pytest.mark.parametrize("helper", sorted(HELPERS))
def test_a_run_ends_when_its_program_ends(tmp_path, helper):
    """Helpers that end after the main process (and are not reaped at once) add no time to the run: the
    recorded end of the run (its last sample or event, and its end) is the end of the program's main process,
    in the trace's own clock."""
    import multiprocessing
    if helper == "forkserver" and "forkserver" not in multiprocessing.get_all_start_methods():
        pytest.skip("no forkserver here")
    script = tmp_path / "helper.py"
    script.write_text(HELPERS[helper])
    out = tmp_path / "run.mpgrun"
    r = run_cli(["trace", "--quiet", script, "--out", out], tmp_path / "home", preexec_fn=_become_subreaper)
    assert r.returncode == 0, r.stderr
    with RunFile(out) as rf:
        meta = rf.meta()
        model = rf.model()
        (main_exit,) = [reg["time"] for reg in rf.read_all()[1] if reg.get("t") == "exit"]
    # Before, the runner waited ORPHAN_GRACE for the zombies to go, then tried to kill them.
    assert meta["ended_perf"] - main_exit < ORPHAN_GRACE * 1e9 / 2, (meta["ended_perf"] - main_exit) / 1e9
    assert model.t_last - main_exit < ORPHAN_GRACE * 1e9 / 2, (model.t_last - main_exit) / 1e9
