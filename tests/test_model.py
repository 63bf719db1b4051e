"""BR-Net model checks that are too repetitive for the lesson in nbs/13_model.ipynb:
every ablation of the paper trains and predicts with exactly its own losses and outputs, and the
all-off baseline equals torchvision's Mask R-CNN on every backbone."""
import itertools

import pytest
import torch

from brnet_kit.core import BrnetError
from brnet_kit.model import BASELINE, BRNetConfig, build_model, extra_masks_on, torchvision_maskrcnn
from brnet_kit.testing import TINY, toy_batch

torch.set_num_threads(1)

DETECTOR = ['loss_classifier', 'loss_box_reg', 'loss_mask', 'loss_objectness', 'loss_rpn_box_reg']
VALID = [dict(overlap_head=o, non_overlap_head=n, scrm=s, consistency=c)
         for o, n, s, c in itertools.product([False, True], repeat=4) if not (s and not (o and n)) and not (c and not s)]


@pytest.fixture(scope='module')
def batch():
    images, targets = toy_batch(2, 128, worms=5, seed=3)
    return images, targets


def test_the_model_accepts_exactly_the_papers_six_ablations():
    "Of the 16 switch settings, the model builds the paper's six (none, Bo, Bn, Bo+Bn, +SCRM, +L_cons) and refuses the rest by name."
    accepted = []
    for o, n, s, c in itertools.product([False, True], repeat=4):
        sw = dict(overlap_head=o, non_overlap_head=n, scrm=s, consistency=c)
        try: BRNetConfig(**sw).validate(); accepted.append(sw)
        except BrnetError as e: assert ('scrm' if s else 'consistency') in str(e), e
    assert accepted == VALID and len(accepted) == 6


@pytest.mark.parametrize('uam', [False, True])
@pytest.mark.parametrize('sw', VALID, ids=lambda d: '+'.join(k for k, v in d.items() if v) or 'none')
def test_every_ablation_trains_and_predicts(batch, uam, sw):
    images, targets = batch
    torch.manual_seed(0)
    model = build_model('demo', **TINY, uam=uam, **sw).train()
    losses = model(images, targets)
    expected = set(DETECTOR) | {name for key, name in [('overlap_head', 'loss_overlap'), ('non_overlap_head', 'loss_non_overlap'),
                                                         ('scrm', 'loss_refined'), ('consistency', 'loss_consistency')] if sw[key]}
    assert set(losses) == expected
    assert all(torch.isfinite(v) and v > 0 for v in losses.values()), losses
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    with torch.no_grad(): lean = model(images)[0]
    assert set(lean) == {'boxes', 'labels', 'scores', 'masks'}       # the extra masks only when asked for
    with extra_masks_on(model), torch.no_grad(): pred = model(images)[0]
    keys = {'boxes', 'labels', 'scores', 'masks', 'coarse_masks'} | \
           {name for key, name in [('overlap_head', 'overlap_masks'), ('non_overlap_head', 'non_overlap_masks')] if sw[key]}
    assert set(pred) == keys
    assert torch.allclose(pred['masks'], lean['masks'], atol=1e-6)
    assert (pred['masks'] is pred['coarse_masks']) == (not sw['scrm'])
    assert bool(model.attention_maps()) == uam


@pytest.mark.parametrize('sw', [dict(scrm=True, overlap_head=False), dict(scrm=True, non_overlap_head=False),
                                dict(scrm=False, consistency=True), dict(backbone='resnet101'), dict(bsm_channels=0)])
def test_invalid_settings_fail_clearly(sw):
    with pytest.raises(BrnetError, match='model settings'):
        build_model('demo', **{**TINY, 'scrm': True, 'consistency': False, **sw})


@pytest.mark.parametrize('backbone,layers', [('resnet18', ''), ('resnet34', ''), ('mobilenet_v2', ''), ('mobilenet_v3', ''),
                                             ('resnet18', '2,3,4'), ('mobilenet_v2', '2,3,4'), ('mobilenet_v3', '1,2,3,4')])
def test_baseline_is_torchvision_maskrcnn(batch, backbone, layers):
    images, targets = batch
    torch.manual_seed(0)
    kw = dict(backbone=backbone, returned_layers=layers, anchor_sizes='')
    ours = build_model('demo', **TINY, **BASELINE, **kw)
    ref = torchvision_maskrcnn('demo', **TINY, **kw)
    # the reference's backbone is torchvision's own, built with the same returned layers
    from torchvision.models.detection.backbone_utils import mobilenet_backbone, resnet_fpn_backbone
    tv = {'mobilenet_v3': 'mobilenet_v3_large'}.get(backbone, backbone)
    rl = [int(x) for x in layers.split(',')] if layers else None
    plain = (resnet_fpn_backbone(backbone_name=tv, weights=None, norm_layer=torch.nn.BatchNorm2d, trainable_layers=5, returned_layers=rl)
             if backbone.startswith('resnet') else
             mobilenet_backbone(backbone_name=tv, weights=None, fpn=True, norm_layer=torch.nn.BatchNorm2d, trainable_layers=6, returned_layers=rl))
    assert list(plain.body.state_dict()) == [k.removeprefix('backbone.body.') for k in ref.state_dict() if k.startswith('backbone.body.')]
    assert len(ref.rpn.anchor_generator.sizes) == len(ref.backbone.fpn.inner_blocks) + 1
    state = ours.state_dict()
    ref.load_state_dict(state)
    with torch.no_grad():
        for model in (ours, ref): model.train()
        torch.manual_seed(1); a = ours(images, targets)
        torch.manual_seed(1); b = ref(images, targets)
        assert set(a) == set(b)
        for k in b: assert (a[k] - b[k]).abs().item() <= 1e-5, k
        for model in (ours, ref): model.load_state_dict(state); model.eval()
        pa, pb = ours(images), ref(images)
    for x, y in zip(pa, pb):
        assert len(y['boxes']) > 0
        for k in y: assert (x[k].float() - y[k].float()).abs().max().item() <= 1e-5, k


