"""``multiprocessing.reduction``, re-exported unchanged so ``import core as multiprocessing`` keeps
``multiprocessing.reduction`` working.  Nothing of core's own lives here."""
import sys as _sys
from multiprocessing import reduction as _std
from multiprocessing.reduction import *  # noqa: F401,F403

globals().update({k: v for k, v in vars(_std).items() if not k.startswith("__")})
del _sys
