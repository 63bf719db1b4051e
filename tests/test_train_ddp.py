"""`brnet train` under torchrun: two CPU processes (Gloo, DistributedSampler, DDP) end with identical weights.

Each process records the weights of its own model copy; only process 0 writes the run's files.
"""
import json, os, subprocess, sys
from pathlib import Path

import torch

from brnet_kit.testing import TINY, toy_coco

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = dict(TINY, batch_size=4, save_every=2)     # a batch of 2 per process; a checkpoint mid-run

WORKER = r'''
import json, os, sys
from pathlib import Path
import torch
torch.set_num_threads(1)
import brnet_kit.train as T
out, ann, tiny = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
built, real = [], T.build_model
def capture(preset, **kw):
    m = real(preset, **kw)
    built.append((m, {k: v.detach().clone() for k, v in m.state_dict().items()}))
    return m
T.build_model = capture
r = T.train(ann, out/'run', steps=3, device='cpu', seed=0, **tiny)
model, start = built[0]
torch.save(dict(end=model.state_dict(), start=start, step=r['step'], world=os.environ['WORLD_SIZE']),
           out/f"rank{os.environ['RANK']}.pt")
'''


def test_two_cpu_processes_end_identical(tmp_path):
    ann = toy_coco(tmp_path/'data', n_images=6, size=(72, 88), seed=3)
    (tmp_path/'worker.py').write_text(WORKER)
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(ROOT)}
    cmd = [str(Path(sys.executable).parent/'torchrun'), '--standalone', '--nproc_per_node', '2',
           str(tmp_path/'worker.py'), str(tmp_path), str(ann), json.dumps(SETTINGS)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-6000:]
    r0, r1 = (torch.load(tmp_path/f'rank{r}.pt', weights_only=True) for r in (0, 1))
    assert (r0['world'], r0['step'], r1['step']) == ('2', 3, 3)
    assert list(r0['end']) == list(r1['end'])
    same = [k for k in r0['end'] if torch.equal(r0['end'][k], r1['end'][k])]
    assert len(same) == len(r0['end']), f"differ: {sorted(set(r0['end']) - set(same))[:5]}"
    moved = [k for k, v in r0['end'].items() if v.is_floating_point() and not torch.equal(v, r0['start'][k])]
    assert len(moved) > 10                                  # the weights did train
    # only process 0 wrote: one log row per step, one checkpoint holding both processes' random states
    rows = (tmp_path/'run'/'log.csv').read_text().splitlines()
    assert [r.split(',')[0] for r in rows] == ['step', '1', '2', '3']
    ck = torch.load(tmp_path/'run'/'last.pt', weights_only=True)
    assert ck['step'] == 3 and len(ck['rng']) == 2
    assert not torch.equal(ck['rng'][0]['torch'], ck['rng'][1]['torch'])
    assert all(torch.equal(ck['model'][k], r0['end'][k]) for k in ck['model'])
