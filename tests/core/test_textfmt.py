"""Lines formatted by numpy (what the Chrome export writes its millions of slices with) are exactly what
Python's ``%`` gives, line by line."""
import json

import numpy as np
import pytest

from core.trace.textfmt import format_lines

FORMATS = ['{"ph":"X","name":"hold lock 1","pid":%d,"tid":%d,"ts":%.3f,"dur":%.3f}',
           '{"name":"wait \\u00e9t\\u00e9 100%%","pid":%d,"tid":%d,"ts":%.3f,"dur":%.3f,"args":{"x":"é"}}',
           '%d%d%.3f%.3f']


def by_percent(formats, which, columns, kinds, sep=",\n"):
    values = [c.tolist() if k == "d" else (c / 1000.0).tolist() for c, k in zip(columns, kinds)]
    return sep.join(formats[w] % v for w, v in zip(which.tolist(), zip(*values)))


def edges(top=18):
    """Numbers of every width up to ``top`` digits, each side of each power of ten."""
    out = [0, 1, 9]
    for k in range(1, top + 1):
        out += [10 ** k - 1, 10 ** k, 10 ** k + 1]
    return np.array(out, np.int64)


@pytest.mark.parametrize("seed", range(4))
def test_lines_are_what_percent_formatting_gives(seed):
    rng = np.random.default_rng(seed)
    n = 5000
    e = edges(15)                   # a float holds each to the nanosecond: 11 days of a run
    wide = np.append(edges(18), np.iinfo(np.int64).max)
    columns = [rng.choice(wide, n), rng.integers(0, 300, n),
               np.concatenate((e, rng.integers(0, 10 ** 13, n - len(e)))), rng.choice(e, n)]
    rng.shuffle(columns[2])
    which = rng.integers(0, len(FORMATS), n)
    got = format_lines(FORMATS, which, columns)
    assert got == by_percent(FORMATS, which, columns, ["d", "d", ".3f", ".3f"])


def test_thousandths_past_what_a_float_holds_are_exact():
    # 2**53 ns is 104 days: past it, the exact decimal rather than the float's nearest
    big = 2 ** 62 + 1
    assert format_lines(["%.3f"], np.zeros(1), [np.array([big])]) == "%d.%03d" % divmod(big, 1000)


def test_a_block_of_one_width_and_one_format():
    # every value of one column as wide as the others; a separator of another length; no separator
    which = np.zeros(3, np.int64)
    cols = [np.array([7, 7, 7]), np.array([1000, 2000, 3000])]
    fmt = ['{"ts":%.3f,"value":%d}']
    assert format_lines(fmt, which, cols[::-1], sep="\n") == '{"ts":1.000,"value":7}\n{"ts":2.000,"value":7}\n' \
                                                             '{"ts":3.000,"value":7}'
    assert format_lines(["<%d>"], np.zeros(2), [np.array([5, 12])], sep="") == "<5><12>"


def test_negative_values_are_formatted_as_percent_does():
    # a time before the run's start: the rare block formatted a line at a time
    which = np.array([0, 1, 0])
    cols = [np.array([-5, 3, 0]), np.array([1, 2, 3]), np.array([-1500, 0, 2_000_001]), np.array([0, 1, 2])]
    assert format_lines(FORMATS[:2], which, cols) == by_percent(FORMATS[:2], which, cols, ["d", "d", ".3f", ".3f"])


def test_the_lines_are_json_when_the_formats_are():
    rng = np.random.default_rng(9)
    cols = [rng.integers(0, 10 ** 6, 100) for _ in range(4)]
    text = format_lines(FORMATS[:2], rng.integers(0, 2, 100), cols)
    rows = json.loads("[" + text + "]")
    assert [r["pid"] for r in rows] == cols[0].tolist()
    assert [r["dur"] for r in rows] == (cols[3] / 1000.0).tolist()


def test_nothing_to_format():
    assert format_lines(FORMATS, np.zeros(0, np.int64), [np.zeros(0, np.int64)] * 4) == ""


def test_formats_it_cannot_format_are_refused():
    with pytest.raises(ValueError, match="knows"):
        format_lines(["%s and %d"], np.zeros(1), [np.zeros(1)])
    with pytest.raises(ValueError, match="same conversions"):
        format_lines(["%d", "%.3f"], np.zeros(1), [np.zeros(1)])
    with pytest.raises(ValueError, match="one column each"):
        format_lines(["%d %d"], np.zeros(1), [np.zeros(1)])
    with pytest.raises(ValueError, match="one value a line"):
        format_lines(["%d"], np.zeros(2), [np.zeros(1)])
