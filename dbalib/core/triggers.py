"""Backdoor trigger patterns: the DBA local triggers and their union, the global trigger.

The global trigger is a grid of ``parts`` rectangles of ``height x width`` pixels, laid out row
by row in ``ceil(sqrt(parts))`` columns, separated by ``gap`` blank pixels in both directions and
shifted ``shift`` pixels down and right from the top-left corner. Each rectangle is one local
trigger. With the DBA MNIST defaults (4 parts of 1x4, gap 2, shift 0) the local triggers are
rows/cols ``0: (0, 0..3)``, ``1: (0, 6..9)``, ``2: (3, 0..3)``, ``3: (3, 6..9)``.

Stamping sets the trigger's pixels to ``value`` (1.0, white) and leaves every other pixel alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .errors import ConfigError

IMAGE_SIZE = 28


@dataclass(frozen=True)
class TriggerSpec:
    """Geometry of the distributed trigger (see the module docstring)."""

    parts: int = 4
    height: int = 1
    width: int = 4
    gap: int = 2
    shift: int = 0
    value: float = 1.0

    def __post_init__(self) -> None:
        if self.parts < 1 or self.height < 1 or self.width < 1 or self.gap < 0 or self.shift < 0:
            raise ConfigError(f"trigger needs parts, height, width >= 1 and gap, shift >= 0: {self}")
        rows, cols = self.grid
        bottom = self.shift + rows * self.height + (rows - 1) * self.gap
        right = self.shift + cols * self.width + (cols - 1) * self.gap
        if bottom > IMAGE_SIZE or right > IMAGE_SIZE:
            raise ConfigError(
                f"trigger does not fit in a {IMAGE_SIZE}x{IMAGE_SIZE} image: it would span "
                f"{bottom} rows and {right} columns (parts={self.parts}, height={self.height}, "
                f"width={self.width}, gap={self.gap}, shift={self.shift})"
            )

    @property
    def grid(self) -> tuple[int, int]:
        """(rows, columns) of the grid of local triggers."""
        cols = math.ceil(math.sqrt(self.parts))
        return math.ceil(self.parts / cols), cols

    def part_box(self, index: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) of local trigger ``index``; bottom/right exclusive."""
        if not 0 <= index < self.parts:
            raise ConfigError(f"local trigger {index} does not exist (0..{self.parts - 1})")
        cols = self.grid[1]
        top = self.shift + (index // cols) * (self.height + self.gap)
        left = self.shift + (index % cols) * (self.width + self.gap)
        return top, left, top + self.height, left + self.width

    def mask(self, index: int | None = None) -> torch.Tensor:
        """Boolean (28, 28) mask of local trigger ``index``, or of the global trigger if None."""
        mask = torch.zeros(IMAGE_SIZE, IMAGE_SIZE, dtype=torch.bool)
        for part in range(self.parts) if index is None else [index]:
            top, left, bottom, right = self.part_box(part)
            mask[top:bottom, left:right] = True
        return mask

    def bounding_box(self) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) of the global trigger; bottom/right exclusive."""
        boxes = [self.part_box(i) for i in range(self.parts)]
        return (min(b[0] for b in boxes), min(b[1] for b in boxes),
                max(b[2] for b in boxes), max(b[3] for b in boxes))

    def pixels(self, index: int | None = None) -> list[tuple[int, int]]:
        """(row, col) of every pixel of a local trigger (or the global one if None)."""
        return [tuple(p) for p in self.mask(index).nonzero().tolist()]


def stamp(images: torch.Tensor, mask: torch.Tensor, value: float = 1.0) -> torch.Tensor:
    """Copy of ``images`` (..., 28, 28) with the pixels of ``mask`` set to ``value``."""
    return images.masked_fill(mask.to(images.device), value)


def stamp_(images: torch.Tensor, mask: torch.Tensor, value: float = 1.0) -> torch.Tensor:
    """In-place ``stamp`` (for freshly gathered batches)."""
    return images.masked_fill_(mask.to(images.device), value)
