"""Local training of many clients at once (the batched engine's trainer).

``BatchedTrainer.train`` trains K clients (of one round of one or several seeds) in lockstep:
at every step each still-training client takes its next batch, all K batches go through one
forward and backward pass of the stacked networks (``dbalib.core.stacked``), and each client takes
its own SGD step. Every client keeps exactly what ``dbalib.core.clients.LocalTrainer`` gives it:

- its batch order, drawn from its own generator (``client_seed(seed, round, client)``), epoch by
  epoch, in the same order;
- its own SGD with momentum and weight decay (a fresh optimizer: zero momentum at its first
  step), and its own learning rate per epoch (poisoned clients: 10 epochs with the MultiStepLR
  drops; benign ones: 1 epoch);
- its own poisoned samples: the first ``poison_per_batch`` of each of its batches stamped and
  relabelled.

Clients hold different numbers of samples. A client's last, partial batch of an epoch is padded
to the batch size and the padding is masked out of its loss (its loss is the mean over its real
samples, as in the sequential trainer). Steps are aligned by index over a client's whole local
training (all epochs back to back), so a client is active for a prefix of the steps; clients are
ordered by their number of steps, and when one finishes, the stacks shrink to the clients still
training (no masked-out steps, no wasted work, no momentum applied after a client's last step),
but never below two copies (see ``train``), so that a client's update is the same, bit for bit,
whichever clients and seeds train beside it (checked by the tests on the CPU).

All per-step inputs (batch indices, masks, learning rates) are built once per call and live on
the run's device, so a CUDA run does no host round-trip per batch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import stacked
from .clients import Poison, client_seed, lr_for_epoch
from .config import Config


@dataclass(frozen=True)
class ClientJob:
    """One client's local training: from start model ``start`` (a row of the starts matrix)."""

    start: int
    client: int
    seed: int
    round: int
    poison: Poison | None = None


@dataclass
class _Plan:
    """Per-step inputs of K clients, sorted by their number of steps (longest first)."""

    order: list[int]  # job index of each row
    steps: list[int]  # steps of each row (non-increasing)
    index: torch.Tensor  # (K, S, B) sample indices (padding: 0)
    valid: torch.Tensor  # (K, S, B) float 1/0
    count: torch.Tensor  # (K, S) real samples per batch (1 where a client has no batch)
    poisoned: torch.Tensor  # (K, S, B) bool: stamp and relabel this sample
    lr: torch.Tensor  # (K, S)
    is_poisoned: list[bool]  # per row: does this client poison
    masks: torch.Tensor  # (K, 28, 28) bool trigger mask of each row (all False: benign)
    values: torch.Tensor  # (K,) trigger value of each row
    targets: torch.Tensor  # (K,) target label of each row


