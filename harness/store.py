"""Results on disk: atomic writes (temp file + rename) and a loader into pandas.

A run's folder holds ``result.json`` (the record), ``curves.csv`` (metrics per evaluation)
and optional extras (``boundary.npz``, ``params.npz``, plots). ``result.json`` is written
last, so its presence means the run is complete; every write goes to a temp file in the
same folder first and is renamed into place, so a crash never leaves a truncated file.
No pickle on disk: JSON, CSV and ``.npz`` read with ``allow_pickle=False``.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

RESULT_FILE = "result.json"
CURVES_FILE = "curves.csv"


_DEFERRED_SYNC: dict[str, Any] = {"depth": 0, "after": []}


@contextlib.contextmanager
def deferred_sync() -> Iterator[None]:
    """Atomic writes inside skip their own ``fsync``; one ``os.sync()`` at the end makes them
    all durable at once, and then the writes handed to :func:`when_durable` run (and are
    synced in turn).

    Renaming a complete temp file into place is what keeps a crashed process from leaving a
    truncated file; the ``fsync`` only adds durability against power loss, at ~5 ms per
    file here — more than storing a fused member's whole record otherwise. The fused
    launcher stores a chunk's members inside this (two syncs per chunk). ``result.json``
    goes through :func:`when_durable`, so it reaches the disk only after the run's curves
    and arrays did: after a power cut a run is complete or has no record (and runs again).
    """
    _DEFERRED_SYNC["depth"] += 1
    try:
        yield
    finally:
        _DEFERRED_SYNC["depth"] -= 1
        if _DEFERRED_SYNC["depth"] == 0:
            after, _DEFERRED_SYNC["after"] = _DEFERRED_SYNC["after"], []
            os.sync()
            if after:
                _DEFERRED_SYNC["depth"] += 1  # the commits themselves: one more sync, not one each
                try:
                    for write in after:
                        write()
                finally:
                    _DEFERRED_SYNC["depth"] -= 1
                    os.sync()


def when_durable(write: Callable[[], None]) -> None:
    """Run ``write`` once everything written before it is on disk: at once outside
    :func:`deferred_sync` (each atomic write is fsynced there), else after its sync.

    For a file whose presence means that others are complete, like ``result.json``."""
    if _DEFERRED_SYNC["depth"]:
        _DEFERRED_SYNC["after"].append(write)
    else:
        write()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success rename it onto ``path``, else delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if not _DEFERRED_SYNC["depth"]:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno is not None and not exc.filename:
            # A full disk fails in write(), which names no file: name the one being written.
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


def stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Temp files :func:`atomic_path` left in ``folder`` (and its subfolders, W&B's aside).

    ``atomic_path`` deletes its temp file on any exception, but a SIGKILL or a power cut
    cannot be caught: the half-written temp stays beside the file it was meant to replace.
    """
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "wandb"]  # W&B's own files: never ours to touch
        found.extend(Path(root, f) for f in files if f.startswith(".") and f.endswith(".tmp"))
    return found


def remove_stale_temps(folder: str | os.PathLike) -> int:
    """Delete what :func:`stale_temps` finds; return how many.

    Call it only from the process that is about to write ``folder`` itself (it owns the
    folder now), so no live writer's temp file is ever removed.
    """
    removed = 0
    for path in stale_temps(folder):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    return removed


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    """Numpy scalars and arrays to Python; non-finite floats to None (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write strict JSON (no NaN) atomically."""
    write_text_atomic(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=True, allow_nan=False) + "\n")


