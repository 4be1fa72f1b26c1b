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

from ae.codec import get_coder
from ae.data import load_digits
from ae.metrics import psnr

BATCH = 128


def conv_decoder(latent: int, hidden: int, c1: int, c2: int, c3: int) -> nn.Sequential:
    """rdcnn's decoder shape (ae.rdae.ConvRateDistortionAE) with other widths; logits out."""
    return nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, c1 * 49), nn.ReLU(),
                         nn.Unflatten(1, (c1, 7, 7)), nn.ConvTranspose2d(c1, c2, 4, 2, 1), nn.ReLU(),
                         nn.ConvTranspose2d(c2, c3, 4, 2, 1), nn.ReLU(), nn.Conv2d(c3, 1, 3, 1, 1), nn.Flatten())


def test_psnr(decoder: nn.Sequential, latents: torch.Tensor, images: torch.Tensor) -> float:
    """Mean PSNR of the 8-bit reconstructions, as the benchmark scores them."""
    decoder.eval()
    with torch.no_grad():
        out = torch.cat([torch.round(torch.sigmoid(decoder(z)) * 255) / 255 for z in latents.split(1000)])
    decoder.train()
    return psnr(out.view(-1, 1, 28, 28), images).mean().item()


def main() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    name, hidden, (c1, c2, c3), epochs = sys.argv[1], int(sys.argv[2]), map(int, sys.argv[3:6]), int(sys.argv[6])
    data_dir = sys.argv[7] if len(sys.argv) > 7 else None
    train, test = load_digits("train", data_dir), load_digits("test", data_dir)
    coder = get_coder(name)
    with torch.no_grad():  # the point's own rounded latents: what its payloads carry
        train_z = torch.from_numpy(coder.symbols(train.images)).float()
        test_z = torch.from_numpy(coder.symbols(test.images)).float()
    decoder = conv_decoder(train_z.shape[1], hidden, c1, c2, c3)
    targets, n = train.images.flatten(1), len(train_z)
    opt = torch.optim.Adam(decoder.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=epochs * (n // BATCH), pct_start=0.05)
    start = time.time()
    for epoch in range(epochs):
        order = torch.randperm(n)
        for i in range(0, n - BATCH + 1, BATCH):
            idx = order[i:i + BATCH]
            out = torch.sigmoid(decoder(train_z[idx]))
            loss = (out - targets[idx]).pow(2).mean(1).add(1e-5).log().mean()  # log-MSE: the mean PSNR
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if epoch % 3 == 2 or epoch == epochs - 1:
            print(f"{name} h{hidden} c{c1}/{c2}/{c3} epoch {epoch + 1} {time.time() - start:.0f}s "
                  f"test psnr {test_psnr(decoder, test_z, test.images):.4f}", flush=True)


if __name__ == "__main__":
    main()
