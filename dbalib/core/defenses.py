"""Robust aggregation rules (defences), each an ``Aggregator`` selectable by name in the config.

Norm-based rules compare each update's L2 norm with a bound M chosen by ``norm_bound_rule``:
``fixed`` uses ``norm_bound``; ``median`` uses ``norm_bound_factor`` times the median update norm
of the round (adaptive: benign updates set the scale, as long as they are the majority).

=================  ===========================================================================
``norm_threshold``  Sun et al.: an update with norm > M contributes nothing; the average keeps
                    its denominator m
``abandon``         the study's proposal: updates with norm > M are dropped and the rest are
                    averaged over the clients that remain
``norm_clip``       the study's Eq. 4: each update scaled by 1 / max(1, ||delta|| / M)
``weak_dp``         norm clipping plus Gaussian noise N(0, dp_sigma^2) on every coordinate of
                    the aggregate (Sun et al.; the DBA code's sigma is 0.01)
``weak_dp_dba``     the DBA code's weak DP: FedAvg plus the same noise, no clipping
``rfa``             Pillutla et al.: geometric median (smoothed Weiszfeld, sample-count weights)
``foolsgold``       ours after Fung et al.: cosine similarity of per-client histories of the
                    uploaded updates on the output layer (fc2 weight and bias); weighted mean
``foolsgold_dba``   the DBA code's FoolsGold: on each client's sum of raw gradients (so gamma has
                    no effect), fc2.weight only, applied as one SGD step (``FoolsGoldDBA``)
``krum``            Blanchard et al.: the update closest to its n - f - 2 nearest neighbours
``multikrum``       the mean of the ``multikrum_m`` best Krum scores
``median``          Yin et al.: coordinate-wise median
``trimmed_mean``    Yin et al.: coordinate-wise mean without the beta*n largest and smallest
``flame``           Nguyen et al.: HDBSCAN on the cosine distances of the local models
                    G + delta_i, clip to the median norm, noise
``flame_updates``   ours: the same on the cosine distances of the updates delta_i
``consensus``       ours, aimed at multi-shot DBA: cosine trust against the coordinate-wise median,
                    clipped to the median norm (see ``ConsensusClip``)
``fltrust``         Cao et al.: trust = ReLU(cosine with the server's update on its clean root
                    set), updates rescaled to its norm (``FLTrust``; root set: ``dbalib.core.server``)
``validation_filter`` ours: drop a client whose leave-one-out raises the root-set accuracy
=================  ===========================================================================

Every "median" of a norm or a cosine (the ``median`` norm bound, FLAME's clip bound, ``consensus``)
is the true median (``true_median``: the mean of the two middle values of an even count), not
torch's lower median.

Rules that replace the mean by another estimate (RFA, Krum, median, ...) apply it with the
server learning rate: ``G + eta * estimate``, which is FedAvg's ``G + eta * mean`` when nothing
is filtered. Every rule reports per client its weight relative to FedAvg (coefficient of the
client's update divided by eta / m: 1 = as in FedAvg, 0 = rejected); coordinate-wise rules
report the share of coordinates in which the client's value was used, on the same scale.

A rule is named in two tables: ``dbalib.core.registry.AGGREGATORS`` (its description and the
config keys it reads: what config validation and the cache key need) and ``FACTORIES`` here (how
to build it from a config); ``make_aggregator`` builds the rule a config names.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .aggregation import Aggregation, Aggregator, FedAvg, RoundUpdates
from .config import Config
from .errors import ConfigError
from .registry import aggregator_spec


def true_median(values: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """The median as statistics defines it: the middle value of an odd count, the mean of the two
    middle values of an even count (``torch.median`` returns the lower of the two, which for the
    ten updates of a round is the 5th smallest, not the median). ``dim=None``: of all values."""
    if dim is None:
        values, dim = values.reshape(-1), 0
    n = values.shape[dim]
    if n == 0:
        raise ValueError("median of no values")
    ordered = values.sort(dim=dim).values
    upper = ordered.narrow(dim, n // 2, 1)
    if n % 2:
        return upper.squeeze(dim)
    return ((ordered.narrow(dim, n // 2 - 1, 1) + upper) / 2).squeeze(dim)


def norm_bound(cfg: Config, norms: torch.Tensor) -> float:
    """M for this round: fixed, or ``norm_bound_factor`` x the (true) median update norm."""
    if cfg.norm_bound_rule == "fixed":
        return cfg.norm_bound
    return cfg.norm_bound_factor * float(true_median(norms))


def _check_norm_params(cfg: Config) -> None:
    if cfg.norm_bound_rule == "fixed" and cfg.norm_bound <= 0:
        raise ConfigError("norm_bound_rule=fixed needs norm_bound > 0 (or use norm_bound_rule=median)")


class NormThreshold(Aggregator):
    """Ignore updates with norm > M; keep FedAvg's denominator (Sun et al.)."""

    name = "norm_threshold"
    keep_denominator = True

    def __init__(self, eta: float, cfg: Config) -> None:
        super().__init__(eta)
        self.cfg = cfg

    def aggregate(self, global_flat: torch.Tensor, updates: RoundUpdates) -> Aggregation:
        bound = norm_bound(self.cfg, updates.norms)
        kept = (updates.norms <= bound).float()
        m = len(updates)
        denominator = m if self.keep_denominator else max(1.0, float(kept.sum()))
        new = global_flat + (self.eta / denominator) * (kept @ updates.deltas)
        return Aggregation(new, kept * (m / denominator), {"norm_bound": bound})


