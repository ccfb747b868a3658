"""Command line: ``python -m dbalib {run,sweep,presets,aggregators,attacks,config,data,paper-numbers,check-results} ...``.

    python -m dbalib run single_shot_dba --seeds 0,1,2 --set scale=50 --out runs --device cpu
    python -m dbalib sweep single_shot_dba --grid scale=10,30,100 --grid trigger_gap=1,2,4 --seeds 0,1
    python -m dbalib sweep multi_shot_dba --grid dirichlet_alpha=0.1,0.5,10 --backend ray --ray-address auto
    python -m dbalib presets            # name + one-line description
    python -m dbalib aggregators        # the server rules (defences) and the keys they read
    python -m dbalib attacks            # the values of the config key attack and the trigger each uses
    python -m dbalib config             # every config key with its type and default
    python -m dbalib data               # fetch/rebuild and verify MNIST
    python -m dbalib check-results      # results/*.json made with their notebook's defaults? (make paper)

Every mistake in the input (unknown preset or key, bad value, attacker or round out of range,
unusable data folder) is reported in one line before any training, with exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from .core.config import Config, parse_overrides
from .core.errors import ConfigError, DbalibError

SUMMARY_ROUNDS = (11, 13, 19, 30, 50, 70)


class UsageError(ConfigError):
    """A malformed command line (argparse's message, on one line)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + message, exit 2 through main
        raise UsageError(f"{self.prog}: {' '.join(message.split())} (see --help)")


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.replace(" ", "").split(",") if s]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds expects integers like 0,1,2, got '{text}'") from None
    if not seeds:
        raise argparse.ArgumentTypeError("--seeds is empty")
    if any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"--seeds must be non-negative integers, got '{text}'")
    return seeds


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expects a positive integer, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expects a positive integer, got '{text}'")
    return value


def _rounds(text: str) -> list[int]:
    try:
        rounds = [int(r) for r in text.replace(" ", "").split(",") if r]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expects rounds like 11,13,19, got '{text}'") from None
    if not rounds:
        raise argparse.ArgumentTypeError("is empty")
    return rounds


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m dbalib", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a preset (cached) and print its summary")
    run.add_argument("preset", help="preset name (see `presets`)")
    run.add_argument("--seeds", type=_seeds, default=[0], help="comma-separated seeds (default 0)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key (repeatable); lists as 12,14 or 11-30")
    run.add_argument("--out", default=None, help="results folder (default: runs/ or $DBALIB_RUNS)")
    run.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None, help="default: the config's (auto)")
    run.add_argument("--rounds-shown", type=_rounds, default=None, help="rounds of the printed summary (default 11,13,19,30,50,70)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--workers", type=_positive, default=None, help="parallel seeds (default: cores / threads)")

    sw = sub.add_parser("sweep", help="run a grid of configs over a preset (cached, resumable, parallel)")
    sw.add_argument("preset", help="base preset")
    sw.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                    help="grid axis (repeatable); list-valued keys separate values with ';'")
    sw.add_argument("--seeds", type=_seeds, default=[0], help="comma-separated seeds (default 0)")
    sw.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a base config key (repeatable)")
    sw.add_argument("--backend", choices=["local", "ray"], default="local")
    sw.add_argument("--workers", type=_positive, default=None, help="local processes (default: cores / threads)")
    sw.add_argument("--ray-address", default=None, help="join an existing Ray cluster ('auto' or host:port); default: a new local instance")
    sw.add_argument("--round", type=int, default=None, help="round of the printed table (default: last)")
    sw.add_argument("--metric", default="asr_global", help="metric of the printed table")
    sw.add_argument("--out", default=None, help="results folder (default: runs/ or $DBALIB_RUNS)")
    sw.add_argument("--quiet", action="store_true", help="no progress bar")
    sub.add_parser("aggregators", help="list the aggregation rules (defences)")
    sub.add_parser("attacks", help="list the attacks (values of the config key attack) and their triggers")
    sub.add_parser("paper-numbers", help="generate paper/generated/*.tex from results/*.json")
    check = sub.add_parser("check-results", help="refuse results/*.json made with non-default notebook parameters")
    check.add_argument("--allow-nondefault", action="store_true", help="list them, but do not fail")
    check.add_argument("--results", default=None, help="default: the project's results/")

    sub.add_parser("presets", help="list the presets")
    sub.add_parser("config", help="list every config key with its type and default")
    data = sub.add_parser("data", help="prepare and verify MNIST (offline rebuild if needed)")
    data.add_argument("--data-dir", default=None, help="default: $DBALIB_DATA or ~/.cache/dbalib/data")
    return parser


def main(argv: list[str] | None = None) -> int:
    previous = _on_sigterm(_terminated)
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except DbalibError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished seeds are kept; run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        _on_sigterm(previous)


def _terminated(signum, frame):
    """SIGTERM unwinds like Ctrl-C: temporary files removed, workers stopped, finished seeds kept."""
    raise KeyboardInterrupt


def _on_sigterm(handler):
    import signal
    import threading

    if handler is None or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler)


