"""Property-based tests of the overlap / non-overlap decomposition (hypothesis)."""
import numpy as np
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays
import pytest
from brnet_kit.core import BrnetError

from brnet_kit.decompose import decompose, decompose_boxes, overlap_stats, count_map, boxes_touch, _to_boxes, _from_boxes

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


@st.composite
def boxed(draw):
    "Masks placed in random boxes of an image, possibly touching, overlapping or far apart."
    H, W = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    n = draw(st.integers(0, 8))
    full = np.zeros((n, H, W), bool)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    for i in range(n):
        h, w = rng.integers(1, H + 1), rng.integers(1, W + 1)
        y0, x0 = rng.integers(0, H - h + 1), rng.integers(0, W - w + 1)
        full[i, y0:y0 + h, x0:x0 + w] = rng.random((h, w)) < rng.uniform(0.2, 1)
    return full


@settings(max_examples=300, deadline=None)
@given(boxed())
def test_boxes_agree_with_full_images(full):
    "decompose_boxes on masks cut to their boxes gives exactly decompose on full-size masks."
    H, W = full.shape[1:]
    bm, org = _to_boxes(full)
    ov, nov, touching = decompose_boxes(bm, org, (H, W))
    o, n = decompose(full)
    assert (_from_boxes(ov, org, (H, W)) == o).all()
    assert (_from_boxes(nov, org, (H, W)) == n).all()
    assert len(touching) == len(full)
    for i in np.flatnonzero(~touching): assert not o[i].any()   # skipped worms really have no overlap


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 10), st.integers(0, 10)), max_size=8))
def test_boxes_touch(bs):
    b = np.array([(x, y, x + w, y + h) for x, y, w, h in bs]).reshape(-1, 4)
    got = boxes_touch(b)
    for i in range(len(b)):
        want = any(b[i, 0] < b[j, 2] and b[j, 0] < b[i, 2] and b[i, 1] < b[j, 3] and b[j, 1] < b[i, 3]
                   for j in range(len(b)) if j != i)
        assert got[i] == want


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
