#!/usr/bin/env python3
"""Parity fixtures for nwot, epe_nas and zico, computed by the proxies' authors' code.

For each fixture cell: the reference nasbench2 network (the authors' zero-cost-nas package,
`../shared/bench/reference/foresight`) with the fixture's initial weights
(`data/fixtures/parity/CELL.safetensors`), in float64 and train mode, on two seeded minibatches
of 16 Gaussian images with random labels. The scores come from the authors' own functions,
executed from their repositories (fetched, not copied here):

- epe_nas: `eval_score_perclass` of VascoLopes/EPE-NAS `search.py`, default `n_classes`, on the
  Jacobian of the summed logits w.r.t. the input (their `get_batch_jacobian`'s recipe);
- zico: `getgrad` and `caculate_zico` of SLDGroup/ZiCo `ZeroShotProxy/compute_zico.py`, on
  the cross-entropy gradients of the two batches, gradients zeroed in between (their
  `getzico`'s loop, on the CPU);
- nwot: `hooklogdet` of BayesWatch/nas-without-training `scores.py`, on the kernel of a
  transcription of their `score_networks.py` hooks (written inline there, not as functions):
  every module whose type name contains "ReLU" (so ReLUConvBN too), armed by a backward, adds
  its input's codes on a second forward.

- meco: `get_score(..., measure='meco')` of HamsterMimi/MeCo `correlation/NAS_Bench_201.py`
  (hooks on every module) on the first image of stream 0;
- zen: `network_weight_gaussian_init` and `compute_nas_score` of idstcv/ZenNAS
  `ZeroShotProxy/compute_zen_score.py` (repeat 1, γ 1e-2, batch 16, float32 as theirs runs),
  seeded with torch.manual_seed(4000 + k); the Gaussian weights and inputs it drew are replayed
  and saved (`CELL_zen.safetensors`: the weights in the reference's names, `inputs`, `inputs_1`)
  so that ours can be computed on the same draws. Adaptations to the nasbench2 network: its
  cell BatchNorms have neither affine parameters nor running statistics, on which the authors'
  loops fail, so they become a functional batch norm that is not an `nn.BatchNorm2d` (same
  values, skipped by the loops, as MeCo's port skips them); and the network gets the
  `forward_pre_GAP` the authors' models have (everything up to global pooling).

The functions are taken from the files by name with `ast` (their modules import datasets and
GPU code at import time) and run unmodified. Writes `OUT/CELL.safetensors` (inputs, targets,
inputs_1, targets_1, float32) and `OUT/expected.json`.

Usage: new_proxies_reference.py --epe DIR --zico DIR --naswot DIR --zen DIR --meco DIR
       --out data/fixtures/new-proxies
(DIR: a checkout of each repository, e.g. from `git worktree`/`git archive` of a fetched mirror.)
"""
import argparse
import ast
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "..", "shared", "bench", "reference"))
from foresight.models import nasbench2  # noqa: E402

CELLS = ["a_dense", "r1_idx4215", "x_degenerate"]
# zen's fixtures hold every Gaussian weight: cells with few convs keep them small.
ZEN_CELLS = ["b_cheap", "r2_idx7985", "x_degenerate"]
BATCH = 16


def authors_functions(path, names, namespace):
    """Executes the top-level functions `names` of the Python file at `path` in `namespace`."""
    tree = ast.parse(open(path).read())
    found = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in names]
    missing = set(names) - {n.name for n in found}
    if missing:
        raise SystemExit(f"{path}: no function {sorted(missing)}")
    exec(compile(ast.Module(body=found, type_ignores=[]), path, "exec"), namespace)
    return namespace


