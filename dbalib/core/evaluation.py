"""Batched evaluation of a global model: clean accuracy and attack success rates (ASR).

``clean_acc`` is the accuracy on the whole clean test set. The ASR of a trigger is the share of
test images whose true label is not the target that the model classifies as the target once the
trigger is stamped on them; it is measured for the global trigger and for every local trigger.

Three quarters of a round's work used to be this evaluation, so it is done once per batch of the
clean test set and shares everything the triggers cannot change. A trigger only touches a small
corner of the image, and a convolution only sees a 5x5 neighbourhood, so a triggered image's
activations differ from the clean image's only inside a window that grows by the kernel size at
each layer. ``fast=True`` computes the clean activations once, then for each trigger recomputes
only that window (conv1 on a corner of the input, conv2 on a corner of the first feature map),
and, fc1 being linear, adds the change of the few features the window feeds to the clean fc1
pre-activation. It is the same network on the same triggered images, up to float rounding
order; ``fast=False`` runs the plain forward pass on stamped images instead (the tests check that
both give the same predictions). The test set is reordered once so the images that count for
the ASR (true label != target) come first and each batch's share of them is a slice.

Every evaluation also records a control for the ASRs, ``asr_no_trigger``: the share of the same
non-target images, *without* a trigger, that the model classifies as the target. An ASR means
something only against it (a damaged model that calls everything a 2 has a high "ASR" too).

``evaluate_many`` evaluates several models (the global models of seeds run in lockstep) in one
pass with the stacked networks of ``dbalib.core.stacked``: the test images go through one convolution
with every model's filters, and the windowed re-computation is the same as above, per model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import stacked
from .model import MnistNet, set_flat
from .triggers import TriggerSpec, stamp

KERNEL, POOL = 5, 2  # both convolutions of MnistNet: 5x5, stride 1, no padding; 2x2 max-pools


@dataclass(frozen=True)
class _AxisWindow:
    """Index ranges along one image axis for the windowed re-computation (ends exclusive)."""

    input: tuple[int, int]  # input pixels conv1 needs to recompute the changed pool1 cells
    pool1_changed: tuple[int, int]  # pool1 cells a trigger can change
    pool1_window: tuple[int, int]  # pool1 cells conv2 needs to recompute the changed pool2 cells
    pool2_changed: tuple[int, int]  # pool2 cells (features) a trigger can change

    @staticmethod
    def for_span(start: int, stop: int, size: int = 28) -> "_AxisWindow":
        conv1 = (max(0, start - KERNEL + 1), min(size - KERNEL + 1, stop))
        p1 = (conv1[0] // POOL, (conv1[1] - 1) // POOL + 1)
        p1_size = (size - KERNEL + 1) // POOL
        conv2 = (max(0, p1[0] - KERNEL + 1), min(p1_size - KERNEL + 1, p1[1]))
        p2 = (conv2[0] // POOL, (conv2[1] - 1) // POOL + 1)
        return _AxisWindow(
            input=(POOL * p1[0], POOL * p1[1] + KERNEL - 1),
            pool1_changed=p1,
            pool1_window=(POOL * p2[0], POOL * p2[1] + KERNEL - 1),
            pool2_changed=p2,
        )


class Evaluator:
    """Measures clean accuracy and the ASR of each trigger; the test tensors are prepared once.

    Parameters
    ----------
    test_x, test_y : the clean test set (N, 1, 28, 28) in [0, 1] and its labels.
    trigger : geometry of the global and local triggers.
    target : the attacker's target label (2 in the study).
    batch_size : inference batch size (500 suits a 2-core CPU; larger on a GPU).
    fast : share the clean activations between the triggered sets (see the module docstring).
    """

    def __init__(self, test_x: torch.Tensor, test_y: torch.Tensor, trigger: TriggerSpec, target: int,
                 device: torch.device | str = "cpu", batch_size: int = 500, fast: bool = True) -> None:
        self.device = torch.device(device)
        # non-target images first, so each batch's ASR rows are a prefix (a slice, not a gather)
        order = torch.argsort((test_y == target).to(torch.int8), stable=True)
        self.x = test_x[order].to(self.device).contiguous(memory_format=torch.channels_last)
        self.y = test_y[order].to(self.device)
        self.n_nontarget = int((test_y != target).sum())
        self.target, self.trigger, self.batch_size, self.fast = target, trigger, batch_size, fast
        # "global" first, then local_0 .. local_{parts-1}
        self.names = ["global"] + [f"local_{i}" for i in range(trigger.parts)]
        masks = torch.stack([trigger.mask()] + [trigger.mask(i) for i in range(trigger.parts)])
        self._masks = masks.to(self.device)  # (T, 28, 28)
        top, left, bottom, right = trigger.bounding_box()
        self._rows = _AxisWindow.for_span(top, bottom)
        self._cols = _AxisWindow.for_span(left, right)
        r, c = self._rows.input, self._cols.input
        self._corner_masks = self._masks[:, None, None, r[0]:r[1], c[0]:c[1]]  # (T, 1, 1, h, w)
        # positions of the changeable features in the flattened (C, H, W) 800-vector of fc1
        p2r, p2c = self._rows.pool2_changed, self._cols.pool2_changed
        grid = torch.arange(50 * 4 * 4).view(50, 4, 4)
        self._feature_index = grid[:, p2r[0]:p2r[1], p2c[0]:p2c[1]].reshape(-1).to(self.device)
        self._feature_index_hwc = stacked.hwc_index(self._feature_index)  # the same, in stacked layout

    def _metrics(self, correct: torch.Tensor, control: torch.Tensor, hits: torch.Tensor) -> dict[str, float]:
        metrics = {"clean_acc": correct.item() / len(self.y)}
        for name, count in zip(self.names, hits.tolist()):
            metrics[f"asr_{name}"] = count / max(1, self.n_nontarget)
        metrics["asr_no_trigger"] = control.item() / max(1, self.n_nontarget)
        return metrics

    @torch.inference_mode()
    def evaluate(self, model: MnistNet) -> dict[str, float]:
        """{'clean_acc', 'asr_global', 'asr_local_0', ..., 'asr_no_trigger'} as fractions in [0, 1]."""
        model.eval()
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        control = torch.zeros((), dtype=torch.long, device=self.device)
        hits = torch.zeros(len(self.names), dtype=torch.long, device=self.device)
        for start in range(0, len(self.y), self.batch_size):
            x = self.x[start : start + self.batch_size]
            n_asr = max(0, min(len(x), self.n_nontarget - start))  # rows that count for the ASR
            if not self.fast:
                predicted = model(x).argmax(1)
                correct += (predicted == self.y[start : start + len(x)]).sum()
                control += (predicted[:n_asr] == self.target).sum()
                for t in range(len(self.names)):
                    hits[t] += (model(stamp(x[:n_asr], self._masks[t], self.trigger.value)).argmax(1)
                                == self.target).sum()
                continue
            pool1 = model.stem(x)
            features = model.block2(pool1)
            hidden = model.fc1(features.flatten(1))  # pre-activation, reused by the triggered sets
            predicted = model.fc2(torch.relu(hidden)).argmax(1)
            correct += (predicted == self.y[start : start + len(x)]).sum()
            control += (predicted[:n_asr] == self.target).sum()
            if n_asr:
                predicted = self._triggered_predictions(model, x[:n_asr], pool1[:n_asr],
                                                        features[:n_asr], hidden[:n_asr])
                hits += (predicted == self.target).sum(1)
        return self._metrics(correct, control, hits)

    @torch.inference_mode()
    def evaluate_many(self, flats: torch.Tensor, model: MnistNet | None = None) -> list[dict[str, float]]:
        """The metrics of every model in ``flats`` ((S, P) flat parameter vectors), in one pass.

        Without ``fast`` (or without windows to share) each model is evaluated on its own with
        ``model`` (a working ``MnistNet``)."""
        if not self.fast:
            model = model or MnistNet().to(self.device)
            out = []
            for flat in flats:
                set_flat(model, flat)
                out.append(self.evaluate(model))
            return out
        params = stacked.pack(flats)
        s, t = flats.shape[0], len(self.names)
        correct = torch.zeros(s, dtype=torch.long, device=self.device)
        control = torch.zeros(s, dtype=torch.long, device=self.device)
        hits = torch.zeros(s, t, dtype=torch.long, device=self.device)
        for start in range(0, len(self.y), self.batch_size):
            x = self.x[start : start + self.batch_size]
            n_asr = max(0, min(len(x), self.n_nontarget - start))
            pool1 = stacked.stem(params, x, shared=True)  # (n, S*20, 12, 12)
            features = stacked.features_hwc(stacked.block2(params, pool1), s)  # (S, n, 800)
            hidden = stacked.fc1(params, features)  # (S, n, 500)
            predicted = stacked.fc2(params, torch.relu(hidden)).argmax(2)  # (S, n)
            correct += (predicted == self.y[start : start + len(x)]).sum(1)
            control += (predicted[:, :n_asr] == self.target).sum(1)
            if n_asr:
                hits += self._triggered_predictions_many(params, x[:n_asr], pool1[:n_asr], features[:, :n_asr],
                                                         hidden[:, :n_asr])
        return [self._metrics(correct[i], control[i], hits[i]) for i in range(s)]

    def _triggered_predictions_many(self, params: list[torch.Tensor], x: torch.Tensor, pool1: torch.Tensor,
                                    features: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """(S, T) hits of the S stacked models under each of the T triggers (``_triggered_predictions``
        per model: the same windows, in the stacked layouts)."""
        rows, cols, n, t, s = self._rows, self._cols, len(x), len(self.names), hidden.shape[0]
        corner = x[:, :, rows.input[0]:rows.input[1], cols.input[0]:cols.input[1]]
        corners = corner.unsqueeze(0).masked_fill(self._corner_masks, self.trigger.value)
        changed1 = stacked.stem(params, corners.flatten(0, 1), shared=True)  # (t*n, S*20, a, b)
        window = pool1[:, :, rows.pool1_window[0]:rows.pool1_window[1], cols.pool1_window[0]:cols.pool1_window[1]]
        windows = window.unsqueeze(0).repeat(t, 1, 1, 1, 1).flatten(0, 1)
        r0, c0 = rows.pool1_changed[0] - rows.pool1_window[0], cols.pool1_changed[0] - cols.pool1_window[0]
        windows[:, :, r0:r0 + changed1.shape[2], c0:c0 + changed1.shape[3]] = changed1
        changed2 = stacked.block2(params, windows)  # (t*n, S*50, p, q)
        changed2 = changed2.reshape(t * n, s, -1).transpose(0, 1)  # (S, t*n, F) in CHW order
        index = self._feature_index_hwc
        clean2 = features[:, :, index].repeat(1, t, 1)
        hidden_t = hidden.repeat(1, t, 1) + torch.bmm(changed2 - clean2, params[4][:, :, index].transpose(1, 2))
        predicted = stacked.fc2(params, torch.relu(hidden_t)).argmax(2).view(s, t, n)
        return (predicted == self.target).sum(2)

    def _triggered_predictions(self, model: MnistNet, x: torch.Tensor, pool1: torch.Tensor,
                               features: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """(T, n) predicted labels of the n images under each of the T triggers, all at once."""
        rows, cols, n, t = self._rows, self._cols, len(x), len(self.names)
        # 1. conv1 block on the stamped input corners -> the pool1 cells a trigger can change
        corner = x[:, :, rows.input[0]:rows.input[1], cols.input[0]:cols.input[1]]
        corners = corner.unsqueeze(0).masked_fill(self._corner_masks, self.trigger.value)
        changed1 = model.stem(corners.flatten(0, 1))
        # 2. splice them into the pool1 window conv2 needs; conv2 block on the windows
        window = pool1[:, :, rows.pool1_window[0]:rows.pool1_window[1], cols.pool1_window[0]:cols.pool1_window[1]]
        windows = window.unsqueeze(0).repeat(t, 1, 1, 1, 1).flatten(0, 1)
        r0, c0 = rows.pool1_changed[0] - rows.pool1_window[0], cols.pool1_changed[0] - cols.pool1_window[0]
        windows[:, :, r0:r0 + changed1.shape[2], c0:c0 + changed1.shape[3]] = changed1
        changed2 = model.block2(windows).flatten(1)  # (t*n, features a trigger can change)
        # 3. fc1 is linear: add the change of those features to the clean pre-activation
        clean2 = features.flatten(1)[:, self._feature_index].repeat(t, 1)
        weight = model.fc1.weight[:, self._feature_index]
        hidden_t = hidden.repeat(t, 1) + (changed2 - clean2) @ weight.T
        return model.fc2(torch.relu(hidden_t)).argmax(1).view(t, n)
