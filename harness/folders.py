"""A folder holds one config per job: a run or sweep never replaces a stored record of another.

Before any compute, a single run (``hydra.run.dir``) or a sweep (``hydra.sweep.dir``) looks at
what its folders already hold. A record of the same config is the job's own (resume skips it,
or retries it when it failed); anything else stops the command with one line naming the folder,
the stored and the new overrides, and the two ways on:

- a new ``hydra.run.dir`` / ``hydra.sweep.dir``, or
- ``output.overwrite=true``, which moves each such record's whole folder aside into
  ``<folder>/replaced/<time>/`` (never deletes it); readers skip ``replaced/``.

"Anything else" is: a record of a different config (its hash recomputed from its stored
config, never trusted as stored), a record whose config and ``config_hash`` disagree (edited
by hand: tampered), a ``result.json`` that cannot be read, and in a sweep a stored job folder
that the new sweep has no job for (the sweep shrank or its jobs were reordered).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Optional

from harness import store
from harness.errors import ConfigError
from harness.train.hparams import container_hash

SKIPPED_DIRS = (store.REPLACED_DIR, "wandb", "wandb-groups", ".submitit", ".hydra")


class FolderConflict(ConfigError):
    """A run or sweep whose folder holds records it would replace (one line, exit 2)."""

    def __init__(self, message: str):
        self.key, self.value, self.allowed = "hydra.run.dir", None, message
        ValueError.__init__(self, message)


@dataclasses.dataclass
class Planned:
    """A job about to run: its folder, config hash and overrides."""

    run_dir: Path
    config_hash: str
    overrides: list[str]
    overwrite: bool = False  # output.overwrite of this job


@dataclasses.dataclass
class Conflict:
    """A stored record the planned jobs would replace, and why."""

    run_dir: Path
    why: str
    stored: Optional[list[str]]  # the record's overrides (None: unreadable)
    new: Optional[list[str]]  # the job's overrides (None: no job of the new sweep)


def verified(record: dict[str, Any]) -> tuple[Optional[str], Optional[str]]:
    """``(hash, None)``: the hash of a record's stored config, when it equals the stored
    ``config_hash``; ``(None, why)`` when they disagree or the config cannot be hashed."""
    try:
        recomputed = container_hash(record["config"])
    except Exception as exc:  # noqa: BLE001 - any config that cannot be hashed is not a trusted record
        return None, f"tampered or corrupt: its config cannot be hashed ({type(exc).__name__})"
    if record.get("config_hash") != recomputed:
        return None, (f"tampered or corrupt: its config hashes to {recomputed}, but it says "
                      f"config_hash={record.get('config_hash')!r}")
    return recomputed, None


def distrust(record: dict[str, Any]) -> Optional[str]:
    """Why a readable record is not to be trusted by readers (tables, claims), or None. A
    record with no ``config_hash`` (written by hand or by another tool) is read as it is."""
    return verified(record)[1] if record.get("config_hash") is not None else None


def trusted(run_dir: str | os.PathLike) -> Optional[dict[str, Any]]:
    """The record in ``run_dir`` if readable and its config matches its hash, else None."""
    record = store.read_result(run_dir)
    return record if record is not None and verified(record)[0] is not None else None


def conflicts(planned: Iterable[Planned], sweep_dir: Optional[Path] = None) -> list[Conflict]:
    """Every stored record the ``planned`` jobs would replace (a record of the same config is
    not one); with ``sweep_dir``, also records in job folders no planned job uses."""
    planned = list(planned)
    found = []
    for job in planned:
        record, why = store.read_record(job.run_dir)
        if record is None and why is None:
            continue
        if record is None:
            found.append(Conflict(job.run_dir, f"{store.RESULT_FILE} is {why}", None, job.overrides))
            continue
        stored_hash, why = verified(record)
        if stored_hash is None:
            found.append(Conflict(job.run_dir, f"{store.RESULT_FILE} is {why}", record.get("overrides"), job.overrides))
        elif stored_hash != job.config_hash:
            found.append(Conflict(job.run_dir, "holds a result of a different config", record.get("overrides"),
                                  job.overrides))
    if sweep_dir is not None:
        used = {Path(j.run_dir).absolute() for j in planned}
        depths = {len(_relative(j.run_dir, sweep_dir).parts) for j in planned}
        for run_dir in _record_folders(sweep_dir, max(depths, default=1)):
            if run_dir.absolute() not in used:
                record, why = store.read_record(run_dir)
                found.append(Conflict(run_dir, "holds a job the new sweep does not have (it shrank or was reordered)",
                                      (record or {}).get("overrides"), None))
    return found


def _relative(run_dir: Path, sweep_dir: Path) -> Path:
    try:
        return Path(run_dir).absolute().relative_to(Path(sweep_dir).absolute())
    except ValueError:  # a job folder outside the sweep folder (hydra.sweep.subdir=/elsewhere)
        return Path(run_dir).absolute()


def _record_folders(sweep_dir: Path, depth: int) -> list[Path]:
    """Job folders of ``sweep_dir`` (up to ``depth`` levels down, as deep as its jobs' folders)
    holding a ``result.json``; not those moved aside, nor another sweep nested inside (a
    folder with its own ``multirun.yaml``, e.g. a claim's grid extension)."""
    found = []
    root = Path(sweep_dir).absolute()
    for folder, dirs, files in os.walk(root):
        level = len(Path(folder).relative_to(root).parts)
        if level and "multirun.yaml" in files:
            dirs[:] = []
            continue
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and d != store.RESULT_FILE] if level < depth else []
        if level and (store.RESULT_FILE in files or os.path.isdir(os.path.join(folder, store.RESULT_FILE))):
            found.append(Path(folder))
    return found


def _shown(overrides: Optional[list[str]]) -> str:
    if overrides is None:
        return "(none)"
    return "[" + " ".join(str(o) for o in overrides) + "]"


def message(found: list[Conflict], folder: Path, dir_key: str) -> str:
    """The one line naming the folder, the first conflict's stored and new overrides, and
    the two ways on."""
    first = found[0]
    more = f" (and {len(found) - 1} more job folders)" if len(found) > 1 else ""
    return (f"{folder} already holds records this command would replace: {first.run_dir} {first.why}, "
            f"stored overrides {_shown(first.stored)}, new {_shown(first.new)}{more}; nothing was run. "
            f"Use a new {dir_key}=..., or add output.overwrite=true to move the stored records aside into "
            f"{folder / store.REPLACED_DIR}/<time>/ (nothing is deleted)")


def guard(planned: list[Planned], folder: Path, dir_key: str, sweep: bool) -> list[Path]:
    """Refuse (:class:`FolderConflict`) when the planned jobs would replace stored records,
    unless every job whose record is in the way has ``output.overwrite=true``: then those
    records' folders are moved aside (returned). ``folder`` is the run or sweep folder."""
    found = conflicts(planned, folder if sweep else None)
    if not found:
        return []
    # A record in a job's folder goes aside if that job says so; one no job uses, if all do.
    overwrite = {Path(j.run_dir).absolute(): j.overwrite for j in planned}
    every = all(j.overwrite for j in planned)
    blocked = [c for c in found if not overwrite.get(Path(c.run_dir).absolute(), every)]
    if blocked:
        raise FolderConflict(message(blocked, folder, dir_key))
    return move_aside([c.run_dir for c in found], folder)


def move_aside(run_dirs: list[Path], folder: Path) -> list[Path]:
    """Move each run folder (a job of a sweep) or its contents (the run folder itself) into
    ``folder/replaced/<UTC time>/``, keeping their paths relative to ``folder``."""
    stamp = time.strftime("%Y-%m-%dT%H-%M-%SZ", time.gmtime())
    target = folder / store.REPLACED_DIR / stamp
    n = 0
    while target.exists():
        n += 1
        target = folder / store.REPLACED_DIR / f"{stamp}-{n}"
    target.mkdir(parents=True)
    moved = []
    for run_dir in run_dirs:
        run_dir = Path(run_dir)
        if run_dir.absolute() == folder.absolute():
            for entry in sorted(run_dir.iterdir()):
                if entry.name != store.REPLACED_DIR:
                    os.replace(entry, target / entry.name)
            moved.append(target)
        else:
            dest = target / run_dir.absolute().relative_to(folder.absolute())
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(run_dir, dest)
            moved.append(dest)
    return moved


def install_run_guard() -> None:
    """Check a single run's folder (``hydra.run.dir``) before Hydra writes its ``.hydra/``
    files there, and put those files back when the job is refused (exit 2), so a refused run
    leaves a stored folder byte-identical. Idempotent."""
    from hydra._internal import hydra as hydra_internal

    original = hydra_internal.run_job
    if getattr(original, "_harness", False):
        return

    def run_job(*args: Any, **kwargs: Any) -> Any:
        config = kwargs.get("config")
        if kwargs.get("job_dir_key") != "hydra.run.dir" or config is None:
            return original(*args, **kwargs)
        run_dir = _run_dir(config)
        if run_dir is None:
            return original(*args, **kwargs)
        planned = _planned_run(config, run_dir)
        if planned is not None:
            try:
                guard([planned], run_dir, "hydra.run.dir", sweep=False)
            except FolderConflict as exc:
                if os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise
                print(f"error: {exc}", file=sys.stderr)
                raise SystemExit(2) from None
        kept = _snapshot(run_dir / str(config.hydra.output_subdir or ".hydra"))
        try:
            return original(*args, **kwargs)
        except SystemExit as exc:
            if exc.code == 2:
                _restore(kept)
            raise

    run_job._harness = True  # type: ignore[attr-defined]
    hydra_internal.run_job = run_job


def _run_dir(config: Any) -> Optional[Path]:
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    try:
        HydraConfig.instance().set_config(config)
        return Path(str(OmegaConf.select(config, "hydra.run.dir")))
    except Exception:  # noqa: BLE001 - Hydra's own run_job reports a run dir it cannot resolve
        return None


def _planned_run(config: Any, run_dir: Path) -> Optional[Planned]:
    """The single run as planned, or None when its config does not resolve (validation,
    which runs next, names the bad key)."""
    from omegaconf import OmegaConf

    import copy

    from omegaconf import open_dict, read_write

    try:
        task = copy.deepcopy(config)  # as Hydra's run_job makes the job's config: no hydra node
        with read_write(task), open_dict(task):
            del task["hydra"]
        container = OmegaConf.to_container(task, resolve=True)
        overrides = [str(o) for o in OmegaConf.to_container(config.hydra.overrides.task, resolve=False)]
        overwrite = bool((container.get("output") or {}).get("overwrite", False))
        return Planned(run_dir, container_hash(container), overrides, overwrite)
    except Exception:  # noqa: BLE001
        return None


def _snapshot(folder: Path) -> dict[Path, Optional[bytes]]:
    """The files of a ``.hydra/`` folder as they are now (None: absent)."""
    names = ("config.yaml", "hydra.yaml", "overrides.yaml")
    kept: dict[Path, Optional[bytes]] = {}
    for name in names:
        path = folder / name
        kept[path] = path.read_bytes() if path.is_file() else None
    return kept


def _restore(kept: dict[Path, Optional[bytes]]) -> None:
    """Put back files :func:`_snapshot` saw; remove those it did not see, where it saw any."""
    if all(v is None for v in kept.values()):
        return  # a fresh folder: the job's own cleanup removes it
    for path, data in kept.items():
        if data is not None:
            store.write_bytes_atomic(path, data)
        elif path.exists():
            path.unlink()