def model(arch, weights):
    """The nasbench2 network of `arch` with the fixture's weights, float64, train mode.

    Adaptation: nasbench2 builds every op of every edge and runs only the kept ones; the
    unused modules are replaced by parameter-free placeholders, so that the authors' loops
    over modules (ZiCo's over every Conv2d, NASWOT's over every ReLU) see the network that runs
    (ZiCo would otherwise read the missing gradient of a conv that never ran)."""
    net = nasbench2.get_model_from_arch_str(arch, 10)
    for stack in (net.stack_cell1, net.stack_cell2, net.stack_cell3):
        for cell in stack:
            for i, keep in enumerate(cell.keep_mask):
                if not keep:
                    cell.options[i] = nn.Identity()
    names = set(net.state_dict())
    state = {k: v for k, v in weights.items() if k in names}
    missing, _ = net.load_state_dict(state, strict=False)
    if missing:
        raise SystemExit(f"weights do not fit {arch}: missing {missing}")
    return net.double().train()


class FunctionalBatchNorm(nn.Module):
    """A BatchNorm without affine parameters or running statistics, as nasbench2's cell BNs."""

    def __init__(self, eps):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        return F.batch_norm(x, None, None, training=True, eps=self.eps)


def zen_model(arch, weights):
    net = model(arch, weights).float()
    for stack in (net.stack_cell1, net.stack_cell2, net.stack_cell3):
        for module in stack.modules():
            for name, child in module.named_children():
                if isinstance(child, nn.BatchNorm2d) and not child.track_running_stats:
                    setattr(module, name, FunctionalBatchNorm(child.eps))

    def forward_pre_gap(self, x):
        x = self.stem(x)
        x = self.stack_cell1(x)
        x = self.reduction1(x)
        x = self.stack_cell2(x)
        x = self.reduction2(x)
        x = self.stack_cell3(x)
        return self.top.lastact(x)

    net.forward_pre_GAP = forward_pre_gap.__get__(net)
    return net


def zen(arch, weights, seed, ns, out_file):
    net = zen_model(arch, weights)
    torch.manual_seed(seed)
    value = ns["compute_nas_score"](None, net, 1e-2, 32, BATCH, 1)["avg_nas_score"]
    # Replay the same draws to save them.
    replay = zen_model(arch, weights)
    torch.manual_seed(seed)
    ns["network_weight_gaussian_init"](replay)
    x1 = torch.randn(size=[BATCH, 3, 32, 32], dtype=torch.float32)
    x2 = torch.randn(size=[BATCH, 3, 32, 32], dtype=torch.float32)
    tensors = {k: v.contiguous() for k, v in replay.state_dict().items() if v.dtype.is_floating_point}
    tensors["inputs"] = x1
    tensors["inputs_1"] = x2
    save_file(tensors, out_file)
    return float(value)


def batches(seed):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(2):
        x = torch.randn(BATCH, 3, 32, 32, generator=g)
        y = torch.randint(0, 10, (BATCH,), generator=g)
        out.append((x, y))
    return out


def epe_nas(net, x, y, ns):
    x = x.double().clone().requires_grad_(True)
    net.zero_grad()
    out = net(x)
    out.backward(torch.ones_like(out))
    jacob = x.grad.detach().reshape(x.size(0), -1).numpy()
    return float(ns["eval_score_perclass"](jacob, [y.numpy()]))


def zico(net, data, ns):
    grad_dict = {}
    for i, (x, y) in enumerate(data):
        net.zero_grad()
        loss = F.cross_entropy(net(x.double()), y)
        loss.backward()
        grad_dict = ns["getgrad"](net, grad_dict, i)
    return float(ns["caculate_zico"](grad_dict))


