"""Running a scenario: check what the user asked for, describe the run (its main process is this program
started again as ``_scenario-host``), and hand it to core's runner with the history as its observer.  The
command line, the self-test and the tests start scenario runs through here; the app starts the command line.

No Qt here.
"""
import json

from core.trace.runner import RunSpec, TracedRun

from .history import RunHistory
from .program import self_command
from .scenario_host import HOST_COMMAND
from .scenarios import get


def prepare(name, method=None, values=None):
    """(scenario, typed params, start method), or ParamError with one sentence.  Nothing is started."""
    scenario = get(name)
    return scenario, scenario.validate(values or {}), scenario.check_method(method)


def scenario_command(scenario, params, method):
    return self_command(HOST_COMMAND, scenario.name, "--start-method", method, "--params",
                        json.dumps(params, sort_keys=True))


def make_run(scenario, params, method, out=None, home=None, echo_output=True, listener=None, replace=False):
    """A TracedRun of a scenario, not started yet (HistoryError if the history cannot be opened); ``start()``
    claims its run file (RunFileError if it cannot be)."""
    history = RunHistory(home)
    out = out or history.new_run_path(scenario.name)
    spec = RunSpec(scenario_command(scenario, params, method), out, kind="scenario", title=scenario.title,
                   scenario=scenario.name, params=params, start_method=method, echo_output=echo_output,
                   replace=replace)
    return TracedRun(spec, observers=[history], listener=listener)


def start_run(scenario, params, method, out=None, home=None, echo_output=True, listener=None):
    """Create and start a TracedRun of a scenario (also used by tests and by embedding code)."""
    return make_run(scenario, params, method, out, home, echo_output, listener).start()
