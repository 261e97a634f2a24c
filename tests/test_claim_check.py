"""A claim file is checked whole before its first sweep: every mistake is one line, exit 2,
and nothing is trained or written."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import ROOT, compose_config
from harness.claim.check import check_claim, expected_metrics
from harness.claim.spec import resolve_scale, stages, sweeps
from harness.errors import ConfigError

# Two settings, one protocol, a nuisance grid: every part the check looks at, tiny.
CLAIM = {
    "name": "tiny", "statement": "relu beats linear", "source": "a test",
    "scientific": {"key": "model.activation", "values": ["linear", "relu"]},
    "nuisance": {"optim.lr": [0.03, 0.3]},
    "fixed": ["train.epochs=1"],
    "seeds": 2,
    "settings": {"circle": ["data=circle", "data.val_fraction=0.2"], "xor": ["data=xor", "data.val_fraction=0.2"]},
    "protocols": {"short": {"label": "one epoch"}},
    "metric": "test/accuracy", "select_metric": "val/accuracy", "direction": "higher",
    "hypothesis": {"kind": "pairwise", "better": ["relu"], "than": "linear"},
}


def _check(claim: dict) -> None:
    check_claim(claim, stages(claim) + sweeps(claim), compose_config)


def _changed(path: list, value) -> dict:
    claim = copy.deepcopy(CLAIM)
    node = claim
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return claim


def test_a_sound_claim_passes():
    _check(CLAIM)


@pytest.mark.parametrize("path, value, key, shown", [
    (["metric"], "test/acuracy", "claim.metric", "test/acuracy"),
    (["select_metric"], "val/accuracy_typo", "claim.select_metric", "val/accuracy_typo"),
    (["hypothesis", "kind"], "bogus", "claim.hypothesis.kind", "bogus"),
    (["settings", "xor"], ["data=xor", "data.noise=7"], "claim.settings.xor: data.noise", "=7.0"),
    (["settings", "xor"], ["data=xor", "optim.lr=-1"], "claim.settings.xor", "optim.lr=-1"),
    (["fixed"], ["train.epochs=1", "model.activation=tanh"], "claim.fixed", "model.activation=tanh"),
    (["protocols", "short"], {"overrides": ["train.epochs=0"]}, "claim.protocols.short.overrides: train.epochs", "=0"),
])
def test_claim_mistakes_are_refused_naming_the_key(path, value, key, shown):
    with pytest.raises(ConfigError) as info:
        _check(_changed(path, value))
    message = str(info.value)
    assert message.startswith(key) and shown in message and "\n" not in message, message


def test_a_metric_of_another_task_is_refused():
    # test/mse belongs to regression sets: circle's runs store accuracy
    with pytest.raises(ConfigError, match=r"^claim.metric='test/mse' .*test/accuracy"):
        _check(_changed(["metric"], "test/mse"))


def test_expected_metrics_match_a_stored_run(tmp_path):
    """The metrics the check expects are exactly those a real run stores (plus derived ones)."""
    from harness.results import make_result  # noqa: F401  (the record's writer)
    from harness.train.checkpoint import train_group
    from harness.job import store_member

    cfg = compose_config(["data=circle", "data.val_fraction=0.2", "train.epochs=1", "model.hidden=[2]",
                          "logger=none", "output.plots=false"])
    group = train_group([cfg], str(tmp_path))
    stored = set(store_member(str(tmp_path), cfg, group.outputs[0], group, [])["metrics"])
    expected = expected_metrics(cfg)
    assert stored <= expected
    assert expected - stored == {"gap/loss", "gap/accuracy", "steps_to_target"}


def test_harness_claim_refuses_a_bad_claim_before_any_sweep(tmp_path):
    """The real command: one line, exit 2, no report folder, no sweep started."""
    claim = resolve_scale({**OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "claim" / "nonlinearity.yaml")),
                           "scale": "small"})
    proc = subprocess.run([sys.executable, "-m", "harness.claim", "claim=nonlinearity", "claim.scale=small",
                           "claim.metric=test/acc", f"out={tmp_path / 'reports'}", "logger=none", "progress=false"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: claim.metric='test/acc' is not allowed: a metric"), lines
    assert "[1/" not in proc.stdout  # no sweep started
    assert not (tmp_path / "reports").exists() and claim["name"] == "nonlinearity"


def test_harness_claim_names_an_out_folder_it_cannot_make(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "harness.claim", "claim=nonlinearity", "claim.scale=small",
                           "out=/proc/nope", "logger=none", "progress=false"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: out="), proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("scale", ["full", "small"])
@pytest.mark.parametrize("name", sorted(p.stem for p in (Path(ROOT) / "conf" / "claim").glob("*.yaml")))
def test_every_shipped_claim_passes_the_check(name, scale):
    claim = resolve_scale({**OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "claim" / f"{name}.yaml")),
                           "scale": scale})
    _check(claim)
