"""The simulator core: everything that computes, stores and reruns a federated run.

``data`` (MNIST, partitions), ``triggers``, ``model``, ``stacked`` (many copies of the network at
once), ``clients`` (local training, one client), ``batched`` (local training, many clients at
once), ``attacks`` (schedules, scaling, adaptive attackers), ``aggregation`` (the server rule
interface, FedAvg), ``defenses`` (the robust rules), ``server`` (the server's root set),
``evaluation``, ``engines`` (sequential and batched), ``config``, ``presets``, ``simulation`` (the
round loop, lockstep seeds), ``sweep`` (parallel runs, grids, Ray), ``checkpoint``, ``results``
(the run store), ``jobs``, ``fingerprint`` (the code fingerprint of cache keys), ``paths``,
``errors`` and ``atomic`` (atomic writes, locks, digests).

The core never imports the study layer (``dbalib.study``) nor the package root ``dbalib``.
"""

__version__ = "0.1.0"  # dbalib's version (the package root re-exports it; run records carry it)
