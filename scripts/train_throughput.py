#!/usr/bin/env python3
"""Training throughput of the authors' code, one thread: SGD steps of their recipe (the
`nasbench2_train.py` optimiser: SGD 0.1, momentum 0.9, weight decay 5e-4, Nesterov) on the
reference `nasbench2` network, on a fixed random batch (no data pipeline), the counterpart of
`cargo run --release -p zc-train --example throughput`.

Usage: train_throughput.py CELLS_FILE SETTING [BATCH] [STEPS]; prints `ARCH SECONDS IMAGES/S`
per cell (after one warm-up step).
"""
import os
import re
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "bench", "reference"))
from foresight.models import nasbench2  # noqa: E402


def main():
    cells_file, setting = sys.argv[1], sys.argv[2]
    batch = int(sys.argv[3]) if len(sys.argv) > 3 else 256
    steps = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    r, c = map(int, re.fullmatch(r"r(\d+)c(\d+)", setting).groups())
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.rand(batch, 3, r, r) * 2 - 1
    y = torch.arange(batch) % 10
    for arch in (l.strip() for l in open(cells_file) if l.strip()):
        net = nasbench2.get_model_from_arch_str(arch, 10, init_channels=c)
        net.train()
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)

        def step():
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()

        step()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        seconds = time.perf_counter() - start
        print(f"{arch} {seconds:.4f} {steps * batch / seconds:.1f}", flush=True)


if __name__ == "__main__":
    main()
