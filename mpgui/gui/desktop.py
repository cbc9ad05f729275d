"""Before the app's window: make sure it can open, or say in one sentence why not.

On Linux, Qt aborts the whole interpreter (exit code 134, a core dump) when its xcb platform plugin cannot
load: a system library it needs is missing (Qt's message then blames xcb-cursor0 whatever is missing), or
there is no X display.  ``prepare`` looks first, the way Qt will: it asks the dynamic loader (``ldd``) which of
the plugin's libraries cannot be found and names them with the Debian/Ubuntu and Fedora packages that hold
them, or tries the X connection with libxcb itself; then it prints one sentence and exits with code 2.
Anything it cannot tell is left to Qt: the check never keeps a start that would work from working.

A windowed build (``mpgui-app`` on Windows) has no console: ``sys.stdout`` and ``sys.stderr`` are None, and
whatever the app would print (tracebacks of errors in slots, Qt's warnings) would be lost.  Then both go to
``mpgui.log`` in the data directory.

This module runs before any window exists: it creates no QApplication and draws nothing.
"""
import os
import re
import shutil
import subprocess
import sys
import time

#: Exit code when the app cannot open its window (the command line's code for a problem the user can fix).
EXIT_CANNOT_START = 2
#: The log of a windowed start without stdio, in the data directory; above this size it starts afresh.
LOG_NAME = "mpgui.log"
LOG_MAX_BYTES = 1 << 20
#: ``ldd`` lists a plugin's libraries in well under a second; past this it is stuck, and Qt can decide.
LDD_TIMEOUT = 20.0

#: soname -> (Debian/Ubuntu package, Fedora package) for what Qt's xcb plugin loads.
PACKAGES = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb-glx.so.0": ("libxcb-glx0", "libxcb"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
}


# -- which platform, which plugin --------------------------------------------------------------------------

def first_platform(env, installed=None):
    """The platform plugin Qt will use, chosen as Qt chooses it: the first of ``QT_QPA_PLATFORM`` (a ``;``
    list whose entries may carry ``:options``; else Wayland then xcb in a Wayland session, else xcb) whose
    plugin is ``installed`` (by default: found where Qt looks)."""
    names = env.get("QT_QPA_PLATFORM", "").strip()
    if not names:
        names = "wayland;xcb" if env.get("XDG_SESSION_TYPE", "").strip().lower() == "wayland" else "xcb"
    names = [n.split(":")[0].strip().lower() for n in names.split(";") if n.strip()] or ["xcb"]
    installed = installed_platforms(env) if installed is None else installed
    return next((n for n in names if n in installed), names[0])


def platform_dirs(env):
    """Where Qt looks for platform plugins, in its order: ``QT_QPA_PLATFORM_PLUGIN_PATH`` first; then its
    plugin loader's folders: Qt's own plugin directory, then ``QT_PLUGIN_PATH``'s."""
    override = [d for d in env.get("QT_QPA_PLATFORM_PLUGIN_PATH", "").split(os.pathsep) if d]
    dirs = []
    try:
        from PySide6 import QtCore
        info = QtCore.QLibraryInfo
        dirs.append(info.path(info.LibraryPath.PluginsPath))
    except Exception:
        pass
    dirs += [d for d in env.get("QT_PLUGIN_PATH", "").split(os.pathsep) if d]
    return override, [os.path.join(d, "platforms") for d in dirs]


def installed_platforms(env):
    """Names of the platform plugins there are (``libqxcb.so`` -> ``xcb``; Wayland's plugin serves its
    variants too)."""
    override, loader = platform_dirs(env)
    names = set()
    for d in override + loader:
        try:
            files = os.listdir(d)
        except OSError:
            continue
        names.update(f[4:].split(".")[0] for f in files if f.startswith("libq") and ".so" in f)
    if "wayland" in names:
        names.update(("wayland-egl", "wayland-brcm"))
    return names


def xcb_plugins(env):
    """The xcb plugin files Qt will try, in its order: one in ``QT_QPA_PLATFORM_PLUGIN_PATH``, then (if that
    one fails to load) the first one its plugin loader finds."""
    override, loader = platform_dirs(env)
    found = [p for p in (os.path.join(d, "libqxcb.so") for d in override) if os.path.isfile(p)][:1]
    found += [p for p in (os.path.join(d, "libqxcb.so") for d in loader) if os.path.isfile(p)][:1]
    return found


# -- what is missing -----------------------------------------------------------------------------------------

def missing_libraries(plugin):
    """The libraries ``plugin`` needs, directly or not, that the dynamic loader cannot find (an empty list if
    it finds them all or cannot tell)."""
    ldd = shutil.which("ldd")
    if ldd:
        try:
            out = subprocess.run([ldd, plugin], capture_output=True, text=True, timeout=LDD_TIMEOUT,
                                 stdin=subprocess.DEVNULL, env=dict(os.environ, LC_ALL="C")).stdout
        except (OSError, subprocess.SubprocessError):
            out = None
        if out is not None:
            names = re.findall(r"^\s*(\S+)\s+=>\s+not found\s*$", out, re.M)
            return list(dict.fromkeys(names))
    # No ldd (a minimal system): loading the plugin names the first library that is missing.
    import ctypes
    try:
        ctypes.CDLL(plugin)
    except OSError as e:
        m = re.match(r"\s*(\S+?): cannot open shared object file", str(e))
        if m and m.group(1) != plugin:
            return [m.group(1)]
    return []


