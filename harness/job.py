"""The job lifecycle every driver goes through: check -> train a group -> store its members.

    dataset = check(cfg)                                 # validate, load data, validate with data
    result = stored_result(run_dir, cfg)                 # resume: a complete record of this config
    group, results = run(cfgs, run_dirs, overrides, root)  # train, store every member, drop checkpoints

Drivers: a single ``harness-train`` run (:func:`harness.cli.run_job`, a group of one), the fused
launcher (``harness/sweep/launcher.py``, which calls the steps of :func:`run` one by one to turn
a failed group into failed records and each stored member into a Hydra ``JobReturn``), the
SLURM chunk runner (:func:`harness.sweep.remote.train_chunk`: :func:`run` on members the
submitting launcher already checked and found not stored) and the playground
(:func:`harness.play.settings.member_configs` checks its members here; its session trains them
segment by segment). So a job's folder looks the same whichever driver ran it. Plots and W&B
runs (the extras) are drawn from the stored records afterwards, by the driver
(:mod:`harness.sweep.writer`): a failure there never loses a result.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Sequence

from omegaconf import DictConfig

from harness import folders, store
from harness.data.base import Dataset
from harness.data.cache import dataset_for
from harness.results import make_result, write_run
from harness.train import checkpoint, engine
from harness.train.engine import GroupRun
from harness.train.hparams import config_hash
from harness.validate import validate_config, validate_with_data

COMPLETE = ("ok", "diverged")  # statuses of a record that resume keeps (a failed one is retried)


def check(cfg: DictConfig) -> Dataset:
    """Validate ``cfg``, load its data set (once per process) and validate the two together;
    return the data set. Raises ConfigError or DataError naming the key."""
    validate_config(cfg)
    dataset = dataset_for(cfg)
    validate_with_data(cfg, dataset)
    return dataset


def stored_result(run_dir: str | Path, cfg: DictConfig) -> dict[str, Any] | None:
    """The job's stored record if it is complete and of the same config (resume skips the job).
    The record's hash is recomputed from its stored config, not taken as stored (a hand-edited
    record is not trusted)."""
    result = folders.trusted(run_dir)
    if result and result.get("status") in COMPLETE and result.get("config_hash") == config_hash(cfg):
        return result
    return None


def train(cfgs: Sequence[DictConfig], checkpoint_root: str | Path | None, *, dataset: Dataset | None = None,
          pad_to: int = 0, live: bool = False) -> GroupRun:
    """Train ``cfgs`` as one compile group (in checkpointed segments under ``checkpoint_root``
    when ``train.checkpoint_every`` is set; with ``live``, in segments that report to the
    listeners of :mod:`harness.train.events` while it trains)."""
    return checkpoint.train_group(cfgs, checkpoint_root, dataset=dataset, pad_to=pad_to, live=live)


def precompile(cfgs: Sequence[DictConfig], checkpoint_root: str | Path | None, *, pad_to: int = 0) -> None:
    """Start compiling, in the background, the program :func:`train` will run for ``cfgs``
    (see :func:`harness.train.engine.precompile`)."""
    dataset = dataset_for(cfgs[0])
    engine.precompile(cfgs, dataset=dataset, pad_to=pad_to,
                      segment_periods=checkpoint.segment_periods(cfgs, checkpoint_root, dataset))


def store_member(run_dir: str | Path, cfg: DictConfig, output: dict[str, Any], group: GroupRun,
                 overrides: list[str]) -> dict[str, Any]:
    """Write one member's result.json and the files beside it; return the result record."""
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


def store_members(group: GroupRun, store_one: Callable[[int, dict[str, Any]], Any], *,
                  defer_sync: bool = True) -> list[Any]:
    """``store_one(i, output)`` for every member of a trained group; with ``defer_sync`` one
    sync for the group's files, then one for its result.json files, not one per file."""
    with store.deferred_sync() if defer_sync else contextlib.nullcontext():
        return [store_one(i, output) for i, output in enumerate(group.outputs)]


def finish(cfgs: Sequence[DictConfig], checkpoint_root: str | Path | None, *, pad_to: int = 0) -> None:
    """The members' results are stored: delete their checkpoints."""
    checkpoint.discard(cfgs, checkpoint_root, pad_to=pad_to)


def run(cfgs: Sequence[DictConfig], run_dirs: Sequence[str | Path], overrides: Sequence[list[str]],
        checkpoint_root: str | Path | None, *, dataset: Dataset | None = None,
        pad_to: int = 0, live: bool = False) -> tuple[GroupRun, list[dict[str, Any]]]:
    """Train ``cfgs`` as one group (``live``: see :func:`train`) and store member ``i`` into
    ``run_dirs[i]``; return the group and the stored records."""
    group = train(cfgs, checkpoint_root, dataset=dataset, pad_to=pad_to, live=live)
    results = store_members(group, lambda i, output: store_member(run_dirs[i], cfgs[i], output, group, overrides[i]))
    finish(cfgs, checkpoint_root, pad_to=pad_to)
    return group, results
