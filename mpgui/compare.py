"""Comparing runs: each run's figures, read from its run file, and their statistics over repeats, as hyperfine
reports a benchmark (mean ± standard deviation, min..max, "x times slower" with its uncertainty).

A comparison is either a scenario run under several start methods, N times each (``main.py compare SCENARIO``;
mpgui/cli/compare.py starts the runs, one run file each, grouped in the history by a comparison id), or any
runs from the history (``main.py compare RUN RUN ...``), grouped by what they ran (scenario, parameters,
start methods).  The figures of a run (``FIGURES``, all from its run file):

* start latency p50 / p95: over the processes the program started, ``start()`` called to the child's first
  instruction (``ProcInfo.start_latency``; the same definition as start_cost's own measurement and as
  tests/bench/compare.py's plain stdlib loop);
* workers ready: from the first ``start()`` to the last of those processes ready (its first instruction, or
  the end of its pool initializer if it ran one); the processes counted are those started before the first
  pool task began (a Pool's workers, not the ones that replace them later);
* first result: from the first pool task queued to the first result the program consumed;
* makespan: from the first pool task queued to the last one done; in a run without pool tasks, from the first
  ``start()`` to the last child's end;
* RSS and USS per child: each child's peak over the monitor's samples (USS: memory only it holds, so fork's
  copy-on-write pages count in its RSS and not in its USS), averaged over the children, in MiB;
* CPU: the CPU time of the run's processes (the monitor's per-process CPU% integrated over its samples) and
  that as a share of the machine's cores over the run;
* lock wait: time spent waiting for locks and semaphores, summed over every process.

No Qt here; nothing here starts a run.
"""
import math
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from core.trace.model import NO_TIME, Span
from core.trace.store import RunFile

from .labels import DEFAULT_REPEAT, ordered_methods, param_text, params_text  # noqa: F401  (this module's API too)

MIB = 1 << 20
#: Roles of processes that are the stdlib's helpers, not the program's children.
HELPER_ROLES = ("main", "forkserver", "resource tracker")


@dataclass(frozen=True)
class Figure:
    """One figure of a run: its key (in ``--json``), what it is called, its unit, how it is formatted, and the
    sentence that says how two runs differ in it ("{a} ... {r}x ... {b}")."""
    key: str
    label: str
    unit: str
    fmt: str
    differs: str


FIGURES = (
    Figure("start_latency_ms_p50", "start latency p50", "ms", "%.1f",
           "{a} started processes {r}x slower than {b}"),
    Figure("start_latency_ms_p95", "start latency p95", "ms", "%.1f",
           "{a}'s slowest starts (p95) took {r}x as long as {b}'s"),
    Figure("workers_ready_s", "all workers ready", "s", "%.3f",
           "{a} had all its workers ready {r}x later than {b}"),
    Figure("first_result_s", "first result", "s", "%.3f",
           "{a} got its first result {r}x later than {b}"),
    Figure("makespan_s", "makespan", "s", "%.3f",
           "{a}'s work took {r}x as long as {b}'s"),
    Figure("rss_mb_per_child", "RSS per child", "MiB", "%.1f",
           "{a}'s children held {r}x the RSS of {b}'s"),
    Figure("uss_mb_per_child", "USS per child", "MiB", "%.1f",
           "{a}'s children each held {r}x as much memory of their own (USS) as {b}'s"),
    Figure("cpu_s", "CPU time", "s", "%.2f",
           "{a}'s processes used {r}x the CPU time of {b}'s"),
    Figure("cpu_util_pct", "CPU utilisation", "%", "%.0f",
           "{a} kept the cores {r}x as busy as {b}"),
    Figure("lock_wait_s", "lock wait", "s", "%.3f",
           "{a}'s processes waited for locks {r}x as long as {b}'s"),
    Figure("duration_s", "run duration", "s", "%.2f",
           "{a}'s whole run took {r}x as long as {b}'s"),
)
FIGURE_KEYS = tuple(f.key for f in FIGURES)
#: The figures whose differences are said in words (the table has them all): how fast processes start and
#: work begins, how long the work takes, what a child costs in memory and CPU, how long locks kept it waiting.
HEADLINE_KEYS = ("start_latency_ms_p50", "workers_ready_s", "first_result_s", "makespan_s", "uss_mb_per_child",
                 "cpu_s", "lock_wait_s")
