"""Candidate ways to train K clients at once, measured side by side (the batched engine's choice).

Each candidate runs the same SGD steps (momentum 0.9, weight decay 5e-4, batch 64 per client) of
K copies of the DBA MNIST network on random data and reports training samples per second:

- ``sequential``: one ``MnistNet`` per client (channels-last), ``torch.optim.SGD``, one client
  after another (today's reference engine);
- ``stacked``: ``dbalib.core.stacked`` (grouped channels-last convolutions, batched fc layers) with the
  batched engine's per-client SGD step: what ``engine=batched`` runs;
- ``grouped_contiguous``: the same grouped convolutions on contiguous (NCHW) tensors;
- ``unfold``: convolutions as im2col (``F.unfold``) and batched matrix products;
- ``vmap``: ``torch.func.vmap`` over ``functional_call`` of one network.

    python benchmarks/train_candidates.py [--clients 10] [--threads 1] [--steps 30]

Writes nothing; ``benchmarks/NOTES.md`` records the numbers and what was chosen.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from dbalib.core import stacked
from dbalib.core.model import MnistNet, get_flat, new_model


def sequential(x, y, steps):
    models = [MnistNet().to(memory_format=torch.channels_last) for _ in range(len(x))]
    opts = [torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4) for m in models]
    start = time.perf_counter()
    for _ in range(steps):
        for model, opt, xb, yb in zip(models, opts, x, y):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
    return time.perf_counter() - start


def _sgd_steps(params, forward, x, y, steps):
    k = len(x)
    momenta = [torch.zeros_like(p) for p in params]
    rate = torch.full((k,), 0.1)
    start = time.perf_counter()
    for _ in range(steps):
        loss = F.cross_entropy(forward(params, x).reshape(-1, 10), y.reshape(-1), reduction="none").view(k, -1).mean(1).sum()
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g, m in zip(params, grads, momenta):
                m.mul_(0.9).add_(g.add_(p, alpha=5e-4))
                p.addcmul_(m, rate.view(-1, *([1] * (p.dim() - 1))), value=-1.0)
    return time.perf_counter() - start


def _stacked_params(k):
    return [p.requires_grad_() for p in stacked.pack(torch.stack([get_flat(new_model(i)) for i in range(k)]))]


def stacked_channels_last(x, y, steps):
    return _sgd_steps(_stacked_params(len(x)), stacked.forward, x, y, steps)


def _plain_params(k):
    flats = torch.stack([get_flat(new_model(i)) for i in range(k)])
    return [t.reshape(k, *s).clone().requires_grad_() for t, s in zip(torch.split(flats, stacked.SIZES, 1), stacked.SHAPES)]


def _grouped_contiguous(params, x):
    w1, b1, w2, b2, w3, b3, w4, b4 = params
    k, n = x.shape[:2]
    h = F.conv2d(x.transpose(0, 1).reshape(n, k, 28, 28), w1.reshape(k * 20, 1, 5, 5), b1.reshape(-1), groups=k)
    h = F.relu(F.max_pool2d(h, 2, 2))
    h = F.relu(F.max_pool2d(F.conv2d(h, w2.reshape(k * 50, 20, 5, 5), b2.reshape(-1), groups=k), 2, 2))
    h = F.relu(torch.baddbmm(b3.unsqueeze(1), h.reshape(n, k, 800).transpose(0, 1), w3.transpose(1, 2)))
    return torch.baddbmm(b4.unsqueeze(1), h, w4.transpose(1, 2))


def grouped_contiguous(x, y, steps):
    return _sgd_steps(_plain_params(len(x)), _grouped_contiguous, x, y, steps)


def _unfold(params, x):
    w1, b1, w2, b2, w3, b3, w4, b4 = params
    k, n = x.shape[:2]
    cols = F.unfold(x.reshape(k * n, 1, 28, 28), 5).view(k, n, 25, 576).permute(0, 2, 1, 3).reshape(k, 25, n * 576)
    h = torch.baddbmm(b1.unsqueeze(2), w1.reshape(k, 20, 25), cols).view(k, 20, n, 24, 24)
    h = F.relu(F.max_pool2d(h.transpose(1, 2).reshape(k * n, 20, 24, 24), 2, 2))
    cols = F.unfold(h, 5).view(k, n, 500, 64).permute(0, 2, 1, 3).reshape(k, 500, n * 64)
    h = torch.baddbmm(b2.unsqueeze(2), w2.reshape(k, 50, 500), cols).view(k, 50, n, 8, 8)
    h = F.relu(F.max_pool2d(h.transpose(1, 2).reshape(k * n, 50, 8, 8), 2, 2)).reshape(k, n, 800)
    h = F.relu(torch.baddbmm(b3.unsqueeze(1), h, w3.transpose(1, 2)))
    return torch.baddbmm(b4.unsqueeze(1), h, w4.transpose(1, 2))


def unfold(x, y, steps):
    return _sgd_steps(_plain_params(len(x)), _unfold, x, y, steps)


def vmap(x, y, steps):
    from torch.func import functional_call, grad
    from torch.func import vmap as vectorize

    net = MnistNet()
    params = {n: p.detach().unsqueeze(0).repeat(len(x), *[1] * p.dim()).clone() for n, p in net.named_parameters()}
    momenta = {n: torch.zeros_like(p) for n, p in params.items()}
    step = vectorize(grad(lambda p, xb, yb: F.cross_entropy(functional_call(net, p, (xb,)), yb)))
    start = time.perf_counter()
    for _ in range(steps):
        grads = step(params, x, y)
        for n in params:
            momenta[n].mul_(0.9).add_(grads[n] + 5e-4 * params[n])
            params[n] -= 0.1 * momenta[n]
    return time.perf_counter() - start


CANDIDATES = {"sequential": sequential, "stacked": stacked_channels_last, "grouped_contiguous": grouped_contiguous,
              "unfold": unfold, "vmap": vmap}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--only", default=",".join(CANDIDATES))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.rand(args.clients, 64, 1, 28, 28)
    y = torch.randint(0, 10, (args.clients, 64))
    for name in args.only.split(","):
        fn = CANDIDATES[name]
        fn(x, y, 3)  # warm-up
        seconds = min(fn(x, y, args.steps) for _ in range(2))
        print(f"{name:20s} clients={args.clients} threads={args.threads}: "
              f"{args.clients * 64 * args.steps / seconds:8,.0f} samples/s", flush=True)


if __name__ == "__main__":
    main()
