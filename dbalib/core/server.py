"""The server's own clean data (the root set), for defences that test updates against it.

The study suggests that "the server's test on clean data may give the valuable clue". Two
defences use such data (``fltrust`` and ``validation_filter`` in ``dbalib.core.defenses``); their
``AggregatorSpec`` sets ``needs_root`` and the round loop then builds one ``ServerData`` per run.

The root set is ``root_samples`` training images that no participant holds: the Dirichlet split of
the DBA code gives every class the size of class 0 (5,923 images on MNIST), so 1,431 of the 60,000
training images belong to nobody. They are drawn without replacement, seeded by
``partition_seed`` (the split's seed), from the training samples outside every participant's
full shard (before any ``data_fraction`` subset), so the root set is disjoint from all client
data whatever the run.

Caveat, a property of the data, not of the code: the leftover images are the surplus of the
classes larger than class 0, so on MNIST with the reference split they hold only digits 1, 2, 3,
7 and 9 (818, 38, 205, 342 and 28 images); a root set drawn from them is mostly 1s and 7s and has
no 0, 4, 5, 6 or 8 (``ServerData.class_counts`` reports it). The iid split leaves nothing over: a
root set is then a ``ConfigError``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .clients import LocalTrainer
from .config import Config
from .data import MnistTensors, client_shards
from .errors import ConfigError
from .model import set_flat

ROOT_STREAM = 0x2007  # mixed into the root set's seed (independent of every other stream)


def root_indices(cfg: Config, labels: np.ndarray) -> np.ndarray:
    """Sorted indices into the training set of the root set (see the module docstring)."""
    shards = client_shards(cfg.with_overrides(data_fraction=1.0), labels)
    used = np.zeros(len(labels), dtype=bool)
    for shard in shards:
        used[shard] = True
    free = np.flatnonzero(~used)
    if len(free) < cfg.root_samples:
        raise ConfigError(f"root_samples={cfg.root_samples} but only {len(free)} training images lie outside every "
                          f"participant's shard under partition={cfg.partition}")
    rng = np.random.default_rng(np.random.SeedSequence([cfg.partition_seed, ROOT_STREAM]))
    return np.sort(rng.choice(free, size=cfg.root_samples, replace=False))


@dataclass
class ServerData:
    """The root set on the run's device, with the server's trainer and its evaluation.

    ``train`` is the server's own local training from the global model with the benign settings
    (``benign_lr``, momentum, weight decay, ``batch_size``, ``benign_epochs`` = 1 epoch), batches
    drawn from ``(seed, round)``; ``accuracy`` is the share of the root set a model classifies
    right.
    """

    x: torch.Tensor  # (R, 1, 28, 28)
    y: torch.Tensor  # (R,)
    indices: np.ndarray  # into the training set
    trainer: LocalTrainer

    @classmethod
    def build(cls, cfg: Config, data: MnistTensors, device: torch.device | str) -> "ServerData":
        indices = root_indices(cfg, data.train_y.cpu().numpy())
        where = torch.as_tensor(indices, dtype=torch.long, device=data.train_x.device)
        x, y = data.train_x[where].to(device), data.train_y[where].to(device)
        trainer = LocalTrainer(x, y, [torch.arange(len(y), device=device)], cfg, torch.device(device))
        return cls(x, y, indices, trainer)

    def __len__(self) -> int:
        return len(self.y)

    def class_counts(self) -> list[int]:
        return torch.bincount(self.y.cpu(), minlength=10).tolist()

    def train(self, global_flat: torch.Tensor, seed: int, round_: int) -> torch.Tensor:
        """The server's update ``W - G`` after training on the root set from ``global_flat``."""
        return self.trainer.train(global_flat, 0, seed, round_)

    @torch.no_grad()
    def accuracy(self, flats: torch.Tensor) -> torch.Tensor:
        """(K,) root-set accuracy of each flat model vector of ``flats`` (K, P)."""
        model = self.trainer.model
        out = []
        for flat in flats:
            set_flat(model, flat)
            out.append((model(self.x).argmax(1) == self.y).float().mean())
        return torch.stack(out)