_BY_KEY = {f.key: f for f in FIGURES}


def figure(key):
    return _BY_KEY[key]


# -- one run ---------------------------------------------------------------------------------------------------

@dataclass
class RunFigures:
    """A run, what it ran, and its figures (``None``: the run has no such thing, e.g. no pool tasks)."""
    path: str
    run_id: str = ""
    scenario: str = ""
    title: str = ""
    params: Dict[str, Any] = field(default_factory=dict)
    method: str = ""                      # the run's start method
    methods: List[str] = field(default_factory=list)   # every start method its processes used
    status: str = ""
    comparison: str = ""
    figures: Dict[str, Optional[float]] = field(default_factory=dict)
    children: int = 0
    tasks: int = 0
    #: Seconds from the run's start to its first pool task (or, without tasks, its first process started):
    #: where the comparison view aligns the run when asked to align at the first task.
    first_task_s: float = 0.0

    @property
    def what(self):
        """What the run ran: its scenario (or a traced program's title)."""
        return self.scenario or self.title or os.path.basename(self.path)

    def config(self):
        """What makes two runs repeats of each other: scenario, parameters and start methods."""
        return (self.what, tuple(sorted((k, str(v)) for k, v in self.params.items())), tuple(self.methods))

    def as_json(self):
        return {"id": self.run_id, "path": self.path, "scenario": self.scenario or None, "title": self.title,
                "params": self.params, "method": self.method, "methods": self.methods, "status": self.status,
                "comparison": self.comparison or None, "children": self.children, "tasks": self.tasks,
                "figures": {k: _round(v) for k, v in self.figures.items()}}


def _round(v):
    return None if v is None else float("%.6g" % v)


def _percentile(values, q):
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else None


def started_children(model):
    """The processes the program started (``start()`` seen and the child's first instruction), in start order."""
    kids = [p for p in model.processes_table() if p.role not in HELPER_ROLES and p.start_latency is not None]
    return sorted(kids, key=lambda p: p.start_called)


def _ready_times(model, kids):
    """When each process was ready: the end of its pool initializer if it ran one, else its first instruction."""
    spans = model.spans_array(include_open=False)
    init = spans[spans["kind"] == Span.INITIALIZER] if len(spans) else spans
    out = []
    for p in kids:
        mine = init["t1"][init["pid"] == p.pid] if len(init) else ()
        out.append(int(max(mine)) if len(mine) else p.booted)
    return out


def _process_figures(model, tasks):
    kids = started_children(model)
    out = {"start_latency_ms_p50": None, "start_latency_ms_p95": None, "workers_ready_s": None}
    if not kids:
        return out, kids
    lat_ms = [p.start_latency / 1e6 for p in kids]
    out["start_latency_ms_p50"] = _percentile(lat_ms, 50)
    out["start_latency_ms_p95"] = _percentile(lat_ms, 95)
    began = tasks["start"][tasks["start"] != NO_TIME] if len(tasks) else np.zeros(0, np.int64)
    first_task = int(min(began)) if len(began) else None
    wave = [p for p in kids if first_task is None or p.start_called < first_task] or kids
    out["workers_ready_s"] = (max(_ready_times(model, wave)) - wave[0].start_called) / 1e9
    return out, kids


def _task_figures(tasks, kids):
    out: Dict[str, Optional[float]] = {"first_result_s": None, "makespan_s": None}
    queued = tasks["queued"][tasks["queued"] != NO_TIME] if len(tasks) else np.zeros(0, np.int64)
    if len(queued):
        t0 = int(queued.min())
        used = tasks["used"][tasks["used"] != NO_TIME]
        if len(used):
            out["first_result_s"] = (int(used.min()) - t0) / 1e9
        ended = tasks["end"][tasks["end"] != NO_TIME]
        if len(ended):
            out["makespan_s"] = (int(ended.max()) - t0) / 1e9
    elif kids:
        ends = [p.exited for p in kids if p.exited != NO_TIME]
        if ends:
            out["makespan_s"] = (max(ends) - kids[0].start_called) / 1e9
    return out


