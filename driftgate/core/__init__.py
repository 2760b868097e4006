"""The bottom layer: errors, records and statuses, run keys, tags, secrets and settings.

Nothing here imports a stage, an adapter or the application, except that
:mod:`driftgate.core.settings` composes the section models each stage declares in its own
``config`` module (those modules import only core).
"""
