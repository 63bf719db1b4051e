"""Writing a COCO dataset from masks (`write_dataset`) and reading it back (`load_coco`, `read_image`)."""
import json

import numpy as np
import pytest
from PIL import Image

from brnet_kit.core import BrnetError, shared_data
from brnet_kit.decompose import decompose
from brnet_kit.coco import write_dataset, load_coco, read_image


# ---- write_dataset / load_coco ----

def test_write_dataset_and_plain_coco(tmp_path):
    H, W = 30, 40
    m = np.zeros((3, H, W), bool); m[0, 5:10, 2:30] = True; m[1, 2:25, 10:15] = True; m[2, 20:28, 30:38] = True
    Image.fromarray(np.zeros((H, W), np.uint16)).save(tmp_path/'x.png')
    items = [dict(file_name='x.png', height=H, width=W, masks=m, labels=['worm', 'worm', 'egg'], iscrowd=[False, False, True])]
    p = write_dataset(tmp_path, items, ['worm', 'egg'])['all']
    im, = load_coco(p)
    assert im.labels.tolist() == [1, 1, 2] and im.iscrowd.tolist() == [False, False, True]
    o, n = decompose(m[:2])
    assert (im.overlap[:2] == o).all() and (im.non_overlap[:2] == n).all()
    assert not im.overlap[2].any()                      # crowd regions take no part in the overlaps
    assert im.boxes.dtype == np.float32 and im.boxes[0].tolist() == [2, 5, 30, 10]
    assert im.image.dtype == np.uint16
    # a plain COCO file (no overlap fields) gets its decomposition computed
    d = json.loads(p.read_text())
    for a in d['annotations']: a.pop('overlap'); a.pop('non_overlap')
    (tmp_path/'plain.json').write_text(json.dumps(d))
    im2, = load_coco(tmp_path/'plain.json')
    o2, _ = decompose(im2.masks)
    assert (im2.overlap == o2).all()
    (tmp_path/'n.json').write_text('{}')
    with pytest.raises(BrnetError, match='not a COCO file'): load_coco(tmp_path/'n.json')


def test_read_image_depths(tmp_path):
    import tifffile
    a16 = (np.arange(12*10).reshape(12, 10)*500).astype(np.uint16)
    tifffile.imwrite(tmp_path/'a.tif', a16)
    Image.fromarray(a16).save(tmp_path/'a.png')
    rgb = np.random.default_rng(0).integers(0, 255, (12, 10, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path/'c.png')
    assert (read_image(tmp_path/'a.tif') == a16).all() and read_image(tmp_path/'a.tif').dtype == np.uint16
    assert (read_image(tmp_path/'a.png') == a16).all() and read_image(tmp_path/'a.png').dtype == np.uint16
    assert (read_image(tmp_path/'c.png') == rgb).all()
    with pytest.raises(BrnetError, match='image file not found'): read_image(tmp_path/'zz.png')


@pytest.mark.skipif(shared_data('bbbc010') is None, reason='BBBC010 absent (../shared/data/bbbc010)')
def test_bbbc010_16bit_tiff_header():
    "Image sizes come from headers, also for the 16-bit (one PackBits-compressed) BBBC010 TIFFs."
    from brnet_kit.labelme import image_size
    for f in sorted((shared_data('bbbc010')/'BBBC010_v1_images').glob('*.tif'))[:6]:
        assert image_size(f) == read_image(f).shape[:2] == (520, 696)
