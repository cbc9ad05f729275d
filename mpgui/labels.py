"""How runs are named on screen and in the history: their start methods in the platform's order, their
parameters on one line.  Light on purpose (no numpy, no run model): the history and every command use it,
and ``trace`` starts the user's program before anything heavy is imported.  No Qt here."""
from typing import Any, Dict, Iterable, List, Optional

#: Repeats per start method when a comparison names none (hyperfine's "runs": enough for a mean and a
#: deviation).
DEFAULT_REPEAT = 3


def ordered_methods(methods: Iterable[Optional[str]]) -> List[str]:
    """Start methods without repeats, in the platform's order (fork, spawn, forkserver on Linux)."""
    import multiprocessing
    order = multiprocessing.get_all_start_methods()
    seen = [m for m in methods if m]
    return [m for m in order if m in seen] + sorted(set(seen) - set(order))


def param_text(v: Any) -> str:
    """One parameter's value as the command line and the views show it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return "-" if v is None else str(v)


def params_text(params: Dict[str, Any]) -> str:
    """``"processes=4, order=slowest first, preload=true"``: a run's parameters on one line."""
    return ", ".join("%s=%s" % (k, param_text(v)) for k, v in params.items())
