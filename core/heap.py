"""``multiprocessing.heap``, re-exported unchanged so ``import core as multiprocessing`` keeps
``multiprocessing.heap`` working.  Nothing of core's own lives here."""
import sys as _sys
from multiprocessing import heap as _std
from multiprocessing.heap import *  # noqa: F401,F403

globals().update({k: v for k, v in vars(_std).items() if not k.startswith("__")})
del _sys