def test_native_size_is_no_resize(batch):
    "min_size = 0: the model sees images at their own size; on 128-px images that is min_size = max_size = 128 exactly."
    images, targets = batch
    torch.manual_seed(0)
    native = build_model('demo', **TINY, min_size=0, max_size=0)
    sized = build_model('demo', **TINY, min_size=128, max_size=128)       # the images' size
    sized.load_state_dict(native.state_dict())
    assert native.transform.native and not sized.transform.native
    sized.transform.torch_choice = lambda sizes: sizes[0]     # torchvision draws a random min_size in training: no draw
    for m in (native, sized): m.train()
    with torch.no_grad():
        torch.manual_seed(1); a = native(images, targets)
        torch.manual_seed(1); b = sized(images, targets)
        for k in b: assert (a[k] - b[k]).abs().item() <= 1e-6, k
        for m in (native, sized): m.load_state_dict(native.state_dict()); m.eval()
        pa, pb = native(images), sized(images)
    for x, y in zip(pa, pb):
        assert len(y['boxes']) > 0
        for k in y: assert (x[k].float() - y[k].float()).abs().max().item() <= 1e-6, k


def test_native_size_keeps_each_image_size():
    "Different sizes in one batch keep their own scale: a worm's box comes out where the image has it."
    torch.manual_seed(0)
    model = build_model('demo', **TINY, min_size=0, max_size=0).eval()
    seen = []
    model.backbone.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape[-2:])))
    imgs = [toy_batch(1, (96, 160), seed=2)[0][0], toy_batch(1, (130, 70), seed=3)[0][0]]
    with torch.no_grad(): out = model(imgs)
    assert seen == [(160, 160)]                               # padded to a multiple of 32, never resized
    assert [tuple(o['masks'].shape[-2:]) for o in out] == [(96, 160), (130, 70)]
    ref = torchvision_maskrcnn('demo', **TINY, min_size=0, max_size=0, **BASELINE)
    assert ref.transform.native
    with pytest.raises(BrnetError, match='min_size must be 0'): build_model('demo', **TINY, min_size=-1)


@pytest.mark.parametrize('preset', ['cpu', 'demo'])
def test_small_presets_run_at_native_size(preset):
    "A BBBC010 well (696×520) goes through the cpu and demo models at its own scale, as their 256-px training crops do."
    model = build_model(preset).eval()
    assert model.transform.native
    seen = []
    model.backbone.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape[-2:])))
    with torch.no_grad(): out = model([torch.rand(3, 520, 696)])
    assert seen == [(544, 704)]                               # padded to multiples of 32, not resized
    assert tuple(out[0]['masks'].shape[-2:]) == (520, 696)
    model.train()
    images, targets = toy_batch(2, 256, worms=5, seed=1)
    seen.clear(); model(images, targets)
    assert seen == [(256, 256)]


def test_paper_preset_is_the_papers_training():
    "settings.ini's [DEFAULT], which every class default now comes from, holds the paper's training (Ding et al. 2025, as DESIGN.md sums it up: ResNet-50 FPN, batch 8, Adam, lr 0.01 decaying to 0.001, 20 warm-up iterations, 200 epochs) and the whole BR-Net."
    from brnet_kit.settings import Preset
    p = Preset()
    assert (p.backbone, p.batch_size, p.optimizer, p.lr, p.lr_final, p.warmup_iters, p.epochs) == ('resnet50', 8, 'adam', 0.01, 0.001, 20, 200)
    assert all((p.uam, p.overlap_head, p.non_overlap_head, p.scrm, p.consistency))
    from dataclasses import fields
    from brnet_kit.settings import ModelSettings
    assert [f.name for f in fields(BRNetConfig)] == [f.name for f in fields(ModelSettings)]   # the model keys, listed once
    assert {f.name for f in fields(ModelSettings)} < {f.name for f in fields(Preset)}


def test_a_paper_value_written_in_code_is_refused():
    "The paper's values are written once: a settings class that writes a default of its own for a key of settings.ini is refused by name."
    from brnet_kit.core import BrnetError
    from brnet_kit.settings import _paper_defaults
    class Copy: lr: float = 0.01
    with pytest.raises(BrnetError, match=r'Copy\.lr.*settings\.ini'): _paper_defaults(Copy)
