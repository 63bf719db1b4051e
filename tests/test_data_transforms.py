"""Property tests of brnet_kit.data's joint transforms on random masks and random views (hypothesis)."""
import numpy as np
from hypothesis import given, settings, strategies as st

from brnet_kit.data import View, masks_to_boxes, sample_view, warp_image, warp_masks
from brnet_kit.decompose import decompose


@st.composite
def scenes(draw):
    "Random instance masks (some overlapping, some empty) and a random view of them."
    h, w, n = draw(st.integers(3, 24)), draw(st.integers(3, 24)), draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    masks = rng.random((n, h, w)) < draw(st.floats(0.0, 0.7))
    view = View(cx=draw(st.floats(-5, w + 5)), cy=draw(st.floats(-5, h + 5)), height=draw(st.integers(1, 30)),
                width=draw(st.integers(1, 30)), angle=draw(st.sampled_from([0., 90., 180., -90.]) | st.floats(-180, 180)),
                hflip=draw(st.booleans()), vflip=draw(st.booleans()))
    return masks, view


@settings(max_examples=300, deadline=None)
@given(scenes())
def test_transformed_decomposition_equals_decomposition_of_transformed(scene):
    masks, view = scene
    o, n = decompose(masks)
    packed = masks.astype(np.uint8) | (o.astype(np.uint8) << 1) | (n.astype(np.uint8) << 2)
    out = warp_masks(view, packed)
    tm, to, tn = (out & 1).astype(bool), (out & 2).astype(bool), (out & 4).astype(bool)
    keep = tm.reshape(len(tm), -1).any(1)
    ro, rn = decompose(tm[keep])
    assert np.array_equal(to[keep], ro) and np.array_equal(tn[keep], rn)
    assert not to[~keep].any() and not tn[~keep].any()
    # separate warps of the three stacks agree with the packed one
    assert np.array_equal(warp_masks(view, masks), tm) and np.array_equal(warp_masks(view, o), to)


@settings(max_examples=200, deadline=None)
@given(scenes())
def test_boxes_are_tight(scene):
    masks, view = scene
    m = warp_masks(view, masks)
    m = m[m.reshape(len(m), -1).any(1)]
    for b, mk in zip(masks_to_boxes(m), m):
        ys, xs = np.nonzero(mk)
        assert b.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**31), st.integers(8, 60), st.integers(8, 60), st.integers(0, 70), st.floats(0, 180))
def test_sampled_views_and_image_range(seed, h, w, crop, rotate):
    rng = np.random.default_rng(seed)
    v = sample_view(rng, h, w, crop, rotate, 0.5, 0.5)
    assert (v.height, v.width) == ((min(crop, h), min(crop, w)) if crop else (h, w))
    img = rng.random((3, h, w)).astype(np.float32)
    out = warp_image(v, img)
    assert out.shape == (3, v.height, v.width) and out.dtype == np.float32
    assert img.min() - 1e-6 <= out.min() and out.max() <= img.max() + 1e-6   # interpolation never leaves the range
