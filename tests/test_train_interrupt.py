"""Ctrl-C (SIGINT) during `train` finishes the current step, writes `last.pt` and stops with a clear message;
`resume` then continues from that step."""
import json, os, signal, subprocess, sys, time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(min_size=64, max_size=96, fpn_channels=16, mask_head_channels=16, bsm_channels=8, scrm_channels=8,
            rpn_pre_nms_top_n_train=60, rpn_post_nms_top_n_train=30, rpn_pre_nms_top_n_test=60, rpn_post_nms_top_n_test=30,
            rpn_batch_size_per_image=32, box_batch_size_per_image=16, box_detections_per_img=20,
            batch_size=2, crop_size=64, warmup_iters=2, num_workers=0, save_every=1000)

WORKER = r'''
import json, sys, torch
torch.set_num_threads(1)
from brnet_kit.core import BrnetError
from brnet_kit.train import train
try: train(sys.argv[1], sys.argv[2], steps=200, device='cpu', seed=0, **json.loads(sys.argv[3]))
except BrnetError as e: print('BrnetError:', e); sys.exit(2)
'''


def test_sigint_saves_and_resumes(tmp_path):
    from brnet_kit.data import toy_coco
    from brnet_kit.train import train
    ann = toy_coco(tmp_path/'data', n_images=4, size=(72, 88), seed=0)
    run, log = tmp_path/'run', tmp_path/'run'/'log.csv'
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(ROOT)}
    p = subprocess.Popen([sys.executable, '-c', WORKER, str(ann), str(run), json.dumps(TINY)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while p.poll() is None and time.time() - t0 < 300:
        if log.exists() and len(log.read_text().splitlines()) >= 3: break   # header + 2 steps
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 2, out + err[-3000:]
    assert 'interrupted after step' in out and 'continue with resume' in out
    steps = [int(r.split(',')[0]) for r in log.read_text().splitlines()[1:]]
    ck = torch.load(run/'last.pt', weights_only=True)
    assert 2 <= ck['step'] < 200 and steps == list(range(1, ck['step'] + 1))
    r = train(ann, run, resume=True, stop_at=ck['step'] + 1, device='cpu')
    assert r['step'] == ck['step'] + 1
    assert torch.load(run/'last.pt', weights_only=True)['step'] == ck['step'] + 1