def nwot(net, x, ns):
    kernel = np.zeros((x.size(0), x.size(0)))
    handles = []

    def forward_hook(module, inp, out):
        nonlocal kernel
        if not getattr(module, "visited_backwards", False):
            return
        codes = (inp[0].reshape(inp[0].size(0), -1) > 0).double()
        kernel = kernel + (codes @ codes.t()).numpy() + ((1.0 - codes) @ (1.0 - codes.t())).numpy()

    def backward_hook(module, grad_in, grad_out):
        module.visited_backwards = True

    for module in net.modules():
        if "ReLU" in str(type(module)):
            handles.append(module.register_forward_hook(forward_hook))
            handles.append(module.register_backward_hook(backward_hook))
    xj = x.double().clone().requires_grad_(True)
    out = net(xj)
    out.backward(torch.ones_like(out))
    with torch.no_grad():
        net(x.double())
    for h in handles:
        h.remove()
    return float(ns["hooklogdet"](kernel))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epe", required=True)
    p.add_argument("--zico", required=True)
    p.add_argument("--naswot", required=True)
    p.add_argument("--zen", required=True)
    p.add_argument("--meco", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    torch.set_num_threads(1)
    ns = {"np": np, "torch": torch, "nn": nn}
    authors_functions(os.path.join(a.epe, "search.py"), ["eval_score_perclass"], ns)
    authors_functions(
        os.path.join(a.zico, "ZeroShotProxy", "compute_zico.py"), ["getgrad", "caculate_zico"], ns
    )
    authors_functions(os.path.join(a.naswot, "scores.py"), ["hooklogdet"], ns)
    authors_functions(os.path.join(a.meco, "correlation", "NAS_Bench_201.py"), ["get_score"], ns)
    authors_functions(
        os.path.join(a.zen, "ZeroShotProxy", "compute_zen_score.py"),
        ["network_weight_gaussian_init", "compute_nas_score"],
        ns,
    )
    meta = json.load(open(os.path.join(ROOT, "data", "fixtures", "parity", "expected.json")))
    archs = {c["arch_id"]: c["arch_str"] for c in meta["archs"]}
    os.makedirs(a.out, exist_ok=True)
    expected = {
        "meta": {
            "generator": "scripts/new_proxies_reference.py",
            "model": "zero-cost-nas nasbench2 (reference a43bfbc), float64, train mode, 10 classes",
            "weights": "data/fixtures/parity/CELL.safetensors (the parity fixtures' initial weights)",
            "batches": f"two batches of {BATCH}: torch.Generator().manual_seed(3000 + k), randn "
            "inputs then randint(0, 10) targets, twice; stream 1 in inputs_1/targets_1",
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        "cells": [],
    }
    for k, cell in enumerate(CELLS):
        weights = load_file(os.path.join(ROOT, "data", "fixtures", "parity", f"{cell}.safetensors"))
        data = batches(3000 + k)
        values = {
            "epe_nas": epe_nas(model(archs[cell], weights), *data[0], ns),
            "zico": zico(model(archs[cell], weights), data, ns),
            "nwot": nwot(model(archs[cell], weights), data[0][0], ns),
            "meco": float(
                ns["get_score"](model(archs[cell], weights), data[0][0][:1].double(), "cpu", "meco")
            ),
        }
        save_file(
            {
                "inputs": data[0][0].contiguous(),
                "targets": data[0][1].contiguous(),
                "inputs_1": data[1][0].contiguous(),
                "targets_1": data[1][1].contiguous(),
            },
            os.path.join(a.out, f"{cell}.safetensors"),
        )
        # Strict JSON: a NaN score (the authors' exception-free NaN) is written as null.
        values = {k: (v if math.isfinite(v) else None) for k, v in values.items()}
        expected["cells"].append({"cell": cell, "arch": archs[cell], "values": values})
        print(cell, values)
    expected["zen_cells"] = []
    for k, cell in enumerate(ZEN_CELLS):
        weights = load_file(os.path.join(ROOT, "data", "fixtures", "parity", f"{cell}.safetensors"))
        value = zen(archs[cell], weights, 4000 + k, ns, os.path.join(a.out, f"{cell}_zen.safetensors"))
        value = value if math.isfinite(value) else None
        expected["zen_cells"].append({"cell": cell, "arch": archs[cell], "zen": value})
        print(cell, "zen", value)
    json.dump(expected, open(os.path.join(a.out, "expected.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
