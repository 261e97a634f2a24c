"""harness-claim end to end on the real entry point, at the small scale."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from pathlib import Path

from harness.claim.spec import resolve_scale, sweeps
from harness.errors import ConfigError


def _claim(tmp_path, *args):
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    return subprocess.run([sys.executable, "-m", "harness.claim", *args, f"out={tmp_path}", "progress=false"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)


def _check_report(report, claim_name):
    for name in ("README.md", "table.md", "table.csv", "table.tex", "verdict.json"):
        assert (report / name).exists(), name
    verdict = json.loads((report / "verdict.json").read_text())
    assert verdict["claim"] == claim_name
    for setting in verdict["settings"].values():
        for protocol in setting.values():
            assert protocol["verdict"] in ("supported", "refuted", "inconclusive")
            assert protocol["rule"] and protocol["reason"] and protocol["runs"] > 0
            assert "diverged_runs" in protocol and protocol["budget"]
    readme = (report / "README.md").read_text()
    assert "harness-claim" in readme and "harness-train -m" in readme and "Verdict rule" in readme
    assert list(report.glob("*.png")), "figures"
    return verdict


def test_nonlinearity_small(tmp_path):
    proc = _claim(tmp_path, "claim=nonlinearity", "claim.scale=small")
    assert proc.returncode == 0, proc.stderr[-2000:]
    verdict = _check_report(tmp_path / "nonlinearity", "nonlinearity")
    pairs = verdict["settings"]["circle"]["fixed_epochs"]["pairs"]
    assert set(pairs) == {"relu", "tanh", "sigmoid"}
    table = (tmp_path / "nonlinearity" / "table.csv").read_text().splitlines()
    assert table[0].startswith("setting,protocol,metric") and len(table) == 1 + 4  # four activations
    assert list((tmp_path / "nonlinearity" / "wandb").glob("offline-run-*")), "the W&B report run"
    # Rerun: every job is resumed, the report is rewritten identically in content.
    again = _claim(tmp_path, "claim=nonlinearity", "claim.scale=small")
    assert again.returncode == 0
    assert json.loads((tmp_path / "nonlinearity" / "verdict.json").read_text())["settings"] == verdict["settings"]


@pytest.mark.slow
def test_small_batch_small(tmp_path):
    proc = _claim(tmp_path, "claim=small_batch", "claim.scale=small")
    assert proc.returncode == 0, proc.stderr[-2000:]
    verdict = _check_report(tmp_path / "small_batch", "small_batch")
    assert set(verdict["settings"]["spiral"]) == {"fixed_epochs", "fixed_steps", "steps_to_target", "naive_fixed_lr"}


def test_claim_sweeps_are_plain_multiruns():
    claim = {"name": "c", "statement": "s", "source": "x", "seeds": 3, "metric": "test/accuracy",
             "scientific": {"key": "train.batch_size", "values": [10, 20]},
             "nuisance": {"optim.lr": [0.1, 0.3]}, "fixed": ["optim=sgd"],
             "settings": {"circle": ["data=circle"]},
             "protocols": {"p": {"overrides": ["train.epochs=2"]}, "q": {"overrides": [], "nuisance": {"optim.lr": [0.1]}}},
             "scales": {"small": {"seeds": 1}}}
    plan = sweeps(resolve_scale(dict(claim, scale="small")))
    assert [s.protocol for s in plan] == ["p", "q"]
    assert plan[0].command("d") == ["harness-train", "-m", "optim=sgd", "data=circle", "train.epochs=2",
                                    "train.batch_size=10,20", "optim.lr=0.1,0.3", "seed=range(1)", "logger=none",
                                    "output.plots=false", "hydra.sweep.dir=d"]
    assert "optim.lr=0.1" in plan[1].overrides
    with pytest.raises(ConfigError, match="claim.scale"):
        resolve_scale(dict(claim, scale="huge"))
    with pytest.raises(ConfigError, match="claim.scientific"):
        sweeps(dict(claim, scientific={"key": "x", "values": [1]}))


CLAIMS = sorted(p.stem for p in (Path(__file__).resolve().parent.parent / "conf" / "claim").glob("*.yaml"))


@pytest.mark.parametrize("name", CLAIMS)
@pytest.mark.parametrize("scale", ["full", "small"])
def test_every_claim_file_builds_valid_jobs(name, scale):
    """Each sweep of each shipped claim composes and validates (its first and last job)."""
    from omegaconf import OmegaConf

    from conftest import compose_config
    from harness.sweep.engine import dataset_for
    from harness.validate import validate_config, validate_with_data

    claim = OmegaConf.to_container(OmegaConf.load(Path(__file__).resolve().parent.parent / "conf" / "claim" / f"{name}.yaml"))
    claim["scale"] = scale
    resolved = resolve_scale(claim)
    assert resolved["seeds"] >= (5 if scale == "full" else 1)
    for sweep in sweeps(resolved):
        for pick in (0, -1):
            overrides = []
            for o in sweep.overrides:
                key, _, value = o.partition("=")
                if value.startswith("range("):
                    value = "0"
                elif "," in value and not value.startswith("["):
                    value = value.split(",")[pick]
                overrides.append(f"{key}={value}")
            cfg = compose_config(overrides)
            validate_config(cfg)
            validate_with_data(cfg, dataset_for(cfg))