def _sample_figures(samples, child_pids, cpu_count):
    """Memory per child and CPU from the monitor's samples: (t ns, {"procs": [{pid, cpu, rss[, uss]}]})."""
    out: Dict[str, Optional[float]] = {"rss_mb_per_child": None, "uss_mb_per_child": None, "cpu_s": None,
                                       "cpu_util_pct": None}
    peak_rss: Dict[Any, float] = {}
    peak_uss: Dict[Any, float] = {}
    cpu_s = 0.0
    prev_t = None
    first_t = last_t = None
    for t, s in sorted(samples, key=lambda ts: ts[0]):
        procs = [pr for pr in s.get("procs", ()) if isinstance(pr, dict)]
        if not procs and "cores" not in s:
            continue
        if prev_t is not None:
            # cpu is the percent of one core each process used since the previous sample
            cpu_s += sum(float(pr.get("cpu") or 0.0) for pr in procs) / 100.0 * (t - prev_t) / 1e9
        prev_t = t
        first_t = t if first_t is None else first_t
        last_t = t
        for pr in procs:
            pid = pr.get("pid")
            if pid not in child_pids:
                continue
            if pr.get("rss"):
                peak_rss[pid] = max(peak_rss.get(pid, 0), int(pr["rss"]))
            if pr.get("uss"):
                peak_uss[pid] = max(peak_uss.get(pid, 0), int(pr["uss"]))
    if peak_rss:
        out["rss_mb_per_child"] = sum(peak_rss.values()) / len(peak_rss) / MIB
    if peak_uss:
        out["uss_mb_per_child"] = sum(peak_uss.values()) / len(peak_uss) / MIB
    if first_t is not None and last_t > first_t:
        out["cpu_s"] = cpu_s
        if cpu_count:
            out["cpu_util_pct"] = 100.0 * cpu_s / ((last_t - first_t) / 1e9 * cpu_count)
    return out


def figures_of(model, samples=(), meta=None) -> Dict[str, Optional[float]]:
    """The figures (``FIGURE_KEYS``) of a run from its model and the monitor's samples."""
    meta = meta if meta is not None else model.meta
    tasks = model.tasks_array()
    out, kids = _process_figures(model, tasks)
    out.update(_task_figures(tasks, kids))
    cpu_count = (meta.get("machine") or {}).get("cpu_count") or os.cpu_count()
    out.update(_sample_figures(samples, {p.pid for p in kids}, cpu_count))
    out["lock_wait_s"] = sum(c["wait_total_ns"] for c in model.contention()) / 1e9
    out["duration_s"] = model.summary()["duration_s"]
    return {k: out.get(k) for k in FIGURE_KEYS}


def methods_used(model, fallback=None):
    """The start methods of the processes a run started (in the platform's order), or ``[fallback]``."""
    return ordered_methods(p.method for p in model.procs.values()) or ([fallback] if fallback else [])


def _first_task_s(model, tasks, kids):
    began = tasks["start"][tasks["start"] != NO_TIME] if len(tasks) else np.zeros(0, np.int64)
    if len(began):
        first = int(began.min())
    elif kids:
        first = kids[0].start_called
    else:
        return 0.0
    return max(0.0, (first - model.t0) / 1e9)


