"""The main process of a scenario run: ``main.py _scenario-host NAME --start-method M --params JSON``.

Started by the runner (never by the GUI directly), traced like any program using core.  It validates the
parameters again (the runner already did, this process must not trust its command line either), sets the
start method, runs the scenario and records its result (lesson, figures, table) as a registration the runner
reads back from the trace.  A scenario that fails records one sentence; its traceback goes to stderr, which
the runner keeps in the run file's log.  If the runner dies, its guardian ends this process tree (see
core.trace.runner); nothing here watches for it.
"""
import argparse
import json
import sys
import traceback

from .scenarios import ParamError, Reporter, get
from core.trace import recorder

HOST_COMMAND = "_scenario-host"


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
