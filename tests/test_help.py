"""Each entry point's --help, the choices Hydra offers, and the experiment presets."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf import OmegaConf

from harness.config import CONF_PACKAGE, register_configs


def _help_of(module: str) -> str:
    """What ``python -m <module> --help`` prints. A fresh process: Hydra's --help in a process
    whose earlier in-process runs configured logging onto pytest's (closed) captured streams
    ends the interpreter with "lost sys.stderr"."""
    done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _section(text: str, title: str) -> list[str]:
    """The non-empty lines under ``== <title> ==`` up to the next blank line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"== {title}"))
    body = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        body.append(line.strip())
    return body


def test_train_help_names_its_groups_and_examples_not_hydras_banner():
    text = _help_of("harness.train")
    assert text.startswith("harness-train: ")
    assert "powered by Hydra" not in text
    groups = dict(line.split(": ", 1) for line in _section(text, "Config groups"))
    assert set(groups) == {"data", "model", "optim", "regularizer", "logger", "experiment"}  # no claim
    assert "spiral" in groups["data"].split(", ") and "_schema" not in text
    assert "mnist1d_cnn" in groups["experiment"].split(", ")
    assert len([line for line in _section(text, "Examples") if line.startswith("harness-train ")]) == 3


def test_claim_help_lists_the_claims():
    text = _help_of("harness.claim")
    assert text.startswith("harness-claim: ") and "powered by Hydra" not in text
    groups = dict(line.split(": ", 1) for line in _section(text, "Config groups"))
    assert set(groups) == {"claim", "logger"}
    assert "small_batch" in groups["claim"].split(", ")
    assert len([line for line in _section(text, "Examples") if line.startswith("harness-claim ")]) == 3


def test_play_help_prints_its_keys_and_exits_zero(capsys):
    from harness.play.cli import main

    main(["--help"])  # returns: nothing is served
    text = capsys.readouterr().out
    assert text.startswith("harness-play: ")
    assert all(f"{key}=" in text for key in ("host", "port", "chunk"))


@pytest.fixture()
def hydra_app():
    """Hydra initialised on the shipped configs, as the entry points see them."""
    register_configs()
    with initialize_config_module(config_module=CONF_PACKAGE, version_base="1.3"):
        yield GlobalHydra.instance().config_loader()


@pytest.mark.parametrize("group", ["data", "model", "optim", "regularizer", "logger"])
def test_group_schemas_are_never_offered_as_choices(hydra_app, group):
    # what --help, tab completion and "Available options" list
    options = hydra_app.get_group_options(group)
    assert options and f"{group}_schema" not in options
    assert compose("config", overrides=[f"{group}={options[0]}"])  # ... while their files still load them


def test_a_group_schema_still_types_the_files_that_name_it(hydra_app):
    with pytest.raises(HydraException, match="noise"):
        compose("config", overrides=["data=spiral", "data.noise=lots"])


def test_experiment_preset_equals_its_documented_command_line(hydra_app):
    preset = compose("config", overrides=["experiment=mnist1d_cnn"])
    spelled = compose("config", overrides=["data=mnist1d", "model=mnist1d_cnn", "optim=adam", "optim.lr=0.01",
                                           "train.batch_size=100", "train.steps=3000", "train.eval_every=300"])
    assert OmegaConf.to_container(preset) == OmegaConf.to_container(spelled)
    later = compose("config", overrides=["experiment=mnist1d_mlp", "optim.lr=0.003", "model.hidden=[50]"])
    assert later.optim.lr == 0.003 and list(later.model.hidden) == [50] and later.optim.name == "adam"


def test_a_misspelt_experiment_is_refused(hydra_app):
    with pytest.raises(HydraException, match="experiment"):
        compose("config", overrides=["experiment=mnist1d_cnnn"])
