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
