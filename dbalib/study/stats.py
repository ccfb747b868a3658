"""Intervals over seeds and the verdict rules of the study's claims.

Every claim compares a per-seed quantity (or a per-seed *paired* difference: DBA and its CBA
counterpart run on the same seeds, hence the same pretrained model and client stream) with a
threshold from ``THRESHOLDS``, the one table of every threshold (fixed before the verdicts were
computed, printed in the paper as ``paper/generated/thresholds.tex``). Every value but ``margin``
is the one dbalib's checks used before verdicts had intervals (the notebooks' DROP_THRESHOLD and
the inline constants of the claims), kept unchanged: none was tuned to an outcome; ``paper gap`` is
the DBA paper's own number, fixed before notebook 08's runs.

- ``interval(values)``: 95% interval of the mean of the per-seed values: a Student t-interval below
  ``BOOTSTRAP_FROM`` seeds (a bootstrap is too narrow with few seeds), a percentile bootstrap
  from there on. One seed gives no interval (``method`` "none") and every verdict on it is
  "inconclusive". With ``bounds`` (``RATE_BOUNDS`` for a rate, ``DIFFERENCE_BOUNDS`` for a
  difference of two rates) the interval is cut at what the quantity can be: a mean of rates is
  never above 100%, whatever the t-interval's symmetric width says.
- ``verdict(iv, value, side)``: "agrees" when the whole interval lies on the claimed side of the
  threshold (strictly: an interval that touches it decides nothing), "differs" when it lies wholly
  on the other side, "inconclusive" otherwise.
- ``combine(verdicts)``: a claim made of several comparisons agrees when all of them agree and
  differs as soon as one differs; otherwise it is inconclusive.
- ``sensitivity(iv, value, side)``: the verdict with the threshold scaled by -50% and +50%.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_FROM = 20  # seeds: a percentile bootstrap from here on, a t-interval below
BOOTSTRAP_SAMPLES = 10_000
BOOTSTRAP_SEED = 0  # the bootstrap's resampling is reproducible
RATE_BOUNDS = (0.0, 1.0)  # a rate (ASR, accuracy) as a fraction
DIFFERENCE_BOUNDS = (-1.0, 1.0)  # a difference of two rates

AGREES, DIFFERS, INCONCLUSIVE = "agrees", "differs", "inconclusive"
VERDICTS = (AGREES, DIFFERS, INCONCLUSIVE)
SENSITIVITY_STEPS = {"-50%": 0.5, "+50%": 1.5}
TOUCH = 1e-12  # an interval end this close to the threshold touches it (float rounding is no evidence)


@dataclass(frozen=True)
class Threshold:
    """One named threshold: its value, unit, what it means and why it has this value."""

    name: str
    value: float
    unit: str  # "fraction" (a level, printed as %), "fraction difference" (printed as points) or "difference"
    meaning: str
    reason: str
    role: str = "comparison"  # "comparison": an interval is compared with it; "level": defines a quantity

    def scaled(self, factor: float) -> "Threshold":
        return Threshold(self.name, self.value * factor, self.unit, self.meaning, self.reason, self.role)

    def to_dict(self) -> dict:
        return asdict(self)


THRESHOLDS: dict[str, Threshold] = {t.name: t for t in (
    Threshold("drop", 0.05, "fraction difference",
              "a one-round fall of the clean accuracy larger than this is a drop",
              "the study's 'significant drops' are tens of points; 5 points is ten times the binomial noise "
              "of an accuracy on the 10,000 test images (at most 0.5 points)"),
    Threshold("activation", 0.20, "fraction difference",
              "a local trigger is activated when its ASR exceeds the control (clean images predicted as "
              "the target, recorded by every evaluation; in results older than that record, the trigger's "
              "ASR on the pretrained model) by this",
              "far above test-subset noise (at most 1.7 points at 900 images) and above a general bias of "
              "the model towards the target, which the control measures"),
    Threshold("decay", 0.05, "fraction difference",
              "an ASR decays when it falls by more than this from its peak (or from the last attack) "
              "to the final round",
              "the size of a clean-accuracy drop: several times the binomial noise of one ASR"),
    Threshold("persistent", 0.90, "fraction",
              "an ASR above this is 'near 100%' (the study's continuous DBA)",
              "the study reads its curve as 'nearly 100%'; 90% leaves room for seed noise and is the DBA "
              "paper's order of magnitude (89% for single-shot DBA)"),
    Threshold("low", 0.30, "fraction",
              "a local trigger's ASR below this is 'quite low' (the study, VI-B)",
              "well under half: far from the global trigger's peak"),
    Threshold("close", 0.15, "fraction difference",
              "two ASRs within this of each other are 'close' (last local trigger and global, VI-B)",
              "half the 'low' bound: closer than a low trigger can be to a high one"),
    Threshold("converged", 0.90, "fraction",
              "an attack has converged in the first round its global-trigger ASR reaches this "
              "(defines rounds-to-converge; no interval is compared with it)",
              "the same level as 'persistent'", role="level"),
    Threshold("stopped", 0.20, "fraction",
              "a defence stops an attack when the attack's global-trigger ASR stays below this from its "
              "first attacked round to the end of the run (its per-seed peak)",
              "the defence matrix's earlier STOP_BELOW: far above a never-attacked model's global-trigger "
              "ASR (about 1%) and far below any undefended attack of the study (60-100%)"),
    Threshold("destroyed", 0.50, "fraction",
              "a run's model is destroyed when its final clean accuracy is below this, or when it diverged "
              "(the model stopped being finite); a defence matrix cell with a destroyed seed gets the verdict "
              "'model destroyed', which counts as not stopping the attack (a model at chance level can show a "
              "low ASR); 'a rule stops single-shot DBA' also needs the final clean accuracy's interval above it",
              "halfway between chance (10%) and every undefended run of the study (above 90%). Set when the "
              "first collapsed matrix cell (clean accuracy about 10%) was found, before the matrix was complete"),
    Threshold("paper gap", 0.68, "fraction difference",
              "the DBA paper's single-shot persistence gap on MNIST: DBA minus CBA global-trigger ASR 50 "
              "rounds after the attack (89% against 21%); a gap reaches it when its interval lies above",
              "the DBA paper's own number, not a choice of ours; fixed before notebook 08's runs"),
    Threshold("margin", 0.0, "difference",
              "'higher', 'faster', 'decays faster': a paired per-seed difference (points of ASR or "
              "rounds) above this",
              "the claims state an order, not a size: the interval excluding zero is the evidence. Scaling "
              "zero leaves it at zero, so these comparisons show no threshold sensitivity"),
)}



@dataclass(frozen=True)
class Interval:
    """Mean of per-seed values (or paired differences) and its interval."""

    estimate: float
    lo: float
    hi: float
    n: int
    sd: float
    method: str
    note: str = ""

    @property
    def defined(self) -> bool:
        return self.n >= 2 and not (math.isnan(self.lo) or math.isnan(self.hi))


def _clean(values: Iterable[float]) -> np.ndarray:
    array = np.asarray(list(values), dtype=float)
    return array[~np.isnan(array)]


def t_quantile(n: int, confidence: float = CONFIDENCE) -> float:
    """Two-sided ``confidence`` quantile of Student's t with ``n - 1`` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.5 + confidence / 2, n - 1))


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Student t-interval of the mean."""
    x = _clean(values)
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, math.nan, "none", "no value")
    mean = float(x.mean())
    if n == 1:
        return Interval(mean, math.nan, math.nan, 1, math.nan, "none",
                        "one seed: no interval can be computed")
    sd = float(x.std(ddof=1))
    half = t_quantile(n, confidence) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, sd, f"t-interval ({n - 1} df)")


def bootstrap_interval(values: Sequence[float], confidence: float = CONFIDENCE,
                       samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED) -> Interval:
    """Percentile bootstrap interval of the mean (reproducible: fixed resampling seed)."""
    x = _clean(values)
    n = len(x)
    if n < 2:
        return t_interval(x, confidence)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, n, size=(samples, n))].mean(axis=1)
    lo, hi = np.quantile(means, [0.5 - confidence / 2, 0.5 + confidence / 2])
    return Interval(float(x.mean()), float(lo), float(hi), n, float(x.std(ddof=1)),
                    f"percentile bootstrap ({samples:,} resamples)")


def bounded(iv: Interval, bounds: tuple[float, float] | None) -> Interval:
    """``iv`` with its ends cut at ``bounds`` (lo, hi) of what the quantity can be (None: as it is)."""
    if bounds is None or not iv.defined:
        return iv
    lo, hi = max(iv.lo, bounds[0]), min(iv.hi, bounds[1])
    if (lo, hi) == (iv.lo, iv.hi):
        return iv
    note = "; ".join(filter(None, [iv.note, f"cut at the possible range [{bounds[0]:g}, {bounds[1]:g}]"]))
    return Interval(iv.estimate, lo, hi, iv.n, iv.sd, iv.method, note)


def interval(values: Sequence[float], confidence: float = CONFIDENCE, bootstrap_from: int = BOOTSTRAP_FROM,
             bounds: tuple[float, float] | None = None) -> Interval:
    """t-interval below ``bootstrap_from`` values, percentile bootstrap from there on; cut at ``bounds``."""
    x = _clean(values)
    iv = bootstrap_interval(x, confidence) if len(x) >= bootstrap_from else t_interval(x, confidence)
    return bounded(iv, bounds)


def paired(a: Mapping[int, float], b: Mapping[int, float]) -> tuple[list[int], list[float], list[float]]:
    """The seeds both arms have (sorted) and each arm's values on them."""
    seeds = sorted(set(a) & set(b))
    return seeds, [float(a[s]) for s in seeds], [float(b[s]) for s in seeds]


