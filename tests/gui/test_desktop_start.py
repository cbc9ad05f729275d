"""The app's front door on Linux: ``python main.py`` either opens its window or says in one sentence why it
cannot (a library Qt's xcb platform plugin needs is missing, or there is no X display), with exit code 2,
never Qt's abort (exit code 134, a core dump).

Missing libraries are simulated with a copy of Qt's real xcb plugin whose dependency on one library is
renamed to a library that exists nowhere: Qt itself fails to load that copy exactly as it fails on a machine
without the library, so these tests hold on machines that have everything installed.
"""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAIN = os.path.join(ROOT, "main.py")
START_TIMEOUT = 60

#: The real dependency renamed in the copy of the plugin, and the name it gets (same length: the ELF string
#: table is patched in place).
REAL_LIB = b"libxcb-icccm.so.4"
FAKE_LIB = b"libxcb-absnt.so.4"

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Qt's xcb platform is Linux's")


def pyside_with_broken_xcb(tmp_path):
    """A PySide6 package made of links to the installed one, except for its xcb platform plugin: a copy whose
    dependency on one library is renamed to a library that is nowhere.  Put first on PYTHONPATH, it is what a
    machine without that library has.  Returns (the folder to put on PYTHONPATH, the copy of the plugin)."""
    from PySide6 import QtCore
    src = os.path.dirname(QtCore.__file__)
    plugin = os.path.join("Qt", "plugins", "platforms", "libqxcb.so")
    copied = {os.path.dirname(plugin), os.path.dirname(os.path.dirname(plugin)), "Qt"}   # folders made, not linked
    dst = str(tmp_path / "site")

    def mirror(rel):
        os.makedirs(os.path.join(dst, "PySide6", rel))
        for name in os.listdir(os.path.join(src, rel)):
            sub = os.path.normpath(os.path.join(rel, name))
            if sub in copied:
                mirror(sub)
            elif sub != plugin:
                os.symlink(os.path.join(src, sub), os.path.join(dst, "PySide6", sub))

    mirror("")
    data = open(os.path.join(src, plugin), "rb").read()
    assert REAL_LIB in data, "Qt's xcb plugin no longer needs %s: choose another library" % REAL_LIB.decode()
    with open(os.path.join(dst, "PySide6", plugin), "wb") as f:
        f.write(data.replace(REAL_LIB, FAKE_LIB))
    return dst, os.path.join(dst, "PySide6", plugin)


def start_app(tmp_path, **env_changes):
    env = dict(os.environ)
    for k in ("QT_QPA_PLATFORM", "QT_QPA_PLATFORM_PLUGIN_PATH", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE", "DISPLAY"):
        env.pop(k, None)
    env.update({k: v for k, v in env_changes.items() if v is not None})
    return subprocess.run([sys.executable, MAIN, "--home", str(tmp_path / "home")], env=env, cwd=str(tmp_path),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=START_TIMEOUT)


def assert_one_sentence(proc, *words):
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    for w in words:
        assert w in lines[0], lines[0]
    assert "Traceback" not in proc.stderr and "Aborted" not in proc.stderr


@linux_only
def test_a_missing_xcb_library_is_named_not_a_core_dump(tmp_path):
    site, _ = pyside_with_broken_xcb(tmp_path)
    proc = start_app(tmp_path, DISPLAY=":0", PYTHONPATH=os.pathsep.join([site, os.environ.get("PYTHONPATH", "")]))
    assert_one_sentence(proc, FAKE_LIB.decode(), "apt-file search", "dnf provides")
    assert not os.path.exists(tmp_path / "core")


@linux_only
def test_the_check_finds_what_the_plugin_lacks(tmp_path):
    from mpgui.gui import desktop
    _, plugin = pyside_with_broken_xcb(tmp_path)
    assert FAKE_LIB.decode() in desktop.missing_libraries(plugin)


@linux_only
def test_a_broken_override_plugin_does_not_stop_a_start_that_works(tmp_path):
    """Qt falls back from QT_QPA_PLATFORM_PLUGIN_PATH's plugin to its own: so does the check."""
    from mpgui.gui import desktop
    _, plugin = pyside_with_broken_xcb(tmp_path)
    env = {"QT_QPA_PLATFORM_PLUGIN_PATH": os.path.dirname(plugin), "DISPLAY": ":87"}
    assert desktop.xcb_plugins(env)[0] == plugin and len(desktop.xcb_plugins(env)) == 2
    problem = desktop.startup_problem(env)
    assert FAKE_LIB.decode() not in problem and ":87" in problem     # the display, not the library, is wrong


def test_the_sentence_names_the_packages_of_debian_and_fedora():
    from mpgui.gui import desktop
    text = desktop.missing_libraries_message(["libxcb-icccm.so.4", "libxcb-keysyms.so.1"])
    assert "libxcb-icccm.so.4" in text and "libxcb-keysyms.so.1" in text
    assert "apt-get install libxcb-icccm4 libxcb-keysyms1" in text
    assert "dnf install xcb-util-wm xcb-util-keysyms" in text
    assert text.count(". ") == 0 and text.endswith(".")
    # a library the table does not know is still named, with how to find its package
    text = desktop.missing_libraries_message(["libxcb-frob.so.7"])
    assert "libxcb-frob.so.7" in text and "apt-file search" in text and "dnf provides" in text


@linux_only
def test_no_display_is_one_sentence(tmp_path):
    proc = start_app(tmp_path)                      # no DISPLAY, no Wayland, no QT_QPA_PLATFORM
    assert_one_sentence(proc, "DISPLAY", "xvfb-run")


@linux_only
def test_a_display_nobody_serves_is_one_sentence(tmp_path):
    proc = start_app(tmp_path, DISPLAY=":87")        # no X server on :87
    assert_one_sentence(proc, ":87")


def test_another_platform_is_left_to_qt(monkeypatch):
    from mpgui.gui import desktop
    assert desktop.first_platform({"QT_QPA_PLATFORM": "offscreen"}) == "offscreen"
    assert desktop.first_platform({"QT_QPA_PLATFORM": "xcb:nograb;wayland"}) == "xcb"
    assert desktop.first_platform({"XDG_SESSION_TYPE": "wayland"}, installed={"wayland", "xcb"}) == "wayland"
    # Without Wayland's plugin (the packaged app leaves it out) Qt goes on to xcb: so does the check.
    assert desktop.first_platform({"XDG_SESSION_TYPE": "wayland"}, installed={"xcb", "offscreen"}) == "xcb"
    assert desktop.first_platform({}) == "xcb"
    assert desktop.startup_problem({"QT_QPA_PLATFORM": "offscreen"}) is None
