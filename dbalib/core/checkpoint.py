"""Pretraining checkpoints that are verified before use.

A checkpoint holds the global model after the clean rounds, the key it was made for (the settings
that determine it, see ``simulation.pretrained_models``) and the SHA-256 of the model's tensor bytes.
It is written atomically (fsync and rename, ``dbalib.core.atomic``). ``load_checkpoint`` returns it only
when it loads, its key equals the expected key and its bytes match the digest; anything else (a
truncated or overwritten file, a checkpoint copied from another seed or made before digests) is
deleted with a warning and the caller computes the model again.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch

from .atomic import atomic_write_bytes, sha256_bytes


def tensor_digest(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes (on the CPU, contiguous)."""
    flat = tensor.detach().to("cpu").contiguous()
    header = f"{flat.dtype}:{tuple(flat.shape)}:".encode()
    return sha256_bytes(header + flat.view(torch.uint8).numpy().tobytes() if flat.numel() else header)


def save_checkpoint(path: Path, global_flat: torch.Tensor, seconds: float, key: dict) -> None:
    buffer = io.BytesIO()
    cpu = global_flat.detach().cpu()
    torch.save({"global": cpu, "seconds": seconds, "key": key, "sha256": tensor_digest(cpu)}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def checkpoint_problem(saved, key: dict) -> str | None:
    """Why a loaded checkpoint must not be used (None when it is intact and made for ``key``)."""
    if not isinstance(saved, dict) or not isinstance(saved.get("global"), torch.Tensor):
        return "not a dbalib checkpoint"
    if saved.get("key") != key:
        return "it was made for other settings (another seed, config or torch version)"
    if "sha256" not in saved:
        return "it has no digest (made by an older dbalib)"
    if tensor_digest(saved["global"]) != saved["sha256"]:
        return "its tensor bytes do not match its SHA-256"
    if not bool(torch.isfinite(saved["global"]).all()):
        return "its model is not finite"
    if not isinstance(saved.get("seconds"), (int, float)):
        return "its timing is missing"
    return None


def load_checkpoint(path: Path, key: dict, device: torch.device) -> dict | None:
    """The verified checkpoint at ``path`` for ``key`` (its tensor on ``device``), or None when
    there is none or it was bad (then it is deleted, with a warning naming the file)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        problem = checkpoint_problem(saved, key)
    except Exception as exc:  # noqa: BLE001 - any unreadable file (truncated zip, pickle error, ...)
        problem = f"unreadable ({type(exc).__name__})"
    if problem is not None:
        warnings.warn(f"pretraining checkpoint {path} is unusable: {problem}; it is deleted and recomputed",
                      stacklevel=2)
        path.unlink(missing_ok=True)
        return None
    saved["global"] = saved["global"].to(device)
    return saved
