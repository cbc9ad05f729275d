"""core builds on private members of the stdlib's multiprocessing: they are checked in one place
(core/_stdlib.py), and an interpreter that lacks one gets one clear message when core is imported."""
import os
import subprocess
import sys

import pytest

from core import _stdlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_this_interpreter_has_everything_core_needs():
    assert _stdlib.missing() == []


def test_a_missing_internal_is_named():
    with pytest.raises(_stdlib.UnsupportedPython) as e:
        _stdlib.check(_stdlib.REQUIRED + (("multiprocessing.queues", "Queue._no_such_member"),))
    assert "multiprocessing.queues.Queue._no_such_member" in str(e.value)
    assert "core is tested on %s" % _stdlib.TESTED in str(e.value)


def test_importing_core_where_an_internal_is_gone_fails_with_one_message():
    """As on an interpreter whose Queue has no ``_reset``: ``import core`` says so, before anything runs."""
    code = ("import multiprocessing.queues as q\n"
            "del q.Queue._reset\n"
            "try:\n"
            "    import core\n"
            "except ImportError as e:\n"
            "    print(type(e).__name__, e)\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("UnsupportedPython core cannot run on Python"), p.stdout
    assert "multiprocessing.queues.Queue._reset" in p.stdout
