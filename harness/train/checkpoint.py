"""Checkpoints of a group in training: save every N epochs, resume after a kill or preemption.

With ``train.checkpoint_every=N`` (epochs; null or 0: off, the default) a group (or chunk)
trains as a :class:`~harness.train.engine.GroupProgram` in segments of N epochs, and after
every segment but the last its state is saved with orbax into

    <root>/.checkpoints/<group key>-<members key>/<next period>/

where ``root`` is the sweep folder (fused launcher, local or SLURM) or the job's folder (a
single run, or one job of ``hydra/launcher=slurm``), and the members key is a hash of the
members' config hashes and the padded member count: a checkpoint is only ever restored into
the same members. A checkpoint holds the member-stacked training state (parameters,
optimizer state, divergence flags), the first period not yet run, and the curves and
confusion matrices so far. orbax writes each step into a temporary folder and renames it
when complete, so a kill mid-save leaves the previous checkpoint intact.

On start, a group whose checkpoint folder exists continues from its latest step; every
restore is logged and appended to ``<root>/.checkpoints/resumed.jsonl``. Once the group's
results are stored its folder is deleted (:func:`discard`). Because segments compute
bitwise what one call computes (tests/test_segments.py), a run with checkpoints, interrupted
or not, ends with exactly the metrics of a run without.

``train.checkpoint_every`` changes no result, so it is neither part of a group's key
(:data:`harness.train.hparams.NOT_COMPUTE`) nor of a result's config hash.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from omegaconf import DictConfig, OmegaConf

from harness.data.cache import dataset_for
from harness.train import events
from harness.train.engine import WHOLE, GroupProgram, run_group
from harness.train.hparams import config_hash, digest, group_key
from harness.train.loop import make_budget

log = logging.getLogger("harness.checkpoint")

FOLDER = ".checkpoints"
JOURNAL = "resumed.jsonl"
FORMAT = 1  # bump when the saved layout changes: older checkpoints are then ignored


def every(cfg: DictConfig) -> int:
    """Epochs between checkpoints of a config (0: off)."""
    return int(OmegaConf.select(cfg, "train.checkpoint_every", default=None) or 0)


def members_key(cfgs: Sequence[DictConfig], pad_to: int = 0) -> str:
    """Which members (and how many rows after padding) a checkpoint belongs to."""
    return digest({"format": FORMAT, "members": [config_hash(c) for c in cfgs], "pad_to": int(pad_to)})


def folder(root: str | Path, cfgs: Sequence[DictConfig], pad_to: int = 0) -> Path:
    """The checkpoint folder of these members under ``root``."""
    return Path(root) / FOLDER / f"{group_key(cfgs[0])}-{members_key(cfgs, pad_to)}"


LIVE_SEGMENTS = 20  # a group trained live reports about this many times (W&B rows, progress)


def segment_periods(cfgs: Sequence[DictConfig], root: str | Path | None, dataset, *, live: bool = False) -> int:
    """Evaluation periods a group trains per segment: between checkpoints under ``root`` when
    its ``train.checkpoint_every`` is set; else, ``live``, about a :data:`LIVE_SEGMENTS`-th of
    the run (so a listener hears of progress while it trains); else ``WHOLE`` (one segment)."""
    budget = make_budget(cfgs[0].train, len(dataset.x_train))
    if _checkpointed(cfgs, root):
        return periods_per_checkpoint(every(cfgs[0]), budget)
    if live:
        return max(1, math.ceil((budget.num_evals + 1) / LIVE_SEGMENTS))
    return WHOLE


def _checkpointed(cfgs: Sequence[DictConfig], root: str | Path | None) -> bool:
    # The group's first member decides (the setting is not part of the group key).
    return bool(every(cfgs[0])) and root is not None


def train_group(cfgs: Sequence[DictConfig], root: str | Path | None, *, dataset=None, pad_to: int = 0,
                live: bool = False):
    """Train a group as :func:`~harness.train.engine.run_group` does, in segments when it is
    checkpointed (``train.checkpoint_every`` and a ``root``) or ``live``
    (:func:`segment_periods`); after each segment :func:`harness.train.events.segment` tells
    the listeners. Segments change no result, bit for bit.

    Returns the :class:`~harness.train.engine.GroupRun`. Call :func:`discard` once its
    results are stored.
    """
    dataset = dataset or dataset_for(cfgs[0])
    periods = segment_periods(cfgs, root, dataset, live=live)
    if periods == WHOLE:
        return run_group(cfgs, dataset=dataset, pad_to=pad_to)
    if _checkpointed(cfgs, root):
        return _train_with_checkpoints(cfgs, folder(root, cfgs, pad_to), periods, dataset=dataset, pad_to=pad_to)
    program = GroupProgram(cfgs, segment_periods=periods, dataset=dataset, pad_to=pad_to)
    while not program.done:
        program.step()
        events.segment(program)
    return program.finish()


def discard(cfgs: Sequence[DictConfig], root: str | Path | None, pad_to: int = 0) -> None:
    """Delete the members' checkpoint folder (their results are stored), if any."""
    if root is None or not every(cfgs[0]):
        return
    path = folder(root, cfgs, pad_to)
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    try:
        path.parent.rmdir()  # only if empty: no other group's checkpoints, no resumed.jsonl
    except OSError:
        pass


