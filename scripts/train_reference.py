#!/usr/bin/env python3
"""Training-parity fixtures: k SGD steps of the authors' NB201 network with the authors' recipe.

The recipe is the one `../shared/bench/reference/nasbench2_train.py` sets up (its
`setup_experiment` and ignite's supervised trainer, written out here because ignite and the
dataset download are not needed for k steps): `nasbench2.get_model_from_arch_str(arch, 10,
init_channels=C)` in train mode, SGD(lr 0.1, momentum 0.9, weight decay 5e-4, Nesterov),
CosineAnnealingLR(T_max=EPOCHS, eta_min=0) stepped after every epoch, cross-entropy; one
thread, in float64 and in float32.

Why both: in float32 the reference itself strays from the exact trajectory on some cells (its
float32 loss after one step differs from its float64 loss by up to 6e-3 on the all-3x3 cell,
while float64 runs on one or two threads agree to 1e-15), so a float32 implementation can only
be held to the exact (float64) trajectory within the reference's own float32 error. The
float64 run is the exact check: the weights after k steps are saved from it.

Everything the Rust side must reproduce is deterministic without storing the initial weights:
- initial weights: every Conv2d/Linear weight and bias is `(2u - 1) / sqrt(fan_in)` with `u` from
  a hash of the parameter's reference name and the element index (`hash_uniform`; the Rust test
  computes the same), BatchNorm gamma 1 and beta 0, running mean 0 and var 1;
- minibatches: step s of EPOCHS x STEPS takes the shipped CIFAR-10 training images
  [s*B, (s+1)*B), resized to R with PIL's bilinear filter (what torchvision's Resize does to a
  PIL image), no other augmentation, normalised with the CIFAR mean and std; they are saved
  (`inputs_s`, `targets_s`) so that the check of the training does not depend on the resize;
- the evaluation batch: images [900, 932), resized the same way, in eval mode after training.

Writes, per setting rRcC, `OUT/rRcC_batches.safetensors` (the batches, float32, and
`resized_u8`: the uint8 PIL resize of images [0, 8) for the resize check) and
`OUT/rRcC_CELL.safetensors` (float64 run: the weights and BatchNorm running statistics after
training, in the reference's names; tensors of more than 1,024 values keep every `stride`-th
value), and `OUT/expected.json` (per precision: losses at every step, eval logits, loss and
accuracy; learning rates, strides).

Usage: train_reference.py --out data/fixtures/train
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "..", "shared", "bench", "reference"))
from foresight.models import nasbench2  # noqa: E402

CELLS = {
    "pools_skips": "|avg_pool_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|avg_pool_3x3~0|skip_connect~1|nor_conv_1x1~2|",
    "dense": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "conv1x1": "|nor_conv_1x1~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_1x1~2|",
}
SETTINGS = [(8, 4), (32, 16)]
EPOCHS, STEPS, BATCH = 3, 2, 16
EVAL_FIRST, EVAL_LEN = 900, 32
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
MASK = (1 << 64) - 1
KEEP = 1024
# burn's optimiser holds momentum and weight decay as float32; the float64 run uses the same
# float32-rounded values (0.9 is 0.8999999762), or their 3e-8 difference, amplified like float32
# rounding, would be all the float64 check measures. (A float32 run rounds them so anyway.)
MOMENTUM = float(np.float32(0.9))
WEIGHT_DECAY = float(np.float32(0.0005))


def fnv1a(text):
    h = 0xCBF29CE484222325
    for b in text.encode():
        h = ((h ^ b) * 0x100000001B3) & MASK
    return h


def splitmix(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def hash_uniform(name, numel, fan_in):
    base = fnv1a(name)
    bound = 1.0 / math.sqrt(fan_in)
    u = np.array([(splitmix(base ^ i) >> 40) / float(1 << 24) for i in range(numel)])
    return ((2.0 * u - 1.0) * bound).astype(np.float32)


def init_weights(net):
    for name, m in net.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            for pname, p in m.named_parameters(recurse=False):
                full = f"{name}.{pname}"
                values = hash_uniform(full, p.numel(), fan_in).reshape(tuple(p.shape))
                with torch.no_grad():
                    p.copy_(torch.from_numpy(values))


def read_images(path):
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, 3073)
    return raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0].astype(np.int64)


def resize_u8(image, r):
    """One planar uint8 image [3, 32, 32] resized to [3, r, r] as torchvision's Resize does."""
    pil = Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0)))
    if r != 32:
        pil = pil.resize((r, r), Image.BILINEAR)
    return np.asarray(pil).transpose(2, 0, 1)