def _cmd_run(args) -> int:
    from .core.presets import preset
    from .core.simulation import check
    from .core.sweep import run

    overrides = parse_overrides(args.overrides)
    if args.device:
        overrides["device"] = args.device
    if args.quiet:
        overrides["progress"] = "false"
    config = check(preset(args.preset, **overrides))
    result = run(config, seeds=args.seeds, out=args.out, workers=args.workers)
    shown = args.rounds_shown or list(SUMMARY_ROUNDS)
    rounds = [r for r in shown if result.first_round <= r <= result.last_round] or [result.last_round]
    seconds = sum(i.get("seconds_total", 0.0) for i in result.info.values())
    print(f"{config.name}  seeds={result.seeds}  device={config.device}  results: {result.run_dir}")
    print(f"mean over seeds (fractions); computed in {seconds:.0f} s (0 if cached)")
    print(result.table(rounds).round(4).to_string())
    return 0


def _cmd_sweep(args) -> int:
    from .core.presets import preset
    from .core.atomic import atomic_write_text
    from .core.sweep import parse_grid, sweep

    overrides = parse_overrides(args.overrides)
    if args.quiet:
        overrides["progress"] = "false"
    base = preset(args.preset, **overrides)
    grid = parse_grid(args.grid)
    if args.round is not None and not {"rounds", "pretrain_rounds"} & set(grid) \
            and not base.pretrain_rounds <= args.round <= base.rounds:
        raise ConfigError(f"--round {args.round} is not a round of these runs ({base.pretrain_rounds}..{base.rounds})")
    _check_metric(args.metric, base)
    result = sweep(base, grid, seeds=args.seeds, out=args.out, backend=args.backend,
                   workers=args.workers, ray_address=args.ray_address, progress=not args.quiet)
    table = result.table
    round_ = args.round or int(table["round"].max())
    folder = result.results[0].run_dir.parent / "sweeps"
    path = folder / f"{args.preset}-{'-'.join(sorted(grid))}-{sweep_id(result.results, args.seeds)}.csv"
    atomic_write_text(path, table.to_csv(index=False))
    print(f"{len(result.results)} configs x {len(args.seeds)} seed(s); tidy table of every run: {path}")
    print(f"{args.metric} at round {round_} (mean and std over seeds):")
    print(result.at(round_, args.metric).round(4).to_string(index=False))
    return 0


def sweep_id(results, seeds) -> str:
    """Short hash of a sweep (every run's full config and the seeds): its table's name, so that a
    sweep over the same keys with other values, seeds or base settings never overwrites it."""
    import hashlib
    import json

    payload = {"configs": sorted(r.config.cache_key() for r in results), "seeds": sorted(seeds)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:8]


def _check_metric(metric: str, config: Config) -> None:
    metrics = ["clean_acc", "asr_global", *(f"asr_local_{i}" for i in range(config.trigger_parts)), "n_attackers",
               "benign_norm_mean", "benign_norm_max", "malicious_norm_mean", "malicious_norm_max",
               "global_update_norm", "benign_rejected", "malicious_rejected", "benign_weight_mean",
               "malicious_weight_mean", "norm_bound", "seconds_train", "seconds_aggregate", "seconds_eval"]
    if metric not in metrics:
        raise ConfigError(f"--metric {metric} is not a metric; choose one of {', '.join(metrics)}")


def _cmd_aggregators(args) -> int:
    from .core.registry import AGGREGATORS, aggregator_names

    for name in aggregator_names():
        spec = AGGREGATORS[name]
        keys = f"  [{', '.join(spec.params)}]" if spec.params else ""
        print(f"{name:<15} {spec.description}{keys}")
    return 0


def _cmd_attacks(args) -> int:
    from .core.registry import ATTACKS

    for spec in ATTACKS.values():
        print(f"{spec.name:<6} trigger: {spec.trigger:<7} {spec.description}")
    return 0


def _cmd_paper_numbers(args) -> int:
    from .study.paper import write_all

    numbers = write_all()
    print(f"{len(numbers)} numbers written to paper/generated/numbers.tex (plus claims and tables)")
    return 0


def _cmd_check_results(args) -> int:
    from .core.paths import RESULTS_DIR
    from .study.reporting import check_results
    from .study.reporting import superseded_results

    for name, reason in superseded_results(args.results or RESULTS_DIR).items():
        print(f"note: results/{name}.json is superseded and kept on purpose: {reason}", file=sys.stderr)
    problems = check_results(args.results or RESULTS_DIR, allow_nondefault=args.allow_nondefault)
    for line in problems:
        print(f"warning: {line} (allowed by --allow-nondefault)", file=sys.stderr)
    if not problems:
        print("results: every file was made with its notebook's default parameters")
    return 0


def _cmd_presets(args) -> int:
    from .core.presets import describe_presets

    rows = describe_presets()
    width = max(len(name) for name, _ in rows)
    for name, text in rows:
        print(f"{name:<{width}}  {text}")
    return 0


def _cmd_config(args) -> int:
    for key, kind, default in Config.describe():
        print(f"{key:<22} {kind:<16} {default!r}")
    return 0


def _cmd_data(args) -> int:
    from .core.data import prepare_mnist, raw_dir, verify_mnist

    prepare_mnist(args.data_dir, verbose=True)
    problems = verify_mnist(args.data_dir)
    if problems:
        raise ConfigError(f"MNIST verification failed: {problems}")
    print(f"MNIST OK (4 files, MD5 verified) in {raw_dir(args.data_dir)}")
    return 0


COMMANDS = {"run": _cmd_run, "sweep": _cmd_sweep, "presets": _cmd_presets, "aggregators": _cmd_aggregators,
            "attacks": _cmd_attacks, "config": _cmd_config, "data": _cmd_data, "paper-numbers": _cmd_paper_numbers,
            "check-results": _cmd_check_results}


if __name__ == "__main__":
    sys.exit(main())