def periods_per_checkpoint(epochs: int, budget) -> int:
    """Evaluation periods in ``epochs`` epochs (a period is ``train.eval_every`` steps)."""
    return max(1, round(epochs * budget.steps_per_epoch / budget.eval_every))


def _manager(path: Path):
    import orbax.checkpoint as ocp

    # orbax logs several INFO lines per save through absl; a job's log (Hydra's, submitit's)
    # would fill with them. Warnings still show.
    logging.getLogger("absl").setLevel(max(logging.getLogger("absl").level, logging.WARNING))
    options = ocp.CheckpointManagerOptions(
        max_to_keep=1,  # the previous step is deleted only after the new one is complete
        enable_async_checkpointing=False,  # saved before the next segment starts: simple, and cheap here
        cleanup_tmp_directories=True,  # a save cut short by a kill leaves a tmp folder: removed
    )
    return ocp.CheckpointManager(path.absolute(), options=options)


def _train_with_checkpoints(cfgs, path: Path, periods: int, *, dataset, pad_to: int):
    program = GroupProgram(cfgs, segment_periods=periods, dataset=dataset, pad_to=pad_to)
    manager = _manager(path)
    try:
        _restore(manager, program, path)
        while not program.done:
            # A preemption or timeout signal (submitit's USR2 handler requeues the job and
            # exits) waits until this segment is trained and saved: it never lands mid-save,
            # and the requeued job loses nothing.
            with _signals_deferred():
                program.step()
                events.segment(program)
                if not program.done:
                    _save(manager, program)
        return program.finish()
    finally:
        manager.close()


class _signals_deferred:
    """Hold back Python-level handlers of USR1/USR2/TERM (submitit installs them in SLURM
    jobs) until the block ends, then run them for each signal that came. Only in the main
    thread, and only for signals that have a Python handler: default actions (a plain kill)
    and Ctrl-C are left alone."""

    SIGNALS = ("SIGUSR1", "SIGUSR2", "SIGTERM")

    def __enter__(self) -> "_signals_deferred":
        import signal
        import threading

        self.saved: dict = {}
        self.caught: list = []
        if threading.current_thread() is not threading.main_thread():
            return self
        for name in self.SIGNALS:
            num = getattr(signal, name, None)
            handler = signal.getsignal(num) if num is not None else None
            if callable(handler):
                self.saved[num] = handler
                signal.signal(num, lambda signum, frame: self.caught.append(signum))
        return self

    def __exit__(self, *exc) -> None:
        import signal

        for num, handler in self.saved.items():
            signal.signal(num, handler)
        for signum in self.caught:
            log.info(f"running the deferred handler of signal {signal.Signals(signum).name}")
            self.saved[signum](signum, None)


