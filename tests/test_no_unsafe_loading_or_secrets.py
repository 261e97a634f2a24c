"""No unsafe loading of stored or user files, no secrets on disk.

- The harness's code (``harness/``, ``hydra_plugins/``, ``scripts/``) is scanned: no pickle
  (nor its relatives), no ``eval``/``exec``, no unsafe YAML, no ``allow_pickle=True`` (NumPy's
  default is False),
  no ``hydra.utils.instantiate``/``call``. One exception, named below with its reason: a
  module may copy an object through pickle in memory, where every ``pickle.loads`` reads
  the bytes of a ``pickle.dumps`` in the same expression (never bytes from anywhere else).
- ``_target_`` appears only in the harness's own Hydra plugin registry (launcher, sweeper).
- A real run with W&B (offline) and fake credentials in the environment: the credentials are
  in none of the files it writes (result, curves, ``.hydra/``, logs, the W&B run) nor in its
  output; a secret-looking config key never reaches W&B's config.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import ROOT, run_cli

CODE_DIRS = ("harness", "hydra_plugins", "scripts")
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "marshal", "joblib"}
UNSAFE_CALLS = {"eval", "exec", "__import__"}
UNSAFE_ATTRS = {("yaml", "unsafe_load"), ("yaml", "full_load"), ("yaml", "unsafe_load_all"), ("pd", "read_pickle"),
                ("pandas", "read_pickle"), ("torch", "load")}


# module -> why it may import pickle; there, only in-memory round trips are allowed
IN_MEMORY_PICKLE = {
    "harness/sweep/compose.py": "copies a typed job config ~3x faster than copy.deepcopy",
}


def _python_files() -> list[Path]:
    return sorted(p for d in CODE_DIRS for p in (ROOT / d).rglob("*.py") if ".venv" not in p.parts)


def _round_trip_only(tree: ast.AST, where: str) -> list[str]:
    """Uses of ``pickle`` other than ``pickle.loads(pickle.dumps(...))`` and its protocol
    constants (an alias, ``getattr(pickle, ...)``, ``pickle.load(file)``, bytes kept aside)."""
    found, allowed = [], set()  # allowed: ids of the ``pickle`` names of allowed uses
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "pickle" \
                and node.attr in ("HIGHEST_PROTOCOL", "DEFAULT_PROTOCOL"):
            allowed.add(id(node.value))
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "pickle.loads":
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Call) and ast.unparse(arg.func) == "pickle.dumps" and len(node.args) == 1:
                allowed.update((id(node.func.value), id(arg.func.value)))
            else:
                found.append(f"{where}:{node.lineno} loads pickle bytes it did not just make")
                allowed.add(id(node.func.value))  # said once
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "pickle" and id(node) not in allowed:
            found.append(f"{where}:{node.lineno} uses pickle outside an in-memory round trip")
    return found


def _problems(path: Path) -> list[str]:
    return _source_problems(path.read_text(), path.relative_to(ROOT).as_posix())


def _source_problems(source: str, relative: str) -> list[str]:
    """What the scan finds in ``source``, the code of the file ``relative`` (to the repo)."""
    tree = ast.parse(source, filename=relative)
    found = _round_trip_only(tree, relative) if relative in IN_MEMORY_PICKLE else []
    for node in ast.walk(tree):
        where = f"{relative}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [f"{where} imports {a.name}" for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES
                      and not (a.name == "pickle" and a.asname is None and relative in IN_MEMORY_PICKLE)]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
            found.append(f"{where} imports from {node.module}")
        elif isinstance(node, ast.ImportFrom) and any(a.name in UNSAFE_MODULES for a in node.names):
            found.append(f"{where} imports {', '.join(a.name for a in node.names if a.name in UNSAFE_MODULES)} "
                         f"from {node.module}")
        elif isinstance(node, ast.Attribute) and node.attr in UNSAFE_MODULES:
            found.append(f"{where} reads {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom) and node.module in ("hydra.utils",):
            found += [f"{where} imports hydra.utils.{a.name}" for a in node.names if a.name in ("instantiate", "call")]
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in UNSAFE_CALLS:
                found.append(f"{where} calls {func.id}()")
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                pair = (func.value.id, func.attr)
                if pair in UNSAFE_ATTRS or (func.attr in ("instantiate", "call") and func.value.id in ("hydra", "utils")):
                    found.append(f"{where} calls {pair[0]}.{pair[1]}()")
                if pair in (("yaml", "load"), ("yaml", "load_all")):
                    loader = next((k.value for k in node.keywords if k.arg == "Loader"), node.args[1] if len(node.args) > 1 else None)
                    name = ast.unparse(loader) if loader is not None else ""
                    if "Safe" not in name:
                        found.append(f"{where} calls yaml.{func.attr} with Loader={name or 'default'}")
            for k in node.keywords:
                if k.arg == "allow_pickle" and not (isinstance(k.value, ast.Constant) and k.value.value is False):
                    found.append(f"{where} passes allow_pickle={ast.unparse(k.value)}")
    return found


def test_no_pickle_eval_exec_or_unsafe_yaml_in_the_code():
    files = _python_files()
    assert len(files) > 30
    problems = [p for f in files for p in _problems(f)]
    assert not problems, "\n".join(problems)


def test_the_pickle_exception_allows_only_in_memory_round_trips(tmp_path):
    def problems(code: str) -> list[str]:
        return _round_trip_only(ast.parse(code), "m.py")

    assert problems("import pickle\ncopy = pickle.loads(pickle.dumps(x, protocol=pickle.HIGHEST_PROTOCOL))") == []
    assert problems("import pickle\npickle.loads(data)") == ["m.py:2 loads pickle bytes it did not just make"]
    assert problems("import pickle\npickle.load(open('f', 'rb'))") == [
        "m.py:2 uses pickle outside an in-memory round trip"]
    assert problems("import pickle\nblob = pickle.dumps(x)\npickle.loads(blob)") == [
        "m.py:3 loads pickle bytes it did not just make", "m.py:2 uses pickle outside an in-memory round trip"]
    for hidden in ("getattr(pickle, 'loads')(data)", "p = pickle\np.load(f)", "vars(pickle)['loads'](data)"):
        assert problems(f"import pickle\n{hidden}"), hidden


def test_pickle_reached_through_another_module_is_found():
    for code in ("from harness.sweep.compose import pickle", "from harness.sweep import compose\ncompose.pickle.loads(b)"):
        assert _source_problems(code, "harness/other.py"), code


def test_targets_only_from_the_harness_plugin_registry():
    import yaml

    for path in sorted((ROOT / "conf").rglob("*.yaml")):
        text = path.read_text()
        for line in text.splitlines():
            if "_target_" in line.split("#")[0]:
                target = str(yaml.safe_load(line.strip().lstrip("- "))["_target_"])
                assert target.startswith("hydra_plugins.harness_fused."), (path, target)
    for path in (ROOT / "hydra_plugins").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "_target_":
                assert ast.literal_eval(node.value).startswith("hydra_plugins.harness_fused."), path


@pytest.mark.slow  # the default suite checks the same in an online-mode sweep (test_faults_lose_no_result)
def test_secrets_in_the_environment_are_written_nowhere(tmp_path):
    from test_wandb_logger import FAKE_KEY

    secrets = {"WANDB_API_KEY": FAKE_KEY, "AWS_SECRET_ACCESS_KEY": "fake-aws-secret-0123456789abcdef",
               "HF_TOKEN": "hf_fakefakefakefake0123456789", "GITHUB_TOKEN": "ghp_fakefakefake0123456789abcdef"}
    proc = run_cli(["data=circle", "train.epochs=1", "output.plots=false", "hydra.run.dir=run", "logger.project=sec"],
                   tmp_path, env={**secrets, "WANDB_MODE": "offline"})
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "run"
    assert (run / "wandb_run_id").exists() and list(run.glob("wandb/offline-run-*"))
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 5
    for value in secrets.values():
        assert value not in proc.stdout + proc.stderr
        for path in files:
            assert value.encode() not in path.read_bytes(), (path, value)


def test_secret_looking_config_keys_never_reach_wandb():
    from harness.track.wandb_logger import _run_config, scrub_secrets

    config = scrub_secrets(_run_config({"config": {"optim": {"lr": 0.1}, "logger": {"api_key": "x", "token": "y"}}}))
    assert config["optim"] == {"lr": 0.1} and "api_key" not in config["logger"] and "token" not in config["logger"]
