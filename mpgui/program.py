"""This program's own command line: how mpgui starts itself again (the app starting a runner, the runner
starting a scenario's main process, the self-test's window check), from a source checkout or frozen.

No Qt here.
"""
import os
import sys

#: The directory holding main.py (and the core and mpgui packages) in a source checkout.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def self_command(*args):
    """The command line that starts this program again with ``args``.  In the packaged app that is the
    console executable ``mpgui`` beside the running one (the windowed ``mpgui-app`` has no stdio)."""
    if getattr(sys, "frozen", False):
        here = os.path.dirname(sys.executable)
        cli = os.path.join(here, "mpgui.exe" if sys.platform == "win32" else "mpgui")
        return [cli if os.path.exists(cli) else sys.executable] + list(args)
    return [sys.executable, os.path.join(ROOT, "main.py")] + list(args)
