"""The timeline's colours: the small integer keys its bars carry (a level of detail keeps 5 bits of colour,
so there are fewer than ``COLOR_KEYS`` of them), the tables giving a span, a moment or a task outcome its key,
and ``PALETTE``, the theme colour of each key.  No Qt here: the data side (``timeline_data``, in the reader
thread) colours bars by key; only the drawing (``timeline_item``) turns keys into brushes.
"""
import numpy as np

from core.trace.events import Kind, Outcome
from core.trace.model import Span, SpanEnd

from . import theme

# colour keys (see ``PALETTE``; fewer than COLOR_KEYS of them)
C_LIFE, C_STARTING, C_RUNNING, C_OK, C_ERROR, C_TIMEOUT, C_LOST, C_HOLD, C_WAIT, C_OTHER_WAIT, C_IO, \
    C_MANAGER, C_USED, C_MOMENT, C_SIGNAL, C_SEM_HOLD, C_BARRIER_WAIT, C_GENERATION, C_BROKEN = range(19)
#: An object track's owner slices: one colour per process, cycling (a process's pid picks it).
C_PROC0 = 19
PROC_COLORS = 8
#: A queue's feeder writing a message into its pipe.
C_SEND = C_PROC0 + PROC_COLORS
COLOR_KEYS = 32                 # the level of detail keeps 5 bits of colour

OUTCOME_COLOR = {Outcome.OK: C_OK, Outcome.ERROR: C_ERROR, Outcome.TIMEOUT: C_TIMEOUT, Outcome.LOST: C_LOST,
                 Outcome.CANCELLED: C_LOST}
_SPAN_COLOR = {Span.LOCK_WAIT: C_WAIT, Span.COND_WAIT: C_OTHER_WAIT, Span.EVENT_WAIT: C_OTHER_WAIT,
               Span.BARRIER_WAIT: C_BARRIER_WAIT, Span.QUEUE_PUT: C_IO, Span.QUEUE_GET: C_IO, Span.QUEUE_JOIN: C_IO,
               Span.PIPE_RECV: C_IO, Span.PIPE_SEND: C_IO, Span.MANAGER_CALL: C_MANAGER,
               Span.PROC_JOIN: C_OTHER_WAIT, Span.INITIALIZER: C_STARTING, Span.LOCK_HOLD: C_HOLD}
#: Moments that interrupt a process (a signal, a request to end) stand out from the others.
_MOMENT_COLOR = {Kind.SIGNAL_SEND: C_SIGNAL, Kind.SIGNAL_RECV: C_SIGNAL, Kind.PROC_TERMINATE: C_SIGNAL,
                 Kind.PROC_KILL: C_SIGNAL}
SPAN_COLOR = np.zeros(max(int(k) for k in Span) + 1, np.int8)
for _k, _c in _SPAN_COLOR.items():
    SPAN_COLOR[int(_k)] = _c
MOMENT_COLOR = np.full(256, C_MOMENT, np.int8)
for _k, _c in _MOMENT_COLOR.items():
    MOMENT_COLOR[int(_k)] = _c

#: The theme colour of each key (the drawing gives each a brush, at SHADE_ALPHA's alphas).
PALETTE = {C_LIFE: theme.LIFETIME, C_STARTING: theme.STARTING, C_RUNNING: theme.TASK_RUNNING, C_OK: theme.TASK_OK,
           C_ERROR: theme.TASK_ERROR, C_TIMEOUT: theme.TASK_TIMEOUT, C_LOST: theme.TASK_LOST, C_HOLD: theme.LOCK_HOLD,
           C_WAIT: theme.LOCK_WAIT, C_OTHER_WAIT: theme.OTHER_WAIT, C_IO: theme.BLOCKED_IO,
           C_MANAGER: theme.MANAGER_CALL, C_USED: theme.RESULT_USED, C_MOMENT: theme.MOMENT,
           C_SIGNAL: theme.SIGNAL_MOMENT, C_SEM_HOLD: theme.SEMAPHORE_HOLD, C_BARRIER_WAIT: theme.BARRIER_WAIT,
           C_GENERATION: theme.GENERATION, C_BROKEN: theme.BROKEN, C_SEND: theme.FEEDER_WRITE}
PALETTE.update({C_PROC0 + i: theme.PROCESS_COLORS[i % len(theme.PROCESS_COLORS)] for i in range(PROC_COLORS)})
assert len(PALETTE) <= COLOR_KEYS      # sub-pixel bars are merged per lane, colour key and pixel column


def span_colors(kind, uid, semaphores):
    """The colour keys of spans on the process lanes: by kind; a semaphore's holds (``semaphores``: their
    uids) in a colour of their own."""
    color = SPAN_COLOR[kind]
    if len(semaphores):
        hold = np.flatnonzero(kind == Span.LOCK_HOLD)
        if len(hold):
            color[hold[np.isin(uid[hold], semaphores)]] = C_SEM_HOLD
    return color


def track_span_colors(kind, end, pid):
    """The colour keys of spans on the object tracks: holds by their process (cycling through PROC_COLORS),
    waits by kind, broken ones red."""
    color = np.where(kind == Span.LOCK_HOLD, C_PROC0 + np.asarray(pid, np.int64) % PROC_COLORS,
                     SPAN_COLOR[kind]).astype(np.int8)
    color[(kind != Span.LOCK_HOLD) & (end == SpanEnd.BROKEN)] = C_BROKEN
    return color

