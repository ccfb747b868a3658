"""Checks that a figure reads in print: the paper's width, every text at least 7 pt, nothing cut,
no legend over the data."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
from matplotlib.text import Text


def texts(fig: plt.Figure) -> list[Text]:
    """Every Text artist of ``fig`` that is drawn: visible, non-empty, in a visible axes."""
    out = []
    for t in fig.findobj(Text):
        ax = t.axes
        if t.get_visible() and t.get_text().strip() and (ax is None or ax.get_visible()):
            out.append(t)
    return out


def assert_print_ready(fig: plt.Figure, width: float = 6.8, max_height: float = 8.6) -> None:
    """6.8 in wide, at most ``max_height`` tall, every text at least 7 pt, nothing outside the
    figure (a tight bounding box as large as the figure: savefig's bbox "tight" keeps the size)."""
    w, h = fig.get_size_inches()
    assert w == pytest.approx(width) and h <= max_height
    small = [(t.get_text(), t.get_fontsize()) for t in texts(fig) if t.get_fontsize() < 7]
    assert not small, small
    fig.canvas.draw()
    box = fig.get_tightbbox(fig.canvas.get_renderer())
    assert box.x0 >= -0.02 and box.y0 >= -0.02 and box.x1 <= w + 0.02 and box.y1 <= h + 0.02, box
    assert_legends_off_the_data(fig)


def assert_legends_off_the_data(fig: plt.Figure) -> None:
    """No legend drawn inside an axes covers a point of that axes' lines (their vertices and the
    segments between them, sampled), so a legend never hides a curve."""
    import numpy as np

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None or not ax.get_visible():
            continue
        box = legend.get_window_extent(renderer)
        for line in ax.get_lines():
            xy = np.column_stack(line.get_data()).astype(float)
            xy = xy[np.isfinite(xy).all(axis=1)]
            if len(xy) == 0 or not line.get_visible():
                continue
            if len(xy) > 1:  # the segments too, not only the vertices
                t = np.linspace(0, 1, 20)[:, None, None]
                xy = (xy[:-1] * (1 - t) + xy[1:] * t).reshape(-1, 2)
            points = ax.transData.transform(xy)
            inside = ((points[:, 0] > box.x0) & (points[:, 0] < box.x1) & (points[:, 1] > box.y0)
                      & (points[:, 1] < box.y1))
            assert not inside.any(), f"the legend of '{ax.get_title()}' covers '{line.get_label()}'"
