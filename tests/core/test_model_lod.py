"""The level-of-detail index (``core.trace.lod``) says at every level exactly what the bars say: the long
bars in a range, and per (lane, colour, bin) how many short bars start there and how much time they cover,
however the bars arrived and whatever was taken back."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from core.trace import lod
from core.trace.lod import BarIndex, bin_width, cells_of, duration_class, merge_cells

ORIGIN = 5_000_000_000


def random_bars(rng, n, lanes=4, colors=3, span=2_000_000_000):
    t0 = ORIGIN + rng.integers(0, span, n)
    # durations over every scale: zero, below a bin, a few bins, seconds
    d = (10 ** rng.uniform(0, 10, n)).astype(np.int64) * (rng.random(n) > 0.05)
    return (np.arange(n), rng.integers(0, lanes, n), t0, t0 + d, rng.integers(0, colors, n))


def expected_cells(bars, alive, level, t0, t1):
    rows, lane, b0, b1, color = (a[alive] for a in bars)
    short = duration_class(b1 - b0) < level
    keys, count, cover = merge_cells(*cells_of(lane[short], b0[short], b1[short], color[short], level, ORIGIN))
    shift = lod.BASE_SHIFT + lod.LEVEL_BITS * level
    bins = keys >> lod.KEY_SHIFT
    lo, hi = (max(t0 - ORIGIN, 0)) >> shift, (max(t1 - ORIGIN, 0)) >> shift
    keep = (bins >= lo) & (bins <= hi)
    return keys[keep], count[keep], cover[keep]


def as_set(start, lane, color, count, cover):
    return sorted(zip(start.tolist(), lane.tolist(), color.tolist(), count.tolist(), cover.tolist()))


def expected_set(cells, level):
    shift = lod.BASE_SHIFT + lod.LEVEL_BITS * level
    key, count, cover = cells
    code = key & ((1 << lod.KEY_SHIFT) - 1)
    start = ((key >> lod.KEY_SHIFT) << shift) + ORIGIN
    return sorted(zip(start.tolist(), (code >> lod.COLOR_BITS).tolist(), (code & 31).tolist(), count.tolist(),
                      cover.tolist()))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2 ** 31), st.integers(1, 3000), st.lists(st.integers(1, 400), max_size=6),
       st.floats(0, 0.3))
def test_every_level_matches_the_bars(seed, n, cuts, share_removed):
    rng = np.random.default_rng(seed)
    bars = random_bars(rng, n)
    index = BarIndex(ORIGIN)
    alive = np.ones(n, bool)
    lo = 0
    for hi in sorted(set(min(n, c) for c in np.cumsum(cuts).tolist())) + [n]:
        index.add(*(a[lo:hi] for a in bars))
        lo = hi
    removed = np.flatnonzero(rng.random(n) < share_removed)
    index.add(*(a[removed] for a in bars), sign=-1)
    alive[removed] = False
    frozen = index.frozen()
    rows, lane, b0, b1, color = bars
    for level in range(lod.LEVELS):
        for t0, t1 in [(ORIGIN, ORIGIN + 2_000_000_000)] + [tuple(sorted(ORIGIN + rng.integers(0, 2 * 10 ** 9, 2)))
                                                           for _ in range(3)]:
            if frozen.levels[level] is not None:
                got = as_set(*frozen.cells(level, t0, t1))
                assert got == expected_set(expected_cells(bars, alive, level, t0, t1), level), level
            # the long bars of the range: every one of them, and only bars
            cand = frozen.rows_between(t0, t1, min_class=level)
            long_ = np.flatnonzero((duration_class(b1 - b0) >= level) & (b0 <= t1) & (b1 >= t0))
            found = lod.rows_in(cand, b0, b1, t0, t1)
            assert set(long_.tolist()) <= set(found.tolist())
            assert (duration_class(b1[found] - b0[found]) >= level).all()
            assert frozen.count_between(t0, t1) >= int(((b0 <= t1) & (b1 >= t0)).sum())


def test_a_level_of_dense_short_bars_summarises_many_per_cell_and_finer_ones_are_dropped():
    rng = np.random.default_rng(7)
    n = 400_000
    start = ORIGIN + np.sort(rng.integers(0, 100 * 10 ** 9, n))
    bars = (np.arange(n), rng.integers(0, 8, n), start, start + 200_000, np.zeros(n, np.int64))
    index = BarIndex(ORIGIN)
    for lo in range(0, n, 50_000):
        index.add(*(a[lo:lo + 50_000] for a in bars))
    frozen = index.frozen()
    fine = [level for level in range(lod.LEVELS) if bin_width(level) < 1_000_000 and frozen.levels[level]]
    assert fine == [], "levels whose cells are as many as the bars are kept"
    level = frozen.level_for(100 * 10 ** 9 / 1400)
    start_, lane, color, count, cover = frozen.cells(level, ORIGIN, ORIGIN + 100 * 10 ** 9)
    assert count.sum() == n and cover.sum() == n * 200_000
    assert len(count) <= 8 * (100 * 10 ** 9 // bin_width(level) + 1)
    kept = sum(sum(len(b[0]) for b in blocks) for blocks in frozen.levels if blocks)
    assert kept < n, "the summary is smaller than the bars"


@pytest.mark.parametrize("d, cls", [(0, -1), (4095, -1), (4096, 0), (16383, 0), (16384, 1), ((1 << 40) - 1, 13),
                                    (1 << 40, 14), (1 << 62, lod.LEVELS - 1)])
def test_duration_classes(d, cls):
    """Class c: at least a bin of level c long, shorter than a bin of level c + 1."""
    assert duration_class(np.array([d]))[0] == min(cls, lod.LEVELS - 1)


def test_every_duration_near_every_power_of_two_is_in_its_class():
    """Class c holds the durations from a bin of level c to just below one of level c + 1: checked at, just
    below and just above every power of two a duration can be, and over random ones."""
    powers = np.array([1 << k for k in range(63)], np.int64)
    d = np.concatenate(([0], powers - 1, powers, powers + 1, np.random.default_rng(1).integers(0, 1 << 62, 10_000)))
    starts = np.array([bin_width(c) for c in range(lod.LEVELS)], np.int64)
    assert duration_class(d).tolist() == (np.searchsorted(starts, d, side="right") - 1).tolist()


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), n=st.integers(1, 3000), bins=st.sampled_from([1, 5, 400, 1 << 30]),
       codes=st.sampled_from([1, 3, 200, 1 << 17]))
def test_merged_cells_are_the_sums_of_their_keys(seed, n, bins, codes):
    """However the keys spread (few bins and codes: summed in a table; many: sorted), each key's counts and
    covers are summed exactly, cells that sum to nothing are gone and the cells come sorted by key."""
    rng = np.random.default_rng(seed)
    keys = (rng.integers(0, bins, n) << lod.KEY_SHIFT) | rng.integers(0, codes, n)
    count = rng.integers(-2, 3, n).astype(np.int32)
    cover = rng.integers(-(1 << 40), 1 << 40, n) * (rng.random(n) > 0.3)
    expected = {}
    for k, c, v in zip(keys.tolist(), count.tolist(), cover.tolist()):
        a, b = expected.get(k, (0, 0))
        expected[k] = (a + c, b + v)
    expected = sorted((k, c, v) for k, (c, v) in expected.items() if c or v)
    got_keys, got_count, got_cover = merge_cells(keys, count, cover)
    assert got_count.dtype.kind == got_cover.dtype.kind == "i"
    assert list(zip(got_keys.tolist(), got_count.tolist(), got_cover.tolist())) == expected


@pytest.mark.parametrize("distinct, copies", [(100_000, 1), (60_000, 3), (5_000, 40), (400_000, 2)])
def test_the_distinct_estimate_is_close(distinct, copies):
    """A level is dropped before its merge on this estimate: it must neither drop a level that summarises
    (keys repeated) nor keep one that does not."""
    rng = np.random.default_rng(distinct)
    values = np.unique(rng.integers(0, 1 << 40, 2 * distinct))[:distinct]
    keys = rng.permutation(np.repeat(values, copies))
    assert abs(lod.distinct_estimate(keys, distinct) - distinct) <= 0.1 * distinct
    # far from what it is asked about, the estimate still tells more from less
    assert lod.distinct_estimate(keys, 8 * distinct) < 2 * distinct


def test_one_large_add_keeps_the_levels_that_summarise_and_drops_the_others():
    """A run opened whole arrives in one add: a level whose cells would be about as many as the bars is
    dropped (on the estimate, without merging), one that summarises several bars a cell is kept, as when the
    same bars arrive in small adds."""
    rng = np.random.default_rng(3)
    n = 300_000
    start = ORIGIN + np.sort(rng.integers(0, 3 * 10 ** 9, n))   # a bar every 10 us on 2 lanes: 20 us apart
    bars = (np.arange(n), rng.integers(0, 2, n), start, start + 2_000, np.zeros(n, np.int64))
    whole = BarIndex(ORIGIN)
    whole.add(*bars)
    pieces = BarIndex(ORIGIN)
    for lo in range(0, n, 5_000):
        pieces.add(*(a[lo:lo + 5_000] for a in bars))
    kept = [level for level in range(lod.LEVELS) if whole.frozen().levels[level] is not None]
    assert kept == [level for level in range(lod.LEVELS) if pieces.frozen().levels[level] is not None]
    assert 0 not in kept and 2 in kept       # 4 us bins: a bar each; 64 us bins: about 3 bars a cell
    for level in kept:
        got = as_set(*whole.frozen().cells(level, ORIGIN, ORIGIN + 3 * 10 ** 9))
        assert got == expected_set(expected_cells(bars, np.ones(n, bool), level, ORIGIN, ORIGIN + 3 * 10 ** 9),
                                   level)


def test_bars_of_every_duration_in_large_adds_with_fine_levels_dropped_match_at_every_kept_level():
    """Bars short at a dropped level get their cells at the first kept level above it (not at the dropped
    ones, carried up), and large adds are counted in batches: every kept level still says exactly what the
    bars say, after some are taken back too."""
    rng = np.random.default_rng(11)
    n = 200_000
    t0 = ORIGIN + np.sort(rng.integers(0, 10 ** 9, n))          # a bar every 5 us on 3 lanes
    d = (10 ** rng.uniform(0, 8, n)).astype(np.int64)           # 1 ns to 0.1 s: many duration classes
    bars = (np.arange(n), rng.integers(0, 3, n), t0, t0 + d, rng.integers(0, 4, n))
    index = BarIndex(ORIGIN)
    for lo, hi in [(0, 30_000), (30_000, 170_000), (170_000, n)]:      # the middle one is past a batch
        index.add(*(a[lo:hi] for a in bars))
    removed = np.flatnonzero(rng.random(n) < 0.1)
    index.add(*(a[removed] for a in bars), sign=-1)
    alive = np.ones(n, bool)
    alive[removed] = False
    frozen = index.frozen()
    kept = [level for level in range(lod.LEVELS) if frozen.levels[level] is not None]
    assert 0 not in kept and len(kept) >= 5, kept
    for level in kept:
        for a, b in [(ORIGIN, ORIGIN + 2 * 10 ** 9)] + [tuple(sorted(ORIGIN + rng.integers(0, 10 ** 9, 2)))
                                                       for _ in range(2)]:
            got = as_set(*frozen.cells(level, a, b))
            assert got == expected_set(expected_cells(bars, alive, level, a, b), level), level


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), na=st.integers(0, 400), nb=st.integers(0, 400),
       shift=st.integers(-300, 300))
def test_joined_blocks_are_the_merge_of_both(seed, na, nb, shift):
    """Two blocks of a level (each merged: sorted, one cell a key), apart, touching, overlapping or one
    inside the other, join into what merging all their cells gives."""
    rng = np.random.default_rng(seed)

    def block(n, lo):
        keys = ((lo + rng.integers(0, 300, n)) << lod.KEY_SHIFT) | rng.integers(0, 3, n)
        return merge_cells(keys, rng.integers(-1, 3, n).astype(np.int32), rng.integers(0, 1000, n))

    a, b = block(na, 1000), block(nb, 1000 + shift)
    joined = lod.join_cells(a, b)
    expected = merge_cells(*(np.concatenate((x, y)) for x, y in zip(a, b)))
    assert all(np.array_equal(x, y) for x, y in zip(joined, expected))
