"""Finish a trained member: store its record, draw its plots, track it in W&B.

The same function serves a single ``harness-train`` run and every member of a fused group, so
a job's folder looks the same whichever launcher ran it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from harness.results import make_result, write_run
from harness.data.cache import dataset_for
from harness.train.engine import GroupRun


def points_dataset(cfg: DictConfig):
    """The data set with raw (x1, x2) inputs, for drawing points on a decision boundary."""
    data = OmegaConf.to_container(cfg.data, resolve=True)
    data["features"] = ["x1", "x2"]
    data_cfg = OmegaConf.merge(cfg, {"data": data})
    return dataset_for(data_cfg)


def store_member(run_dir: str | Path, cfg: DictConfig, output: dict[str, Any], group: GroupRun,
                 overrides: list[str]) -> dict[str, Any]:
    """Write result.json, curves and extras for one member; return the result record."""
    timings = {
        "compile_s": group.compile_s,
        "run_s": group.run_s,
        "group_members": len(group.outputs),
        "devices": group.devices,
        "compiled": group.compiled,
    }
    result = make_result(cfg, output, group.budget, overrides=overrides, timings=timings)
    write_run(run_dir, result, output, group.budget, cfg)
    return result


def plot_member(run_dir: str | Path, cfg: DictConfig, result: dict[str, Any]) -> None:
    """Draw the member's PNGs; a plotting failure is a warning, never a lost result."""
    if not cfg.output.plots:
        return
    from harness.report.plots import write_run_plots

    try:
        dataset = points_dataset(cfg) if dataset_for(cfg).input_extent is not None else None
        write_run_plots(run_dir, result, dataset=dataset)
    except Exception as exc:  # noqa: BLE001 - plots are a convenience; the record is stored
        warnings.warn(f"plots for {run_dir} failed: {exc}", stacklevel=2)


def track_member(run_dir: str | Path, cfg: DictConfig, result: dict[str, Any],
                 identity: dict[str, Any] | None = None) -> str | None:
    """Log the stored member to W&B (offline by default) unless ``logger=none``; ``identity``:
    its W&B group, name and tags (default: from its overrides alone)."""
    if cfg.logger.name != "wandb":
        return None
    from harness.track.wandb_logger import already_logged, log_run

    if already_logged(run_dir):
        return None
    return log_run(run_dir, result, cfg.logger, identity=identity)
