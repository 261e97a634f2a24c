"""The fast sweep composer builds exactly the configs Hydra composes, composing with Hydra
only once per structure (group choices and added keys); number changes are plain updates."""

from __future__ import annotations

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

from harness.config import CONF_DIR, register_configs
from harness.sweep.compose import SweepComposer


@pytest.fixture()
def hydra_loader():
    """Hydra's config loader and a multirun's master config, as the launcher gets them."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", ["hydra.sweep.dir=sweep"], RunMode.MULTIRUN)
        groups = {p.name for p in CONF_DIR.iterdir() if p.is_dir()}
        yield loader, master, groups


def _hydra_composed(loader, master, overrides):
    full = loader.load_sweep_config(master, list(overrides))
    return {k: v for k, v in OmegaConf.to_container(full, resolve=False).items() if k != "hydra"}


@pytest.mark.parametrize("jobs", [
    [["optim.lr=0.1", "seed=0"], ["optim.lr=0.01", "seed=1"], ["optim.lr=0.3", "seed=2"]],
    [["data=circle", "optim.lr=0.1"], ["data=circle", "optim.lr=0.2"]],
    [["model.hidden=[4,4]", "regularizer.rate=0.001"], ["model.hidden=[8]", "regularizer.rate=0.01"]],
])
def test_value_changes_are_composed_once_and_equal_hydras(hydra_loader, jobs):
    loader, master, groups = hydra_loader
    composer = SweepComposer(loader, master, groups)
    composed = [composer.compose(overrides, i) for i, overrides in enumerate(jobs)]
    assert composer.hydra_composed == 1
    for job, overrides in zip(composed, jobs):
        assert OmegaConf.to_container(job.cfg, resolve=False) == _hydra_composed(loader, master, overrides)
        assert job.hydra["overrides"]["task"] == overrides
        assert job.run_dir.name == str(job.idx)


def test_a_group_choice_is_a_new_structure(hydra_loader):
    loader, master, groups = hydra_loader
    composer = SweepComposer(loader, master, groups)
    composer.compose(["optim=sgd", "optim.lr=0.1"], 0)
    composer.compose(["optim=sgd", "optim.lr=0.2"], 1)
    adam = composer.compose(["optim=adam", "optim.lr=0.1"], 2)
    assert composer.hydra_composed == 2
    assert adam.cfg.optim.name == "adam"
    assert OmegaConf.to_container(adam.cfg, resolve=False) == _hydra_composed(loader, master, ["optim=adam", "optim.lr=0.1"])


def test_a_value_of_the_wrong_type_is_rejected_as_composing_would(hydra_loader):
    loader, master, groups = hydra_loader
    composer = SweepComposer(loader, master, groups)
    composer.compose(["optim.lr=0.1"], 0)
    with pytest.raises(ValidationError):
        composer.compose(["optim.lr=fast"], 1)


def test_hydra_files_are_the_jobs_configs(hydra_loader):
    loader, master, groups = hydra_loader
    composer = SweepComposer(loader, master, groups)
    composer.compose(["seed=0"], 0)
    job = composer.compose(["seed=5"], 1)
    files = job.hydra_files()
    assert OmegaConf.create(files["config.yaml"]).seed == 5
    assert OmegaConf.create(files["overrides.yaml"]) == ["seed=5"]
    assert OmegaConf.create(files["hydra.yaml"]).hydra.job.num == 1


def test_composed_configs_are_read_only_and_resolved_once(hydra_loader, monkeypatch):
    """A job's config cannot change after composing, so its resolved form is computed once:
    an environment variable read through an interpolation keeps the value it had then."""
    from omegaconf.errors import ReadonlyConfigError

    from harness.config import resolved

    loader, master, groups = hydra_loader
    composer = SweepComposer(loader, master, groups)
    composer.compose(["seed=0"], 0)
    monkeypatch.setenv("HARNESS_TEST_PROJECT", "first")
    job = composer.compose(["seed=1", "logger.project=${oc.env:HARNESS_TEST_PROJECT}"], 1)
    with pytest.raises(ReadonlyConfigError):
        job.cfg.seed = 2
    assert resolved(job.cfg)["logger"]["project"] == "first"
    monkeypatch.setenv("HARNESS_TEST_PROJECT", "second")
    assert resolved(job.cfg)["logger"]["project"] == "first"  # the conversion is not repeated
    assert OmegaConf.to_container(job.cfg, resolve=True)["logger"]["project"] == "second"


def test_resolved_gives_a_copy_the_caller_may_change(hydra_loader):
    from harness.config import resolved

    loader, master, groups = hydra_loader
    job = SweepComposer(loader, master, groups).compose(["optim.lr=0.1"], 0)
    first = resolved(job.cfg)
    first["optim"]["lr"] = 99.0
    assert resolved(job.cfg)["optim"]["lr"] == 0.1


def test_a_writable_config_is_resolved_afresh_each_time(monkeypatch):
    from harness.config import resolved

    cfg = OmegaConf.create({"project": "${oc.env:HARNESS_TEST_PROJECT}"})
    monkeypatch.setenv("HARNESS_TEST_PROJECT", "first")
    assert resolved(cfg) == {"project": "first"}
    monkeypatch.setenv("HARNESS_TEST_PROJECT", "second")
    assert resolved(cfg) == {"project": "second"}


def test_a_configs_cached_form_goes_with_it():
    import gc

    from harness import config

    cfg = OmegaConf.create({"a": 1})
    OmegaConf.set_readonly(cfg, True)
    config.resolved(cfg)
    key = id(cfg)
    assert key in config._RESOLVED
    del cfg
    gc.collect()
    assert key not in config._RESOLVED
