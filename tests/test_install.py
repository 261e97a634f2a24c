"""Installs: a non-editable install runs the README's commands outside the repo; scripts/env.sh
uses the environment it is given."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _env_sh(env: dict[str, str]) -> subprocess.CompletedProcess:
    """Source scripts/env.sh in a clean bash and print the python it put first on PATH."""
    base = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "HARNESS_VENV")}
    return subprocess.run(["bash", "-c", f"source {ROOT}/scripts/env.sh && command -v python"],
                          env={**base, **env}, capture_output=True, text=True, timeout=60)


def _installed_env(folder: Path, conda: bool) -> Path:
    """An environment folder with a python and the stamp of this checkout's install (so env.sh
    installs nothing); a conda env has conda-meta/ and no bin/activate."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    if conda:
        (folder / "bin" / "activate").unlink()
        (folder / "conda-meta").mkdir()
    (folder / ".harness-installed").write_text(f"{ROOT}\n")
    return folder


@pytest.mark.parametrize("variable", ["HARNESS_VENV", "VIRTUAL_ENV", "CONDA_PREFIX"])
def test_env_sh_uses_the_given_or_active_environment(tmp_path, variable):
    env = _installed_env(tmp_path / "env", conda=variable != "VIRTUAL_ENV")
    extra = {variable: str(env)}
    if variable == "CONDA_PREFIX":
        extra["CONDA_DEFAULT_ENV"] = "env"
    done = _env_sh(extra)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(env / "bin" / "python")
    assert (env / ".harness-installed").read_text().strip() == str(ROOT)


def test_env_sh_refuses_a_folder_without_python_in_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    done = _env_sh({"HARNESS_VENV": str(tmp_path / "empty")})
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "HARNESS_VENV" in done.stderr


@pytest.mark.slow
def test_wheel_install_runs_the_commands_outside_the_repo(tmp_path):
    """`pip install .` (not editable) into a fresh venv; every command from an empty folder."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    bin_ = venv / "bin"
    install = subprocess.run([str(bin_ / "python"), "-m", "pip", "install", "--quiet", "-c",
                              str(ROOT / "constraints.txt"), str(ROOT)],
                             capture_output=True, text=True, timeout=1500)
    assert install.returncode == 0, install.stderr[-3000:]
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}", "VIRTUAL_ENV": str(venv),
           "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONPATH": ""}

    def run(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([str(bin_ / args[0]), *args[1:]], cwd=work, env=env,
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        return done

    where = run("python", "-c", "import harness, harness.config as c; print(harness.__file__, c.conf_dir())")
    assert str(ROOT) not in where.stdout  # the installed copy, not this checkout
    run("harness-train", "train.epochs=1", "output.plots=false", "hydra.run.dir=single")
    record = json.loads((work / "single" / "result.json").read_text())
    assert record["status"] == "ok"
    assert record["versions"]["harness"] == _project_version()
    run("harness-train", "-m", "train.epochs=1", "seed=0,1", "logger=none", "hydra.sweep.dir=sweep")
    assert {p.parent.name for p in (work / "sweep").glob("*/result.json")} == {"0", "1"}
    claim = run("harness-claim", "claim=learning_rate", "claim.scale=small", "logger=none", "progress=false")
    assert (work / "reports" / "learning_rate" / "verdict.json").is_file(), claim.stdout[-2000:]
    helped = run("harness-play", "--help")
    assert "harness-play" in helped.stdout


def _project_version() -> str:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
