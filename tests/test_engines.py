"""The batched engine against the sequential reference: same clients, same updates, same curves.

Tolerance. Both engines give every client the same batches, learning rates, poisoned samples
and optimizer, and differ only in how float32 sums are ordered inside the kernels (grouped
convolutions and batched matrix products against one network at a time). One benign client
(one epoch, about 10 SGD steps) then agrees to a relative L2 difference of about 4e-7, i.e.
float32 rounding; we require <= 1e-5. A poisoned client takes about ten times as many steps and
SGD amplifies rounding differences step by step: we measured about 3e-4 after 100 steps and
require <= 5e-3 (a real error, such as a wrong batch, a skipped step or a wrong learning rate,
gives differences of order 1e-1 or more; ``test_a_wrong_schedule_is_caught`` checks that the
tolerance catches one).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

import dbalib
from dbalib.core import stacked
from dbalib.core.batched import BatchedTrainer, ClientJob
from dbalib.core.clients import LocalTrainer, Poison
from dbalib.core.config import Config
from dbalib.core.data import client_shards
from dbalib.core.model import MnistNet, get_flat, new_model
from dbalib.core.simulation import check, run_seeds, trigger_of

from .conftest import tiny

BENIGN_TOLERANCE, POISONED_TOLERANCE = 1e-5, 5e-3
METRICS = ["clean_acc", "asr_global", "asr_local_0", "asr_local_1", "asr_local_2", "asr_local_3", "asr_no_trigger"]


def test_pack_and_unpack_are_exact_inverses():
    flats = torch.stack([get_flat(new_model(s)) for s in range(3)])
    assert torch.equal(stacked.unpack(stacked.pack(flats)), flats)
    assert stacked.N_PARAMS == flats.shape[1]


def test_stacked_forward_is_each_network_on_its_own_images():
    models = [new_model(s) for s in range(3)]
    x = torch.rand(3, 16, 1, 28, 28)
    logits = stacked.forward(stacked.pack(torch.stack([get_flat(m) for m in models])), x)
    for k, model in enumerate(models):
        torch.testing.assert_close(logits[k], model(x[k]), rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def trainers(mnist):
    cfg = tiny("single_shot_dba", attack_rounds=(4, 5, 6, 7))
    shards = [torch.as_tensor(s, dtype=torch.long) for s in client_shards(cfg, mnist.train_y.numpy())]
    sequential = LocalTrainer(mnist.train_x, mnist.train_y, shards, cfg, torch.device("cpu"))
    batched = BatchedTrainer(mnist.train_x, mnist.train_y, shards, cfg, torch.device("cpu"))
    return cfg, sequential, batched


def _attacked_round(cfg: Config):
    """An attacked round: two DBA attackers (local triggers 0 and 1) among eight benign clients,
    clients of different sizes (partial last batches), two start models (two seeds)."""
    trigger = trigger_of(cfg)
    poisons = {41: Poison(trigger.mask(0), 1.0, 2, cfg.poison_per_batch),
               73: Poison(trigger.mask(1), 1.0, 2, cfg.poison_per_batch)}
    clients = [41, 73, 3, 8, 15, 22, 37, 60, 88, 99]
    jobs = [ClientJob(s, c, seed, 12, poisons.get(c)) for s, seed in enumerate((0, 5)) for c in clients]
    starts = torch.stack([get_flat(new_model(0)), get_flat(new_model(5))])
    return starts, jobs


@pytest.mark.slow
def test_one_attacked_round_gives_every_client_the_same_update(trainers):
    cfg, sequential, batched = trainers
    starts, jobs = _attacked_round(cfg)
    counted = sequential.samples_trained, batched.samples_trained
    together = batched.train(starts, jobs)
    assert together.shape == (len(jobs), stacked.N_PARAMS)
    for job, update in zip(jobs, together):
        alone = sequential.train(starts[job.start], job.client, job.seed, job.round, job.poison)
        relative = float((update - alone).norm() / alone.norm())
        limit = POISONED_TOLERANCE if job.poison is not None else BENIGN_TOLERANCE
        assert relative <= limit, f"client {job.client} seed {job.seed}: relative difference {relative:.2e}"
    # the same samples were trained on (padding is not counted)
    assert batched.samples_trained - counted[1] == sequential.samples_trained - counted[0]


def test_a_wrong_schedule_is_caught(trainers):
    """The tolerance is tight enough to see a real mistake: a poisoned client on the benign schedule."""
    cfg, sequential, batched = trainers
    starts, jobs = _attacked_round(cfg)
    job = jobs[0]
    right = sequential.train(starts[0], job.client, job.seed, job.round, job.poison)
    wrong = batched.train(starts, [dataclasses.replace(job, seed=job.seed + 1)])[0]  # another batch order
    assert float((wrong - right).norm() / right.norm()) > 10 * POISONED_TOLERANCE


def test_a_client_without_samples_returns_a_zero_update(mnist):
    cfg = tiny("clean")
    shards = [torch.arange(100), torch.arange(0)]
    batched = BatchedTrainer(mnist.train_x, mnist.train_y, shards, cfg, torch.device("cpu"))
    updates = batched.train(get_flat(MnistNet())[None], [ClientJob(0, 0, 0, 1), ClientJob(0, 1, 0, 1)])
    assert updates[0].norm() > 0 and torch.count_nonzero(updates[1]) == 0


RUN = dict(attack_rounds=(4, 5, 6, 7), rounds=7)


@pytest.fixture(scope="module")
def short_runs(tmp_path_factory):
    """A short multi-shot DBA run (seeds 0 and 1) in each engine, pretraining included."""
    runs = {"cache": str(tmp_path_factory.mktemp("pretrain"))}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBALIB_CACHE", runs["cache"])  # pretraining computed here
        for engine in ("sequential", "batched"):
            cfg = check(tiny("multi_shot_dba", engine=engine, **RUN))
            runs[engine] = run_seeds(cfg, [0, 1], show_progress=False)
    return runs


@pytest.mark.slow
def test_short_real_run_gives_the_same_curves_in_both_engines(short_runs):
    for (seq, _), (bat, info) in zip(short_runs["sequential"], short_runs["batched"]):
        assert list(seq["round"]) == list(bat["round"]) and info["engine"] == "batched"
        difference = (seq[METRICS] - bat[METRICS]).abs().max()
        assert difference["clean_acc"] <= 0.02, difference
        assert difference[[m for m in METRICS if m != "clean_acc"]].max() <= 0.05, difference
        assert (seq["attackers"] == bat["attackers"]).all()  # same selections, same attackers


@pytest.mark.slow
def test_batched_engine_is_deterministic_and_independent_of_lockstep_partners(short_runs, monkeypatch):
    monkeypatch.setenv("DBALIB_CACHE", short_runs["cache"])  # seed 1's pretrained model, made beside seed 0
    cfg = check(tiny("multi_shot_dba", engine="batched", **RUN))
    alone, _ = run_seeds(cfg, [1], show_progress=False)[0]
    together = short_runs["batched"][1][0]  # seed 1 computed beside seed 0
    timing = [c for c in alone.columns if c.startswith("seconds")]
    assert alone.drop(columns=timing).equals(together.drop(columns=timing))


def test_engine_is_resolved_and_part_of_the_cache_key():
    cfg = tiny("single_shot_dba", attack_rounds=(4, 5, 6, 7))
    assert cfg.engine == "auto" and check(cfg).engine == "sequential"  # the CPU default (benchmarks/NOTES.md)
    keys = {engine: check(cfg.with_overrides(engine=engine)).cache_key() for engine in ("sequential", "batched")}
    assert keys["sequential"] != keys["batched"]
    assert check(cfg).cache_key() == keys["sequential"]
    with pytest.raises(dbalib.ConfigError, match="engine"):
        cfg.with_overrides(engine="fast")


@pytest.mark.slow
def test_run_many_computes_the_seeds_of_a_batched_config_together(tmp_path, monkeypatch):
    from dbalib.core import simulation

    calls = []
    real = simulation.run_lanes

    def recording(lanes, show_progress=True, observer=None):
        calls.append([seed for _, seed in lanes])
        return real(lanes, show_progress, observer)

    monkeypatch.setattr(simulation, "run_lanes", recording)
    cfg = tiny("clean", rounds=4, engine="batched")
    result = dbalib.run_many([cfg], seeds=[0, 1, 2], out=tmp_path, progress=False)[0]
    assert calls == [[0, 1, 2]] and sorted(result.metrics["seed"].unique()) == [0, 1, 2]
    assert {i["lockstep_seeds"] for i in result.info.values()} == {3}


def test_gradient_sums_agree_between_the_trainers_and_ignore_nothing_but_weight_decay(trainers):
    """The sum of a client's raw per-batch gradients (for foolsgold_dba) is the same in both
    trainers, to the tolerance of the updates; recording it leaves the updates unchanged."""
    cfg, sequential, batched = trainers
    starts, jobs = _attacked_round(cfg)
    jobs = [j for j in jobs if j.start == 0][:4]  # two attackers and two benign clients, one seed
    plain = batched.train(starts, jobs)
    together = batched.train(starts, jobs, record_grads=True)
    assert torch.equal(plain, together) and batched.grad_sums.shape == together.shape
    for job, grad_sum in zip(jobs, batched.grad_sums):
        sequential.train(starts[job.start], job.client, job.seed, job.round, job.poison, record_grads=True)
        alone = sequential.grad_sum
        relative = float((grad_sum - alone).norm() / alone.norm())
        limit = POISONED_TOLERANCE if job.poison is not None else BENIGN_TOLERANCE
        assert relative <= limit, f"client {job.client}: relative difference {relative:.2e}"


def test_engines_fill_gradient_sums_only_for_an_aggregator_that_asks(mnist):
    from dbalib.core.attacks import AttackPlan
    from dbalib.core.engines import SeedRound
    from dbalib.core.simulation import _context

    sums = {}
    for engine in ("sequential", "batched"):
        for aggregator in ("fedavg", "foolsgold_dba"):
            cfg = check(tiny("multi_shot_dba", engine=engine, aggregator=aggregator, data_fraction=0.1,
                             attackers=(41,), attack_rounds=(4,), rounds=4))
            ctx = _context(cfg)
            plan = AttackPlan.from_config(cfg)
            poison = {41: Poison(trigger_of(cfg).mask(0), 1.0, 2, cfg.poison_per_batch)}
            (updates, malicious), = ctx.engine.train_round([SeedRound(0, get_flat(new_model(0)), plan, poison)], 4)
            assert malicious[0] and (updates.grad_sums is None) == (aggregator == "fedavg")
            sums[engine, aggregator] = updates.grad_sums
    seq, bat = sums["sequential", "foolsgold_dba"], sums["batched", "foolsgold_dba"]
    assert seq.shape == (10, stacked.N_PARAMS)
    assert float((seq - bat).norm(dim=1).div(seq.norm(dim=1)).max()) <= POISONED_TOLERANCE


@pytest.mark.parametrize("engine", ["sequential", "batched"])
def test_engines_let_adaptive_attackers_adapt_their_uploads(engine):
    from dbalib.core.attacks import AttackPlan
    from dbalib.core.defenses import true_median
    from dbalib.core.engines import SeedRound
    from dbalib.core.simulation import _context

    cfg = check(tiny("multi_shot_dba", engine=engine, adaptive="norm_spread", data_fraction=0.1, attackers=(41,),
                     attack_rounds=(4,), rounds=4, scale=100.0))
    ctx = _context(cfg)
    poison = {41: Poison(trigger_of(cfg).mask(0), 1.0, 2, cfg.poison_per_batch)}
    (updates, malicious), = ctx.engine.train_round(
        [SeedRound(0, get_flat(new_model(0)), AttackPlan.from_config(cfg), poison)], 4)
    benign = true_median(updates.norms[1:])
    assert malicious == [True] + [False] * 9 and float(updates.norms[0]) == pytest.approx(float(benign), rel=1e-4)


# --- lanes: configs that differ only in their aggregation, played in one lockstep group ---------------
@pytest.mark.slow
def test_a_lane_gives_what_its_config_gives_alone_beside_other_rules(short_runs, monkeypatch):
    """Seed 1 of multi-shot DBA under FedAvg, under the median and under the DBA code's FoolsGold
    (which makes the engine record gradient sums for every lane) in one lockstep group: each lane's
    metrics are those of its config run alone, bit for bit (seed 1 under FedAvg: computed beside seed 0)."""
    from dbalib.core.simulation import run_lanes

    monkeypatch.setenv("DBALIB_CACHE", short_runs["cache"])
    base = check(tiny("multi_shot_dba", engine="batched", **RUN))
    rules = [base, base.with_overrides(aggregator="median"), base.with_overrides(aggregator="foolsgold_dba")]
    lanes = run_lanes([(cfg, 1) for cfg in rules] + [(rules[1], 0)], show_progress=False)
    timing = [c for c in lanes[0][0].columns if c.startswith("seconds")]
    same = lambda a, b: a.drop(columns=timing).equals(b.drop(columns=timing))  # noqa: E731
    assert same(lanes[0][0], short_runs["batched"][1][0])
    for cfg, (frame, info) in zip(rules[1:], lanes[1:3]):
        alone = run_seeds(cfg, [1], show_progress=False)[0][0]
        assert same(frame, alone), cfg.aggregator
        assert info["lockstep_seeds"] == 4 and info["lockstep_configs"] == 3
    assert not same(lanes[0][0], lanes[1][0])  # the rules do differ


def test_lanes_must_differ_only_in_their_aggregation():
    from dbalib.core.simulation import lockstep_signature, run_lanes

    base = check(tiny("multi_shot_dba", engine="batched", **RUN))
    for change in (dict(aggregator="krum", krum_f=2), dict(aggregator="norm_clip", norm_bound_factor=2.0),
                   dict(aggregator="weak_dp", dp_sigma=0.1), dict(name="renamed")):
        assert lockstep_signature(base.with_overrides(**change)) == lockstep_signature(base), change
    for change in (dict(scale=2.0), dict(attack_rounds=(4, 5)), dict(eta=0.5), dict(rounds=8)):
        assert lockstep_signature(base.with_overrides(**change)) != lockstep_signature(base), change
    bound = base.with_overrides(adaptive="bound", aggregator="norm_clip")  # reads the norm rules' M itself
    assert lockstep_signature(bound.with_overrides(norm_bound_factor=2.0)) != lockstep_signature(bound)
    with pytest.raises(dbalib.ConfigError, match="differ only in their aggregation"):
        run_lanes([(base, 0), (base.with_overrides(scale=2.0), 0)], show_progress=False)
    with pytest.raises(dbalib.ConfigError, match="repeats"):
        run_lanes([(base, 0), (base, 0)], show_progress=False)


def test_lockstep_groups_put_a_matrix_row_together_seeds_first():
    from dbalib.core.sweep import lockstep_groups

    base = check(tiny("multi_shot_dba", engine="batched", **RUN))
    rules = [base.with_overrides(aggregator=a) for a in ("fedavg", "median", "rfa")]
    other = base.with_overrides(scale=2.0)
    jobs = [(cfg, seed) for cfg in rules + [other] for seed in (2, 0, 1)]
    per_config = lockstep_groups(jobs)
    assert [[seed for _, seed in g] for g in per_config] == [[0, 1, 2]] * 4
    assert all(len({c.cache_key() for c, _ in g}) == 1 for g in per_config)
    lanes = lockstep_groups(jobs, lanes=4)
    assert [len(g) for g in lanes] == [4, 4, 1, 3]  # the row's 9 lanes in groups of 4, then the other config
    assert [seed for _, seed in lanes[0]] == [0, 0, 0, 1] and {c.aggregator for c, _ in lanes[0]} == {"fedavg", "median", "rfa"}
    assert all(c.scale == 2.0 for c, _ in lanes[3])
