"""core builds on private members of the stdlib's multiprocessing: they are checked in one place
(core/_stdlib.py), and an interpreter that lacks one gets one clear message when core is imported."""
import json
import os
import subprocess
import sys

import pytest

from core import _stdlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_this_interpreter_has_everything_core_needs():
    assert _stdlib.missing() == []


def test_import_core_imports_only_what_it_needs():
    """``import core`` (every traced child imports it) checks only what the package itself builds on: the
    managers, the pool and shared memory are imported when a program uses them."""
    code = ("import json, sys, core; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('multiprocessing'))))")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    loaded = json.loads(p.stdout)
    assert not {"multiprocessing.managers", "multiprocessing.pool", "multiprocessing.shared_memory"} & set(loaded)


def test_a_missing_internal_is_named():
    with pytest.raises(_stdlib.UnsupportedPython) as e:
        _stdlib.check([("multiprocessing.queues", "Queue._no_such_member")])
    assert "multiprocessing.queues.Queue._no_such_member" in str(e.value)
    assert "core is tested on %s" % _stdlib.TESTED in str(e.value)


def test_importing_core_where_an_internal_is_gone_fails_with_one_message():
    """As on an interpreter whose Queue has no ``_reset``: making a queue says so, before anything runs (each
    core module checks what it builds on as it is imported; ``import core`` imports only what it needs)."""
    code = ("import multiprocessing.queues as q\n"
            "del q.Queue._reset\n"
            "import core\n"
            "try:\n"
            "    core.Queue()\n"
            "except ImportError as e:\n"
            "    print(type(e).__name__, e)\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("UnsupportedPython core cannot run on Python"), p.stdout
    assert "multiprocessing.queues.Queue._reset" in p.stdout
