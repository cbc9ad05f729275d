"""Counter series in columns: every point of every series in one table (series id, time, value).

A semaphore's value after each acquire and release, a queue's depth after each put and get...: one series
per (what, which) key, each point 20 bytes.  A chunk appends its points in the order its records came;
``arrays()`` gives each series's (times, values) in time order, records of equal time in the order they came,
which is the order a run read whole gives.  ``SampleSeries`` holds the resource monitor's series (CPU per
core, a process's CPU% and RSS), which come in time order: each its own growing arrays, shared as they are
with a view that draws them live.

No Qt here.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from .columns import Columns, group_starts

_POINT_DTYPE = [("sid", "<u4"), ("t", "<i8"), ("v", "<f8")]


@dataclass
class Series:
    """One counter's samples: times (ns) and values, numpy arrays."""
    name: str
    unit: str = ""
    t: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    v: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))

    def arrays(self):
        return self.t, self.v

    def __len__(self):
        return len(self.t)


class SeriesStore:
    """Points of many series; a series is known by its key (("value", uid), ("cpu", pid)...)."""

    def __init__(self):
        self.keys: List[tuple] = []
        self.units: List[str] = []
        self._sid: Dict[tuple, int] = {}
        self.points = Columns(_POINT_DTYPE)
        self._pending: List[Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._cache = None

    def sid(self, key, unit=""):
        s = self._sid.get(key)
        if s is None:
            s = self._sid[key] = len(self.keys)
            self.keys.append(key)
            self.units.append(unit)
        return s

    def sids(self, what, which, unit=""):
        """The series ids of keys (``what``, each of ``which``) as an array."""
        if not len(which):
            return np.zeros(0, np.uint32)
        if which.min() == which.max():          # one object: the usual case
            return np.full(len(which), self.sid((what, int(which[0])), unit), np.uint32)
        uniq, inverse = np.unique(which, return_inverse=True)
        ids = np.array([self.sid((what, int(u)), unit) for u in uniq.tolist()], np.uint32)
        return ids[inverse]

    def add(self, sid, t, v, order=None):
        """Points (arrays; ``order``, when given, the records' order: points are stored sorted by it, once
        ``flush`` is called)."""
        if not len(t):
            return
        if order is None:
            self.points.extend(sid=sid, t=t, v=v)
            self._cache = None
        else:
            self._pending.append((np.asarray(order), np.broadcast_to(sid, np.shape(t)), t, v))

    def add_point(self, key, unit, t, v):
        self.points.extend(sid=np.array([self.sid(key, unit)], np.uint32), t=np.array([t]), v=np.array([v]))
        self._cache = None

    def flush(self):
        """Store the points given with an order, sorted by it."""
        if not self._pending:
            return
        order, sid, t, v = (np.concatenate(x) for x in zip(*self._pending))
        self._pending = []
        o = np.argsort(order, kind="stable")
        self.points.extend(sid=sid[o], t=t[o], v=v[o])
        self._cache = None

    def __len__(self):
        return len(self.points)

    def arrays(self):
        """{key: (t, v)} for every series with points (cached until points are added)."""
        if self._cache is not None:
            return self._cache
        sid, t, v = self.points.view("sid"), self.points.view("t"), self.points.view("v")
        order = np.lexsort((t, sid))
        sid, t, v = sid[order], t[order], v[order]
        out = {}
        starts = group_starts(sid)
        ends = np.append(starts[1:], len(sid))
        for s, e in zip(starts.tolist(), ends.tolist()):
            out[self.keys[int(sid[s])]] = (t[s:e], v[s:e])
        self._cache = out
        return out

    def unit_of(self, key):
        s = self._sid.get(key)
        return self.units[s] if s is not None else ""


class SampleSeries:
    """Series whose points come in time order: per key, growing arrays (``arrays()`` hands out views)."""

    def __init__(self):
        self._series: Dict[tuple, Columns] = {}
        self._units: Dict[tuple, str] = {}

    def add_point(self, key, unit, t, v):
        col = self._series.get(key)
        if col is None:
            col = self._series[key] = Columns([("t", "<i8"), ("v", "<f8")], capacity=64)
            self._units[key] = unit
        col.extend(t=np.array([t], np.int64), v=np.array([v], np.float64))

    def arrays(self):
        return {key: (col.view("t"), col.view("v")) for key, col in self._series.items()}

    def get(self, key):
        col = self._series.get(key)
        if col is None:
            return np.zeros(0, np.int64), np.zeros(0)
        return col.view("t"), col.view("v")

    def unit_of(self, key):
        return self._units.get(key, "")

    def __len__(self):
        return sum(len(c) for c in self._series.values())

    def nbytes(self):
        return sum(c.nbytes() for c in self._series.values())
