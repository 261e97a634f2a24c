"""Turn one member's raw outputs into its stored record (``result.json`` and files beside it)."""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from harness.config import resolved
from harness import store
from harness.train.hparams import config_hash, container_hash, hparams_of  # noqa: F401 - the hashes: readers import them from here
from harness.train.loop import GNS_CURVES, Budget, eval_splits, quality_metric

# Metric names whose last path component is one of these are better when lower.
LOWER_IS_BETTER = ("loss", "mse")


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str | None]:
    """Versions of what produced a result: python, jax, flax, optax, harness, git commit and
    whether the work tree had uncommitted changes (``git_dirty``)."""
    import flax
    import jax
    import optax

    import harness

    commit = dirty = None
    try:
        repo = Path(__file__).resolve().parent.parent
        if not (repo / ".git").exists():  # an installed copy: site-packages may sit inside another repo
            raise OSError("not a checkout")
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        # Uncommitted changes to tracked files: the commit alone does not name the code that ran.
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                                    capture_output=True, text=True, timeout=5, check=True).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "harness": harness.__version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "backend": jax.default_backend(),
    }


def summarize_curves(curves: dict[str, np.ndarray]) -> dict[str, float]:
    """Final value of every curve, and its best value (``best/<name>``) over evaluations."""
    metrics: dict[str, float] = {}
    for name, values in curves.items():
        if name == "step":
            continue
        values = np.asarray(values, np.float64)
        metrics[name] = float(values[-1])
        if name.startswith("gns/"):
            continue
        finite = values[np.isfinite(values)]
        if finite.size:
            lower = name.split("/")[-1] in LOWER_IS_BETTER
            metrics[f"best/{name}"] = float(finite.min() if lower else finite.max())
    return metrics


def metric_names(cfg: DictConfig, dataset) -> set[str]:
    """Every key of ``metrics`` that a run of ``cfg`` on ``dataset`` stores (as
    :func:`summarize_curves` and :func:`make_result` name them), known before any compute."""
    curves = [f"{s}/{m}" for s in eval_splits(dataset) for m in ("loss", quality_metric(dataset.task))]
    names = {*curves, *(f"best/{c}" for c in curves), "weight_sparsity"}
    if cfg.train.grad_noise_scale:
        names |= {*GNS_CURVES, "gns/b_simple_median"}
    return names


def loss_above_initial(curves: dict[str, np.ndarray], multiple: float | None) -> int | None:
    """The first evaluation step whose training loss is above ``multiple`` times the loss at
    step 0 (``train.diverge_above``), or None (never, rule off, or no usable initial loss).

    Judged per run from its own curve, after training: group-mates are untouched."""
    if multiple is None or "train/loss" not in curves:
        return None
    loss = np.asarray(curves["train/loss"], np.float64)
    if loss.size < 2 or not np.isfinite(loss[0]) or loss[0] <= 0:
        return None
    above = np.flatnonzero(~(loss[1:] <= multiple * loss[0]))  # a NaN loss counts as above
    return int(np.asarray(curves["step"])[above[0] + 1]) if above.size else None


def objective_value(cfg: DictConfig, metrics: dict[str, float]) -> dict[str, float] | float:
    """What a job returns to Hydra's sweeper: ``metrics[optimized_metric]`` as a float (NaN
    when the job stored none, e.g. it failed), or all of ``metrics`` when no key is set."""
    key = cfg.get("optimized_metric")
    if key is None:
        return metrics
    return float(metrics.get(key, float("nan")))


def make_result(
    cfg: DictConfig,
    output: dict[str, Any],
    budget: Budget,
    *,
    overrides: list[str],
    timings: dict[str, float],
) -> dict[str, Any]:
    """The record of one run, as stored in ``result.json``."""
    curves = dict(output["curves"])
    curves["step"] = budget.eval_steps()
    metrics = summarize_curves(curves)
    metrics["weight_sparsity"] = float(output["weight_sparsity"])
    if "gns/b_simple" in curves:
        b = np.asarray(curves["gns/b_simple"], np.float64)
        b = b[np.isfinite(b) & (b > 0)]
        metrics["gns/b_simple_median"] = float(np.median(b)) if b.size else float("nan")
    diverged = bool(output["diverged"])
    diverged_step = int(output["diverged_step"]) if diverged else None
    diverged_by = "non-finite" if diverged else None
    if not diverged:
        diverged_step = loss_above_initial(curves, cfg.train.get("diverge_above"))
        diverged, diverged_by = diverged_step is not None, "loss_above_initial" if diverged_step is not None else None
    hp = hparams_of(cfg)
    result = {
        "status": "diverged" if diverged else "ok",
        "diverged_step": diverged_step,
        "diverged_by": diverged_by,
        "metrics": metrics,
        "config": resolved(cfg),
        "config_hash": config_hash(cfg),
        "overrides": list(overrides),
        "budget": budget.as_dict(),
        "seed": int(hp["seed"]),
        "order_seed": int(hp["order_seed"]),
        "timings": timings,
        "versions": versions(),
    }
    if "confusion" in output:
        result["confusion_matrix"] = np.asarray(output["confusion"]).round().astype(int).tolist()
    return result


def write_run(run_dir: str | Path, result: dict[str, Any], output: dict[str, Any], budget: Budget, cfg: DictConfig) -> None:
    """Write a run's files; ``result.json`` goes last so its presence means complete."""
    run_dir = Path(run_dir)
    store.remove_stale_temps(run_dir)  # an earlier, killed attempt at this run may have left some
    curves = dict(output["curves"])
    curves["step"] = budget.eval_steps()
    store.write_curves(run_dir / store.CURVES_FILE, curves)
    if "boundary" in output:
        store.write_npz_atomic(run_dir / "boundary.npz", {"boundary": np.asarray(output["boundary"])})
    if cfg.output.save_params:
        import jax

        flat = {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(output["params"])}
        store.write_npz_atomic(run_dir / "params.npz", flat)
    # Last, and only once the files above are durable: its presence means the run is complete.
    store.when_durable(lambda: store.write_json_atomic(run_dir / store.RESULT_FILE, result))
