"""RLE encoding of masks kept in their boxes (`box_rles`, `empty_rle`) against pycocotools."""
import numpy as np
from hypothesis import given, settings, strategies as st
from pycocotools import mask as mask_utils

from brnet_kit.coco import box_rles, mask_to_rle, rle_to_mask, empty_rle


# ---- RLE ----

@st.composite
def placed(draw):
    H, W = draw(st.integers(1, 50)), draw(st.integers(1, 50))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ms, org, fulls = [], [], []
    for _ in range(draw(st.integers(1, 6))):
        h, w = rng.integers(0, H + 1), rng.integers(0, W + 1)
        y0, x0 = rng.integers(0, H - h + 1), rng.integers(0, W - w + 1)
        m = rng.random((h, w)) < rng.choice([0.0, 0.1, 0.5, 0.95, 1.0])
        f = np.zeros((H, W), bool); f[y0:y0 + h, x0:x0 + w] = m
        ms.append(m); org.append((int(x0), int(y0))); fulls.append(f)
    return ms, org, (H, W), fulls

@settings(max_examples=500, deadline=None)
@given(placed())
def test_box_rles_match_pycocotools(case):
    ms, org, hw, fulls = case
    rles, areas, bboxes = box_rles(ms, org, hw, stats=True)
    ref = mask_utils.encode(np.asfortranarray(np.stack(fulls, -1).astype(np.uint8)))
    assert [r['counts'] for r in rles] == [r['counts'].decode() for r in ref]
    assert all(r['size'] == list(hw) for r in rles)
    assert areas.tolist() == mask_utils.area(ref).tolist()
    assert bboxes.tolist() == mask_utils.toBbox(ref).astype(int).tolist()

@settings(max_examples=200, deadline=None)
@given(placed(), placed())
def test_box_rles_of_several_images_at_once(a, b):
    "Masks of two images of different sizes, encoded in one call with a size per mask: as each image alone."
    (ma, oa, hwa, _), (mb, ob, hwb, _) = a, b
    rles, areas, bboxes = box_rles(ma + mb, oa + ob, [hwa]*len(ma) + [hwb]*len(mb), stats=True)
    ra, aa, ba = box_rles(ma, oa, hwa, stats=True)
    rb, ab, bb = box_rles(mb, ob, hwb, stats=True)
    assert rles == ra + rb
    assert areas.tolist() == aa.tolist() + ab.tolist() and bboxes.tolist() == ba.tolist() + bb.tolist()

def test_box_rles_large_images():
    "Counts above 2^20 (big images) need 5-6 characters."
    rng = np.random.default_rng(0)
    for H, W in [(3000, 4000), (8192, 8192), (1, 100000)]:
        h, w = min(H, 40), 50
        m = rng.random((h, w)) < 0.5
        x0, y0 = W - w - 1, H - h
        f = np.zeros((H, W), bool); f[y0:y0 + h, x0:x0 + w] = m
        assert box_rles([m], [(x0, y0)], (H, W))[0] == mask_to_rle(f)
        assert rle_to_mask(empty_rle((H, W))).sum() == 0
