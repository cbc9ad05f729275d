"""Lines of text from columns of numbers, formatted by numpy rather than one ``%`` a line.

An export writes millions of lines that differ only in a few numbers (a span's pid, lane, start and
duration) and in which of a few formats they take (its kind, object and outcome).  ``format_lines`` lays out
each line at a fixed width: the format's text where it goes, each number's digits right-aligned in a field as
wide as the block's widest value, the unused places marked with a byte no text holds, which are then taken
out.  The result is exactly what ``fmt % values`` gives a line at a time, for the two conversions it knows:

* ``%d``: a whole number (int64);
* ``%.3f``: a number of thousandths (int64; the caller's nanoseconds, written as microseconds with three
  decimals): exact, which is what ``(value / 1000.0)`` through ``%.3f`` gives for any value below 2**53
  (104 days of nanoseconds; past that a float cannot hold every nanosecond).

A block that holds a negative value is formatted a line at a time (the same text, a little slower).  Formats
are text without NUL characters (the JSON an export writes escapes them).  No Qt here.
"""
import re

import numpy as np

_FIELD = re.compile(r"%(d|\.3f|%)")
_PAD = 0                                      # the byte that marks an unused place (no format holds it)
_POW10 = 10 ** np.arange(19, dtype=np.int64)
#: Lines laid out at a time: their grid (lines x the widest line) is what formatting holds besides the text.
PIECE_ROWS = 4096


def _parse(fmt):
    """(literals, conversions) of a format: one more literal than conversions."""
    literals, kinds, pos = [], [], 0
    text = ""
    for m in _FIELD.finditer(fmt):
        text += fmt[pos:m.start()]
        pos = m.end()
        if m.group(1) == "%":
            text += "%"
            continue
        literals.append(text)
        kinds.append(m.group(1))
        text = ""
    text += fmt[pos:]
    if "%" in _FIELD.sub("", fmt):
        raise ValueError("format_lines knows %%d and %%.3f only: %r" % (fmt,))
    literals.append(text)
    return [t.encode("utf-8") for t in literals], kinds


def _digits(a):
    """How many digits each of ``a`` (non-negative) has: 1 for 0."""
    return np.maximum(np.searchsorted(_POW10, a, side="right"), 1)


#: The three digits of 0..999 (ASCII).
_TRIPLES = np.array([[48 + i // 100, 48 + i // 10 % 10, 48 + i % 10] for i in range(1000)], np.uint8)


def _put_number(grid, col, width, a):
    """Write ``a`` (non-negative) right-aligned into ``grid[:, col:col + width]`` (padding to its left)."""
    end = col + width
    k = 0
    while k < width:                       # three digits at a time, from the last
        take = min(3, width - k)
        part = _TRIPLES[(a // _POW10[k]) % 1000]
        grid[:, end - k - take:end - k] = part[:, 3 - take:]
        k += take
    if width > 1:
        # leading zeros are padding: digit i (from the left) shows if the value reaches its place
        places = _POW10[width - 1:0:-1]
        block = grid[:, col:end - 1]
        np.multiply(block, a[:, None] >= places[None, :], out=block)      # _PAD is 0


def format_lines(formats, which, columns, sep=",\n"):
    """The lines ``formats[which[i]] % tuple(c[i] for c in columns)``, joined by ``sep``, as one string.

    Every format has the same conversions in the same order (``%d`` or ``%.3f``, see the module's docstring),
    one column (int64 array) each."""
    which = np.asarray(which, np.int64)
    n = len(which)
    if not n:
        return ""
    parsed = [_parse(f) for f in formats]
    kinds = parsed[0][1]
    if any(k != kinds for _, k in parsed) or len(columns) != len(kinds):
        raise ValueError("every format must take the same conversions, one column each")
    cols = [np.asarray(c, np.int64) for c in columns]
    if any(len(c) != n for c in cols):
        raise ValueError("every column needs one value a line")
    if any(len(c) and c.min() < 0 for c in cols):
        # rare (a time before the run's start): the same text, a line at a time
        conv = [c.tolist() if k == "d" else (c / 1000.0).tolist() for c, k in zip(cols, kinds)]
        return sep.join(map(lambda f, v: f % v, [formats[i] for i in which.tolist()], zip(*conv)))
    sep_b = sep.encode("utf-8")
    # the fields' widths: the widest value of each column
    widths = []
    for c, k in zip(cols, kinds):
        top = int(c.max())
        widths.append(int(_digits(np.array([top if k == "d" else top // 1000]))[0]) + (0 if k == "d" else 4))
    lit_widths = [max(len(p[0][j]) for p in parsed) for j in range(len(kinds) + 1)]
    width = sum(widths) + sum(lit_widths) + len(sep_b)
    # each format's line with its fields left blank, then one of them a line
    starts, col = [], 0
    for j in range(len(kinds) + 1):
        starts.append(col)
        col += lit_widths[j] + (widths[j] if j < len(kinds) else 0)
    templates = np.full((len(parsed), width), _PAD, np.uint8)
    for f, (lits, _) in enumerate(parsed):
        for j, lit in enumerate(lits):
            templates[f, starts[j]:starts[j] + len(lit)] = np.frombuffer(lit, np.uint8)
    templates[:, width - len(sep_b):] = np.frombuffer(sep_b, np.uint8)
    text = bytearray()
    for lo in range(0, n, PIECE_ROWS):
        grid = templates.take(which[lo:lo + PIECE_ROWS], axis=0)
        for j, (c, k) in enumerate(zip(cols, kinds)):
            at, c = starts[j] + lit_widths[j], c[lo:lo + PIECE_ROWS]
            if k == "d":
                _put_number(grid, at, widths[j], c)
            else:
                q, r = np.divmod(c, 1000)
                _put_number(grid, at, widths[j] - 4, q)
                grid[:, at + widths[j] - 4] = ord(".")
                grid[:, at + widths[j] - 3:at + widths[j]] = _TRIPLES[r]
        flat = grid.reshape(-1)
        text += memoryview(flat[flat != _PAD])
    del text[len(text) - len(sep_b):]
    return text.decode("utf-8")
