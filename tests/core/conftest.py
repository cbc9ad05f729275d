"""Fixtures of the differential suite: tracing on/off.

``import core`` must resolve to the repository's package, not to this directory (``tests/core`` has no
``__init__.py`` on purpose, so it never shadows it).
"""
import os

import pytest

import core
from core.trace import recorder

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
assert os.path.dirname(os.path.abspath(core.__file__)) == os.path.join(REPO, "core"), core.__file__


def _enable_tracing():
    from core.trace import tracedir
    saved_env = os.environ.get(recorder.TRACE_ENV)
    d = tracedir.make_trace_dir()
    recorder.enable(d)
    return d, saved_env


def _disable_tracing(d, saved_env):
    from core.trace import tracedir
    recorder.disable()
    tracedir.release_trace_dir(d)
    if saved_env is None:
        os.environ.pop(recorder.TRACE_ENV, None)
    else:
        os.environ[recorder.TRACE_ENV] = saved_env


@pytest.fixture
def tracing():
    """Tracing on for the test (this process and the children it starts); off and cleaned up after."""
    d, saved = _enable_tracing()
    assert recorder.ENABLED and os.environ[recorder.TRACE_ENV] == d
    try:
        yield d
    finally:
        _disable_tracing(d, saved)


@pytest.fixture(params=[False, True], ids=["untraced", "traced"])
def traced(request):
    """Run the test twice: with tracing off, and with tracing on (core must still match the stdlib)."""
    if not request.param:
        yield False
        return
    d, saved = _enable_tracing()
    assert recorder.ENABLED and os.environ[recorder.TRACE_ENV] == d
    try:
        yield True
    finally:
        _disable_tracing(d, saved)


@pytest.fixture
def pool(start_method):
    """A core Pool of 2 workers under the test's start method; terminated and joined afterwards."""
    import core
    p = core.get_context(start_method).Pool(2)
    try:
        yield p
    finally:
        p.terminate()
        p.join()
