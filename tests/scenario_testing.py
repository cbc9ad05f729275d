"""Run a scenario the way the CLI and the GUI do (a traced process tree, a run file), for tests."""
import os

from mpgui.scenario_run import prepare, start_run
from core.trace.store import RunFile


class ScenarioRun:
    def __init__(self, status, run, model, meta):
        self.status = status
        self.run = run
        self.model = model
        self.meta = meta
        self.result = run.result
        self.error = run.error

    @property
    def lesson(self):
        return self.result["lesson"] if self.result else None

    @property
    def figures(self):
        return self.result["figures"] if self.result else {}


def run_scenario(name, start_method, params, tmp_path, timeout=120):
    """Run scenario ``name`` with text or typed ``params``; returns a ScenarioRun (status, result, model)."""
    scenario, typed, method = prepare(name, start_method, {k: str(v) for k, v in params.items()})
    out = os.path.join(str(tmp_path), "%s-%s.mpgrun" % (name, method))
    run = start_run(scenario, typed, method, out=out, home=os.path.join(str(tmp_path), "home"),
                    echo_output=())
    import threading
    timer = threading.Timer(timeout, run.cancel)
    timer.start()
    try:
        status = run.wait()
    finally:
        timer.cancel()
    with RunFile(out) as rf:
        model = rf.model()
        meta = rf.meta()
    return ScenarioRun(status, run, model, meta)
