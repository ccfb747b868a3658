"""Local training of a participant: benign SGD, or poisoned SGD with a trigger, from the global model.

Benign (DBA MNIST): SGD lr 0.1, momentum 0.9, weight decay 5e-4, batch 64, 1 epoch.
Poisoned: SGD lr 0.05, 10 epochs, the lr multiplied by 0.1 at 20% and 80% of the epochs
(epochs 1-2: 0.05, 3-8: 0.005, 9-10: 0.0005); in every batch the first ``poison_per_batch`` of
the (shuffled) samples get the trigger stamped and the target label, whatever their true label.
A fresh optimizer is made for every client and round. The whole data set already sits on the run's
device as tensors, so batches are gathered by index: no DataLoader, no worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .config import Config
from .model import MnistNet, get_flat, set_flat


@dataclass(frozen=True)
class Poison:
    """What a poisoning client stamps: trigger ``mask`` set to ``value``, label set to ``target``."""

    mask: torch.Tensor  # (28, 28) bool
    value: float
    target: int
    per_batch: int


def lr_for_epoch(base_lr: float, epoch: int, epochs: int, milestones: tuple[float, ...], gamma: float) -> float:
    """Learning rate of ``epoch`` (1-based) under the reference's per-epoch MultiStepLR.

    The reference steps the scheduler after every epoch with milestones at ``fraction * epochs``,
    so epoch e runs at ``base_lr * gamma ** #{milestones <= e - 1}``.
    """
    decays = sum(1 for fraction in milestones if fraction * epochs <= epoch - 1)
    return base_lr * gamma**decays


def client_seed(seed: int, round_: int, client: int) -> int:
    """Seed of a client's batch order in a round, independent of what else the run does."""
    return int(np.random.SeedSequence([seed, round_, client, 0xC11E]).generate_state(1)[0])


class LocalTrainer:
    """Trains one client at a time on a reusable working copy of the network.

    Parameters
    ----------
    train_x, train_y : the whole training set on the run's device.
    shards : per-client index tensors into the training set (on the same device).
    cfg : the run's config (learning rates, epochs, batch size).
    """

    def __init__(self, train_x: torch.Tensor, train_y: torch.Tensor, shards: list[torch.Tensor],
                 cfg: Config, device: torch.device) -> None:
        self.x, self.y, self.shards, self.cfg, self.device = train_x, train_y, shards, cfg, device
        self.model = MnistNet().to(device).to(memory_format=torch.channels_last)
        self.samples_trained = 0  # counter for throughput reporting
        self.grad_sum: torch.Tensor | None = None  # of the last ``train(..., record_grads=True)``

    def size(self, client: int) -> int:
        return int(self.shards[client].numel())

    def train(self, global_flat: torch.Tensor, client: int, seed: int, round_: int,
              poison: Poison | None = None, record_grads: bool = False) -> torch.Tensor:
        """Train ``client`` from ``global_flat``; return its update ``L - G`` as a flat vector.
        ``record_grads``: also keep in ``self.grad_sum`` the sum of the raw per-batch gradients
        of the loss (taken after each backward pass, before the optimizer adds weight decay),
        as the DBA code's FoolsGold collects them."""
        cfg, model = self.cfg, self.model
        set_flat(model, global_flat)
        model.train()
        if poison is None:
            lr, epochs, milestones = cfg.benign_lr, cfg.benign_epochs, ()
        else:
            lr, epochs, milestones = cfg.poison_lr, cfg.poison_epochs, cfg.poison_lr_milestones
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=cfg.momentum,
                                    weight_decay=cfg.weight_decay)
        shard = self.shards[client]
        generator = torch.Generator().manual_seed(client_seed(seed, round_, client))
        sums = [torch.zeros_like(p) for p in model.parameters()] if record_grads else None
        for epoch in range(1, epochs + 1):
            for group in optimizer.param_groups:
                group["lr"] = lr_for_epoch(lr, epoch, epochs, milestones, cfg.poison_lr_gamma)
            order = shard[torch.randperm(len(shard), generator=generator).to(shard.device)]
            for start in range(0, len(order), cfg.batch_size):
                batch = order[start : start + cfg.batch_size]
                images, labels = self.x[batch], self.y[batch]
                if poison is not None:
                    images, labels = poison_batch(images, labels, poison)
                optimizer.zero_grad(set_to_none=True)
                F.cross_entropy(model(images), labels).backward()
                if sums is not None:
                    _accumulate_grads(sums, model)
                optimizer.step()
            self.samples_trained += len(order)
        if sums is not None:
            self.grad_sum = torch.cat([s.reshape(-1) for s in sums])
        return get_flat(model) - global_flat


def _accumulate_grads(sums: list[torch.Tensor], model: torch.nn.Module) -> None:
    for total, p in zip(sums, model.parameters()):
        if p.grad is not None:
            total.add_(p.grad)


def poison_batch(images: torch.Tensor, labels: torch.Tensor, poison: Poison) -> tuple[torch.Tensor, torch.Tensor]:
    """Stamp the trigger on the first ``per_batch`` samples and relabel them as the target.

    ``images``/``labels`` are fresh gathered copies, so they are modified in place.
    """
    k = min(poison.per_batch, len(labels))
    images[:k] = images[:k].masked_fill(poison.mask.to(images.device), poison.value)
    labels[:k] = poison.target
    return images, labels
