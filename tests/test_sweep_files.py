"""The W&B sweep configs in sweeps/: valid for W&B, and the command an agent runs composes.

For each sweeps/*.yaml: validate it against W&B's sweep-config JSON schema (the ``sweeps``
package, which wandb's own controller uses), then build the command a ``wandb agent`` would
run for a sample parameter set, exactly as wandb/wandb_agent.py builds it
(``create_sweep_command`` + ``create_sweep_command_args``), run it with ``--cfg job`` (prints
the composed config, trains nothing) and check every parameter arrived: nested keys, lists as
lists, strings with spaces intact.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SWEEP_FILES = sorted((ROOT / "sweeps").glob("*.yaml"))
IDS = [p.name for p in SWEEP_FILES]
# Characters that break an unquoted Hydra override value (sweep separator, '=', brackets,
# quotes, comment), checked with `--cfg job`; such a string must be Hydra-quoted in the YAML.
HYDRA_SPECIAL = set(",=[]{}()'\"#")


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def sample_args(config: dict[str, Any], pick: int) -> dict[str, dict[str, Any]]:
    """A parameter set as the agent receives it ({name: {"value": v}}): the pick-th of each
    ``values`` (cycling), the middle of each range (geometric for log distributions)."""
    args = {}
    for name, spec in config["parameters"].items():
        if "value" in spec:
            value = spec["value"]
        elif "values" in spec:
            value = spec["values"][pick % len(spec["values"])]
        else:
            lo, hi = spec["min"], spec["max"]
            dist = spec.get("distribution", "")
            if dist.startswith("log_uniform") or dist.startswith("q_log_uniform"):
                value = math.sqrt(lo * hi)
            elif dist.startswith("int_uniform") or (isinstance(lo, int) and isinstance(hi, int)):
                value = (lo + hi) // 2
            else:
                value = (lo + hi) / 2
        args[name] = {"value": value}
    return args


def agent_command(config: dict[str, Any], args: dict[str, dict[str, Any]]) -> list[str]:
    """The argv ``wandb agent`` runs for these args (wandb/wandb_agent.py, Agent._command_run)."""
    from wandb.sdk.launch.sweeps import utils as sweep_utils

    sweep_command = sweep_utils.create_sweep_command(list(config["command"]))
    sweep_vars = sweep_utils.create_sweep_command_args({"args": args})
    sweep_vars["interpreter"] = ["python"]
    sweep_vars["program"] = [config.get("program", "")]
    sweep_vars["env"] = ["/usr/bin/env"]
    command = []
    for chunk in map(str, sweep_command):
        if chunk.startswith("${") and chunk.endswith("}"):
            command += sweep_vars.get(chunk[2:-1]) or []
        else:
            command.append(chunk)
    return command


def run_command(command: list[str], tmp_path: Path, extra_env: dict[str, str] | None = None) -> str:
    """Run an agent command in ``tmp_path`` with this venv's python first on PATH."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           **(extra_env or {})}
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"{' '.join(command)}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def wandb_sweeps_package():
    """W&B's ``sweeps`` package, or a skip. Without it, ``import sweeps`` finds this repo's own
    ``sweeps/`` folder (a namespace package: no ``__file__``), so importorskip alone is not enough."""
    reason = ("W&B's sweep-config schema ships in the `sweeps` package (wandb[sweeps]); "
              "install it with: pip install jsonschema jsonref && pip install --no-deps sweeps")
    module = pytest.importorskip("sweeps", reason=reason)
    if getattr(module, "__file__", None) is None:
        pytest.skip(reason)
    return module


def lookup(config: dict[str, Any], dotted: str) -> Any:
    node = config
    for part in dotted.split("."):
        node = node[part]
    return node


def test_the_three_sweeps_exist():
    assert {"small_batch_grid.yaml", "lr_random.yaml", "activation_bayes.yaml"} <= set(IDS)
    methods = {load(p)["method"] for p in SWEEP_FILES}
    assert {"grid", "random", "bayes"} <= methods


