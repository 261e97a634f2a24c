"""Data sets by config, loaded once per process: every group of a sweep with the same data
config shares one in-memory copy (generated data sets are also cached on disk by their loaders)."""

from __future__ import annotations

import functools
import json

from omegaconf import DictConfig, OmegaConf

from harness.config import resolved
from harness.data import load_dataset
from harness.data.base import Dataset


@functools.lru_cache(maxsize=32)
def _cached_dataset(data_json: str) -> Dataset:
    return load_dataset(OmegaConf.create(json.loads(data_json)))


def dataset_for(cfg: DictConfig) -> Dataset:
    """Load (once per process) the data set a config asks for."""
    return _cached_dataset(json.dumps(resolved(cfg.data), sort_keys=True))


def points_dataset(cfg: DictConfig):
    """The data set with raw (x1, x2) inputs, for drawing points on a decision boundary."""
    data = resolved(cfg.data)
    data["features"] = ["x1", "x2"]
    data_cfg = OmegaConf.merge(cfg, {"data": data})
    return dataset_for(data_cfg)
