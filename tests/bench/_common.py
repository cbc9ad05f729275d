"""Shared bits of the benchmark scripts: timing helpers and the JSON line they end with."""
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def best_of(fn, repeat=5):
    """The fastest of ``repeat`` runs of ``fn()`` in seconds (least disturbed by the rest of the machine)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def report(figures):
    """Print the benchmark's figures as its last line: one JSON object."""
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in figures.items()}))
    sys.stdout.flush()
