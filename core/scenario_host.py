"""The main process of a scenario run: ``main.py _scenario-host NAME --start-method M --params JSON``.

Started by the runner (never by the GUI directly), traced like any program using core.  It validates the
parameters again (the runner already did, this process must not trust its command line either), sets the
start method, runs the scenario and records its result (lesson, figures, table) as a registration the runner
reads back from the trace.  A scenario that fails records one sentence; its traceback goes to stderr, which
the runner keeps in the run file's log.
"""
import argparse
import json
import sys
import traceback

from .scenarios import ParamError, Reporter, get
from .trace import recorder

HOST_COMMAND = "_scenario-host"


def _watch_runner():
    """The runner keeps our stdin open; EOF means it is gone (even killed with SIGKILL).  Then this run's
    tree must not live on: end it, as the runner's cancel would have."""
    import os
    import signal
    import threading

    # Read the raw descriptor, not sys.stdin: a thread blocked in sys.stdin.read() holds the buffer's lock,
    # and a child forked meanwhile would deadlock closing its copy of stdin (lesson 14 of the notes).
    fd = os.dup(sys.stdin.fileno())

    def watch():
        try:
            while os.read(fd, 4096):
                pass
        except OSError:
            pass
        if os.name == "posix" and os.getpgrp() == os.getpid():
            os.killpg(os.getpgrp(), signal.SIGTERM)     # the stdlib's resource tracker ignores it and cleans up
        os._exit(137)

    if sys.stdin is not None and not sys.stdin.isatty():
        threading.Thread(target=watch, name="mpgui-runner-watch", daemon=True).start()


def main(argv):
    ap = argparse.ArgumentParser(prog="mpgui " + HOST_COMMAND)
    ap.add_argument("name")
    ap.add_argument("--start-method")
    ap.add_argument("--params", default="{}")
    args = ap.parse_args(argv)
    try:
        scenario = get(args.name)
        params = scenario.validate(json.loads(args.params))
        method = scenario.check_method(args.start_method)
    except (ParamError, ValueError) as e:
        recorder.write_note({"t": "error", "message": str(e)})
        print(str(e), file=sys.stderr)
        return 2
    _watch_runner()
    import core
    core.set_start_method(method, force=True)
    ctx = core.get_context(method)
    recorder.write_note({"t": "scenario", "name": scenario.name, "params": params, "method": method})
    report = Reporter()
    try:
        result = scenario.run(ctx, params, report)
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        traceback.print_exc()
        message = "Scenario %s failed: %s: %s" % (scenario.name, type(e).__name__, e)
        recorder.write_note({"t": "error", "message": message})
        return 1
    recorder.write_note(result.as_note())
    return 0
