"""No silent wrong results: every injected fault is either recomputed correctly or refused with one
line naming the file (damaged seeds and checkpoints, stale summaries, diverged runs, crashing or
orphaned workers, full disks, bad inputs)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch

import dbalib
from dbalib import ConfigError, DbalibError
from dbalib.cli import main
from dbalib.core import simulation
from dbalib.core.atomic import sha256_bytes
from dbalib.core.errors import CorruptResultError, DivergedError, StorageError
from dbalib.core.paths import PROJECT_DIR
from dbalib.core.results import RunStore
from dbalib.core.sweep import SweepError, _run_local, check_seeds, run_many
from tests.conftest import tiny

TIMING = ["seconds_train", "seconds_aggregate", "seconds_eval"]
SMALL = dict(data_fraction=0.1, test_samples=500, pretrain_rounds=2, rounds=4)
CFG = tiny("single_shot_cba", attack_rounds=(3,), **SMALL)
CLI_SMALL = [f"--set={k}={v}" for k, v in SMALL.items()] + ["--set=attack_rounds=3", "--set=device=cpu", "--quiet"]


@pytest.fixture(scope="module", autouse=True)
def _own_cache(tmp_path_factory):
    """A pretraining cache of this module's own (shared by its tests)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DBALIB_CACHE", str(tmp_path_factory.mktemp("pretrain-cache")))
        yield


@pytest.fixture(scope="module")
def reference(tmp_path_factory, _own_cache):
    """Seeds 0 and 1 of CFG, computed once: (out folder, Result)."""
    out = tmp_path_factory.mktemp("reference")
    return out, dbalib.run(CFG, seeds=[0, 1], out=out, workers=1)


def _same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    a, b = (f.drop(columns=TIMING).sort_values(["seed", "round"]).reset_index(drop=True) for f in (a, b))
    return a.equals(b)


def _copy(reference, tmp_path) -> tuple[Path, RunStore]:
    out, result = reference
    shutil.copytree(out, tmp_path / "out")
    return tmp_path / "out", RunStore(tmp_path / "out", simulation.check(CFG))


def _rehash(json_path: Path, csv_path: Path, **changes) -> None:
    """Make the JSON agree with a (damaged) csv, as a careless edit or a bug would."""
    info = json.loads(json_path.read_text()) | {"csv_sha256": sha256_bytes(csv_path.read_bytes())} | changes
    json_path.write_text(json.dumps(info))