@pytest.mark.parametrize("path", SWEEP_FILES, ids=IDS)
def test_valid_wandb_sweep_config(path):
    sweeps = wandb_sweeps_package()
    config = load(path)
    assert sweeps.schema_violations_from_proposed_config(config) == []
    # What W&B's local controller does next: fill defaults, validate each parameter, sample one run.
    filled = sweeps.SweepConfig(config)
    run = sweeps.next_run(filled, [])
    assert run is not None and set(run.config) == set(config["parameters"])


@pytest.mark.parametrize("path", SWEEP_FILES, ids=IDS)
def test_sweep_file_shape(path):
    config = load(path)
    command = [str(c) for c in config["command"]]
    # Hydra wants key=value: ${args_no_hyphens}, never ${args} (--key=value) nor ${program}.
    assert command[:1] == ["${env}"] and "${args_no_hyphens}" in command
    i = command.index("python")
    assert command[i:i + 3] == ["python", "-m", "harness.train"]
    assert not {"${args}", "${program}", "${interpreter}"} & set(command)
    # Tune on validation (the project's rule); test/ is what a report shows afterwards.
    assert config["metric"]["name"].startswith("val/"), "a sweep optimises a val/ metric, never test/"
    # wandb agent sets WANDB_PROJECT to the sweep's project and the runs follow it (no logger.project).
    assert "logger.project" not in config["parameters"] and not any(
        str(c).startswith("logger.project=") for c in config["command"])
    for name, spec in config["parameters"].items():
        # Flat dotted keys: a nested `parameters:` block would reach Hydra as one dict override.
        assert "parameters" not in spec, f"{name}: use a dotted key such as model.hidden"
        values = [spec["value"]] if "value" in spec else list(spec.get("values", []))
        for value in values:
            strings = value if isinstance(value, list) else [value]
            for s in (x for x in strings if isinstance(x, str)):
                quoted = len(s) >= 2 and s[0] == s[-1] and s[0] in "'\""
                plain = not HYDRA_SPECIAL & set(s) and "${" not in s and s == s.strip()
                assert quoted or plain, (
                    f"{name}={s!r}: Hydra would split or misread it; quote it in the YAML: \"'{s}'\"")
            assert value is not None, f"{name}: None reaches Hydra as the string 'None'; use 'null'"


@pytest.mark.parametrize("path", SWEEP_FILES, ids=IDS)
def test_agent_command_composes(path, tmp_path):
    config = load(path)
    # The last of each `values`: the widest lists and the non-default choices.
    args = sample_args(config, pick=-1)
    command = agent_command(config, args)
    composed = yaml.safe_load(run_command([*command, "--cfg", "job"], tmp_path))
    for name, arg in args.items():
        expected, got = arg["value"], lookup(composed, name)
        if isinstance(expected, float):
            assert isinstance(got, float) and math.isclose(got, expected, rel_tol=1e-9), (name, got, expected)
        else:
            assert got == expected and type(got) is type(expected), (name, got, expected)
    # The metric is measured: a val/ metric needs a validation split.
    assert composed["data"]["val_fraction"] > 0, "val/ metrics need data.val_fraction > 0"
    # The fixed settings in the command arrived too.
    for chunk in command:
        key, sep, value = chunk.partition("=")
        if sep and key in ("data", "optim"):
            assert lookup(composed, f"{key}.name") == value


def test_run_dir_is_per_sweep_run(tmp_path):
    """Parallel agents in one folder must not share Hydra's per-second run dir."""
    path = ROOT / "sweeps" / "small_batch_grid.yaml"
    config = load(path)
    command = agent_command(config, sample_args(config, pick=0))
    out = run_command([*command, "--cfg", "hydra", "--package", "hydra.run", "--resolve"], tmp_path,
                      {"WANDB_SWEEP_ID": "sw33p", "WANDB_RUN_ID": "run42"})
    assert yaml.safe_load(out)["dir"] == "outputs/wandb-sweeps/sw33p/run42"


