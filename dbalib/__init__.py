"""dbalib: distributed (DBA) and centralised (CBA) backdoor attacks on federated learning, on MNIST.

Typical use::

    import dbalib
    result = dbalib.run(dbalib.preset("single_shot_dba"), seeds=[0, 1, 2])
    result.curve("asr_global")          # mean/std over seeds per round
    dba, cba = dbalib.run_many([dbalib.preset("multi_shot_dba"), dbalib.preset("multi_shot_cba")], [0, 1])
    grid = dbalib.sweep(dbalib.preset("single_shot_dba"), {"scale": [10, 100]}, seeds=[0])

Two layers, one way: ``dbalib.core`` is the simulator (data, triggers, model, local training,
attacks, aggregation and defences, evaluation, engines, config and presets, the round loop, sweeps
and the run store); ``dbalib.study`` is what the notebooks and the paper make of its runs (stats,
claims, plotting, reporting, the defence, factor and sensitivity studies, the explorer, the
paper's numbers). The study imports the core, never the reverse; ``cli`` and this package root
sit on top of both.
"""

from .core import __version__
from .core.config import Config
from .core.errors import ConfigError, DataError, DbalibError
from .core.presets import describe_presets, preset, preset_names
from .core.results import Result
from .core.sweep import SweepResult, run, run_many, sweep

__all__ = ["Config", "ConfigError", "DataError", "DbalibError", "Result", "SweepResult", "describe_presets",
           "preset", "preset_names", "run", "run_many", "sweep", "__version__"]
