"""The app on a real X display (Xvfb) with Qt's xcb platform, the one a Linux desktop uses, not offscreen:
started through main.py as a user starts it, it runs a scenario and the display server shows the run.

Also here: a windowed start without stdio (the Windows ``mpgui-app``) keeps what it would have printed in
the data directory's log.
"""
import json
import os
import select
import shutil
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.path.join(HERE, "app_driver.py")
#: The driver gives up on its run after 90 s; this is for the whole app, start to end.
APP_TIMEOUT = 150
XVFB_START_TIMEOUT = 30.0


#: The X servers the fixture started, by display: (process, its log), for what a failure says of them.
SERVERS = {}


def server_state(display):
    """How the X server of ``display`` is doing, in words, with the end of its log (for a failure's message)."""
    if display not in SERVERS:
        return ""
    proc, log = SERVERS[display]
    code = proc.poll()
    with open(log, errors="replace") as f:
        tail = f.read()[-1500:]
    return "; Xvfb %s; its log: %s" % ("still runs" if code is None else "exited with %s" % code, tail)


@pytest.fixture
def xvfb(tmp_path_factory):
    """A private X server on a display number it picks itself; its number, e.g. ':3'."""
    exe = shutil.which("Xvfb")
    if exe is None:
        pytest.skip("Xvfb is not installed (bash .ci/run installs it)")
    r, w = os.pipe()
    log = tmp_path_factory.mktemp("xvfb") / "xvfb.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([exe, "-displayfd", str(w), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                                pass_fds=(w,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    os.close(w)
    number = b""
    display = None
    deadline = time.monotonic() + XVFB_START_TIMEOUT
    try:
        os.set_blocking(r, False)
        while not number.endswith(b"\n") and time.monotonic() < deadline and proc.poll() is None:
            if not select.select([r], [], [], 0.05)[0]:
                continue                        # nothing yet: wait on the pipe, not a fixed pause
            chunk = os.read(r, 16)
            if not chunk:
                break
            number += chunk
        assert number.strip(), "Xvfb did not start (exit code %s)" % proc.poll()
        display = ":" + number.decode().strip()
        SERVERS[display] = (proc, log)
        yield display
    finally:
        SERVERS.pop(display, None)
        os.close(r)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def drive(tmp_path, mode, env_changes):
    env = dict(os.environ)
    for k in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE", "DISPLAY"):
        env.pop(k, None)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")       # the app's settings, not the user's
    env.update(env_changes)
    report = tmp_path / "report.json"
    home = tmp_path / "home"
    proc = subprocess.run([sys.executable, DRIVER, str(report), mode, "--home", str(home)], env=env,
                          cwd=str(tmp_path), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=APP_TIMEOUT)
    assert report.exists(), (proc.returncode, proc.stderr[-3000:] + server_state(env.get("DISPLAY")))
    return proc, json.loads(report.read_text()), home


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="xcb is Linux's platform")
def test_the_window_opens_on_a_real_display_and_shows_a_run(tmp_path, xvfb):
    proc, seen, _ = drive(tmp_path, "scenario", {"DISPLAY": xvfb})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert seen["platform"] == "xcb"
    assert seen["window_visible"]
    assert seen["state"] == "done", seen.get("error")
    assert "With the lock the total was 200 of 200" in seen["lesson"]
    # The X server's own pixels of the timeline show the run: lock holds in their colour among lanes.
    x, y, w, h = seen["timeline_area"]
    assert w > 400 and h > 200
    assert seen["hold_pixels"] > 200, seen         # (about 1000 seen; without holds drawn: 0)
    assert seen["other_pixels"] > 500, seen


def test_a_start_without_stdio_logs_to_the_data_directory(tmp_path):
    proc, seen, home = drive(tmp_path, "error", {"QT_QPA_PLATFORM": "offscreen"})
    assert proc.returncode == 0
    log = home / "mpgui.log"
    assert log.exists(), "nothing was logged"
    text = log.read_text()
    assert "mpgui started" in text
    assert "RuntimeError: a bug in a slot, for the log" in text and "Traceback" in text
    if os.name == "posix":
        assert (log.stat().st_mode & 0o777) == 0o600           # it may hold a program's output: private
