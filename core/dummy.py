"""``multiprocessing.dummy`` (the multiprocessing API on threads), re-exported so ``import core as
multiprocessing`` keeps ``multiprocessing.dummy.Pool`` working.  Threads are not traced as processes."""
from multiprocessing.dummy import *  # noqa: F401,F403
from multiprocessing.dummy import Pool, Process, Queue, current_process  # noqa: F401
