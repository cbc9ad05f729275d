"""``main.py selftest``: one line per check under each start method, exit code 0 only when all passed; a
failing check is reported and fails the run, a hanging one cannot hang it.  (The packaged app's selftest
is run in test_frozen_app.py.)"""
import io
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAIN = os.path.join(ROOT, "main.py")
SELFTEST_TIMEOUT = 300
CHECK_NAMES = ["process", "pool", "queue", "pipe", "lock", "barrier", "manager", "shared_memory", "scenario",
               "tracing", "window"]


def test_every_check_passes_under_each_start_method(start_method, tmp_path):
    env = dict(os.environ, MPGUI_HOME=str(tmp_path / "home"))
    p = subprocess.run([sys.executable, MAIN, "selftest", "--start-method", start_method], env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=SELFTEST_TIMEOUT)
    lines = p.stdout.strip().splitlines()
    assert p.returncode == 0, p.stdout + p.stderr
    assert [ln.split()[2] for ln in lines[:-1]] == CHECK_NAMES
    assert all(ln.split()[:2] == ["ok", start_method] for ln in lines[:-1]), p.stdout
    assert lines[-1] == "selftest: 11 checks under %s: all passed" % start_method
    assert "WorkerLostError" in lines[1]
    assert not (tmp_path / "home").exists()            # the scenario's run is not put in the user's history


def test_a_failing_check_is_one_line_and_fails_the_run(monkeypatch):
    from mpgui import selftest

    def broken(ctx):
        raise selftest.CheckFailed("the answer was 41")

    def crashed(ctx):
        raise ImportError("a module is missing\n\nwith advice\non many lines")

    monkeypatch.setattr(selftest, "CHECKS", (("process", selftest.check_process), ("broken", broken),
                                             ("crashed", crashed)))
    monkeypatch.setattr(selftest, "scenario_checks", lambda method, tmp: iter(()))
    out = io.StringIO()
    assert selftest.run(["spawn"], out=out) == 1
    lines = out.getvalue().strip().splitlines()
    assert lines[0].startswith("ok ") and lines[1].startswith("FAIL") and "the answer was 41" in lines[1]
    assert lines[2].startswith("FAIL") and "ImportError: a module is missing with advice on many lines" in lines[2]
    assert len(lines) == 4 and lines[-1].endswith("2 FAILED")


def test_an_unknown_start_method_is_one_sentence(tmp_path):
    p = subprocess.run([sys.executable, MAIN, "selftest", "--start-method", "teleport"], capture_output=True,
                       text=True, timeout=SELFTEST_TIMEOUT, env=dict(os.environ, MPGUI_HOME=str(tmp_path)))
    assert p.returncode == 2 and p.stdout == ""
    assert len(p.stderr.strip().splitlines()) == 1 and "teleport" in p.stderr


def test_a_hanging_check_is_ended_with_what_it_started(tmp_path):
    """The watchdog ends the self-test and kills the process the stuck check started (the leak check of
    conftest.py fails this test if that process outlives it)."""
    program = textwrap.dedent("""
        import sys, time
        sys.path.insert(0, %r)
        from mpgui import selftest

        def stuck(ctx):
            p = ctx.Process(target=time.sleep, args=(3600,))
            p.start()
            time.sleep(3600)

        selftest.WATCHDOG_S = 3
        selftest.CHECKS = (("stuck", stuck),)
        sys.exit(selftest.run(["spawn"]))
    """ % ROOT)
    p = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=SELFTEST_TIMEOUT,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "did not finish within 3 s" in p.stdout
