"""Benchmark and ablation harness for deep-learning claims (see README.md)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("harness")  # the installed distribution's metadata (pyproject.toml)
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
