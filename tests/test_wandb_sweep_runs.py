"""A real fused sweep's W&B runs, read from their offline ``.wandb`` files: each run carries
the sweep as its group, the overrides that vary as its name, its overrides as tags, and lands
in the project ``WANDB_PROJECT`` names. In-process (``harness.cli.main``), tiny jobs."""

from __future__ import annotations

import sys

import pytest
import yaml

pytest.importorskip("wandb")

from test_wandb_logger import read_offline_run  # noqa: E402  (the .wandb reader)

from harness import store  # noqa: E402
from harness.track.wandb_logger import logged_run_id  # noqa: E402


def run_sweep(argv: list[str], monkeypatch) -> None:
    """``harness-train -m <argv>`` in this process (Hydra's global state reset around it)."""
    from hydra.core.global_hydra import GlobalHydra

    from harness import cli

    monkeypatch.setattr(sys, "argv", ["harness-train", "-m", *argv])
    GlobalHydra.instance().clear()
    try:
        cli.main()
    finally:
        GlobalHydra.instance().clear()


def test_sweep_runs_carry_group_names_tags_and_the_wandb_project(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_PROJECT", "x")
    for name, sub in (("WANDB_CACHE_DIR", "cache"), ("WANDB_DATA_DIR", "data"), ("WANDB_CONFIG_DIR", "config")):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / sub))
    sweep_dir = tmp_path / "sweep"
    run_sweep(["optim.lr=0.01,0.1", "seed=1", "data=xor", "data.num_samples=40", "train.epochs=1",
               "model.hidden=[2]", "output.plots=false", "output.save_params=true",
               "hydra.launcher.writer=inline", "hydra.launcher.progress=false", f"hydra.sweep.dir={sweep_dir}"],
              monkeypatch)
    run_dirs = sorted(store.find_results(sweep_dir))
    assert len(run_dirs) == 2
    names = set()
    for run_dir in run_dirs:
        overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())
        run = read_offline_run(run_dir, logged_run_id(run_dir))
        assert run["project"] == "x"
        assert run["group"] == str(sweep_dir)
        (varying,) = [o for o in overrides if o.startswith("optim.lr=")]
        assert run["name"] == varying  # what tells it apart in the sweep
        # Tags: every override that changes the training; none about logging, plots or Hydra.
        assert run["tags"] == [o for o in overrides if not o.startswith(("output.", "hydra."))]
        assert {"seed=1", "data=xor", "train.epochs=1"} <= set(run["tags"])
        assert run["job_type"] == "train"
        assert [a for a in run["artifacts"] if a[1] == "model"] == [(f"params-{run['id']}", "model", ["params.npz"])]
        names.add(run["name"])
    assert names == {"optim.lr=0.01", "optim.lr=0.1"}


def _launcher_log(call) -> str:
    """What the fused launcher logs while ``call`` runs (Hydra's logging set-up replaces the
    root logger's handlers, pytest's capture among them: a handler on the launcher's own)."""
    import io
    import logging

    text, logger = io.StringIO(), logging.getLogger("harness.fused")
    handler = logging.StreamHandler(text)
    logger.addHandler(handler)
    try:
        call()
    finally:
        logger.removeHandler(handler)
    return text.getvalue()


def test_auto_writes_a_run_per_member_up_to_the_limit_and_a_run_per_group_above(tmp_path, monkeypatch):
    """``hydra.launcher.wandb=auto`` (the default): 3 tracked members with a limit of 3 get a
    W&B run each; with a limit of 2 the same sweep writes one run per compile group (its
    members table and a curves chart per metric), no member runs, and says so in one line."""
    for name, sub in (("WANDB_CACHE_DIR", "cache"), ("WANDB_DATA_DIR", "data"), ("WANDB_CONFIG_DIR", "config")):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / sub))
    common = ["optim.lr=0.01,0.1,1.0", "seed=1", "data=xor", "data.num_samples=40", "train.epochs=2",
              "model.hidden=[2]", "output.plots=false", "hydra.launcher.writer=inline", "hydra.launcher.progress=false"]
    at_limit = tmp_path / "at"
    run_sweep(common + ["hydra.launcher.wandb_members=3", f"hydra.sweep.dir={at_limit}"], monkeypatch)
    assert all(logged_run_id(d) for d in store.find_results(at_limit)) and not (at_limit / "wandb-groups").exists()

    above = tmp_path / "above"
    said = _launcher_log(lambda: run_sweep(common + ["hydra.launcher.wandb_members=2", f"hydra.sweep.dir={above}"],
                                           monkeypatch))
    assert said.count("W&B: 3 members > hydra.launcher.wandb_members=2: one run per compile group") == 1, said
    run_dirs = list(store.find_results(above))
    assert len(run_dirs) == 3 and not any(logged_run_id(d) for d in run_dirs)  # no member runs
    (group_dir,) = (above / "wandb-groups").iterdir()
    run = read_offline_run(group_dir, logged_run_id(group_dir))
    assert run["config"]["num_members"] == 3
    (row,) = run["history"]
    assert {"members.path", "curves/test/accuracy_table.path", "curves/train/loss_table.path"} <= set(row)


@pytest.mark.parametrize("mode, tracked, limit, runs", [
    ("auto", 64, 64, "member"), ("auto", 65, 64, "group"), ("auto", 1, 0, "group"), ("auto", 0, 64, "none"),
    ("member", 10_000, 64, "member"), ("group", 1, 64, "group"), ("none", 5, 64, "none")])
def test_granularity_follows_the_mode_and_for_auto_the_member_limit(mode, tracked, limit, runs):
    from harness.sweep.writer import granularity

    assert granularity(mode, tracked, limit) == runs
