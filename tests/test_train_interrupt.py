"""Ctrl-C (SIGINT) during `train` finishes the current step, writes `last.pt` and stops with a clear message;
`resume` then continues from that step."""
import json, os, signal, subprocess, sys, time
from pathlib import Path

import torch

from brnet_kit.testing import TINY, toy_coco

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = dict(TINY, save_every=1000)     # no checkpoint but the one the interrupt writes

WORKER = r'''
import json, sys, torch
torch.set_num_threads(1)
from brnet_kit.core import BrnetError
from brnet_kit.train import train
try: train(sys.argv[1], sys.argv[2], steps=200, device='cpu', seed=0, **json.loads(sys.argv[3]))
except BrnetError as e: print('BrnetError:', e); sys.exit(2)
'''


def test_sigint_saves_and_resumes(tmp_path):
    from brnet_kit.train import train
    ann = toy_coco(tmp_path/'data', n_images=4, size=(72, 88), seed=0)
    run, log = tmp_path/'run', tmp_path/'run'/'log.csv'
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(ROOT)}
    p = subprocess.Popen([sys.executable, '-c', WORKER, str(ann), str(run), json.dumps(SETTINGS)], env=env,
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
