"""The study layer: what the notebooks and the paper make of the simulator's runs.

``stats`` (intervals, verdicts), ``claims`` (key numbers, the study's claims judged by
intervals), ``plotting`` (figures), ``reporting`` (key-number files, notebook parameters),
``defense_eval`` (the defence study), ``factors`` (trigger factors), ``sensitivity``
(persistence), ``explorer`` (the interactive notebook) and ``paper`` (generated LaTeX).

It imports the simulator core (``dbalib.core``); the core never imports it.
"""
