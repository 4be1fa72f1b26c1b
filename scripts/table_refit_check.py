"""How many bits better integer tables could save on a point's own latents: the shipped
(trained-prior) tables, tables counted on the rounded training latents, and mixtures of K such
tables with the cheapest chosen per digit (its index priced by how often it is used), fitted by
hard EM on the 60,000 training digits and priced on the 10,000 test digits.

Usage: python scripts/table_refit_check.py DATA_DIR POINT [POINT ...]
"""
import sys

import numpy as np
import torch

torch.set_num_threads(1)
from ae.data import load_digits
from ae.codec import get_coder
from ae.config import MAX_SYMBOL

data_dir = sys.argv[1]
tr = load_digits("train", data_dir); te = load_digits("test", data_dir)
for name in sys.argv[2:]:
    c = get_coder(name)
    ztr = c.symbols(tr.images) + MAX_SYMBOL; zte = c.symbols(te.images) + MAX_SYMBOL
    D = ztr.shape[1]; A = 2*MAX_SYMBOL+1
    base = c.estimated_bits(zte - MAX_SYMBOL).mean()
    print(name, "factorised tables (shipped):", round(base, 2), "bits")
    def fit(z, assign, K, alpha=0.05):
        logp = np.empty((K, D, A))
        for k in range(K):
            zk = z[assign == k]
            cnt = np.zeros((D, A)) + alpha
            np.add.at(cnt, (np.broadcast_to(np.arange(D), zk.shape), zk), 1)
            logp[k] = np.log2(cnt / cnt.sum(1, keepdims=True))
        return logp
    def costs(z, logp):
        # (N, K) bits
        return -np.stack([logp[k][np.arange(D), z].sum(1) for k in range(len(logp))], 1)
    for K in [1, 10, 32, 64]:
        rng = np.random.default_rng(0)
        assign = rng.integers(K, size=len(ztr)) if K > 1 else np.zeros(len(ztr), int)
        if K == 10: assign = tr.labels.numpy().copy()
        for it in range(8):
            logp = fit(ztr, assign, K)
            cst = costs(ztr, logp)
            usage = np.bincount(assign, minlength=K) / len(assign)
            cst = cst - np.log2(np.maximum(usage, 1e-9))
            assign = cst.argmin(1)
        logp = fit(ztr, assign, K); usage = np.bincount(assign, minlength=K) / len(assign)
        ct = costs(zte, logp) - np.log2(np.maximum(usage, 1e-9))
        print(f"  K={K}: test bits {ct.min(1).mean():.2f} (train {cst.min(1).mean():.2f})")