def _truncate(csv, js):
    csv.write_bytes(csv.read_bytes()[: len(csv.read_bytes()) // 2])


def _drop_last_row(csv, js):
    csv.write_text("".join(csv.read_text().splitlines(keepends=True)[:-1]))
    _rehash(js, csv)


def _empty(csv, js):
    csv.write_bytes(b"")


def _header_only(csv, js):
    csv.write_text(csv.read_text().splitlines(keepends=True)[0])
    _rehash(js, csv)


def _flip_digit(csv, js):
    text = csv.read_text()
    i = text.index("0.", text.index("\n")) + 2
    csv.write_text(text[:i] + ("1" if text[i] != "1" else "2") + text[i + 1:])


def _nan_asr(csv, js):
    rows = pd.read_csv(csv)
    rows.loc[rows.index[-1], "asr_global"] = float("nan")
    csv.write_text(rows.to_csv(index=False))
    _rehash(js, csv)


def _out_of_range_acc(csv, js):
    rows = pd.read_csv(csv)
    rows.loc[rows.index[-1], "clean_acc"] = 7.5
    csv.write_text(rows.to_csv(index=False))
    _rehash(js, csv)


def _corrupt_json(csv, js):
    js.write_text('{"seed": 1, "csv_sha2')


def _json_list(csv, js):
    js.write_text("[1, 2]")


def _json_missing(csv, js):
    js.unlink()


def _binary_csv(csv, js):
    csv.write_bytes(b"\xff\xfe\x00garbage\x00" * 50)
    _rehash(js, csv)


def _copied_from_seed_0(csv, js):
    shutil.copy(csv.with_name("seed-0.csv"), csv)
    shutil.copy(js.with_name("seed-0.json"), js)


def _copied_from_seed_0_relabelled(csv, js):
    shutil.copy(csv.with_name("seed-0.csv"), csv)
    shutil.copy(js.with_name("seed-0.json"), js)
    _rehash(js, csv, seed=1)


def _other_config(csv, js):
    _rehash(js, csv, cache_key="0123456789abcdef")


def _rounds_shuffled(csv, js):
    rows = pd.read_csv(csv)
    rows = rows.iloc[::-1]
    csv.write_text(rows.to_csv(index=False))
    _rehash(js, csv)


SEED_FAULTS = [_truncate, _drop_last_row, _empty, _header_only, _flip_digit, _nan_asr, _out_of_range_acc,
               _corrupt_json, _json_list, _json_missing, _binary_csv, _copied_from_seed_0,
               _copied_from_seed_0_relabelled, _other_config, _rounds_shuffled]


@pytest.mark.slow
@pytest.mark.parametrize("damage", SEED_FAULTS, ids=[f.__name__.strip("_") for f in SEED_FAULTS])
def test_damaged_seed_is_refused_then_recomputed(damage, reference, tmp_path):
    out, store = _copy(reference, tmp_path)
    csv, js = store.seeds_dir / "seed-1.csv", store.seeds_dir / "seed-1.json"
    damage(csv, js)
    with pytest.raises(CorruptResultError) as refused:  # reading it directly: refused, one line, the file
        store.load_seed(1)
    message = str(refused.value)
    assert "\n" not in message and ("seed-1.csv" in message or "seed-1.json" in message)
    with pytest.warns(UserWarning, match="seed-1"):
        assert not store.has_seed(1) and store.has_seed(0)
    with pytest.warns(UserWarning, match="recomputed"):
        result = dbalib.run(CFG, seeds=[0, 1], out=out, workers=1)
    assert _same(result.metrics, reference[1].metrics)  # recomputed, identical
    assert store.has_seed(1) and json.loads((store.dir / "run.json").read_text())["seeds"] == [0, 1]


@pytest.mark.slow
def test_seed_files_carry_checksum_key_and_rows(reference):
    out, result = reference
    info = json.loads((result.run_dir / "seeds" / "seed-0.json").read_text())
    csv = (result.run_dir / "seeds" / "seed-0.csv").read_bytes()
    assert info["csv_sha256"] == sha256_bytes(csv) and info["cache_key"] == CFG.cache_key()
    assert info["rows"] == CFG.rounds - CFG.pretrain_rounds + 1
    summary = json.loads((result.run_dir / "run.json").read_text())
    assert summary["metrics_sha256"] == sha256_bytes((result.run_dir / "metrics.csv").read_bytes())


@pytest.mark.slow
def test_result_files_get_normal_permissions(reference):
    umask = os.umask(0o022)
    os.umask(umask)
    for path in reference[1].run_dir.rglob("*"):
        if path.is_file() and not path.name.endswith(".lock"):
            assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path


# --- stale summaries ---------------------------------------------------------------------------------
def _stale_seeds(d):
    info = json.loads((d / "run.json").read_text())
    info["seeds"], info["per_seed"] = [0], {"0": info["per_seed"]["0"]}
    (d / "run.json").write_text(json.dumps(info))


SUMMARY_FAULTS = {
    "run_json_deleted": lambda d: (d / "run.json").unlink(),
    "run_json_garbage": lambda d: (d / "run.json").write_text("{not json"),
    "run_json_lists_one_seed": _stale_seeds,
    "metrics_truncated": lambda d: (d / "metrics.csv").write_bytes((d / "metrics.csv").read_bytes()[:100]),
    "metrics_deleted": lambda d: (d / "metrics.csv").unlink(),
}


@pytest.mark.slow
@pytest.mark.parametrize("fault", SUMMARY_FAULTS)
def test_stale_summary_is_rebuilt_on_load(fault, reference, tmp_path, monkeypatch):
    out, store = _copy(reference, tmp_path)
    SUMMARY_FAULTS[fault](store.dir)
    monkeypatch.setattr(simulation, "run_seed", lambda *a, **k: pytest.fail("a cached seed was recomputed"))
    result = dbalib.run(CFG, seeds=[0, 1], out=out, workers=1)
    assert _same(result.metrics, reference[1].metrics)
    assert json.loads((store.dir / "run.json").read_text())["seeds"] == [0, 1]
    columns = ["seed", "round", "clean_acc", "asr_global", "asr_local_0"]
    assert pd.read_csv(store.dir / "metrics.csv")[columns].equals(reference[1].metrics[columns])
    assert store.summary_is_current()


@pytest.mark.slow
def test_kill_between_seed_and_summary_is_repaired(reference, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real_summary = RunStore.write_summary

    def killed(self):
        raise KeyboardInterrupt  # the kill lands after the seed files, before the summary

    monkeypatch.setattr(RunStore, "write_summary", killed)
    with pytest.raises(KeyboardInterrupt):
        dbalib.run(CFG, seeds=[0], out=out, workers=1)
    monkeypatch.setattr(RunStore, "write_summary", real_summary)
    store = RunStore(out, simulation.check(CFG))
    assert store.has_seed(0) and not (store.dir / "run.json").exists()
    monkeypatch.setattr(simulation, "run_seed", lambda *a, **k: pytest.fail("a cached seed was recomputed"))
    result = dbalib.run(CFG, seeds=[0], out=out, workers=1)
    assert json.loads((store.dir / "run.json").read_text())["seeds"] == [0]
    assert _same(result.metrics, reference[1].metrics[reference[1].metrics["seed"] == 0])


@pytest.mark.slow
def test_two_seeds_finishing_at_once_lose_no_update(reference, tmp_path, monkeypatch):
    import dbalib.core.results as results

    _, source = _copy(reference, tmp_path)
    store = RunStore(tmp_path / "race", simulation.check(CFG))
    seeds = {s: source.load_seed(s) for s in (0, 1)}
    real_env = results.environment_info
    calls = []

    def slow_environment():  # the first writer stalls between reading the seeds and writing run.json
        calls.append(1)
        if len(calls) == 1:
            time.sleep(1.0)
        return real_env()

    monkeypatch.setattr(results, "environment_info", slow_environment)
    threads = [threading.Thread(target=store.save_seed, args=(s, *seeds[s])) for s in (0, 1)]
    threads[0].start()
    time.sleep(0.3)
    threads[1].start()
    for t in threads:
        t.join()
    assert json.loads((store.dir / "run.json").read_text())["seeds"] == [0, 1]
    assert sorted(pd.read_csv(store.dir / "metrics.csv")["seed"].unique()) == [0, 1]
    assert store.summary_is_current()


# --- pretraining checkpoints -------------------------------------------------------------------------
def _checkpoints(cache: Path) -> dict[int, Path]:
    found = {}
    for path in (cache / "pretrain").glob("*.pt"):
        saved = torch.load(path, weights_only=True)
        if saved["key"]["pretrain_rounds"] == CFG.pretrain_rounds and saved["key"]["data_fraction"] == CFG.data_fraction:
            found[saved["key"]["seed"]] = path
    return found


def _ckpt_truncate(path, other):
    path.write_bytes(path.read_bytes()[:300])


def _ckpt_garbage(path, other):
    path.write_bytes(os.urandom(2000))


def _ckpt_empty(path, other):
    path.write_bytes(b"")


def _ckpt_overwritten_tensor(path, other):
    saved = torch.load(path, weights_only=True)
    saved["global"][:100] = 0.5  # the digest is left as it was
    torch.save(saved, path)


def _ckpt_from_other_seed(path, other):
    shutil.copy(other, path)


def _ckpt_without_digest(path, other):
    saved = torch.load(path, weights_only=True)
    del saved["sha256"]
    torch.save(saved, path)


def _ckpt_nan(path, other):
    saved = torch.load(path, weights_only=True)
    saved["global"][0] = float("nan")
    from dbalib.core.checkpoint import tensor_digest

    saved["sha256"] = tensor_digest(saved["global"])
    torch.save(saved, path)


CKPT_FAULTS = [_ckpt_truncate, _ckpt_garbage, _ckpt_empty, _ckpt_overwritten_tensor, _ckpt_from_other_seed,
               _ckpt_without_digest, _ckpt_nan]


@pytest.mark.slow
@pytest.mark.parametrize("damage", CKPT_FAULTS, ids=[f.__name__[6:] for f in CKPT_FAULTS])
def test_bad_checkpoint_is_deleted_and_recomputed(damage, reference, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    shutil.copytree(os.environ["DBALIB_CACHE"], cache)
    monkeypatch.setenv("DBALIB_CACHE", str(cache))
    checkpoints = _checkpoints(cache)
    original = torch.load(checkpoints[0], weights_only=True)["global"]
    damage(checkpoints[0], checkpoints[1])
    with pytest.warns(UserWarning, match=f"checkpoint {checkpoints[0]} is unusable"):
        result = dbalib.run(CFG, seeds=[0], out=tmp_path / "out", workers=1)
    assert _same(result.metrics, reference[1].metrics[reference[1].metrics["seed"] == 0])
    assert result.info[0]["pretrain_cached"] is False
    assert torch.equal(torch.load(checkpoints[0], weights_only=True)["global"], original)
    assert not list(cache.rglob("*.tmp"))


# --- divergence, sweeps, workers ----------------------------------------------------------------------
DIVERGING = CFG.with_overrides(scale=1e30)


@pytest.mark.slow
def test_diverged_run_stops_with_a_clear_error_and_is_not_stored(reference, tmp_path):
    with pytest.raises(DivergedError, match=r"single_shot_cba \(.*scale=1e\+30\) seed 0 diverged in round 3") as err:
        dbalib.run(DIVERGING, seeds=[0], out=tmp_path, workers=1)
    assert "\n" not in str(err.value)
    assert not RunStore(tmp_path, simulation.check(DIVERGING)).finished_seeds()
    assert not list(tmp_path.rglob("seed-*.csv"))


def test_check_finite_flags_nan_and_overflowing_models():
    simulation.check_finite(torch.ones(10), CFG, 0, 5)
    for bad in (torch.tensor([1.0, float("nan")]), torch.tensor([float("inf")]), torch.full((10,), 1e30)):
        with pytest.raises(DivergedError, match="seed 0 diverged in round 5"):
            simulation.check_finite(bad, CFG, 0, 5)


@pytest.mark.slow
def test_sweep_finishes_healthy_runs_and_reports_the_diverged_one(reference, tmp_path):
    healthy = CFG.with_overrides(eta=0.5)
    with pytest.raises(SweepError, match=r"1 run\(s\) failed: single_shot_cba seed 0: diverged in round 3 .*"
                                         r"scale=1e\+30.*the other 1 run\(s\) completed") as err:
        run_many([DIVERGING, healthy], seeds=[0], out=tmp_path, workers=1, progress=False)
    assert "\n" not in str(err.value)
    assert RunStore(tmp_path, simulation.check(healthy)).has_seed(0)


@pytest.mark.slow
def test_a_study_keeps_the_healthy_seeds_of_a_cell_whose_other_seed_diverged(reference, tmp_path):
    """The defence matrix's run_cells: a diverged seed is recorded, not a crash; the cell keeps
    the seeds that finished, and the next call loads them (only the diverged seed is tried again)."""
    from dbalib.study.defense_eval import matrix_table, run_cells

    shutil.copytree(reference[0], tmp_path / "out")
    configs = {("single_shot_cba", "fedavg"): CFG, ("single_shot_cba+huge", "fedavg"): DIVERGING}
    results, diverged = run_cells(configs, [0, 1], out=tmp_path / "out", workers=1, progress=False)
    assert diverged == {("single_shot_cba+huge", "fedavg"): [0, 1]}
    assert list(results) == [("single_shot_cba", "fedavg")] and results[("single_shot_cba", "fedavg")].seeds == [0, 1]
    assert _same(results[("single_shot_cba", "fedavg")].metrics, reference[1].metrics)  # loaded from the cache
    table = matrix_table(results, diverged)
    assert table["diverged_seeds"].tolist() == [0, 2] and table["seeds"].tolist() == [2, 0]


def crash_on_seed_1(config: dict, seed: int, out: str) -> int:
    if seed == 1:
        os._exit(5)
    from dbalib.core.sweep import _local_job

    return _local_job(config, seed, out)


@pytest.mark.slow
def test_one_crashing_job_does_not_fail_the_healthy_ones(reference, tmp_path):
    cfg = simulation.check(CFG)
    with pytest.raises(SweepError) as err:
        _run_local([(cfg, 1), (cfg, 0)], tmp_path, workers=2, threads=1, retries=1, progress=False,
                   job=crash_on_seed_1)
    message = str(err.value)
    assert "1 run(s) failed after 1 retries: single_shot_cba seed 1: worker died" in message
    assert "seed 0" not in message and "\n" not in message
    assert "data_fraction=0.1" in message  # the config is named by its overrides
    store = RunStore(tmp_path, cfg)
    assert store.finished_seeds() == [0]
    assert _same(store.load([0], cfg).metrics, reference[1].metrics[reference[1].metrics["seed"] == 0])


def sleeper(config: dict, seed: int, out: str) -> int:
    (Path(out) / "worker.pid").write_text(str(os.getpid()))
    time.sleep(600)
    return seed


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_pool_workers_die_with_their_parent(sig, tmp_path):
    script = textwrap.dedent(f"""
        from pathlib import Path
        from dbalib.core import simulation
        from dbalib.core.sweep import _run_local
        from tests.conftest import tiny
        from tests.test_faults import sleeper
        cfg = simulation.check(tiny("clean", rounds=4))
        _run_local([(cfg, 0)], Path({str(tmp_path)!r}), workers=1, threads=1, retries=0, progress=False, job=sleeper)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=PROJECT_DIR,
                              env=os.environ | {"PYTHONPATH": str(PROJECT_DIR)})
    pid_file = tmp_path / "worker.pid"
    deadline = time.time() + 120
    while not pid_file.exists() and time.time() < deadline and parent.poll() is None:
        time.sleep(0.2)
    assert pid_file.exists(), "the worker never started"
    time.sleep(0.2)
    worker = int(pid_file.read_text())
    assert _alive(worker)
    parent.send_signal(sig)
    parent.wait(30)
    deadline = time.time() + 15
    while _alive(worker) and time.time() < deadline:
        time.sleep(0.2)
    alive = _alive(worker)
    if alive:
        os.kill(worker, signal.SIGKILL)
    assert not alive, "the worker outlived its parent"


class _FakeRay:
    def __init__(self):
        self.inits = []

    def is_initialized(self):
        return False

    def init(self, **kwargs):
        self.inits.append(kwargs)

    def remote(self, **kwargs):
        return lambda f: f


@pytest.mark.parametrize("address, expected", [(None, "local"), ("auto", "auto"), ("10.0.0.7:6379", "10.0.0.7:6379")])
def test_ray_without_address_starts_a_local_instance(address, expected, tmp_path, monkeypatch):
    from dbalib.core.sweep import _run_ray

    fake = _FakeRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    _run_ray([], tmp_path, threads=1, address=address, progress=False)
    assert [call["address"] for call in fake.inits] == [expected]


# --- full disk, unwritable folders -------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.slow
def test_full_disk_is_a_one_line_error_leaves_no_temporary_file_and_resumes(small_disk, reference):
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (64 * 1024 - 8 * 1024))  # two 4 KiB blocks left: the seed, not its summary
    out = small_disk / "runs"
    with pytest.raises(StorageError) as err:
        dbalib.run(CFG, seeds=[0], out=out, workers=1)
    message = str(err.value)
    assert message.startswith("cannot write ") and "No space left on device" in message and "\n" not in message
    assert not [p for p in small_disk.rglob("*") if p.name.endswith(".tmp")]
    filler.unlink()
    result = dbalib.run(CFG, seeds=[0], out=out, workers=1)
    assert _same(result.metrics, reference[1].metrics[reference[1].metrics["seed"] == 0])
    assert RunStore(out, simulation.check(CFG)).summary_is_current()


@pytest.mark.slow
def test_full_disk_for_the_checkpoint(small_disk, tmp_path, monkeypatch):
    monkeypatch.setenv("DBALIB_CACHE", str(small_disk / "cache"))
    with pytest.raises(StorageError, match=r"cannot write .*/pretrain/\w+\.pt: No space left on device"):
        dbalib.run(CFG, seeds=[3], out=tmp_path / "out", workers=1)
    assert not [p for p in small_disk.rglob("*") if p.name.endswith(".tmp")]


def test_read_only_results_folder(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)], capture_output=True).returncode:
        pytest.skip("cannot mount a read-only tmpfs here (needs root)")
    try:
        assert main(["run", "clean", *CLI_SMALL, "--out", str(ro / "runs")]) == 2
    finally:
        subprocess.run(["umount", "-l", str(ro)], capture_output=True)
    err = capsys.readouterr().err
    assert "is not a writable folder: Read-only file system" in err and err.count("\n") == 1


@pytest.mark.parametrize("where", ["file", "below_a_file", "proc"])
def test_unusable_results_folder(where, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    out = {"file": blocker, "below_a_file": blocker / "runs", "proc": Path("/proc/dbalib-runs")}[where]
    assert main(["run", "clean", *CLI_SMALL, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"results folder (--out) {out} is not a writable folder" in err and err.count("\n") == 1
    assert blocker.read_text() == "x"


def test_unusable_pretraining_cache(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    monkeypatch.setenv("DBALIB_CACHE", str(blocker))
    assert main(["run", "clean", *CLI_SMALL, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "pretraining cache ($DBALIB_CACHE)" in err and err.count("\n") == 1


# --- bad inputs ------------------------------------------------------------------------------------------
BAD_CLI = [
    (["run", "single_shot_dba", "--seeds", "-1"], "--seeds must be non-negative integers"),
    (["run", "single_shot_dba", "--seeds", "1.5"], "--seeds expects integers"),
    (["run", "single_shot_dba", "--seeds", ","], "--seeds is empty"),
    (["run", "single_shot_dba", "--seeds", "a,b"], "--seeds expects integers"),
    (["run", "single_shot_dba", "--set", "scale=inf"], "config key 'scale' must be a finite number, got inf"),
    (["run", "single_shot_dba", "--set", "scale=nan"], "config key 'scale' must be a finite number"),
    (["run", "single_shot_dba", "--set", "eta=inf"], "config key 'eta' must be a finite number"),
    (["run", "single_shot_dba", "--set", "pretrain_eta=-inf"], "config key 'pretrain_eta' must be a finite"),
    (["run", "single_shot_dba", "--set", "dirichlet_alpha=inf"], "config key 'dirichlet_alpha' must be a finite"),
    (["run", "single_shot_dba", "--set", "norm_bound=inf"], "config key 'norm_bound' must be a finite"),
    (["run", "single_shot_dba", "--set", "poison_lr_milestones=0.2,inf"], "'poison_lr_milestones' must be a finite"),
    (["run", "single_shot_dba", "--set", "name=../escape"], "config key 'name' must be"),
    (["run", "single_shot_dba", "--set", "name="], "config key 'name' must be"),
    (["run", "single_shot_dba", "--workers", "0"], "--workers: expects a positive integer"),
    (["run", "single_shot_dba", "--workers", "-2"], "--workers: expects a positive integer"),
    (["run", "single_shot_dba", "--rounds-shown", "x"], "--rounds-shown: expects rounds"),
    (["run", "single_shot_dba", "--device", "gpu"], "invalid choice: 'gpu'"),
    (["run"], "the following arguments are required: preset"),
    (["explode"], "invalid choice: 'explode'"),
    (["sweep", "single_shot_dba", "--grid", "scale=10,inf"], "config key 'scale' must be a finite number"),
    (["sweep", "single_shot_dba", "--grid", "eta=nan"], "config key 'eta' must be a finite number"),
    (["sweep", "single_shot_dba", "--grid", "scale=10", "--metric", "nope"], "--metric nope is not a metric"),
    (["sweep", "single_shot_dba", "--grid", "scale=10", "--round", "999"], "--round 999 is not a round"),
    (["sweep", "single_shot_dba", "--grid", "scale=10", "--backend", "spark"], "invalid choice: 'spark'"),
    (["sweep", "single_shot_dba", "--grid", "scale=10", "--workers", "0"], "expects a positive integer"),
]


@pytest.mark.parametrize("argv, message", BAD_CLI, ids=[" ".join(a[2:]) or a[0] for a, _ in BAD_CLI])
def test_bad_cli_input_is_one_line_and_exit_2(argv, message, capsys, tmp_path):
    assert main(argv + ["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not any(tmp_path.iterdir())  # nothing was trained or written


def test_name_override_relabels_the_run():
    assert dbalib.preset("clean", name="foo").name == "foo"
    assert dbalib.preset("clean", name="foo").cache_key() == dbalib.preset("clean").cache_key()


@pytest.mark.parametrize("seeds", ["10", "0,1", 1.5, [-1], [True], [0, "1"], None, []],
                         ids=["str-10", "str-list", "float", "negative", "bool", "str-item", "none", "empty"])
def test_bad_notebook_seeds_are_an_error_naming_seeds(seeds, tmp_path):
    with pytest.raises(ConfigError, match="seeds") as err:
        run_many([CFG], seeds=seeds, out=tmp_path, progress=False)
    assert "\n" not in str(err.value)
    assert not any(tmp_path.iterdir())


def test_seed_integers_are_accepted():
    assert check_seeds(10) == [10] and check_seeds((0, 2)) == [0, 2] and check_seeds([1.0]) == [1]


@pytest.mark.slow
def test_a_corrupt_summary_never_reaches_the_cli(reference, tmp_path, capsys):
    out, store = _copy(reference, tmp_path)
    (store.seeds_dir / "seed-0.json").write_text("{")
    (store.dir / "run.json").write_text("")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["run", "single_shot_cba", *CLI_SMALL, "--seeds", "0,1", "--out", str(out), "--workers", "1",
                     "--rounds-shown", "2,4"]) == 0
    assert "asr_global" in capsys.readouterr().out
    assert store.summary_is_current() and json.loads((store.dir / "run.json").read_text())["seeds"] == [0, 1]


def test_distclean_removes_the_pretraining_cache_and_keeps_the_data(tmp_path):
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    shutil.copy(PROJECT_DIR / "Makefile", tmp_path / "Makefile")
    xdg = tmp_path / "xdg"
    (xdg / "dbalib" / "cache" / "pretrain").mkdir(parents=True)
    (xdg / "dbalib" / "cache" / "pretrain" / "x.pt").write_text("x")
    (xdg / "dbalib" / "data" / "MNIST").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("DBALIB_CACHE", "MAKEFLAGS", "MAKELEVEL")}
    subprocess.run(["make", "-s", "distclean"], cwd=tmp_path, env=env | {"XDG_CACHE_HOME": str(xdg)}, check=True,
                   capture_output=True, timeout=60)
    assert not (xdg / "dbalib" / "cache").exists() and (xdg / "dbalib" / "data" / "MNIST").is_dir()
    custom = tmp_path / "custom-cache"
    custom.mkdir()
    subprocess.run(["make", "-s", "distclean"], cwd=tmp_path, env=env | {"DBALIB_CACHE": str(custom)}, check=True,
                   capture_output=True, timeout=60)
    assert not custom.exists() and (xdg / "dbalib" / "data" / "MNIST").is_dir()


def test_every_error_is_a_dbalib_error_with_one_line():
    for cls in (StorageError, CorruptResultError, DivergedError, SweepError):
        assert issubclass(cls, DbalibError)


def test_cli_restores_the_sigterm_handler_and_workers_remove_their_temporaries(tmp_path):
    from dbalib.core import atomic

    before = signal.getsignal(signal.SIGTERM)
    assert main(["presets"]) == 0
    assert signal.getsignal(signal.SIGTERM) is before
    tmp = tmp_path / ".seed-0.csv.abc.tmp"
    tmp.write_text("half")
    atomic._PENDING.add(str(tmp))
    atomic.remove_temporaries()  # what a worker does on SIGTERM, before it exits
    assert not tmp.exists() and not atomic._PENDING


def test_update_geometry_refuses_a_text_seed():
    from dbalib.study.defense_eval import update_geometry

    with pytest.raises(ConfigError, match="SEEDS"):
        update_geometry(CFG, "1")