def write_npz_atomic(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write numpy arrays as an uncompressed .npz atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_bytes_atomic(path, buffer.getvalue())


def write_curves(path: str | os.PathLike, curves: dict[str, np.ndarray]) -> None:
    """Curves as CSV: one row per evaluation, one column per metric (``step`` first)."""
    names = ["step"] + sorted(k for k in curves if k != "step")
    rows = [",".join(names)]
    for i in range(len(curves["step"])):
        cells = []
        for name in names:
            value = curves[name][i]
            cells.append(str(int(value)) if name == "step" else repr(float(value)))
        rows.append(",".join(cells))
    write_text_atomic(path, "\n".join(rows) + "\n")


REPLACED_DIR = "replaced"  # records moved aside by output.overwrite=true: <folder>/replaced/<time>/
RECORD_SECTIONS = {"metrics": dict, "config": dict, "budget": dict, "timings": dict, "overrides": list}


def read_record(run_dir: str | os.PathLike) -> tuple[dict[str, Any] | None, str | None]:
    """``(record, None)`` for a readable ``result.json``, ``(None, None)`` when there is none,
    ``(None, why)`` for one that cannot be a record: not a file, not UTF-8, not JSON (e.g.
    truncated), nested too deep to parse, not an object, or a section of the wrong type
    (``"metrics": [1, 2]``).

    Records are written whole (a temp file renamed), so a bad one was damaged or edited
    outside the harness; readers name it and go on with the rest.
    """
    path = Path(run_dir) / RESULT_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None
    except IsADirectoryError:
        return None, "a directory, not a file"
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except OSError as exc:
        return None, f"unreadable ({exc.strerror or exc})"
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}; truncated?)"
    except RecursionError:
        return None, "nested too deeply to be a record"
    if not isinstance(record, dict):
        return None, f"a JSON {type(record).__name__}, not an object"
    for section, kind in RECORD_SECTIONS.items():
        if section in record and record[section] is not None and not isinstance(record[section], kind):
            return None, f'"{section}" is a {type(record[section]).__name__}, not {"an object" if kind is dict else "a list"}'
    return record, None


def read_result(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The stored result of a run folder, or None if absent or unreadable (:func:`read_record`)."""
    return read_record(run_dir)[0]


def read_curves(run_dir: str | os.PathLike):
    """The curves of a run as a pandas DataFrame."""
    import pandas as pd

    return pd.read_csv(Path(run_dir) / CURVES_FILE)


def find_results(root: str | os.PathLike) -> list[Path]:
    """Every run folder under ``root`` holding a result.json (a bad one included: readers
    name it), sorted. Records moved aside (``replaced/`` below ``root``) are not among them."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in (REPLACED_DIR, "wandb")]
        if RESULT_FILE in files or RESULT_FILE in dirs:
            found.append(Path(folder))
        if RESULT_FILE in dirs:
            dirs.remove(RESULT_FILE)
    return sorted(found)


def flatten(obj: Any, prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Nested dicts to one dict with dotted keys (``{"optim": {"lr": 1}}`` -> ``{"optim.lr": 1}``)."""
    out = {} if out is None else out
    if isinstance(obj, dict):
        for k, v in obj.items():
            flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    else:
        out[prefix] = obj
    return out


def load_results(root: str | os.PathLike, problems: list[tuple[Path, str]] | None = None,
                 verify: Callable[[dict[str, Any]], str | None] | None = None):
    """Every result under ``root`` as one pandas DataFrame, a row per run.

    Columns: ``run_dir``, ``status``, ``seed``, metric names (``test/accuracy``...), config
    keys flattened with dots (``optim.lr``, ``train.batch_size``...; lists kept as lists),
    ``budget.*`` and ``timings.*``. A record that cannot be read (:func:`read_record`) is no
    row; ``problems``, when given, gets ``(path, why)`` for each, so the caller can name it.
    ``verify``, when given, says why a readable record is not to be trusted (None: it is), e.g.
    :func:`harness.folders.distrust` (a config that no longer hashes to its hash); such a
    record is no row either.
    """
    import pandas as pd

    rows = []
    for run_dir in find_results(root):
        result, why = read_record(run_dir)
        if result is not None and verify is not None:
            why = verify(result)
            result = None if why else result
        if result is None:
            if why and problems is not None:
                problems.append((run_dir / RESULT_FILE, why))
            continue
        row: dict[str, Any] = {"run_dir": str(run_dir), "status": result.get("status"), "seed": result.get("seed")}
        row.update(result.get("metrics") or {})
        row.update(flatten(result.get("config") or {}))
        for section in ("budget", "timings"):
            for k, v in (result.get(section) or {}).items():
                row[f"{section}.{k}"] = v
        row["diverged_step"] = result.get("diverged_step")
        row["config_hash"] = result.get("config_hash")
        rows.append(row)
    return pd.DataFrame(rows)
