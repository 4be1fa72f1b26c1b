"""Issue 12's speed lever, checked: a narrower decoder trained on a point's own rounded latents
(encoder, prior and bytes unchanged), against the same decoder shape trained the same way.
Prints the test-set PSNR (8-bit pixels, float decoder) every 3 epochs.

Usage: python scripts/decoder_width_check.py POINT HIDDEN C1 C2 C3 EPOCHS [DATA_DIR]
  e.g. python scripts/decoder_width_check.py rd-q1 256 16 8 4 24 ../shared/data   (quarter-size)
       python scripts/decoder_width_check.py rd-q1 512 32 16 8 24 ../shared/data   (rd-q1's shape)
"""
import sys
import time

import torch
import torch.nn as nn

torch.set_num_threads(2); torch.manual_seed(0)
from ae.data import load_digits
from ae.codec import get_coder
from ae.metrics import psnr

name, hidden, (c1, c2, c3), epochs = sys.argv[1], int(sys.argv[2]), map(int, sys.argv[3:6]), int(sys.argv[6])
data_dir = sys.argv[7] if len(sys.argv) > 7 else None
tr = load_digits("train", data_dir); te = load_digits("test", data_dir)
c = get_coder(name)
with torch.no_grad():
    ztr = torch.from_numpy(c.symbols(tr.images)).float(); zte = torch.from_numpy(c.symbols(te.images)).float()
D = ztr.shape[1]
dec = nn.Sequential(nn.Linear(D, hidden), nn.ReLU(), nn.Linear(hidden, c1*49), nn.ReLU(), nn.Unflatten(1, (c1, 7, 7)),
                    nn.ConvTranspose2d(c1, c2, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(c2, c3, 4, 2, 1), nn.ReLU(),
                    nn.Conv2d(c3, 1, 3, 1, 1), nn.Flatten())
xtr, xte = tr.images.flatten(1), te.images
def test_psnr():
    dec.eval()
    with torch.no_grad():
        out = torch.cat([torch.round(torch.sigmoid(dec(z))*255)/255 for z in zte.split(1000)]).view(-1,1,28,28)
    dec.train(); return psnr(out, xte).mean().item()
opt = torch.optim.Adam(dec.parameters(), lr=2e-3)
steps = epochs * (60000 // 128); sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps, pct_start=0.05)
t0 = time.time()
for ep in range(epochs):
    perm = torch.randperm(60000)
    for i in range(0, 60000 - 127, 128):
        idx = perm[i:i+128]
        out = torch.sigmoid(dec(ztr[idx]))
        loss = (out - xtr[idx]).pow(2).mean(1).add(1e-5).log().mean()
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    if ep % 3 == 2 or ep == epochs - 1: print(f"{name} h{hidden} c{c1}/{c2}/{c3} epoch {ep+1} {time.time()-t0:.0f}s test psnr {test_psnr():.4f}", flush=True)
