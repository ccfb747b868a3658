"""dbalib: distributed (DBA) and centralised (CBA) backdoor attacks on federated learning, on MNIST.

Typical use::

    import dbalib
    result = dbalib.run(dbalib.preset("single_shot_dba"), seeds=[0, 1, 2])
    result.curve("asr_global")          # mean/std over seeds per round
    dba, cba = dbalib.run_many([dbalib.preset("multi_shot_dba"), dbalib.preset("multi_shot_cba")], [0, 1])
    grid = dbalib.sweep(dbalib.preset("single_shot_dba"), {"scale": [10, 100]}, seeds=[0])

Modules, one per role: ``data`` (MNIST, partitions), ``triggers``, ``model``, ``stacked`` (many
copies of the network at once), ``clients`` (local training, one client), ``batched`` (local
training, many clients at once), ``attacks`` (schedules, scaling), ``aggregation`` (server rules),
``defenses``, ``evaluation``, ``engines`` (sequential and batched), ``simulation`` (the round
loop, lockstep seeds), ``checkpoint``, ``atomic``, ``results`` (storage), ``jobs``, ``sweep``
(parallel runs, grids, Ray), ``stats`` (intervals, verdicts), ``study`` (key numbers, claims),
``plotting``, ``reporting``, ``explorer``, ``presets``, ``cli``.
"""

__version__ = "0.1.0"

from .config import Config  # noqa: E402
from .errors import ConfigError, DataError, DbalibError  # noqa: E402
from .presets import describe_presets, preset, preset_names  # noqa: E402
from .results import Result  # noqa: E402
from .simulation import run  # noqa: E402
from .sweep import SweepResult, run_many, sweep  # noqa: E402

__all__ = ["Config", "ConfigError", "DataError", "DbalibError", "Result", "SweepResult", "describe_presets",
           "preset", "preset_names", "run", "run_many", "sweep", "__version__"]