def missing_libraries_message(names):
    """One sentence naming the missing libraries and the packages to install on Debian/Ubuntu and Fedora."""
    known = [n for n in names if n in PACKAGES]
    unknown = [n for n in names if n not in PACKAGES]
    them = "it" if len(names) == 1 else "them"
    text = "cannot open the window: Qt's xcb platform plugin needs %s, which %s not installed" % (
        _and(names), "is" if len(names) == 1 else "are")
    how = []
    if known:
        debian = list(dict.fromkeys(PACKAGES[n][0] for n in known))
        fedora = list(dict.fromkeys(PACKAGES[n][1] for n in known))
        how.append("on Debian/Ubuntu: sudo apt-get install %s; on Fedora: sudo dnf install %s"
                   % (" ".join(debian), " ".join(fedora)))
    if unknown:
        how.append("to find the package of %s: apt-file search %s (Debian/Ubuntu) or dnf provides '*/%s' "
                   "(Fedora)" % (_and(unknown), unknown[0], unknown[0]))
    return "%s; install %s (%s) and start mpgui again." % (text, them, "; ".join(how))


def _and(items):
    items = list(items)
    return items[0] if len(items) == 1 else "%s and %s" % (", ".join(items[:-1]), items[-1])


def display_problem(display):
    """Why an X connection to ``display`` fails, tried with libxcb as Qt will try it; None if it works (or if
    libxcb cannot be loaded to tell)."""
    if not display:
        return ("cannot open the window: there is no X display (DISPLAY is not set); start mpgui from a desktop "
                "session, or on a machine without a screen under xvfb-run (xvfb-run %s), or use the command "
                "line (%s --help)." % (_program(), _program()))
    import ctypes
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError:
        return None
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    conn = xcb.xcb_connect(display.encode(), None)
    try:
        failed = xcb.xcb_connection_has_error(conn) != 0
    finally:
        xcb.xcb_disconnect(conn)
    if failed:
        return ("cannot open the window: the X display %s (DISPLAY) cannot be reached; set DISPLAY to a running "
                "X server you may use, or run mpgui under xvfb-run, or use the command line (%s --help)."
                % (display, _program()))
    return None


def _program():
    return os.path.basename(sys.executable) if getattr(sys, "frozen", False) else "python main.py"


def startup_problem(env=None):
    """One sentence saying why the window cannot open on this machine, or None (not Linux, another platform
    than xcb, or nothing found wrong)."""
    env = os.environ if env is None else env
    if not sys.platform.startswith("linux") or first_platform(env) != "xcb":
        return None
    missing = []
    for plugin in xcb_plugins(env):
        missing = missing_libraries(plugin)
        if not missing:
            break                   # Qt loads this one
    if missing:                     # every plugin Qt would try lacks something: name what the last one lacks
        return missing_libraries_message(missing)
    return display_problem(env.get("DISPLAY", "").strip())


# -- a windowed start without stdio -------------------------------------------------------------------------

def log_without_stdio(home=None):
    """If this process has no stdout or stderr (a windowed build), send them to ``mpgui.log`` in the data
    directory, private to the user, and Qt's messages with them.  Returns the log's path, or None."""
    if sys.stdout is not None and sys.stderr is not None:
        return None
    from mpgui.history import home_dir
    path = os.path.join(home_dir(home), LOG_NAME)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        if os.path.getsize(path) > LOG_MAX_BYTES:
            os.replace(path, path + ".1")
    except OSError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    log = os.fdopen(fd, "a", buffering=1, encoding="utf-8", errors="replace")
    if sys.stdout is None:
        sys.stdout = log
    if sys.stderr is None:
        sys.stderr = log
    print("--- mpgui started %s, pid %d" % (time.strftime("%Y-%m-%d %H:%M:%S"), os.getpid()), file=log)
    try:
        from PySide6 import QtCore

        def qt_message(mode, context, message):
            print("qt: %s" % message, file=sys.stderr)

        QtCore.qInstallMessageHandler(qt_message)
        _keep.append(qt_message)                 # Qt holds no reference to the handler
    except Exception:
        pass
    return path


_keep = []


def prepare(home=None):
    """The one call before the QApplication: stdio for a windowed start, then the platform check (one
    sentence on stderr and exit code 2 if the window cannot open)."""
    log_without_stdio(home)
    problem = startup_problem()
    if problem:
        print("mpgui: %s" % problem, file=sys.stderr, flush=True)
        raise SystemExit(EXIT_CANNOT_START)
