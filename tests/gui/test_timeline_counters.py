"""The object tracks' waiting counter: how many wait at every moment, finished waits and open ones alike,
kept between snapshots and brought up to date with what is still open (no Qt)."""
import numpy as np

from mpgui.gui.tracks import TrackBook

UID = 7


def counted(a, b, opened, x):
    """How many wait at time x: finished waits [a, b) and waits still open since ``opened``."""
    return int(((a <= x) & (b > x)).sum() + (opened <= x).sum())


def test_the_waiting_counter_counts_every_wait_at_every_moment():
    rng = np.random.default_rng(3)
    for _ in range(300):
        n, k = int(rng.integers(0, 40)), int(rng.integers(0, 5))
        a = rng.integers(0, 1000, n)
        b = a + rng.integers(1, 300, n)
        opened = rng.integers(0, 1400, k)
        book = TrackBook(lambda: -1)
        book.add_waits(np.full(n, UID, np.uint64), a, b)
        for _ in range(2):              # the second answer comes from the kept counter
            t, v = book.waiting_counter(UID, opened.tolist())
            assert (np.diff(t) >= 0).all()
            for x in np.unique(t).tolist():
                assert v[np.flatnonzero(t == x)[-1]] == counted(a, b, opened, x)
        t, v = book.waiting_counter(UID)            # the open waits ended: the finished ones alone
        assert len(t) == 2 * n and (not n or v[-1] == 0)


def test_the_waiting_counter_follows_new_waits():
    book = TrackBook(lambda: -1)
    book.add_waits(np.full(2, UID, np.uint64), np.array([0, 5]), np.array([10, 20]))
    t, v = book.waiting_counter(UID)
    assert v.max() == 2
    book.add_waits(np.full(1, UID, np.uint64), np.array([6]), np.array([8]))
    t, v = book.waiting_counter(UID)
    assert v.max() == 3 and len(t) == 6


def test_a_dense_step_counter_is_drawn_flat_across_columns_without_points():
    """More points than pixels: each pixel column is drawn from its first, lowest, highest and last value,
    and its last value holds until the next column's first point.  A counter that stays at 3 for most of
    the view (or that a live view skipped) is a flat line, not a slope from 3 to the next value."""
    from mpgui.gui.timeline_item import counter_points
    from mpgui.gui.tracks import Counter
    t0 = 0
    burst = np.arange(0, 1000, 1, dtype=np.int64)            # 1000 points in the first microsecond
    late = 10**9 + np.arange(0, 1000, dtype=np.int64)        # and 1000 one second later
    t = np.concatenate((burst, late))
    v = np.concatenate((np.full(999, 1.0), [3.0], np.full(1000, 7.0)))
    c = Counter("waiting", t, v, 8.0, "LANE_TEXT")
    x, y = counter_points(c, t0, 0.0, 1.1, 1.1 / 100, 100, 1.1)
    assert (np.diff(x) >= 0).all()
    # the segment that crosses the empty stretch between the columns stays at 3 until the jump to 7
    gap = np.flatnonzero(np.diff(x) > 0.5)
    assert len(gap) == 1
    i = int(gap[0])
    assert y[i] == y[i + 1] == 3.0, "a slope across a stretch where the counter did not change"
    assert 7.0 in y[i + 1:]