def test_args_no_hyphens_formats():
    """What ${args_no_hyphens} makes of lists, strings with spaces and floats (the known pitfalls)."""
    from wandb.sdk.launch.sweeps import utils as sweep_utils

    args = {"model.hidden": {"value": [8, 8]}, "logger.group": {"value": "a b"},
            "logger.tags": {"value": ["x y", "z"]}, "optim.lr": {"value": 1e-05},
            "output.plots": {"value": False}}
    flags = sweep_utils.create_sweep_command_args({"args": args})["args_no_hyphens"]
    # One argv entry each (no shell): Python's str() of the value after `key=`.
    assert flags == ["model.hidden=[8, 8]", "logger.group=a b", "logger.tags=['x y', 'z']",
                     "optim.lr=1e-05", "output.plots=False"]


def _history_so_far(run_dir: Path) -> list[dict[str, Any]]:
    """The history rows in a run's offline ``.wandb`` log now, while W&B may still be writing it."""
    import json

    from test_wandb_logger import read_records

    rows = []
    for log in run_dir.glob("wandb/offline-run-*/run-*.wandb"):
        try:
            records = read_records(log)
        except Exception:  # noqa: BLE001 - a record half-written right now: read again later
            return []
        for record in records:
            if record.WhichOneof("record_type") == "history":
                rows.append({i.key or ".".join(i.nested_key): json.loads(i.value_json) for i in record.history.item})
    return rows


@pytest.mark.slow
def test_hyperband_of_the_random_sweep_stops_a_lagging_run_while_it_trains(tmp_path):
    """lr_random.yaml's early_terminate rule, applied by W&B's own stopping code (the
    ``sweeps`` package's ``stop_runs``, which W&B's sweep controller runs) to what two agent
    runs have logged: a finished run with a good learning rate, and one with a hopeless one
    that is still training. Nothing here reaches a server; the runs are the agent's exact
    commands, offline. The lagging run is chosen for stopping from the rows it logged while
    it trains, before its record exists."""
    sweeps = wandb_sweeps_package()
    from sweeps import RunState, SweepRun

    config = load(ROOT / "sweeps" / "lr_random.yaml")
    assert config["early_terminate"]["type"] == "hyperband"
    first_band = config["early_terminate"]["min_iter"]

    def command(lr: float) -> list[str]:
        # Both runs as long (Hyperband compares runs at equal numbers of logged values); long
        # enough that the lagging one is still training once its first rows are in.
        args = sample_args(config, pick=0)
        args["optim.lr"] = {"value": lr}
        argv = agent_command(config, args) + ["train.epochs=40000", "train.eval_every=2500", "output.plots=false"]
        return [c.replace("WANDB_MODE=online", "WANDB_MODE=offline") for c in argv]

    def env(run_id: str) -> dict[str, str]:
        return {"WANDB_SWEEP_ID": "s", "WANDB_RUN_ID": run_id, "WANDB_SILENT": "true"}

    runs = tmp_path / "outputs" / "wandb-sweeps" / "s"
    run_command(command(0.01), tmp_path, env("leader"))
    leader = _history_so_far(runs / "leader")
    metric = config["metric"]["name"]
    assert sum(metric in row for row in leader) > first_band

    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    proc = subprocess.Popen(command(1e-6), cwd=tmp_path, env={**os.environ, "PATH": path, **env("lagging")},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while True:
            lagging = _history_so_far(runs / "lagging")
            if sum(metric in row for row in lagging) >= first_band:
                break
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "the lagging run logged no rows while it trained"
            time.sleep(0.2)
        stop = sweeps.stop_runs(config, [SweepRun(name="leader", state=RunState.finished, history=leader),
                                         SweepRun(name="lagging", state=RunState.running, history=lagging)])
        assert [run.name for run in stop] == ["lagging"]
        assert proc.poll() is None and not (runs / "lagging" / "result.json").exists(), "it was still training"
        # The rule is not trivially "stop everything": the leader, had it been running, goes on.
        assert sweeps.stop_runs(config, [SweepRun(name="leader", state=RunState.running, history=leader),
                                         SweepRun(name="lagging", state=RunState.finished, history=lagging)]) == []
    finally:
        proc.kill()
        proc.wait()