def verdict(iv: Interval, value: float, side: str) -> str:
    """``side`` "above": the claim is quantity > value; "below": quantity < value."""
    if side not in ("above", "below"):
        raise ValueError(f"side must be 'above' or 'below', not {side!r}")
    if not iv.defined:
        return INCONCLUSIVE
    above, below = iv.lo > value + TOUCH, iv.hi < value - TOUCH  # wholly above / wholly below
    if side == "above":
        return AGREES if above else DIFFERS if below else INCONCLUSIVE
    return AGREES if below else DIFFERS if above else INCONCLUSIVE


def combine(verdicts: Iterable[str]) -> str:
    """All agree: agrees; any differs: differs; otherwise inconclusive (no comparison: inconclusive)."""
    verdicts = list(verdicts)
    if not verdicts:
        return INCONCLUSIVE
    if DIFFERS in verdicts:
        return DIFFERS
    return AGREES if all(v == AGREES for v in verdicts) else INCONCLUSIVE


def any_of(verdicts: Iterable[str]) -> str:
    """For a claim that *some* case holds: any agrees: agrees; all differ: differs; otherwise
    inconclusive (no comparison: inconclusive)."""
    verdicts = list(verdicts)
    if AGREES in verdicts:
        return AGREES
    return DIFFERS if verdicts and all(v == DIFFERS for v in verdicts) else INCONCLUSIVE


def sensitivity(iv: Interval, value: float, side: str) -> dict[str, str]:
    """The verdict with the threshold moved by -50% and +50%."""
    return {step: verdict(iv, value * factor, side) for step, factor in SENSITIVITY_STEPS.items()}