def read_run(path, history_row=None) -> Tuple[RunFigures, Any]:
    """A run's figures and its model (the comparison view draws the model's timeline), from its run file.
    RunFileError with one sentence if it cannot be read."""
    with RunFile(path) as rf:
        model = rf.model()
        samples = list(rf.iter_samples())
        meta = model.meta
    row = history_row or {}
    tasks = model.tasks_array()
    kids = started_children(model)
    method = meta.get("start_method") or row.get("start_method") or ""
    run = RunFigures(path=os.path.abspath(path), run_id=row.get("id") or meta.get("run_id") or "",
                     scenario=meta.get("scenario") or row.get("scenario") or "",
                     title=meta.get("title") or row.get("title") or "",
                     params=dict(meta.get("params") or row.get("params") or {}), method=method,
                     methods=methods_used(model, method) or list(row.get("methods") or []),
                     status=meta.get("status") or row.get("status") or "",
                     comparison=meta.get("comparison") or row.get("comparison") or "",
                     figures=figures_of(model, samples, meta), children=len(kids), tasks=len(tasks),
                     first_task_s=_first_task_s(model, tasks, kids))
    return run, model


# -- statistics over repeats --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stat:
    """A figure over repeats: how many, mean, standard deviation (n - 1; 0 for one value), min and max."""
    n: int
    mean: float
    sd: float
    min: float
    max: float

    @classmethod
    def of(cls, values) -> Optional["Stat"]:
        vals = [float(v) for v in values if v is not None and math.isfinite(v)]
        if not vals:
            return None
        n = len(vals)
        mean = sum(vals) / n
        sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else 0.0
        return cls(n, mean, sd, min(vals), max(vals))

    def text(self, fmt="%.3f", unit=""):
        """``"14.2 ± 1.3 ms  [12.9..15.8]"`` (one value: ``"14.2 ms"``)."""
        u = (" " + unit) if unit else ""
        if self.n == 1:
            return (fmt % self.mean) + u
        return "%s ± %s%s  [%s..%s]" % (fmt % self.mean, fmt % self.sd, u, fmt % self.min, fmt % self.max)


def ratio(a: Stat, b: Stat) -> Tuple[float, float]:
    """a / b and its uncertainty by error propagation (hyperfine's): r * sqrt((sd_a/a)^2 + (sd_b/b)^2)."""
    r = a.mean / b.mean
    return r, abs(r) * math.sqrt((a.sd / a.mean) ** 2 + (b.sd / b.mean) ** 2)


@dataclass
class Group:
    """Runs that are repeats of one another (a start method's runs, or runs of one configuration)."""
    label: str
    runs: List[RunFigures]

    def stat(self, key) -> Optional[Stat]:
        return Stat.of(r.figures.get(key) for r in self.runs)

    def stats(self):
        return {k: self.stat(k) for k in FIGURE_KEYS}


def group_by_method(runs: Sequence[RunFigures], methods: Sequence[str] = ()) -> List[Group]:
    """One group per start method, in the order of ``methods`` (then any other); a run that used several
    methods is a group of its own kind, labelled with all of them."""
    out: Dict[str, Group] = {m: Group(m, []) for m in methods}
    for r in runs:
        label = ", ".join(r.methods) if len(r.methods) > 1 else (r.method or ", ".join(r.methods) or "-")
        out.setdefault(label, Group(label, [])).runs.append(r)
    return [g for g in out.values() if g.runs]


def group_by_config(runs: Sequence[RunFigures]) -> List[Group]:
    """Runs of the same scenario, parameters and start methods together, labelled by what sets them apart."""
    groups: Dict[Any, List[RunFigures]] = {}
    for r in runs:
        groups.setdefault(r.config(), []).append(r)
    firsts = [rs[0] for rs in groups.values()]
    differ = differing_params(firsts)
    same_what = len({r.what for r in firsts}) == 1
    same_methods = len({tuple(r.methods) for r in firsts}) == 1
    out = []
    for rs in groups.values():
        r = rs[0]
        parts = [] if same_what else [r.what]
        parts += ["%s=%s" % (k, param_text(r.params.get(k))) for k in differ]
        if not same_methods or not parts:
            parts.append(", ".join(r.methods) or r.method or "-")
        out.append(Group(" ".join(parts), rs))
    seen: Dict[str, int] = {}
    for g in out:                          # two configurations that read the same: number them
        seen[g.label] = seen.get(g.label, 0) + 1
        if seen[g.label] > 1:
            g.label = "%s (%d)" % (g.label, seen[g.label])
    return out