class Abandon(NormThreshold):
    """Drop updates with norm > M and average the rest over the clients that remain (the study)."""

    name = "abandon"
    keep_denominator = False


class NormClip(Aggregator):
    """Scale each update by 1 / max(1, ||delta|| / M), then FedAvg (the study's Eq. 4)."""

    name = "norm_clip"

    def __init__(self, eta: float, cfg: Config) -> None:
        super().__init__(eta)
        self.cfg = cfg

    def clipped_mean(self, updates: RoundUpdates) -> tuple[torch.Tensor, torch.Tensor, float]:
        bound = norm_bound(self.cfg, updates.norms)
        norms = updates.norms
        factors = torch.where(norms > bound, bound / torch.clamp(norms, min=1e-12), torch.ones_like(norms))
        return (factors @ updates.deltas) / len(updates), factors, bound

    def aggregate(self, global_flat: torch.Tensor, updates: RoundUpdates) -> Aggregation:
        mean, factors, bound = self.clipped_mean(updates)
        return Aggregation(global_flat + self.eta * mean, factors, {"norm_bound": bound})


class WeakDP(NormClip):
    """Norm clipping plus Gaussian noise of std ``dp_sigma`` on every coordinate of the aggregate."""

    name = "weak_dp"

    def __init__(self, eta: float, cfg: Config, seed: int) -> None:
        super().__init__(eta, cfg)
        self.seed = seed

    def aggregate(self, global_flat: torch.Tensor, updates: RoundUpdates) -> Aggregation:
        mean, factors, bound = self.clipped_mean(updates)
        noise = gaussian(global_flat, self.cfg.dp_sigma, self.seed, updates.round)
        return Aggregation(global_flat + self.eta * mean + noise, factors, {"norm_bound": bound})


class WeakDPDBA(Aggregator):
    """The DBA code's weak differential privacy: FedAvg's step plus N(0, dp_sigma^2) on every
    coordinate, ``G + eta/m * sum_i delta_i + noise``, with no clipping (the DBA code adds
    ``dp_noise(sigma)`` to each layer's averaged update; its MNIST sigma is 0.01). Ours,
    ``weak_dp``, clips first (Sun et al.)."""

    name = "weak_dp_dba"

    def __init__(self, eta: float, sigma: float, seed: int) -> None:
        super().__init__(eta)
        self.sigma, self.seed = sigma, seed

    def aggregate(self, global_flat: torch.Tensor, updates: RoundUpdates) -> Aggregation:
        m = len(updates)
        noise = gaussian(global_flat, self.sigma, self.seed, updates.round)
        return Aggregation(global_flat + (self.eta / m) * updates.deltas.sum(0) + noise,
                           torch.ones(m, device=updates.deltas.device), {"dp_sigma": self.sigma})


