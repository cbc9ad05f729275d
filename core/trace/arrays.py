"""numpy dtypes of the trace layouts (see ``events``): kept apart so traced workers never import numpy."""
import numpy as np

from .events import EVENT_FIELDS, RECORD_FIELDS, RECORD_SIZE

RECORD_DTYPE = np.dtype(RECORD_FIELDS)
EVENT_DTYPE = np.dtype(EVENT_FIELDS)
assert RECORD_DTYPE.itemsize == RECORD_SIZE == EVENT_DTYPE.itemsize
