"""Merging worms across tile borders (brnet_kit.predict.merge_tiles) on many synthetic crowds.

The notebook nbs/22_predict.ipynb checks the promise on one 3000×3000 well; this test checks it
on random crowds of crossing worms with random tile sizes, from tiles larger than a worm down
to tiles a worm crosses several of: every worm comes out once, pixel for pixel whole. Each tile's
"detections" are the true worms inside it, cut at its edges and, as a real model's masks may,
stopping `short` pixels short of the tile's inner edges, with random scores.
"""
import numpy as np
import pytest

from brnet_kit.predict import BoxMasks, _is_cut, merge_tiles, tile_windows
from brnet_kit.synth import synth_image


def _detect(m, t, windows, score, short):
    "A detection of the full mask `m` as tile `t` sees it (None if it sees nothing of it)."
    x0, y0, x1, y1 = windows[t]
    w = m[y0:y1, x0:x1].copy()
    if short:
        if x0 > 0: w[:, :short] = False
        if y0 > 0: w[:short] = False
        if x1 < m.shape[1]: w[:, -short:] = False
        if y1 < m.shape[0]: w[-short:] = False
    ys, xs = np.nonzero(w)
    if not len(ys): return None
    c, gx, gy = w[ys.min():ys.max() + 1, xs.min():xs.max() + 1], x0 + int(xs.min()), y0 + int(ys.min())
    return dict(box=np.array([gx, gy, gx + c.shape[1], gy + c.shape[0]], np.float32), score=score, label=1, origin=(gx, gy),
                tile=t, masks=dict(masks=c), probs=None, cut=_is_cut(c, gx, gy, windows[t], m.shape))


def _boxed(crops, origins):
    return sorted(((int(x), int(y)), c.shape, c.tobytes()) for c, (x, y) in zip(crops, origins))


@pytest.mark.parametrize('short', [0, 2, 4])
@pytest.mark.parametrize('seed', range(8))
def test_every_worm_once_and_whole(seed, short):
    rng = np.random.default_rng([seed, short])
    s = synth_image(seed, 0, size=(600, 600), worms=(10, 16), clean=True)
    tile = int(rng.integers(100, 400)); overlap = int(rng.integers(20, tile // 2))
    win = tile_windows(600, 600, tile, overlap)
    dets = [_detect(m, t, win, float(rng.uniform(0.5, 1)), short) for m in s.masks for t in range(len(win))]
    kept = merge_tiles([d for d in dets if d is not None], win)
    truth = BoxMasks.from_masks(s.masks)
    assert _boxed([d['masks']['masks'] for d in kept], [d['origin'] for d in kept]) == _boxed(truth.crops, truth.origins), \
        f"tile {tile}, overlap {overlap}: {len(kept)} worms out of {len(s.masks)}"
