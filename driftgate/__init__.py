"""driftgate: drift- and quality-gated retraining for MLflow models.

Importing ``driftgate`` loads nothing else, so the command line starts fast. The layers,
bottom to top (``ARCHITECTURE.md`` has the picture; ``tests/test_layers.py`` enforces it):

* core (:mod:`driftgate.core`): errors, records and statuses, run keys, tags, settings;
* stages and adapters: :mod:`driftgate.workspace` (tables, registry, task values, jobs),
  :mod:`driftgate.monitoring`, :mod:`driftgate.gating`, :mod:`driftgate.training`,
  :mod:`driftgate.promotion`, :mod:`driftgate.triggers`;
* application: :mod:`driftgate.tasks` (one function per job task), :mod:`driftgate.pipeline`
  (the local task graph), :mod:`driftgate.cli` and :mod:`driftgate.commands`, :mod:`driftgate.demo`.
"""
__version__ = "0.1.0"

__all__ = ["__version__"]