class BatchedTrainer:
    """Trains many clients at once from their start models; see the module docstring.

    Parameters
    ----------
    train_x, train_y : the whole training set on the run's device.
    shards : per-client index tensors into the training set.
    cfg : the run's config (learning rates, epochs, batch size, momentum, weight decay).
    """

    def __init__(self, train_x: torch.Tensor, train_y: torch.Tensor, shards: list[torch.Tensor],
                 cfg: Config, device: torch.device) -> None:
        self.x, self.y, self.cfg, self.device = train_x, train_y, cfg, torch.device(device)
        self.shards = [s.cpu() for s in shards]  # batch orders are drawn on the CPU, as sequentially
        self.samples_trained = 0
        self.grad_sums: torch.Tensor | None = None  # of the last ``train(..., record_grads=True)``

    def size(self, client: int) -> int:
        return int(self.shards[client].numel())

    def _schedule(self, job: ClientJob) -> tuple[list[torch.Tensor], list[float]]:
        """The batches (index tensors) and learning rates of one client's local training."""
        cfg = self.cfg
        if job.poison is None:
            lr, epochs, milestones = cfg.benign_lr, cfg.benign_epochs, ()
        else:
            lr, epochs, milestones = cfg.poison_lr, cfg.poison_epochs, cfg.poison_lr_milestones
        if job.client < 0:  # a passenger (see ``train``): no batches
            return [], []
        shard = self.shards[job.client]
        generator = torch.Generator().manual_seed(client_seed(job.seed, job.round, job.client))
        batches, rates = [], []
        for epoch in range(1, epochs + 1):
            rate = lr_for_epoch(lr, epoch, epochs, milestones, cfg.poison_lr_gamma)
            order = shard[torch.randperm(len(shard), generator=generator)]
            for start in range(0, len(order), cfg.batch_size):
                batches.append(order[start : start + cfg.batch_size])
                rates.append(rate)
        return batches, rates

    def _plan(self, jobs: list[ClientJob]) -> _Plan:
        b = self.cfg.batch_size
        schedules = [self._schedule(job) for job in jobs]
        order = sorted(range(len(jobs)), key=lambda j: -len(schedules[j][0]))  # stable: ties keep job order
        steps = [len(schedules[j][0]) for j in order]
        k, s = len(jobs), max(1, steps[0] if steps else 1)
        index = torch.zeros(k, s, b, dtype=torch.long)
        valid = torch.zeros(k, s, b)
        poisoned = torch.zeros(k, s, b, dtype=torch.bool)
        lr = torch.zeros(k, s)
        masks = torch.zeros(k, 28, 28, dtype=torch.bool)
        values, targets = torch.zeros(k), torch.zeros(k, dtype=torch.long)
        for row, j in enumerate(order):
            batches, rates = schedules[j]
            poison = jobs[j].poison
            if poison is not None:
                masks[row], values[row], targets[row] = poison.mask.cpu(), poison.value, poison.target
            for t, (batch, rate) in enumerate(zip(batches, rates)):
                n = len(batch)
                index[row, t, :n] = batch
                valid[row, t, :n] = 1.0
                lr[row, t] = rate
                if poison is not None:
                    poisoned[row, t, : min(poison.per_batch, n)] = True
        dev = self.device
        is_poisoned = [jobs[j].poison is not None for j in order]
        return _Plan(order, steps, index.to(dev), valid.to(dev), valid.sum(2).clamp_min(1).to(dev),
                     poisoned.to(dev), lr.to(dev), is_poisoned, masks.to(dev), values.to(dev), targets.to(dev))

    def train(self, starts: torch.Tensor, jobs: list[ClientJob], record_grads: bool = False) -> torch.Tensor:
        """Train every job from ``starts[job.start]``; return the updates ``L - G``, (K, P), in job order.
        ``record_grads``: also keep in ``self.grad_sums`` (K, P) each client's sum of its raw
        per-batch loss gradients (before weight decay; a poisoned client's of its poisoned loss),
        as ``LocalTrainer`` does."""
        out = torch.empty(len(jobs), starts.shape[1], dtype=starts.dtype, device=starts.device)
        grad_out = torch.zeros_like(out) if record_grads else None
        self.grad_sums = grad_out
        if not jobs:
            return out
        if len(jobs) == 1:  # a passenger with no steps keeps the stack at two copies (see below)
            jobs = jobs + [dataclasses.replace(jobs[0], client=-1)]
        plan = self._plan(jobs)
        rows_start = starts[[jobs[j].start for j in plan.order]]
        params = [p.requires_grad_() for p in stacked.pack(rows_start)]
        momenta = [torch.zeros_like(p) for p in params]
        sums = [torch.zeros_like(p) for p in params] if record_grads else None

        def keep(rows: slice, values: list[torch.Tensor], grads: list[torch.Tensor] | None) -> None:
            final = stacked.unpack(values)
            final_grads = stacked.unpack(grads) if grads is not None else None
            for row, j in enumerate(plan.order[rows]):
                if j < len(out):
                    out[j] = final[row]
                    if final_grads is not None:
                        grad_out[j] = final_grads[row]

        active = len(jobs)
        for t in range(plan.steps[0]):
            # the stacks never shrink below two copies: PyTorch's CPU convolution takes another
            # path for a single group, which rounds conv1's weight gradient differently, and a
            # client's numbers must not depend on how many others train beside it. A finished
            # client kept as a passenger has learning rate 0 and no samples: its model stays put.
            still = max(2, sum(1 for n in plan.steps if n > t))
            if still < active:  # clients [still:active] are done: keep their models, shrink the stacks
                keep(slice(still, active), [p[still:active] for p in params],
                     [g[still:active] for g in sums] if sums is not None else None)
                params = [p[:still].detach().clone().requires_grad_() for p in params]
                momenta = [m[:still].clone() for m in momenta]
                sums = [g[:still].clone() for g in sums] if sums is not None else None
                active = still
            self._step(plan, t, params, momenta, sums)
        keep(slice(0, active), [p[:active] for p in params], [g[:active] for g in sums] if sums is not None else None)
        self.samples_trained += int(plan.valid.sum().item())
        return out - starts[[job.start for job in jobs[: len(out)]]]

    def _step(self, plan: _Plan, t: int, params: list[torch.Tensor], momenta: list[torch.Tensor],
              sums: list[torch.Tensor] | None = None) -> None:
        """One SGD step of the first ``len(params[0])`` rows of the plan (adding each row's raw
        loss gradient to ``sums`` when given)."""
        cfg, k = self.cfg, params[0].shape[0]
        index = plan.index[:k, t]
        images, labels = self.x[index], self.y[index]  # (k, B, 1, 28, 28), (k, B)
        hit = plan.poisoned[:k, t]
        if any(plan.is_poisoned[:k]):
            stamp = hit[:, :, None, None, None] & plan.masks[:k, None, None]
            images = torch.where(stamp, plan.values[:k, None, None, None, None], images)
            labels = torch.where(hit, plan.targets[:k, None], labels)
        logits = stacked.forward(params, images)
        losses = F.cross_entropy(logits.reshape(-1, 10), labels.reshape(-1), reduction="none").view(k, -1)
        loss = ((losses * plan.valid[:k, t]).sum(1) / plan.count[:k, t]).sum()
        grads = torch.autograd.grad(loss, params)
        rate = plan.lr[:k, t]
        with torch.no_grad():
            if sums is not None:  # before weight decay is added to the gradients in place
                for total, g in zip(sums, grads):
                    total.add_(g)
            for p, g, m in zip(params, grads, momenta):
                g = g.add_(p, alpha=cfg.weight_decay) if cfg.weight_decay else g
                m.mul_(cfg.momentum).add_(g)
                p.addcmul_(m, rate.view(-1, *([1] * (p.dim() - 1))), value=-1.0)