def gaussian(like: torch.Tensor, sigma: float, seed: int, round_: int) -> torch.Tensor:
    """N(0, sigma^2) noise shaped like ``like``, reproducible from (seed, round)."""
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, round_, 0xD9]).generate_state(1)[0]))
    return (torch.randn(like.shape, generator=generator) * sigma).to(like.device)


class RFA(Aggregator):
    """Geometric median of the updates by the smoothed Weiszfeld algorithm (Pillutla et al.).

    Weights alpha_i are the clients' sample counts (normalised); start from the weighted mean; at
    most ``max_iter`` iterations; distances are floored at ``eps``; stop when the objective
    improves by less than ``ftol`` of itself.
    """

    name = "rfa"

    def __init__(self, eta: float, max_iter: int = 10, eps: float = 1e-5, ftol: float = 1e-6) -> None:
        super().__init__(eta)
        self.max_iter, self.eps, self.ftol = max_iter, eps, ftol

    def median(self, points: torch.Tensor, alphas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        alphas = alphas / alphas.sum()
        median = alphas @ points
        objective = float(alphas @ (points - median).norm(dim=1))
        betas = alphas
        iterations = 0
        for iterations in range(1, self.max_iter + 1):
            betas = alphas / torch.clamp((points - median).norm(dim=1), min=self.eps)
            median = (betas @ points) / betas.sum()
            new_objective = float(alphas @ (points - median).norm(dim=1))
            converged = abs(objective - new_objective) <= self.ftol * new_objective
            objective = new_objective
            if converged:
                break
        return median, betas / betas.sum(), iterations

    def aggregate(self, global_flat: torch.Tensor, updates: RoundUpdates) -> Aggregation:
        median, shares, iterations = self.median(updates.deltas, updates.sizes)
        return Aggregation(global_flat + self.eta * median, shares * len(updates), {"iterations": iterations})


class FoolsGold(Aggregator):
    """FoolsGold (Fung et al.) on per-client histories of the output layer.

    Each client's history is the sum of all its updates so far. Weights come from the cosine
    similarity of this round's clients' histories (restricted to the output layer): pardoning,
    ``wv = 1 - max similarity`` clipped to [0, 1], rescaled by its maximum, then the logit
    ``ln(wv / (1 - wv)) + 0.5`` clipped to [0, 1]. The aggregate is the weighted mean.
    """

    name = "foolsgold"

    def __init__(self, eta: float, output_layer: slice) -> None:
        super().__init__(eta)
        self.output_layer = output_layer
        self.history: dict[int, torch.Tensor] = {}

    def weights(self, histories: torch.Tensor) -> torch.Tensor:
        n = len(histories)
        unit = histories / torch.clamp(histories.norm(dim=1, keepdim=True), min=1e-12)
        cs = (unit @ unit.T).double().cpu().numpy() - np.eye(n)
        maxcs = cs.max(axis=1)
        for i in range(n):  # pardoning
            for j in range(n):
                if i != j and maxcs[i] < maxcs[j]:
                    cs[i, j] = cs[i, j] * maxcs[i] / maxcs[j]
        wv = np.clip(1.0 - cs.max(axis=1), 0.0, 1.0)
        if wv.max() > 0:
            wv = wv / wv.max()
        wv[wv == 1.0] = 0.99
        with np.errstate(divide="ignore"):
            wv = np.log(wv / (1.0 - wv)) + 0.5
        wv[np.isinf(wv) & (wv > 0)] = 1.0
        wv = np.clip(np.nan_to_num(wv, nan=0.0, neginf=0.0), 0.0, 1.0)
        return torch.as_tensor(wv, dtype=torch.float32)

    def aggregate(self, global_flat: torch.Tensor, updates: RoundUpdates) -> Aggregation:
        for client, delta in zip(updates.client_ids, updates.deltas):
            layer = delta[self.output_layer]
            self.history[client] = self.history.get(client, torch.zeros_like(layer)) + layer
        histories = torch.stack([self.history[c] for c in updates.client_ids])
        wv = self.weights(histories).to(updates.deltas.device)
        total = float(wv.sum())
        if total == 0:
            return Aggregation(global_flat.clone(), wv, {"foolsgold_weights": wv.tolist()})
        new = global_flat + self.eta * (wv @ updates.deltas) / total
        return Aggregation(new, wv * len(updates) / total, {"foolsgold_weights": wv.tolist()})


class FoolsGoldDBA(FoolsGold):
    """The DBA code's FoolsGold, which aggregates gradients, not updates (registered as
    ``foolsgold_dba``; ``foolsgold`` is ours, on the uploaded updates).

    - Each client sends the sum of its raw per-batch loss gradients over its whole local training
      (``RoundUpdates.grad_sums``: taken after each backward pass, before weight decay and before
      any model-replacement scaling, so ``scale`` (gamma) has no effect under this rule; an
      attacker's is the gradient of its poisoned loss over its 10 epochs).
    - Similarity on ``fc2.weight`` only (the DBA code's ``client_grads[i][-2]``), on per-client
      histories summed over rounds (``fg_use_memory: true``); weights as ``FoolsGold.weights``.
    - The aggregate is ``agg = sum_i wv_i * g_i / n`` (divided by the number of clients, not by
      the sum of the weights).
    - The server applies it as one step of a fresh SGD optimizer (lr = ``benign_lr`` 0.1,
      momentum 0.9 but a fresh buffer, so none; weight decay ``weight_decay`` 5e-4) whose
      gradient is ``eta * agg``: ``G <- G - lr * (eta * agg + weight_decay * G)``. Weight decay
      is not multiplied by eta (the DBA code scales the gradients by eta before the optimizer
      adds weight decay); with the multi-shot eta = 1 the two readings agree.

    Reported weights are ``wv_i`` (the coefficient of ``g_i`` is ``wv_i / n``, FedAvg's ``1 / n``).
    """

    name = "foolsgold_dba"

    def __init__(self, eta: float, output_layer: slice, lr: float, weight_decay: float) -> None:
        super().__init__(eta, output_layer)
        self.lr, self.weight_decay = lr, weight_decay

    def aggregate(self, global_flat: torch.Tensor, updates: RoundUpdates) -> Aggregation:
        grads = updates.grad_sums
        if grads is None:
            raise RuntimeError("foolsgold_dba needs the clients' gradient sums (RoundUpdates.grad_sums); "
                               "the engines record them when the aggregator's spec sets needs_grad_sums")
        for client, grad in zip(updates.client_ids, grads):
            layer = grad[self.output_layer]
            self.history[client] = self.history.get(client, torch.zeros_like(layer)) + layer
        histories = torch.stack([self.history[c] for c in updates.client_ids])
        wv = self.weights(histories).to(grads.device)
        aggregate = (wv @ grads) / len(updates)
        new = global_flat - self.lr * (self.eta * aggregate + self.weight_decay * global_flat)
        return Aggregation(new, wv.clone(), {"foolsgold_weights": wv.tolist()})


def krum_scores(deltas: torch.Tensor, f: int) -> torch.Tensor:
    """Sum of squared distances of each update to its n - f - 2 nearest other updates."""
    n = len(deltas)
    k = n - f - 2
    squared = torch.cdist(deltas, deltas).pow(2)
    squared.fill_diagonal_(float("inf"))
    return squared.topk(k, dim=1, largest=False).values.sum(1)


class Krum(Aggregator):
    """Krum (m = 1) or Multi-Krum (mean of the m best scores) with f assumed attackers."""

    name = "krum"

    def __init__(self, eta: float, f: int, m: int = 1) -> None:
        super().__init__(eta)
        self.f, self.m = f, m

    def aggregate(self, global_flat: torch.Tensor, updates: RoundUpdates) -> Aggregation:
        n = len(updates)
        if n - self.f - 2 < 1:
            raise ConfigError(f"Krum needs n - f - 2 >= 1: n={n}, f={self.f}")
        m = min(self.m or n - self.f, n)
        chosen = krum_scores(updates.deltas, self.f).argsort()[:m]
        weights = torch.zeros(n, device=updates.deltas.device)
        weights[chosen] = n / m
        return Aggregation(global_flat + self.eta * updates.deltas[chosen].mean(0), weights,
                           {"selected": [updates.client_ids[i] for i in chosen.tolist()]})


class CoordinateMedian(Aggregator):
    """Coordinate-wise median (the mean of the two middle values when n is even)."""

    name = "median"

    def aggregate(self, global_flat: torch.Tensor, updates: RoundUpdates) -> Aggregation:
        n = len(updates)
        trim = (n - 1) // 2  # values dropped at each end: 1 (n odd) or 2 (n even) remain
        return _trimmed(global_flat, updates, trim, self.eta)


class TrimmedMean(Aggregator):
    """Coordinate-wise mean after dropping the beta*n largest and beta*n smallest values."""

    name = "trimmed_mean"

    def __init__(self, eta: float, beta: float) -> None:
        super().__init__(eta)
        self.beta = beta

    def aggregate(self, global_flat: torch.Tensor, updates: RoundUpdates) -> Aggregation:
        trim = int(math.floor(self.beta * len(updates)))
        return _trimmed(global_flat, updates, trim, self.eta)


def _trimmed(global_flat: torch.Tensor, updates: RoundUpdates, trim: int, eta: float) -> Aggregation:
    n = len(updates)
    if 2 * trim >= n:
        raise ConfigError(f"cannot trim {trim} values from each end of {n} updates")
    ordered, order = updates.deltas.sort(dim=0)
    kept = ordered[trim : n - trim]
    used = torch.zeros_like(updates.deltas, dtype=torch.bool)
    used.scatter_(0, order[trim : n - trim], True)
    weights = used.float().mean(1) * n / (n - 2 * trim)  # share of coordinates used, FedAvg scale
    return Aggregation(global_flat + eta * kept.mean(0), weights, {"trimmed_per_end": trim})


class Flame(Aggregator):
    """FLAME (Nguyen et al.): HDBSCAN on pairwise cosine distances (min cluster size n/2 + 1,
    min_samples 1, a single cluster allowed), keep the largest cluster, clip the kept updates to
    S = the (true) median of the L2 norms of all updates, average, add N(0, (lambda * S)^2)
    noise per coordinate.

    ``on="models"`` (registered as ``flame``) clusters the uploaded local models ``G + delta_i``,
    as the FLAME paper does (its cosine distances are between the local models' weight vectors);
    ``on="updates"`` (registered as ``flame_updates``, dbalib's first version, kept as a named
    variant) clusters the updates ``delta_i``. Near a trained ``G`` the models' cosines are all
    close to 1 and their distances tiny, but HDBSCAN's tree is invariant to a common scale of the
    distances; they are computed in float64 from ``G`` and the updates.
    """

    name = "flame"

    def __init__(self, eta: float, noise_lambda: float, seed: int, on: str = "models") -> None:
        super().__init__(eta)
        if on not in ("models", "updates"):
            raise ValueError(f"FLAME clusters 'models' or 'updates', not {on!r}")
        self.noise_lambda, self.seed, self.on = noise_lambda, seed, on

    @staticmethod
    def cluster(vectors: torch.Tensor) -> np.ndarray:
        """Boolean mask of the members of the largest HDBSCAN cluster of ``vectors`` (rows) under
        the cosine distance."""
        from sklearn.cluster import HDBSCAN

        n = len(vectors)
        d64 = vectors.double()
        unit = d64 / torch.clamp(d64.norm(dim=1, keepdim=True), min=1e-300)
        # 1 - cos(a, b) = |a/|a| - b/|b||^2 / 2: no cancellation when every cosine is near 1
        gaps = torch.cdist(unit, unit, compute_mode="donot_use_mm_for_euclid_dist").cpu().numpy()
        distances = np.clip((gaps**2 + (gaps**2).T) / 4, 0.0, 2.0)  # exactly symmetric
        # round at 9 significant digits of the largest distance, so that float noise cannot split
        # equal vectors whatever the scale (the models' distances are ~1e-4, the updates' ~1)
        spread = float(distances.max())
        if spread > 0:
            distances = np.round(distances, int(np.clip(9 - np.floor(np.log10(spread)), 9, 300)))
        np.fill_diagonal(distances, 0.0)
        labels = HDBSCAN(min_cluster_size=n // 2 + 1, min_samples=1, metric="precomputed",
                         allow_single_cluster=True, copy=True).fit(distances).labels_
        if (labels < 0).all():
            return np.ones(n, dtype=bool)  # no cluster at all: keep everyone (then clip + noise)
        largest = np.bincount(labels[labels >= 0]).argmax()
        return labels == largest

    def aggregate(self, global_flat: torch.Tensor, updates: RoundUpdates) -> Aggregation:
        n = len(updates)
        vectors = updates.deltas.double() + global_flat.double() if self.on == "models" else updates.deltas
        keep = torch.as_tensor(self.cluster(vectors), device=updates.deltas.device)
        clip_to = float(true_median(updates.norms))
        factors = torch.clamp(clip_to / torch.clamp(updates.norms, min=1e-12), max=1.0) * keep.float()
        k = int(keep.sum())
        mean = (factors @ updates.deltas) / k
        noise = gaussian(global_flat, self.noise_lambda * clip_to, self.seed, updates.round)
        return Aggregation(global_flat + self.eta * mean + noise, factors * n / k,
                           {"kept": k, "clip_to": clip_to})


class ConsensusClip(Aggregator):
    """Ours, against multi-shot DBA: trust each update by its agreement with a robust consensus.

    Measured on multi-shot DBA (rounds 11-14, seed 0), the unscaled poisoned updates have benign-
    looking norms (1.8-2.2 against 0.7-1.9), so norm rules cannot see them; but each attacker
    fits its own trigger with ten epochs of training and its update is nearly orthogonal to the
    benign ones (cosine -0.15..0.1), which agree with each other (0.1..0.5). The four attackers
    also disagree among themselves (each has a different local trigger), which is why
    FoolsGold's similarity penalty rewards them instead.

    1. consensus = coordinate-wise median of the round's updates (robust while attackers are
       fewer than half);
    2. s_i = cosine(delta_i, consensus); a client is rejected if s_i <= 0 or s_i is below
       ``ratio`` x the median of the s_j (benign clients set that median);
    3. kept updates are clipped to the median update norm (neutralising model-replacement
       scaling) and averaged with weights s_i; G <- G + eta * weighted mean.

    Every median is the true median (``true_median``: the mean of the two middle values of an
    even count), not torch's lower median.
    """

    name = "consensus"

    def __init__(self, eta: float, ratio: float) -> None:
        super().__init__(eta)
        self.ratio = ratio

    def aggregate(self, global_flat: torch.Tensor, updates: RoundUpdates) -> Aggregation:
        deltas, norms, n = updates.deltas, updates.norms, len(updates)
        consensus = true_median(deltas, dim=0)
        cosine = (deltas @ consensus) / torch.clamp(norms * consensus.norm(), min=1e-12)
        threshold = max(0.0, self.ratio * float(true_median(cosine)))
        trust = torch.where(cosine > threshold, cosine, torch.zeros_like(cosine))
        if float(trust.sum()) == 0:
            return Aggregation(global_flat.clone(), trust, {"threshold": threshold})
        clip_to = float(true_median(norms))
        factors = torch.clamp(clip_to / torch.clamp(norms, min=1e-12), max=1.0)
        coefficients = trust * factors / trust.sum()
        return Aggregation(global_flat + self.eta * (coefficients @ deltas), coefficients * n,
                           {"threshold": threshold, "clip_to": clip_to})


class _ServerRule(Aggregator):
    """Base of the rules that use the server's clean root set (``dbalib.core.server.ServerData``)."""

    def __init__(self, eta: float, server, seed: int) -> None:
        super().__init__(eta)
        self.server, self.seed = server, seed

    def _server(self):
        if self.server is None:
            raise RuntimeError(f"{self.name} needs the server's root set (make_aggregator(..., server=ServerData))")
        return self.server


class FLTrust(_ServerRule):
    """FLTrust (Cao et al., NDSS 2021), on model updates.

    The server trains one local epoch on its root set from G with the benign settings and gets
    its own update g0. Each client gets the trust score TS_i = ReLU(cos(delta_i, g0)) and its
    update is rescaled to g0's norm; the aggregate ``sum_i TS_i * delta_i * |g0| / |delta_i| /
    sum_i TS_i`` is applied with the server learning rate, ``G <- G + eta * aggregate`` (the
    paper's global learning rate; with dbalib's eta = 0.1 of single-shot runs the step is a tenth
    of FLTrust's own). No trusted client (all TS_i = 0): G stays.

    Reported weights are the trust shares ``m * TS_i / sum_j TS_j`` (1 = an average share): the
    rescaling to ``|g0|`` normalises magnitudes for every client alike and is not counted as a
    rejection; ``info`` gives |g0|.
    """

    name = "fltrust"

    def aggregate(self, global_flat: torch.Tensor, updates: RoundUpdates) -> Aggregation:
        reference = self._server().train(global_flat, self.seed, updates.round).to(updates.deltas.device)
        deltas, norms, m = updates.deltas, updates.norms, len(updates)
        g0_norm = reference.norm()
        cosine = (deltas @ reference) / torch.clamp(norms * g0_norm, min=1e-12)
        trust = torch.relu(cosine)
        total = float(trust.sum())
        info = {"server_update_norm": float(g0_norm), "trust": trust.tolist()}
        if total == 0:
            return Aggregation(global_flat.clone(), torch.zeros_like(trust), info)
        coefficients = trust * g0_norm / torch.clamp(norms, min=1e-12) / total
        return Aggregation(global_flat + self.eta * (coefficients @ deltas), trust * m / total, info)


class ValidationFilter(_ServerRule):
    """Ours: leave-one-out validation on the server's root set, then FedAvg over the kept.

    With ``A(S) = root accuracy of G + eta * mean_{i in S} delta_i`` (the candidate global model
    of FedAvg over the clients S), client i is dropped when leaving it out improves the root
    accuracy by more than ``validation_tolerance``: ``A(all but i) - A(all) > tolerance``
    (accuracy, the server's "test on clean data"; with 100 root images one image is 0.01, so the
    default 0 drops a client whose removal fixes at least one image). The kept clients are
    averaged over their number (as ``abandon``); if every client is dropped G stays.
    Several attackers in one round shield each other: leaving one out keeps the others.
    """

    name = "validation_filter"

    def __init__(self, eta: float, server, seed: int, tolerance: float) -> None:
        super().__init__(eta, server, seed)
        self.tolerance = tolerance

    def aggregate(self, global_flat: torch.Tensor, updates: RoundUpdates) -> Aggregation:
        server, deltas, m = self._server(), updates.deltas, len(updates)
        total = deltas.sum(0)
        candidates = [global_flat + (self.eta / m) * total]
        if m > 1:
            candidates += [global_flat + (self.eta / (m - 1)) * (total - deltas[i]) for i in range(m)]
        accuracy = server.accuracy(torch.stack(candidates)).to(deltas.device)
        if m > 1:
            gain = accuracy[1:] - accuracy[0]
            kept = (gain <= self.tolerance).float()
        else:
            gain, kept = torch.zeros(1, device=deltas.device), torch.ones(1, device=deltas.device)
        k = float(kept.sum())
        info = {"root_accuracy": float(accuracy[0]), "leave_one_out_gain": gain.tolist()}
        if k == 0:
            return Aggregation(global_flat.clone(), kept, info)
        return Aggregation(global_flat + (self.eta / k) * (kept @ deltas), kept * m / k, info)


def _validate_krum(cfg: Config) -> None:
    if cfg.clients_per_round - cfg.krum_f - 2 < 1:
        raise ConfigError(f"Krum needs clients_per_round - krum_f - 2 >= 1 (clients_per_round="
                          f"{cfg.clients_per_round}, krum_f={cfg.krum_f})")
    if cfg.multikrum_m > cfg.clients_per_round:
        raise ConfigError(f"multikrum_m={cfg.multikrum_m} exceeds clients_per_round={cfg.clients_per_round}")


def _norm(factory):
    def build(cfg, layout, eta, seed):
        _check_norm_params(cfg)
        return factory(cfg, layout, eta, seed)
    return build


def _krum(multi: bool):
    def build(cfg, layout, eta, seed):
        _validate_krum(cfg)
        return Krum(eta, cfg.krum_f, (cfg.multikrum_m or cfg.clients_per_round - cfg.krum_f) if multi else 1)
    return build


def _output_layer(layout: dict[str, slice]) -> slice:
    """Flat slice covering the last layer's weight and bias (fc2 of MnistNet)."""
    names = [n for n in layout if n.startswith("fc2.")] or list(layout)[-2:]
    return slice(min(layout[n].start for n in names), max(layout[n].stop for n in names))


# every rule of the registry (``dbalib.core.registry.AGGREGATORS``) built from a config:
# factory(cfg, layout, eta, seed) -> Aggregator, plus the server's root data for a rule that needs_root
FACTORIES = {
    "fedavg": lambda cfg, layout, eta, seed: FedAvg(eta),
    "norm_threshold": _norm(lambda cfg, layout, eta, seed: NormThreshold(eta, cfg)),
    "abandon": _norm(lambda cfg, layout, eta, seed: Abandon(eta, cfg)),
    "norm_clip": _norm(lambda cfg, layout, eta, seed: NormClip(eta, cfg)),
    "weak_dp": _norm(lambda cfg, layout, eta, seed: WeakDP(eta, cfg, seed)),
    "rfa": lambda cfg, layout, eta, seed: RFA(eta),
    "foolsgold": lambda cfg, layout, eta, seed: FoolsGold(eta, _output_layer(layout)),
    "foolsgold_dba": lambda cfg, layout, eta, seed: FoolsGoldDBA(eta, layout["fc2.weight"], cfg.benign_lr,
                                                                 cfg.weight_decay),
    "krum": _krum(False),
    "multikrum": _krum(True),
    "median": lambda cfg, layout, eta, seed: CoordinateMedian(eta),
    "trimmed_mean": lambda cfg, layout, eta, seed: TrimmedMean(eta, cfg.trim_beta),
    "flame": lambda cfg, layout, eta, seed: Flame(eta, cfg.flame_lambda, seed, on="models"),
    "flame_updates": lambda cfg, layout, eta, seed: Flame(eta, cfg.flame_lambda, seed, on="updates"),
    "weak_dp_dba": lambda cfg, layout, eta, seed: WeakDPDBA(eta, cfg.dp_sigma, seed),
    "consensus": lambda cfg, layout, eta, seed: ConsensusClip(eta, cfg.consensus_ratio),
    "fltrust": lambda cfg, layout, eta, seed, server: FLTrust(eta, server, seed),
    "validation_filter": lambda cfg, layout, eta, seed, server: ValidationFilter(eta, server, seed,
                                                                                 cfg.validation_tolerance),
}


def make_aggregator(cfg: Config, layout: dict[str, slice], eta: float | None = None, seed: int = 0,
                    server=None) -> Aggregator:
    """The aggregator named by ``cfg.aggregator`` (``eta`` overrides ``cfg.eta``, for pretraining);
    ``seed`` seeds any randomness it adds (noise); ``server`` is the server's clean data, passed
    to the aggregators that need it (``AggregatorSpec.needs_root``)."""
    spec = aggregator_spec(cfg.aggregator)
    factory = FACTORIES[cfg.aggregator]
    eta = cfg.eta if eta is None else eta
    if spec.needs_root:
        return factory(cfg, layout, eta, seed, server)
    return factory(cfg, layout, eta, seed)
