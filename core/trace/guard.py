"""The guardian: a small process that ends a run's program tree if the runner dies (see ``procs``).

It starts beside the program, when the machine is busiest, and almost always ends without doing anything, so
it costs as little as can be: it runs as a script, without the site module (``python -S``), and imports
nothing but ``os``, ``signal`` and ``sys`` until it must end the tree.  Run as a script, its arguments are the
program's pid and then the import path to use (the runner's, its package root first).
"""
import os
import signal
import sys

#: What a runner that ends normally tells its guardian before closing the pipe.
RELEASE = b"done"


def main(argv):
    """Wait for the runner's pipe (stdin) to end; unless the runner said ``done``, end the program's tree."""
    for sig in (signal.SIGINT, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, signal.SIG_IGN)
    program_pid = int(argv[0])
    said = b""
    try:
        while True:
            chunk = os.read(0, 64)
            if not chunk:
                break
            said += chunk
    except OSError:
        pass
    if RELEASE not in said:
        from core.trace.procs import kill_tree
        kill_tree(program_pid, program_pid if os.name == "posix" else None)
    return 0


if __name__ == "__main__":
    # As a script its own folder is first on the path: the runner's path replaces it (core's root first).
    sys.path[:] = sys.argv[2:]
    sys.exit(main(sys.argv[1:2]))