def _save(manager, program) -> None:
    """One orbax step named by the next period: state leaves, curves and confusions so far."""
    import jax
    import orbax.checkpoint as ocp

    t0 = time.perf_counter()
    leaves = [np.asarray(a) for a in jax.tree_util.tree_leaves(jax.device_get(program.state))]
    curves, confusions = program.curves_so_far()
    names = sorted(curves)
    arrays = {
        "state": {f"{i:04d}": a for i, a in enumerate(leaves)},
        "curves": {f"{i:04d}": np.asarray(curves[k]) for i, k in enumerate(names)},
        "confusions": np.asarray(confusions),
    }
    meta = {"format": FORMAT, "next_period": int(program.next_period), "num_periods": int(program.num_periods),
            "rows": int(len(leaves[0])) if leaves else 0, "curve_names": names, "saved_at": time.time()}
    manager.save(int(program.next_period), args=ocp.args.Composite(arrays=ocp.args.StandardSave(arrays),
                                                                   meta=ocp.args.JsonSave(meta)))
    log.debug(f"checkpoint at period {program.next_period}/{program.num_periods} in "
              f"{time.perf_counter() - t0:.2f}s: {manager.directory}")


def _restore(manager, program, path: Path) -> bool:
    """Continue ``program`` from the latest complete checkpoint, if there is a usable one."""
    import jax
    import orbax.checkpoint as ocp

    step = manager.latest_step()
    if step is None:
        return False
    program.compile()  # not timed as restoring
    t0 = time.perf_counter()
    try:
        saved = manager.restore(step, args=ocp.args.Composite(arrays=ocp.args.StandardRestore(),
                                                              meta=ocp.args.JsonRestore()))
        meta, arrays = dict(saved["meta"]), saved["arrays"]
        program.start()  # fresh state: its structure and shapes check the saved leaves
        like, treedef = jax.tree_util.tree_flatten(program.state)
        leaves = [np.asarray(arrays["state"][f"{i:04d}"]) for i in range(len(like))]
        if meta.get("format") != FORMAT or meta.get("num_periods") != program.num_periods or len(arrays["state"]) != len(like):
            raise ValueError(f"saved layout {meta} does not fit this group")
        for new, old in zip(leaves, like):
            if new.shape != old.shape or new.dtype != old.dtype:
                raise ValueError(f"a saved array is {new.dtype}{list(new.shape)}, the group needs {old.dtype}{list(old.shape)}")
        curves = {k: np.asarray(arrays["curves"][f"{i:04d}"]) for i, k in enumerate(meta["curve_names"])}
        program.restore(jax.tree_util.tree_unflatten(treedef, leaves), int(meta["next_period"]), curves,
                        np.asarray(arrays["confusions"]))
    except Exception as exc:  # noqa: BLE001 - an unusable checkpoint means training from the start
        log.warning(f"checkpoint {path}/{step} cannot be restored ({type(exc).__name__}: {exc}); training from the start")
        for old in manager.all_steps():  # or it would stay the latest step, ahead of the new ones
            manager.delete(old)
        program.start()
        return False
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "checkpoint": str(path), "period": program.next_period,
              "num_periods": program.num_periods, "members": program.n_members, "host": socket.gethostname(),
              "pid": os.getpid(), "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
              "slurm_restart_count": os.environ.get("SLURM_RESTART_COUNT"), "restore_s": round(time.perf_counter() - t0, 3)}
    log.info(f"resumed {program.n_members} members from checkpoint {path.name} at period "
             f"{program.next_period}/{program.num_periods}")
    try:
        with open(path.parent / JOURNAL, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
    except OSError:
        pass
    return True