def differing_params(runs: Sequence[RunFigures]) -> List[str]:
    """The parameter names whose values are not the same in every run (in the order they first appear)."""
    names: List[str] = []
    for r in runs:
        names += [k for k in r.params if k not in names]
    return [k for k in names if len({param_text(r.params.get(k)) for r in runs}) > 1]


def parameter_rows(runs: Sequence[RunFigures]) -> List[Tuple[str, List[str]]]:
    """What differs between the runs, one row per difference: scenario, start methods, each parameter."""
    rows = []
    if len({r.what for r in runs}) > 1:
        rows.append(("scenario", [r.what for r in runs]))
    if len({tuple(r.methods) for r in runs}) > 1:
        rows.append(("start methods", [", ".join(r.methods) or "-" for r in runs]))
    for k in differing_params(runs):
        rows.append((k, [param_text(r.params.get(k)) for r in runs]))
    return rows


@dataclass
class Difference:
    """How a group compares with the best group in one figure: ``ratio`` ± ``uncertainty`` times the best."""
    key: str
    label: str
    baseline: str
    ratio: float
    uncertainty: float
    repeats: int

    @property
    def within_noise(self):
        return self.repeats > 1 and self.ratio - self.uncertainty <= 1.0

    def sentence(self):
        fmt = "%.1f" if self.ratio >= 10 else "%.2f"        # as many digits as the ratio deserves
        text = figure(self.key).differs.format(a=self.label, b=self.baseline, r=fmt % self.ratio)
        if self.repeats > 1:
            text += ", ±" + fmt % self.uncertainty
        if self.within_noise:
            text += " (within the noise)"
        return text

    def as_json(self):
        return {"figure": self.key, "group": self.label, "baseline": self.baseline,
                "ratio": _round(self.ratio), "uncertainty": _round(self.uncertainty)}


#: Differences smaller than this factor are not worth a sentence.
MIN_RATIO = 1.05


def differences(groups: Sequence[Group], keys: Sequence[str] = HEADLINE_KEYS) -> List[Difference]:
    """For each figure, every group against the group with the lowest mean (the best: every figure here is a
    cost), as ``"spawn started processes 14.2x slower than fork, ±1.3"``."""
    out = []
    for key in keys:
        stats: List[Tuple[Group, Stat]] = []
        for g in groups:
            st = g.stat(key)
            if st is not None and st.mean > 0:
                stats.append((g, st))
        if len(stats) < 2:
            continue
        best_g, best = min(stats, key=lambda gs: gs[1].mean)
        for g, s in stats:
            if g is best_g:
                continue
            r, u = ratio(s, best)
            if r >= MIN_RATIO:
                out.append(Difference(key, g.label, best_g.label, r, u, min(s.n, best.n)))
    return out


def summary_json(runs: Sequence[RunFigures], groups: Sequence[Group], by_method: Sequence[Group]):
    """The ``--json`` object: every run, each start method's (and each group's) figures as means with their
    deviation, min and max, and the differences."""
    def block(g):
        stats = g.stats()
        d: Dict[str, Any] = {"runs": len(g.runs)}
        d.update({k: _round(s.mean) if s else None for k, s in stats.items()})
        for part in ("sd", "min", "max"):
            d[part] = {k: _round(getattr(s, part)) if s else None for k, s in stats.items()}
        return d
    out = {"runs": [r.as_json() for r in runs], "methods": {g.label: block(g) for g in by_method}}
    if list(groups) != list(by_method):        # runs of other configurations: their groups too
        out["groups"] = {g.label: block(g) for g in groups}
    out["differences"] = [d.as_json() for d in differences(groups, FIGURE_KEYS)]
    return out


def plan(methods: Sequence[str], repeat: int) -> List[Tuple[str, int]]:
    """The order of a comparison's runs: every method once, then again, ``repeat`` times (interleaved, so a
    machine that gets busier halfway weighs on every method alike)."""
    return [(m, k) for k in range(repeat) for m in methods]
