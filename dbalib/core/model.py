"""The DBA MNIST network and helpers to move its weights to and from one flat vector.

Conv(1->20, 5x5) ReLU MaxPool2, Conv(20->50, 5x5) ReLU MaxPool2, FC 800->500 ReLU, FC 500->10.
The reference applies log-softmax and NLL; ``forward`` returns logits and training uses
cross-entropy, which is the same loss. Each block max-pools before its ReLU: ReLU is monotonic, so
``relu(maxpool(z)) == maxpool(relu(z))`` exactly (values and gradients), and the ReLU then runs on
a tensor four times smaller (a measurable share of a round on the CPU). The network has no buffers, so its state is exactly its
parameter vector (431,080 numbers); the federated code passes models around as such vectors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MnistNet(nn.Module):
    """LeNet-style MNIST classifier of the DBA code (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5, 1)
        self.conv2 = nn.Conv2d(20, 50, 5, 1)
        self.fc1 = nn.Linear(4 * 4 * 50, 500)
        self.fc2 = nn.Linear(500, 10)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """First block: conv1, ReLU, 2x2 max-pool (N, 1, 28, 28) -> (N, 20, 12, 12)."""
        return F.relu(F.max_pool2d(self.conv1(x), 2, 2))

    def block2(self, h: torch.Tensor) -> torch.Tensor:
        """Second block: conv2, ReLU, 2x2 max-pool (N, 20, H, W) -> (N, 50, (H-4)/2, (W-4)/2)."""
        return F.relu(F.max_pool2d(self.conv2(h), 2, 2))

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """Classifier on the (N, 50, 4, 4) features: logits (N, 10)."""
        return self.fc2(F.relu(self.fc1(features.flatten(1))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block2(self.stem(x)))


def new_model(seed: int, device: torch.device | str = "cpu") -> MnistNet:
    """A freshly initialised network (PyTorch's default init) from ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MnistNet()
    return model.to(device)


def get_flat(model: nn.Module) -> torch.Tensor:
    """All parameters as one detached 1-D vector (a copy)."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def set_flat(model: nn.Module, flat: torch.Tensor) -> None:
    """Copy a flat vector into the model's parameters in place."""
    offset = 0
    with torch.no_grad():
        for p in model.parameters():
            n = p.numel()
            p.copy_(flat[offset : offset + n].view_as(p))
            offset += n
    if offset != flat.numel():
        raise ValueError(f"flat vector has {flat.numel()} numbers, the model {offset}")


def layer_slices(model: nn.Module) -> dict[str, slice]:
    """Where each named parameter lives in the flat vector (e.g. ``fc2.weight``)."""
    slices, offset = {}, 0
    for name, p in model.named_parameters():
        slices[name] = slice(offset, offset + p.numel())
        offset += p.numel()
    return slices
