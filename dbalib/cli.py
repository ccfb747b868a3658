"""Command line: ``python -m dbalib {run,presets,config,data} ...`` (also installed as ``dbalib``).

    python -m dbalib run single_shot_dba --seeds 0,1,2 --set scale=50 --out runs --device cpu
    python -m dbalib presets            # name + one-line description
    python -m dbalib config             # every config key with its type and default
    python -m dbalib data               # fetch/rebuild and verify MNIST

Every mistake in the input (unknown preset or key, bad value, attacker or round out of range,
unusable data folder) is reported in one line before any training, with exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from .config import Config, parse_overrides
from .errors import ConfigError, DbalibError

SUMMARY_ROUNDS = (11, 13, 19, 30, 50, 70)


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.replace(" ", "").split(",") if s]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds expects integers like 0,1,2, got '{text}'") from None
    if not seeds:
        raise argparse.ArgumentTypeError("--seeds is empty")
    return seeds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dbalib", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a preset (cached) and print its summary")
    run.add_argument("preset", help="preset name (see `presets`)")
    run.add_argument("--seeds", type=_seeds, default=[0], help="comma-separated seeds (default 0)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key (repeatable); lists as 12,14 or 11-30")
    run.add_argument("--out", default=None, help="results folder (default: runs/ or $DBALIB_RUNS)")
    run.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None, help="default: the config's (auto)")
    run.add_argument("--rounds-shown", default=None, help="rounds of the printed summary (default 11,13,19,30,50,70)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")

    sub.add_parser("presets", help="list the presets")
    sub.add_parser("config", help="list every config key with its type and default")
    data = sub.add_parser("data", help="prepare and verify MNIST (offline rebuild if needed)")
    data.add_argument("--data-dir", default=None, help="default: $DBALIB_DATA or ~/.cache/dbalib/data")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except DbalibError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished seeds are kept; run the same command again to resume", file=sys.stderr)
        return 130


def _cmd_run(args) -> int:
    from .presets import preset
    from .simulation import check, run

    overrides = parse_overrides(args.overrides)
    if args.device:
        overrides["device"] = args.device
    if args.quiet:
        overrides["progress"] = "false"
    config = check(preset(args.preset, **overrides))
    result = run(config, seeds=args.seeds, out=args.out)
    shown = [int(r) for r in args.rounds_shown.split(",")] if args.rounds_shown else list(SUMMARY_ROUNDS)
    rounds = [r for r in shown if result.first_round <= r <= result.last_round] or [result.last_round]
    seconds = sum(i.get("seconds_total", 0.0) for i in result.info.values())
    print(f"{config.name}  seeds={result.seeds}  device={config.device}  results: {result.run_dir}")
    print(f"mean over seeds (fractions); computed in {seconds:.0f} s (0 if cached)")
    print(result.table(rounds).round(4).to_string())
    return 0


def _cmd_presets(args) -> int:
    from .presets import describe_presets

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
    from .data import prepare_mnist, raw_dir, verify_mnist

    prepare_mnist(args.data_dir, verbose=True)
    problems = verify_mnist(args.data_dir)
    if problems:
        raise ConfigError(f"MNIST verification failed: {problems}")
    print(f"MNIST OK (4 files, MD5 verified) in {raw_dir(args.data_dir)}")
    return 0


COMMANDS = {"run": _cmd_run, "presets": _cmd_presets, "config": _cmd_config, "data": _cmd_data}


if __name__ == "__main__":
    sys.exit(main())