def to_input(images, r):
    out = np.stack([resize_u8(im, r) for im in images]).astype(np.float32) / 255.0
    mean = np.array(MEAN, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.array(STD, dtype=np.float32).reshape(1, 3, 1, 1)
    return torch.from_numpy(np.ascontiguousarray((out - mean) / std))


def train(arch, c, batches, dtype):
    """The authors' recipe for EPOCHS x STEPS steps; returns the network, losses and rates."""
    torch.manual_seed(0)
    net = nasbench2.get_model_from_arch_str(arch, 10, init_channels=c)
    init_weights(net)
    net.to(dtype)
    net.train()
    optimiser = torch.optim.SGD(net.parameters(), lr=0.1, momentum=MOMENTUM,
                                weight_decay=WEIGHT_DECAY, nesterov=True)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=EPOCHS, eta_min=0)
    losses, lrs = [], []
    for epoch in range(EPOCHS):
        lrs.append(optimiser.param_groups[0]["lr"])
        for step in range(STEPS):
            s = epoch * STEPS + step
            optimiser.zero_grad()
            loss = F.cross_entropy(net(batches[f"inputs_{s}"].to(dtype)), batches[f"targets_{s}"])
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        schedule.step()
    return net, losses, lrs


def sampled_state(net):
    """What the cell's network uses (parameters with a gradient, and the BatchNorm buffers),
    every `stride`-th value of the larger tensors."""
    used = {n for n, p in net.named_parameters() if p.grad is not None}
    state, strides = {}, {}
    for name, t in net.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        if name in used or "running_" in name:
            flat = t.detach().reshape(-1)
            stride = max(1, math.ceil(flat.numel() / KEEP))
            state[name] = flat[::stride].contiguous()
            strides[name] = stride
    return state, strides


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--images", default=os.path.join(ROOT, "data/images/cifar10_train_1000.bin"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    images, labels = read_images(args.images)
    expected = {"epochs": EPOCHS, "steps_per_epoch": STEPS, "batch": BATCH,
                "eval_first": EVAL_FIRST, "eval_len": EVAL_LEN, "cells": CELLS, "runs": {}}
    for r, c in SETTINGS:
        setting = f"r{r}c{c}"
        batches = {}
        for s in range(EPOCHS * STEPS):
            lo = s * BATCH
            batches[f"inputs_{s}"] = to_input(images[lo:lo + BATCH], r)
            batches[f"targets_{s}"] = torch.from_numpy(labels[lo:lo + BATCH].copy())
        batches["eval_inputs"] = to_input(images[EVAL_FIRST:EVAL_FIRST + EVAL_LEN], r)
        batches["eval_targets"] = torch.from_numpy(labels[EVAL_FIRST:EVAL_FIRST + EVAL_LEN].copy())
        batches["resized_u8"] = torch.from_numpy(np.stack([resize_u8(im, r) for im in images[:8]]).copy())
        save_file(batches, os.path.join(args.out, f"{setting}_batches.safetensors"))
        for key, arch in CELLS.items():
            run = {"resolution": r, "channels": c, "arch": arch}
            for dtype, tag in [(torch.float64, "f64"), (torch.float32, "f32")]:
                net, losses, lrs = train(arch, c, batches, dtype)
                net.eval()
                with torch.no_grad():
                    logits = net(batches["eval_inputs"].to(dtype))
                    eval_loss = F.cross_entropy(logits, batches["eval_targets"]).item()
                    correct = (logits.argmax(1) == batches["eval_targets"]).sum().item()
                run["lrs"] = lrs
                run[tag] = {"losses": losses, "eval_logits": logits.reshape(-1).tolist(),
                            "eval_loss": eval_loss, "eval_correct": correct}
                print(setting, key, tag, [round(x, 6) for x in losses], correct, flush=True)
                if tag == "f64":
                    state, run["strides"] = sampled_state(net)
                    save_file(state, os.path.join(args.out, f"{setting}_{key}.safetensors"))
            expected["runs"][f"{setting}_{key}"] = run
    with open(os.path.join(args.out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)


if __name__ == "__main__":
    main()
