"""Many copies of the DBA MNIST network at once: K parameter sets stacked along a leading axis.

The batched engine trains every client of a round (of several seeds) together and evaluates
several global models together. Each copy keeps its own weights; the copies share one kernel
call per layer instead of one call per copy:

- conv1 and conv2 are grouped convolutions (``groups=K``): copy ``k``'s images sit in input
  channel group ``k`` and only meet copy ``k``'s filters;
- fc1 and fc2 are batched matrix products (``baddbmm``) over the K copies.

Layouts are chosen for the CPU's channels-last convolution kernels (the measured fast path): the
conv2 filters are stored as (K, 50, 5, 5, 20) so that their grouped view is channels-last without
a copy, and fc1's columns are stored in (row, column, channel) order, the order in which
channels-last features lie in memory. ``pack`` and ``unpack`` convert between these stacks and
the flat parameter vectors of ``dbalib.core.model`` (the order of ``MnistNet.parameters()``), exactly
(they only move numbers).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# shapes of MnistNet's parameters, in flat-vector order
SHAPES = [(20, 1, 5, 5), (20,), (50, 20, 5, 5), (50,), (500, 800), (500,), (10, 500), (10,)]
SIZES = [int(torch.Size(s).numel()) for s in SHAPES]
N_PARAMS = sum(SIZES)


def pack(flats: torch.Tensor) -> list[torch.Tensor]:
    """(K, P) flat vectors -> the 8 stacked parameters in this module's layouts (fresh tensors)."""
    k = flats.shape[0]
    w1, b1, w2, b2, w3, b3, w4, b4 = torch.split(flats, SIZES, dim=1)
    return [
        w1.reshape(k, 20, 5, 5).contiguous(),
        b1.contiguous(),
        w2.reshape(k, 50, 20, 5, 5).permute(0, 1, 3, 4, 2).contiguous(),  # (K, 50, 5, 5, 20)
        b2.contiguous(),
        w3.reshape(k, 500, 50, 4, 4).permute(0, 1, 3, 4, 2).reshape(k, 500, 800).contiguous(),  # HWC columns
        b3.contiguous(),
        w4.reshape(k, 10, 500).contiguous(),
        b4.contiguous(),
    ]


def unpack(params: list[torch.Tensor]) -> torch.Tensor:
    """Inverse of ``pack``: (K, P) flat vectors in ``MnistNet.parameters()`` order."""
    w1, b1, w2, b2, w3, b3, w4, b4 = (p.detach() for p in params)
    k = w1.shape[0]
    return torch.cat([
        w1.reshape(k, -1),
        b1,
        w2.permute(0, 1, 4, 2, 3).reshape(k, -1),
        b2,
        w3.reshape(k, 500, 4, 4, 50).permute(0, 1, 4, 2, 3).reshape(k, -1),
        b3,
        w4.reshape(k, -1),
        b4,
    ], dim=1)


def _conv2_filters(w2: torch.Tensor) -> torch.Tensor:
    k = w2.shape[0]
    return w2.reshape(k * 50, 5, 5, 20).permute(0, 3, 1, 2)  # (K*50, 20, 5, 5), channels-last strides


def stem(params: list[torch.Tensor], x: torch.Tensor, shared: bool = False) -> torch.Tensor:
    """conv1, 2x2 max-pool, ReLU for every copy.

    ``x`` is (N, K, H, W) channels-last, copy k's images in channel k (``shared=False``), or
    (N, 1, H, W) images that every copy sees (``shared=True``: one plain convolution with K*20
    filters). Returns (N, K*20, (H-4)/2, (W-4)/2).
    """
    w1, b1 = params[0], params[1]
    k = w1.shape[0]
    weight = w1.reshape(k * 20, 1, 5, 5)
    h = F.conv2d(x, weight, b1.reshape(-1), groups=1 if shared else k)
    return F.relu(F.max_pool2d(h, 2, 2))  # relu(maxpool(z)) == maxpool(relu(z)) exactly


def block2(params: list[torch.Tensor], h: torch.Tensor) -> torch.Tensor:
    """conv2, 2x2 max-pool, ReLU of every copy: (N, K*20, H, W) -> (N, K*50, (H-4)/2, (W-4)/2)."""
    w2, b2 = params[2], params[3]
    k = w2.shape[0]
    return F.relu(F.max_pool2d(F.conv2d(h, _conv2_filters(w2), b2.reshape(-1), groups=k), 2, 2))


def features_hwc(h: torch.Tensor, k: int) -> torch.Tensor:
    """(N, K*50, 4, 4) pooled conv2 output -> (K, N, 800) features in (row, column, channel) order."""
    n = h.shape[0]
    return h.permute(0, 2, 3, 1).reshape(n, 16, k, 50).permute(2, 0, 1, 3).reshape(k, n, 800)


def fc1(params: list[torch.Tensor], features: torch.Tensor) -> torch.Tensor:
    """(K, N, 800) HWC features -> (K, N, 500) pre-activations."""
    return torch.baddbmm(params[5].unsqueeze(1), features, params[4].transpose(1, 2))


def fc2(params: list[torch.Tensor], hidden: torch.Tensor) -> torch.Tensor:
    """(K, N, 500) activations -> (K, N, 10) logits."""
    return torch.baddbmm(params[7].unsqueeze(1), hidden, params[6].transpose(1, 2))


def grouped_images(x: torch.Tensor) -> torch.Tensor:
    """(K, N, 1, 28, 28) per-copy images -> (N, K, 28, 28) channels-last input of ``stem``."""
    k, n = x.shape[:2]
    return x.reshape(k, n, 28, 28).permute(1, 2, 3, 0).contiguous().permute(0, 3, 1, 2)


def forward(params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Logits (K, N, 10) of copy k on its own images ``x[k]`` ((K, N, 1, 28, 28))."""
    k = x.shape[0]
    h = block2(params, stem(params, grouped_images(x)))
    return fc2(params, F.relu(fc1(params, features_hwc(h, k))))


def hwc_index(chw_index: torch.Tensor) -> torch.Tensor:
    """Positions in the HWC feature vector of features given by their CHW (MnistNet) positions."""
    c, rest = chw_index // 16, chw_index % 16
    return rest * 50 + c
