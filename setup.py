"""Packaging: the design card's top-level stage folders install as ``driftgate.<stage>``.

The folders ``training/``, ``gating/``, ... stay at the repository's top level (the MLflow
Project layout), but nothing installs or imports them as top-level packages: each maps onto
``driftgate.<folder>`` here, and the package list is generated from the folders, so wheel and
editable installs hold the same packages. ``tests/test_packaging.py`` checks the built wheel.
"""
from setuptools import find_packages, setup

STAGES = ("workspace", "monitoring", "gating", "training", "promotion", "triggers")

packages = find_packages(include=["driftgate", "driftgate.*"])
for stage in STAGES:
    packages += [f"driftgate.{name}" for name in find_packages(include=[stage, f"{stage}.*"])]

setup(packages=packages, package_dir={"driftgate": "driftgate", **{f"driftgate.{s}": s for s in STAGES}})
