"""What a scenario is: a typed parameter schema, a run function, and the lesson it makes measurable.

A scenario module defines ``SCENARIO = Scenario(...)`` with ``Param`` entries and a ``run(ctx, params,
report)`` function.  ``run`` executes in the scenario's own main process (started by the runner, never in
the GUI) with ``ctx`` the core context of the chosen start method; it reports progress and phases through
``report`` and returns a ``Result``: the lesson sentence with its own measured figures, and a table.

Parameter values arrive as text (CLI ``--set name=value``, the GUI's form) or as Python values; ``validate``
turns them into typed values or raises ``ParamError`` with one sentence that says what to do.

No Qt here; nothing here starts processes.
"""
import difflib
import math
import multiprocessing
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

from core.trace import recorder
from core.trace.events import Kind

#: The sane bound on worker processes a scenario may ask for.
MAX_PROCESSES = 64


class ParamError(ValueError):
    """A parameter value a scenario cannot use; the message is one sentence that says what to do."""


#: A parameter's typed value.
Value = Union[int, float, bool, str]


@dataclass(frozen=True)
class Param:
    name: str
    type: str                   # "int", "float", "bool", "choice"
    default: Value
    help: str
    min: Optional[float] = None
    max: Optional[float] = None
    choices: Tuple[str, ...] = ()
    unit: str = ""

    def parse(self, raw: Any, scenario: str) -> Value:
        """Typed value from text or a Python value; ParamError with one sentence otherwise."""
        where = "parameter '%s' of scenario %s" % (self.name, scenario)
        if self.type == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ParamError("The %s must be true or false, not %r." % (where, raw))
        if self.type == "choice":
            text = str(raw).strip()
            if text in self.choices:
                return text
            close = difflib.get_close_matches(text, self.choices, n=1)
            hint = " Did you mean %r?" % close[0] if close else ""
            raise ParamError("The %s must be one of %s, not %r.%s" % (where, ", ".join(self.choices), raw, hint))
        value: Union[int, float]
        if self.type == "int":
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ParamError("The %s must be a whole number, not %r." % (where, raw))
            try:
                value = int(raw)
            except (TypeError, ValueError):
                raise ParamError("The %s must be a whole number, not %r." % (where, raw)) from None
        elif self.type == "float":
            try:
                value = float(raw)
            except (TypeError, ValueError):
                raise ParamError("The %s must be a number, not %r." % (where, raw)) from None
            if not math.isfinite(value):
                raise ParamError("The %s must be a finite number, not %r." % (where, raw))
        else:                                   # pragma: no cover - schema error, a bug
            raise TypeError("unknown parameter type %r" % self.type)
        unit = (" " + self.unit) if self.unit else ""
        if self.min is not None and value < self.min:
            raise ParamError("The %s must be at least %s%s, not %s." % (where, self.min, unit, raw))
        if self.max is not None and value > self.max:
            raise ParamError("The %s must be at most %s%s, not %s." % (where, self.max, unit, raw))
        return value

    def describe(self):
        if self.type == "choice":
            rng = "one of " + "|".join(self.choices)
        elif self.type == "bool":
            rng = "true|false"
        else:
            rng = "%s..%s%s" % (self.min, self.max, (" " + self.unit) if self.unit else "")
        return rng


def processes_param(default=4, help="Worker processes"):
    return Param("processes", "int", default, help, 1, MAX_PROCESSES)


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    description: str
    lesson: str                 # the lesson, stated generally; the run states it with its own figures
    params: Tuple[Param, ...]
    run: Callable[[Any, Dict[str, Value], "Reporter"], "Result"]   # run(ctx, params, report)
    start_methods: Tuple[str, ...] = ()   # the methods it supports; empty: every method the platform has
    category: str = ""

    def validate(self, values: Mapping[str, Any]) -> Dict[str, Value]:
        """A complete, typed parameter dict from partial user values; ParamError on the first problem."""
        names = [p.name for p in self.params]
        for key in values:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = "did you mean '%s'? " % close[0] if close else ""
                raise ParamError("Scenario %s has no parameter '%s': %sits parameters are %s."
                                 % (self.name, key, hint, ", ".join(names)))
        out = {}
        for p in self.params:
            out[p.name] = p.parse(values[p.name], self.name) if p.name in values else p.default
        return out

    def available_methods(self) -> List[str]:
        methods = multiprocessing.get_all_start_methods()
        return [m for m in methods if not self.start_methods or m in self.start_methods]

    def check_method(self, method: Optional[str]) -> str:
        """The start method to run with (default: the platform's first); ParamError if unavailable."""
        if method is None:
            return self.available_methods()[0]
        have = self.available_methods()
        if method not in have:
            if method in multiprocessing.get_all_start_methods():
                raise ParamError("Scenario %s does not use the %s start method: choose one of %s."
                                 % (self.name, method, ", ".join(have)))
            raise ParamError("This platform has no %r start method: choose one of %s."
                             % (method, ", ".join(multiprocessing.get_all_start_methods())))
        return method


@dataclass
class Result:
    """What a run ends with: the lesson with this run's figures, named figures, and a table."""
    lesson: str
    figures: Dict[str, Any] = field(default_factory=dict)
    headers: Tuple[str, ...] = ()
    rows: List[List[Any]] = field(default_factory=list)

    def as_note(self) -> Dict[str, Any]:
        return {"t": "result", "lesson": self.lesson, "figures": self.figures, "headers": list(self.headers),
                "rows": [[_plain(c) for c in r] for r in self.rows]}


def _plain(v):
    if isinstance(v, float):
        return round(v, 6)
    if isinstance(v, (int, str, bool)) or v is None:
        return v
    return str(v)


class Reporter:
    """What a scenario tells the runner while it runs: progress, phases, marks, counters.  Recorded as
    trace events, so they land in the run file with everything else."""

    def __init__(self):
        self._progress_id = recorder.intern("progress")
        self.lines = []

    def progress(self, done, total):
        recorder.emit(Kind.PROGRESS, self._progress_id, int(done), int(total))

    def phase(self, label):
        recorder.emit(Kind.PHASE, 0, recorder.intern(label))

    def mark(self, label, value=0):
        recorder.emit(Kind.MARK, 0, recorder.intern(label), int(value))

    def counter(self, name, value):
        recorder.emit(Kind.COUNTER, 0, int(value), recorder.intern(name))

    def line(self, text):
        """A line of commentary (printed by the CLI, shown in the GUI's log)."""
        self.lines.append(text)
        print(text, flush=True)
