"""Property-based tests of the overlap / non-overlap decomposition (hypothesis)."""
import numpy as np
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays
import pytest
from brnet_kit.core import BrnetError

from brnet_kit.decompose import decompose, decompose_runs, overlap_stats, count_map, _runs, _from_runs

stacks = st.tuples(st.integers(0, 7), st.integers(1, 24), st.integers(1, 24)).flatmap(
    lambda s: arrays(bool, s, elements=st.booleans()))


@settings(max_examples=300, deadline=None)
@given(stacks)
def test_invariants(masks):
    o, n = decompose(masks)
    assert o.shape == n.shape == masks.shape and o.dtype == n.dtype == bool
    assert ((o | n) == masks).all()                     # overlap ∪ non_overlap = mask
    assert not (o & n).any()                            # disjoint
    c = masks.sum(0)                                    # the count, computed independently
    assert (o == (masks & (c >= 2))).all()              # overlap pixels: exactly where >= 2 masks meet
    assert (o.any(0) == (c >= 2)).all()
    assert (n == (masks & (c == 1))).all()
    if len(masks):
        for i in range(len(masks)):                     # one worm at a time, by its definition
            others = np.delete(masks, i, 0).any(0)
            assert (o[i] == (masks[i] & others)).all()


@settings(max_examples=300, deadline=None)
@given(stacks)
def test_statistics(masks):
    s = overlap_stats(masks)
    c = masks.sum(0)
    assert s['instances'] == len(masks)
    assert s['overlap_pixels'] == int((c >= 2).sum())
    assert s['max_depth'] == (int(c.max()) if len(masks) else 0)
    assert s['overlapping_instances'] == sum(bool((m & (c >= 2)).any()) for m in masks)
    if len(masks): assert (count_map(masks) == c).all()


@settings(max_examples=500, deadline=None)
@given(stacks)
def test_runs_agree_with_full_images(masks):
    "decompose_runs on the masks' runs of ones gives exactly decompose on the full-size masks."
    a, b, m = _runs(masks)
    assert (_from_runs(a, b, m, masks.shape) == masks).all()
    (o0, o1, orun), (n0, n1, nrun) = decompose_runs(a, b)
    o, n = decompose(masks)
    assert (_from_runs(o0, o1, m[orun], masks.shape) == o).all()
    assert (_from_runs(n0, n1, m[nrun], masks.shape) == n).all()
    for p0, p1, r in ((o0, o1, orun), (n0, n1, nrun)):   # pieces: inside their runs, in order, not touching within a mask
        assert (p1 > p0).all() and (p0 >= a[r]).all() and (p1 <= b[r]).all()
        same = m[r][1:] == m[r][:-1]
        assert (p0[1:][same] > p1[:-1][same]).all()

def test_runs_of_several_images_at_once():
    "Runs of two images in one call, the second shifted past the first: each decomposed as on its own."
    rng = np.random.default_rng(0)
    x, y = rng.random((3, 9, 7)) < 0.5, rng.random((2, 9, 7)) < 0.5
    (ax, bx, mx), (ay, by, my) = _runs(x), _runs(y)
    shift = 9*7 + 1
    (o0, o1, orun), _ = decompose_runs(np.r_[ax, ay + shift], np.r_[bx, by + shift])
    first = orun < len(ax)
    assert (_from_runs(o0[first], o1[first], mx[orun[first]], x.shape) == decompose(x)[0]).all()
    assert (_from_runs(o0[~first] - shift, o1[~first] - shift, my[orun[~first] - len(ax)], y.shape) == decompose(y)[0]).all()


@settings(max_examples=300, deadline=None)
@given(stacks, st.integers(0, 2**32 - 1))
def test_crowd_regions_are_not_counted(masks, seed):
    "Ignore (crowd) regions are not worms: the worms' overlaps are those of the worms alone; a crowd region has none."
    crowd = np.random.default_rng(seed).random(len(masks)) < 0.4
    o, n = decompose(masks, iscrowd=crowd)
    w = masks[~crowd]
    c = w.sum(0)                                        # the count of worms alone, computed independently
    assert (o[~crowd] == (w & (c >= 2))).all() and (n[~crowd] == (w & (c < 2))).all()
    assert not o[crowd].any() and (n[crowd] == masks[crowd]).all()
    assert ((o | n) == masks).all() and not (o & n).any()
    assert (count_map(masks, iscrowd=crowd) == c).all()
    s = overlap_stats(masks, iscrowd=crowd)
    assert s['instances'] == (~crowd).sum() and s['overlap_pixels'] == int((c >= 2).sum())
    assert s['overlapping_instances'] == sum(bool((m & (c >= 2)).any()) for m in w)


def test_worm_touching_an_ignore_region_is_not_crossing():
    worm = np.zeros((2, 8, 12), bool)
    worm[0, 3:5, 0:8] = True                            # a worm whose head ...
    worm[1, 0:8, 6:12] = True                           # ... lies in an ignore region
    o, n = decompose(worm, iscrowd=[False, True])
    assert not o.any() and (n == worm).all()
    assert overlap_stats(worm, iscrowd=np.array([False, True]))['overlapping_instances'] == 0
    assert decompose(worm)[0][0].sum() == 4             # without the flag it would be marked as crossing
    with pytest.raises(BrnetError, match='2 masks but 3 iscrowd flags'): decompose(worm, iscrowd=[0, 1, 0])
