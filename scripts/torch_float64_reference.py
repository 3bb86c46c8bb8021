#!/usr/bin/env python3
"""Float64 reference values of the gradient proxies for the parity fixture cells, from PyTorch.

The parity fixtures (data/fixtures/parity/expected.json) come from the authors' code in float32.
Plain and grasp are sums with heavy cancellation and the dense cells are ill-conditioned, so
float32 results of any implementation (PyTorch's own on another machine included) scatter by up
to a few percent around the exact value. This script computes the same proxies in float64 with
PyTorch autograd (double backward for grasp), independently of our Rust code, on the fixtures'
weights and minibatches, so that our float64 mode can be checked to ~1e-9.

The network follows docs in README ("How the reference is matched") and reference.md §1-§3.
Usage: python3 scripts/torch_float64_reference.py > data/fixtures/parity/torch_float64.json
Needs: torch, numpy, safetensors (pip). Not used by the harness or CI.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "fixtures", "parity")
OPTION_ORDER = ["none", "avg_pool_3x3", "nor_conv_3x3", "nor_conv_1x1", "skip_connect"]
EDGES = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]


def parse(arch):
    return [tok.split("~")[0] for group in arch.strip("|").split("|+|") for tok in group.split("|")]


class Net:
    """The NB201 network of one cell, run functionally on named float64 tensors."""

    def __init__(self, tensors, ops):
        self.p = {
            k: v.double().clone().requires_grad_(k.endswith("weight") and v.dim() >= 2)
            for k, v in tensors.items()
            if not k.startswith(("inputs", "targets", "aux")) and "running" not in k and "num_batches" not in k
        }
        self.ops = ops
        self.acts = {}  # layer name -> pre-BN output (for fisher)

    def conv(self, h, name, stride=1):
        w = self.p[name + ".weight"]
        out = F.conv2d(h, w, self.p.get(name + ".bias"), stride=stride, padding=w.shape[-1] // 2)
        if out.requires_grad:
            out.retain_grad()
        self.acts[name] = out
        return out

    def bn(self, h, name=None):
        w = self.p[name + ".weight"] if name else None
        b = self.p[name + ".bias"] if name else None
        return F.batch_norm(h, None, None, w, b, training=True, eps=1e-5)

    def forward(self, x):
        h = self.bn(self.conv(x, "stem.net.0"), "stem.net.1")
        for stage in (1, 2, 3):
            if stage > 1:
                p = f"reduction{stage - 1}"
                a = self.bn(self.conv(F.relu(h), p + ".conv_a.op.1", 2), p + ".conv_a.op.2")
                b = self.bn(self.conv(F.relu(a), p + ".conv_b.op.1"), p + ".conv_b.op.2")
                h = self.conv(F.avg_pool2d(h, 2, 2), p + ".residual.1") + b
            for c in range(5):
                nodes = [h]
                for j in (1, 2, 3):
                    total = torch.zeros_like(h)
                    for e, (to, src) in enumerate(EDGES):
                        if to != j:
                            continue
                        op, inp = self.ops[e], nodes[src]
                        if op == "none":
                            out = inp * 0.0
                        elif op == "skip_connect":
                            out = inp
                        elif op == "avg_pool_3x3":
                            out = F.avg_pool2d(inp, 3, 1, 1, count_include_pad=False)
                        else:
                            name = f"stack_cell{stage}.{c}.options.{5 * e + OPTION_ORDER.index(op)}.op.1"
                            out = self.bn(self.conv(F.relu(inp), name))
                        total = total + out
                    nodes.append(total)
                h = nodes[3]
        h = F.relu(self.bn(h, "top.lastact.0")).mean((2, 3))
        logits = F.linear(h, self.p["top.classifier.weight"], self.p["top.classifier.bias"])
        logits.retain_grad()
        self.acts["top.classifier"] = logits
        return logits


def proxies(tensors, arch):
    ops = parse(arch)
    x, y = tensors["inputs"].double(), tensors["targets"]
    net = Net(tensors, ops)
    loss = F.cross_entropy(net.forward(x), y)
    names = [k[: -len(".weight")] for k, v in net.p.items() if v.requires_grad]
    weights = [net.p[n + ".weight"] for n in names]
    grads = torch.autograd.grad(loss, weights + [net.acts[n] for n in names], create_graph=True)
    g, act_grads = grads[: len(names)], grads[len(names):]
    hg = torch.autograd.grad(sum((gi.detach() * gi).sum() for gi in g), weights)
    out = {"grad_norm": {}, "snip": {}, "plain": {}, "grasp": {}, "fisher": {}}
    for n, w, gi, hgi, ag in zip(names, weights, g, hg, act_grads):
        a = net.acts[n].detach()
        s = (a * ag).sum(dim=(2, 3)) if a.dim() == 4 else a * ag
        fan = w[0].numel()
        out["grad_norm"][n] = gi.norm().item()
        out["snip"][n] = (gi * w).abs().sum().item()
        out["plain"][n] = (gi * w).sum().item()
        out["grasp"][n] = (-w * hgi).sum().item()
        out["fisher"][n] = (0.5 * s.pow(2).mean(0)).abs().sum().item() * fan
    # jacob_cov: d(sum of logits)/d(input), corrcoef of rows, eigenvalues.
    net2 = Net(tensors, ops)
    xg = x.clone().requires_grad_(True)
    logits = net2.forward(xg)
    if logits.requires_grad and logits.grad_fn is not None:
        (j,) = torch.autograd.grad(logits.sum(), xg, allow_unused=True)
    else:
        j = None
    if j is None or (j.reshape(len(j), -1).std(1) == 0).any():
        jc = None
    else:
        c = np.corrcoef(j.reshape(len(j), -1).numpy())
        v = np.linalg.eigvalsh(c)
        jc = float(-np.sum(np.log(v + 1e-5) + 1.0 / (v + 1e-5)))
    result = {k: {"total": sum(v.values()), "per_layer": v} for k, v in out.items()}
    result["jacob_cov"] = {"total": jc}
    return result


def main():
    torch.set_num_threads(1)
    expected = json.load(open(os.path.join(HERE, "expected.json")))
    cells = {}
    for arch in expected["archs"]:
        tensors = load_file(os.path.join(HERE, arch["file"]))
        cells[arch["arch_id"]] = proxies(tensors, arch["arch_str"])
        print(arch["arch_id"], file=sys.stderr)
    json.dump({"generator": "scripts/torch_float64_reference.py", "torch": torch.__version__, "dtype": "float64",
               "cells": cells}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
