"""Copy stored results into Weights & Biases: one W&B run per result, or one per compile group.

Tracking is a side channel: ``result.json`` on disk is the record, and a W&B failure must
never cost it. So every public function here catches *every* error, turns it into exactly
one :class:`TrackingWarning`, and returns None; nothing here writes to ``result.json``.

Runs are offline unless the logger config or ``WANDB_MODE`` says otherwise, so logging works
with no account and no network (``wandb sync`` uploads later). After a successful finish a
``wandb_run_id`` marker goes into the run folder, so a re-run can skip logged runs
(:func:`already_logged`).

Per-run overhead is kept low: no console capture, no code or git snapshot, no system
metrics, no requirements file; curves are logged as history rows (never a Table).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import logging
import warnings
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from harness import store
# Names and tags are built from the describing overrides (never logger.*, hydra.*, output.*).
from harness.overrides import NOT_DESCRIPTIVE, describing_overrides, override_key, varying_keys  # noqa: F401 - re-exported

MARKER_FILE = "wandb_run_id"
# Config keys whose name contains one of these are dropped before they reach W&B.
SECRET_WORDS = ("key", "token", "secret", "password")
# Images logged when present in the run folder, by W&B key.
IMAGES = {"plots/curves": "curves.png", "plots/boundary": "boundary.png", "plots/confusion": "confusion.png"}
PARAMS_FILE = "params.npz"  # output.save_params=true: logged as a "model" artifact
# Files of a claim's report folder logged as its "report" artifact (the runs/ folder is not).
REPORT_SUFFIXES = (".md", ".csv", ".tex", ".json", ".png")


# wandb.init's wait for the server in online mode when neither the caller nor
# WANDB_INIT_TIMEOUT says otherwise (W&B's own default, 90 s, stalls a sweep's writer).
DEFAULT_INIT_TIMEOUT_S = 20.0
# Problems this process has reported, or None: report every failure (report_each_problem_once).
_REPORTED: set[str] | None = None
# Set when an online wandb.init failed: later runs of this process go straight to offline.
_OFFLINE_FALLBACK: dict[str, str] = {}
OFFLINE_SUFFIX = "o"  # id of a run kept offline after its online start failed
MAX_TAG_CHARS = 64  # W&B refuses longer tags
DEFAULT_PROJECT = "harness"  # when neither logger.project nor WANDB_PROJECT names one
# The wandb.init arguments the harness fills in itself, and W&B's environment variable for each:
# where the variable is set and the config does not set the argument, W&B's value wins.
ENV_FOR = {"project": "WANDB_PROJECT", "group": "WANDB_RUN_GROUP", "name": "WANDB_NAME",
           "tags": "WANDB_TAGS", "run_id": "WANDB_RUN_ID", "dir": "WANDB_DIR"}
PATH = re.compile(r"/[^\s:'\"]*")  # paths differ between runs; the problem does not


class TrackingWarning(UserWarning):
    """W&B tracking failed; the stored result is unaffected."""


def report_each_problem_once(enabled: bool = True) -> None:
    """From now on give one warning per kind of failure, not one per run (a sweep's writer:
    an unwritable W&B dir would otherwise warn once for every member)."""
    global _REPORTED
    if not enabled:
        _REPORTED = None
    elif _REPORTED is None:
        _REPORTED = set()


def reset_online_fallback() -> None:
    """Forget an earlier online failure: the next online run tries the server again."""
    _OFFLINE_FALLBACK.clear()


def stable_run_id(folder: str | os.PathLike, salt: str = "") -> str:
    """The W&B run id of a run folder: the same for every attempt to log it, so a rerun after a
    crash replaces a half-written run instead of adding a second one."""
    text = f"{Path(folder).absolute()}|{salt}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def group_run_id(group_dir: str | os.PathLike, results: list[dict[str, Any]], name: str | None) -> str:
    """The W&B run id of a group run: fixed by its folder, its members' configs and its name,
    so a rerun of the same group replaces a half-written run, and a group whose members
    changed (a new sweep into the same folder) gets a run of its own."""
    return stable_run_id(group_dir, "|".join(str(r.get("config_hash")) for r in results) + f"|{name}")


def run_identity(overrides: Iterable[str], varying: Iterable[str] | None = None,
                 group: str | None = None) -> dict[str, Any]:
    """The W&B group, name and tags the harness gives a run by default.

    ``name``: the job's overrides whose keys are in ``varying`` (what tells it apart from the
    rest of its sweep), else all its describing overrides, else ``defaults``. ``tags``: every
    describing override (cut to W&B's 64 characters). ``group``: the sweep, as given.
    """
    describing = describing_overrides(overrides)
    varying = set(varying or ())
    differing = [o for o in describing if override_key(o) in varying]
    return {"group": group, "name": " ".join(differing or describing) or "defaults",
            "tags": [o[:MAX_TAG_CHARS] for o in describing]}


def _init_value(arg: str, explicit: Any, default: Any) -> Any:
    """What ``wandb.init`` gets for ``arg``: the config's value when it sets one; else the
    value of W&B's environment variable for it (read here, at each run: wandb reads its
    environment once per process); else the harness's default."""
    if explicit not in (None, "", [], ()):
        return explicit
    env = os.environ.get(ENV_FOR[arg])
    if env:
        return [t for t in env.split(",") if t] if arg == "tags" else env
    return default


def _wandb_dir(logger_cfg, default: str | os.PathLike) -> str | os.PathLike:
    """Where a run's ``wandb/`` folder goes: ``logger.dir``, else ``WANDB_DIR``, else ``default``."""
    return getattr(logger_cfg, "dir", None) or os.environ.get(ENV_FOR["dir"]) or default


def logged_run_id(folder: str | os.PathLike) -> str | None:
    """The run id in ``folder``'s ``wandb_run_id`` marker (a finished W&B run), or None."""
    try:
        return (Path(folder) / MARKER_FILE).read_text().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def already_logged(run_dir: str | os.PathLike) -> bool:
    """True if ``run_dir`` holds a non-empty ``wandb_run_id`` marker from a finished W&B run."""
    return logged_run_id(run_dir) is not None


def resolve_mode(logger_cfg) -> str:
    """W&B mode: the config's ``mode``, else ``WANDB_MODE``, else ``offline`` (no account needed)."""
    mode = getattr(logger_cfg, "mode", None) or os.environ.get("WANDB_MODE") or "offline"
    return str(mode)


def tracking_enabled(logger_cfg) -> bool:
    """False when the config names no W&B logger (``name: none``) or the mode is ``disabled``.

    wandb's disabled mode hands back a no-op run with a made-up id; logging to it and
    writing that id as a marker would claim a run that does not exist, so such calls
    return None before wandb is touched (and without a warning: nothing failed).
    """
    name = str(getattr(logger_cfg, "name", "wandb") or "wandb").lower()
    return name == "wandb" and resolve_mode(logger_cfg) != "disabled"


def is_secret(name: str) -> bool:
    """Whether a config key's name suggests a credential."""
    lowered = str(name).lower()
    return any(word in lowered for word in SECRET_WORDS)


def scrub_secrets(obj: Any) -> Any:
    """A copy of ``obj`` without dict entries whose key names a secret, at any depth."""
    if isinstance(obj, dict):
        return {k: scrub_secrets(v) for k, v in obj.items() if not is_secret(k)}
    if isinstance(obj, (list, tuple)):
        return [scrub_secrets(v) for v in obj]
    return obj


def _settings(init_timeout: float | None):
    """Quiet, cheap W&B settings (names as in wandb 0.31's ``wandb.Settings``)."""
    import wandb

    kwargs: dict[str, Any] = dict(
        silent=True,  # no banner, no "View run at ..." lines
        console="off",  # no stdout/stderr capture (a thread and a file per run)
        save_code=False,
        disable_code=True,
        disable_git=True,  # no `git` subprocesses per run
        disable_job_creation=True,
        x_disable_stats=True,  # no system-metrics sampler
        x_disable_meta=True,  # no host/GPU/environment probe
        x_disable_machine_info=True,
        x_save_requirements=False,  # no pip freeze per run
    )
    if init_timeout is None and not os.environ.get("WANDB_INIT_TIMEOUT"):
        init_timeout = DEFAULT_INIT_TIMEOUT_S
    if init_timeout is not None:
        # An explicit setting overrides WANDB_INIT_TIMEOUT, so only when asked or unset.
        kwargs["init_timeout"] = float(init_timeout)
    # Settings forbid unknown names, and the x_* ones come and go between releases
    # (pyproject allows wandb>=0.18): pass only those this wandb knows.
    known = getattr(wandb.Settings, "model_fields", None)
    if known:
        kwargs = {k: v for k, v in kwargs.items() if k in known}
    return wandb.Settings(**kwargs)


def _writable_dir(path: str | os.PathLike) -> str:
    """Create ``path`` and prove it writable, else raise OSError.

    wandb itself would quietly fall back to the system temp folder, scattering runs where
    nobody looks; a probe file is also the only test that holds for root, whom chmod does
    not stop.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=path):
        pass
    return str(path)


def _remove_leftovers(wandb_dir: str, run_id: str | None) -> None:
    """Delete local files of earlier attempts at this run (a crash before the marker was
    written), so the folder holds one W&B run per result and ``wandb sync`` uploads one."""
    if not run_id:
        return
    run_id = run_id.removesuffix(OFFLINE_SUFFIX)
    for attempt in (run_id, run_id + OFFLINE_SUFFIX):
        for leftover in (Path(wandb_dir) / "wandb").glob(f"*run-*-{attempt}"):
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


class table_temp_dirs_removed:
    """Remove the temporary folders W&B stages logged tables in, once the block ends.

    W&B writes each logged ``wandb.Table`` (the confusion chart, a group's members, a
    report's tables) into a ``tempfile.TemporaryDirectory`` held by an internal artifact
    that never cleans it up: at garbage collection Python removes it and warns
    ``ResourceWarning: Implicitly cleaning up`` (visible in the writer process, one pair per
    run). W&B copies the file into its staging folder when it is added, so the folder is
    not needed afterwards. The folders W&B's artifact module makes inside the block are
    recorded (its ``tempfile`` name is swapped for one whose ``TemporaryDirectory`` keeps a
    list) and removed on exit; nothing else's temporary folders are touched.
    """

    def __enter__(self) -> "table_temp_dirs_removed":
        import types

        self.made: list[tempfile.TemporaryDirectory] = []
        try:
            from wandb.sdk.artifacts import artifact as module
        except ImportError:  # another W&B layout: nothing to swap, the warning may come back
            self.module = None
            return self
        self.module, self.real = module, getattr(module, "tempfile", None)
        if self.real is not tempfile:
            self.module = None
            return self
        made = self.made

        def temporary_directory(*args, **kwargs):
            folder = tempfile.TemporaryDirectory(*args, **kwargs)
            made.append(folder)
            return folder

        recording = types.ModuleType("tempfile")
        recording.__dict__.update(vars(tempfile))
        recording.TemporaryDirectory = temporary_directory
        module.tempfile = recording
        return self

    def __exit__(self, *exc) -> None:
        if self.module is not None:
            self.module.tempfile = self.real
        for folder in self.made:
            folder.cleanup()


def _start(logger_cfg, *, wandb_dir, name, config, job_type, init_timeout, run_id=None, identity=None):
    """``wandb.init`` for one run, offline by default, with quiet settings.

    ``name``, ``run_id``, ``identity["group"]`` and ``identity["tags"]`` are the harness's
    defaults: the logger config's explicit values win, then W&B's environment variables
    (:data:`ENV_FOR`); ``wandb_dir`` likewise yields to ``logger.dir`` and ``WANDB_DIR``.

    In online mode a failing ``wandb.init`` (no network, server down, bad key) falls back to
    offline for this run and every later run of the process, with one warning: the runs stay
    on disk for ``wandb sync``.
    """
    import wandb

    # wandb logs to debug.log files through Python's logging; when a write fails (a full
    # disk) logging prints "--- Logging error ---" and a traceback per record to stderr
    # (hundreds of lines per run). The failure is reported once as a TrackingWarning instead.
    logging.raiseExceptions = False
    folder = _writable_dir(_wandb_dir(logger_cfg, wandb_dir))
    mode = resolve_mode(logger_cfg)
    identity = identity or {}
    run_id = _init_value("run_id", None, run_id)
    config_tags = [str(t) for t in (getattr(logger_cfg, "tags", None) or [])]
    tags = config_tags + [t for t in identity.get("tags") or [] if t not in config_tags]
    if mode == "online" and _OFFLINE_FALLBACK:
        mode = "offline"

    def init(mode: str, run_id: str | None = run_id):
        _remove_leftovers(folder, run_id)
        return wandb.init(
            project=_init_value("project", getattr(logger_cfg, "project", None), DEFAULT_PROJECT),
            entity=getattr(logger_cfg, "entity", None),  # None: WANDB_ENTITY or the account's default
            group=_init_value("group", getattr(logger_cfg, "group", None), identity.get("group")),
            job_type=job_type,
            tags=_init_value("tags", config_tags and tags, tags),
            name=_init_value("name", getattr(logger_cfg, "run_name", None), name),
            config=scrub_secrets(config),
            dir=folder,
            mode=mode,
            id=run_id,
            resume="allow" if mode == "online" and run_id else None,  # an earlier attempt's run
            reinit="create_new",  # several runs per process, none finishing another
            settings=_settings(init_timeout),
        )

    if mode != "online":
        return init(mode)
    try:
        return init(mode)
    except Exception as error:  # noqa: BLE001 - any online failure: keep the run offline
        _OFFLINE_FALLBACK["reason"] = f"{type(error).__name__}: {_first_line(error)}"
        warnings.warn(
            f"W&B online mode failed ({_OFFLINE_FALLBACK['reason']}); this and later runs of this process are "
            f"logged offline in their folders' wandb/ (first: {folder}); upload them later with "
            "`wandb sync <folder>/wandb/offline-run-*`",
            TrackingWarning, stacklevel=3,
        )
        # The failed attempt keeps its id busy in wandb's service process: a sibling id.
        return init("offline", run_id + OFFLINE_SUFFIX if run_id else None)


def finish_failed(run) -> None:
    """Close a run that failed half-way, ignoring any second error (the first is reported)."""
    try:
        run.finish(exit_code=1)
    except Exception:
        pass


def _clean(value: Any) -> Any:
    """Numpy scalars to Python; NaN and inf kept as floats (W&B stores them)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _curve_rows(run_dir: Path) -> list[dict[str, Any]]:
    """curves.csv as a list of row dicts (``step`` an int), or [] when absent."""
    if not (run_dir / store.CURVES_FILE).is_file():
        return []
    curves = store.read_curves(run_dir)
    rows = []
    for record in curves.to_dict(orient="records"):
        row = {k: _clean(v) for k, v in record.items()}
        row["step"] = int(row["step"])
        rows.append(row)
    return rows


def _steps_increasing(rows: list[dict[str, Any]]) -> bool:
    """Whether the rows' steps strictly increase (then they are W&B's own steps)."""
    steps = [row["step"] for row in rows]
    return all(b > a for a, b in zip(steps, steps[1:]))


def define_step_axis(run) -> None:
    """Every chart of ``run`` against the ``step`` metric (the optimizer step)."""
    run.define_metric("step")
    run.define_metric("*", step_metric="step")


def log_rows(run, rows: list[dict[str, Any]], increasing: bool) -> None:
    """One history row per evaluation. With ``increasing`` (every step of the run's rows,
    these and all later ones, strictly increases) W&B's own step is the optimizer step;
    otherwise W&B would drop rows, so only the ``step`` metric carries them."""
    for row in rows:
        if increasing:
            run.log(row, step=row["step"])
        else:
            run.log(row)


def _log_history(run, rows: list[dict[str, Any]]) -> None:
    """One history row per evaluation, on the optimizer-step axis (see :func:`log_rows`)."""
    define_step_axis(run)
    log_rows(run, rows, _steps_increasing(rows))


def _confusion_chart(matrix, class_names=None):
    """The confusion matrix as a wandb.Table (actual, predicted, count) drawn by W&B's own chart."""
    import wandb

    counts = np.asarray(matrix)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {counts.shape}")
    k = counts.shape[0]
    names = [str(n) for n in class_names] if class_names else [str(i) for i in range(k)]
    table = wandb.Table(
        columns=["Actual", "Predicted", "nPredictions"],
        data=[[names[i], names[j], int(counts[i, j])] for i in range(k) for j in range(k)],
    )
    # The same preset chart wandb.plot.confusion_matrix uses, fed with counts directly.
    return wandb.plot_table(
        "wandb/confusion_matrix/v1",
        table,
        {"Actual": "Actual", "Predicted": "Predicted", "nPredictions": "nPredictions"},
        {"title": "Confusion matrix (test)"},
    )


def _media(run_dir: Path, result: dict[str, Any], images: bool) -> dict[str, Any]:
    """Images present in the run folder, and the confusion-matrix table, by W&B key."""
    import wandb

    media: dict[str, Any] = {}
    if images:
        for key, filename in IMAGES.items():
            if (run_dir / filename).is_file():
                media[key] = wandb.Image(str(run_dir / filename))
    if result.get("confusion_matrix") is not None:
        media["confusion_matrix"] = _confusion_chart(result["confusion_matrix"])
    return media


def _log_files_artifact(run, name: str, kind: str, files: Iterable[Path]) -> None:
    """Log ``files`` as one artifact of ``run``, referenced in place (policy ``immutable``:
    not copied into W&B's staging folder; a rerun that rewrites them also replaces the run)."""
    import wandb

    files = [f for f in files if f.is_file()]
    if not files:
        return
    artifact = wandb.Artifact(re.sub(r"[^\w.-]", "_", name), type=kind)
    for path in files:
        artifact.add_file(str(path), name=path.name, policy="immutable")
    run.log_artifact(artifact)


def _run_summary(result: dict[str, Any]) -> dict[str, Any]:
    """Final metrics plus status, divergence step, budget and timings."""
    summary = dict(result.get("metrics") or {})
    summary["status"] = result.get("status")
    summary["diverged_step"] = result.get("diverged_step")
    summary["budget"] = dict(result.get("budget") or {})
    summary["timings"] = dict(result.get("timings") or {})
    if result.get("config_hash"):
        summary["config_hash"] = result["config_hash"]
    return summary


def run_config(config: dict[str, Any], budget: dict[str, Any]) -> dict[str, Any]:
    """The W&B config of a run: its resolved config plus the budget (secrets dropped in _start)."""
    return {**config, "budget": dict(budget)}


def _run_config(result: dict[str, Any]) -> dict[str, Any]:
    """A stored record's W&B config (:func:`run_config`)."""
    return run_config(dict(result.get("config") or {}), result.get("budget") or {})


def warn_failure(what: str, where: str | os.PathLike, error: BaseException) -> None:
    """The one warning a failed logging call gives (one per kind of failure once
    :func:`report_each_problem_once` is on)."""
    first = _first_line(error)
    message = f"W&B logging of {what} {where} failed, the stored result is unaffected: {type(error).__name__}: {first}"
    if _REPORTED is not None:
        problem = "|".join((what, type(error).__name__, PATH.sub("<path>", first)))
        if problem in _REPORTED:
            return
        _REPORTED.add(problem)
        message += " (further failures like this one are not reported again)"
    warnings.warn(message, TrackingWarning, stacklevel=3)


def _mark_logged(folder: Path, run_id: str) -> None:
    """Write the marker; after W&B has finished, so a marker always means a complete run."""
    store.write_text_atomic(folder / MARKER_FILE, run_id + "\n")


def open_run(run_dir: str | os.PathLike, config: dict[str, Any], config_hash: str, logger_cfg, *,
             init_timeout: float | None = None, identity: dict[str, Any] | None = None):
    """``wandb.init`` of a job's run (in ``<run_dir>/wandb/`` unless ``logger.dir``/``WANDB_DIR``
    say otherwise): its id is fixed by the folder and the config hash, so a later attempt
    replaces a half-written run instead of adding one; ``identity`` is its group, name and tags.
    Raises what wandb raises (callers apply the failure policy)."""
    identity = identity or {}
    return _start(
        logger_cfg,
        wandb_dir=run_dir,
        name=identity.get("name"),
        config=config,
        job_type=getattr(logger_cfg, "job_type", None) or "train",
        init_timeout=init_timeout,
        run_id=stable_run_id(run_dir, config_hash),
        identity=identity,
    )


def close_run(run, run_dir: str | os.PathLike, result: dict[str, Any], *, images: bool = True,
              last_step: int | None = None) -> str:
    """Give an open run what the stored record adds to its curves, finish it, mark the folder;
    return the run id. Media (:func:`_media`) at ``last_step`` (merged into that history row)
    when given; summary (:func:`_run_summary`); ``params.npz`` as a model artifact. On any
    error the run is finished as failed and the error raised."""
    run_dir = Path(run_dir)
    try:
        media = _media(run_dir, result, images)
        if media and last_step is not None:
            run.log(media, step=last_step)
        elif media:
            run.log(media)
        run.summary.update(_run_summary(result))
        _log_files_artifact(run, f"params-{run.id}", "model", [run_dir / PARAMS_FILE])
        run_id = run.id
        run.finish()
    except BaseException:
        finish_failed(run)
        raise
    _mark_logged(run_dir, run_id)
    return run_id


def _log_run(run_dir: Path, result: dict[str, Any], logger_cfg, images: bool, init_timeout,
             identity: dict[str, Any] | None) -> str:
    """log_run without the error policy."""
    rows = _curve_rows(run_dir)
    identity = identity or run_identity(result.get("overrides") or [])
    run = open_run(run_dir, _run_config(result), str(result.get("config_hash") or ""), logger_cfg,
                   init_timeout=init_timeout, identity=identity)
    try:
        _log_history(run, rows)
    except BaseException:
        finish_failed(run)
        raise
    return close_run(run, run_dir, result, images=images,
                     last_step=rows[-1]["step"] if rows and _steps_increasing(rows) else None)


def log_run(
    run_dir: str | os.PathLike,
    result: dict[str, Any],
    logger_cfg,
    *,
    images: bool = True,
    init_timeout: float | None = None,
    identity: dict[str, Any] | None = None,
) -> str | None:
    """Log one stored run as one W&B run; return its id, or None after one TrackingWarning.

    Group, name and tags: ``identity`` (:func:`run_identity`; default: from the result's
    overrides alone), except where ``logger.group``/``run_name``/``tags`` or W&B's own
    environment variables (``WANDB_RUN_GROUP``, ``WANDB_NAME``, ``WANDB_TAGS``) say otherwise;
    ``logger.tags`` are kept and the identity's added.

    Config: ``result["config"]`` plus ``budget`` (keys naming secrets dropped). History:
    every row of ``curves.csv`` at its optimizer step. Summary: final metrics, status,
    diverged_step, budget, timings. Media: ``curves.png``, ``boundary.png``,
    ``confusion.png`` when present (and ``images``), and the confusion matrix as a table.
    Artifact: ``params.npz`` (``output.save_params=true``) as a ``model`` artifact.
    ``init_timeout`` (seconds) bounds ``wandb.init`` in online mode (W&B's default: 90 s).
    Never raises and never touches ``result.json``. Returns None at once, without a warning,
    when tracking is off (:func:`tracking_enabled`).
    """
    try:
        if not tracking_enabled(logger_cfg):
            return None
        with table_temp_dirs_removed():
            return _log_run(Path(run_dir), result, logger_cfg, images, init_timeout, identity)
    except Exception as error:  # noqa: BLE001 - the policy: any W&B failure is one warning
        warn_failure("run", run_dir, error)
        return None



def _flat_config(result: dict[str, Any]) -> dict[str, Any]:
    """A result's config with dotted keys, secrets dropped."""
    return store.flatten(scrub_secrets(result.get("config") or {}))


def dynamic_keys(flat_configs: list[dict[str, Any]]) -> list[str]:
    """Dotted config keys whose value differs between members (plus ``seed``), sorted."""
    keys: set[str] = set()
    for flat in flat_configs:
        keys.update(flat)
    varying = {k for k in keys if len({json.dumps(f.get(k), sort_keys=True, default=str) for f in flat_configs}) > 1}
    if any("seed" in f for f in flat_configs):
        varying.add("seed")
    return sorted(varying)


def _cell(value: Any) -> Any:
    """A table cell: scalars as they are, lists and dicts as JSON text (one type per column)."""
    value = _clean(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def members_table(results: list[dict[str, Any]]):
    """One row per member: index, status, diverged_step, dynamic config values, final metrics."""
    import wandb

    flats = [_flat_config(r) for r in results]
    config_keys = dynamic_keys(flats)
    metric_keys = sorted({k for r in results for k in (r.get("metrics") or {})})
    columns = ["member", "status", "diverged_step"] + [f"config/{k}" for k in config_keys] + metric_keys
    data = []
    for i, (result, flat) in enumerate(zip(results, flats)):
        metrics = result.get("metrics") or {}
        row = [i, result.get("status"), result.get("diverged_step")]
        row += [_cell(flat.get(k)) for k in config_keys]
        row += [_cell(metrics.get(k)) for k in metric_keys]
        data.append(row)
    return wandb.Table(columns=columns, data=data)


def _common_config(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The config shared by all members (dynamic keys removed), for the group run's config."""
    flats = [_flat_config(r) for r in results]
    varying = set(dynamic_keys(flats))
    common = {k: v for k, v in (flats[0] if flats else {}).items() if k not in varying}
    common["num_members"] = len(results)
    if results and results[0].get("budget"):
        common["budget"] = dict(results[0]["budget"])
    return common


def _group_summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts by status, and the best final test metric over members."""
    statuses = [r.get("status") for r in results]
    summary: dict[str, Any] = {
        "members": len(results),
        "members_ok": statuses.count("ok"),
        "members_diverged": statuses.count("diverged"),
    }
    for key, better in (("test/accuracy", max), ("test/mse", min), ("test/loss", min)):
        values = [v for r in results if isinstance(v := (r.get("metrics") or {}).get(key), (int, float)) and math.isfinite(v)]
        if values:
            summary[f"best_member/{key}"] = better(values)
    return summary


def _member_labels(results: list[dict[str, Any]]) -> list[str]:
    """Each member's legend entry: its index and the config values that vary in the group."""
    flats = [_flat_config(r) for r in results]
    keys = dynamic_keys(flats)
    return [" ".join([str(i)] + [f"{k}={_cell(flat.get(k))}" for k in keys]) for i, flat in enumerate(flats)]


def curve_charts(curves: list[list[dict[str, Any]]], labels: list[str],
                 max_rows: int | None = None) -> dict[str, Any]:
    """One W&B line chart per metric of the members' curves (``curves/<metric>``), one line per
    member (``labels``) against the optimizer step: what a member run's history charts show,
    for a whole group in one run.

    The charts share one table, a row per (member, evaluation) with every metric as a column
    (W&B checks each row as it is added, ~25 us a row, so one table, not one per metric). W&B
    draws at most ``wandb.Table.MAX_ROWS`` (10,000) points a chart: the table keeps at most
    ``max_rows`` (default that) rows, so a larger group keeps every k-th evaluation of each
    member (the first and the last always), and the titles say so. The full curves stay in
    each member's ``curves.csv`` (and in per-member runs, ``hydra.launcher.wandb=member``).
    """
    import wandb

    max_rows = max_rows or wandb.Table.MAX_ROWS
    metrics = sorted({k for rows in curves for row in rows for k in row if k != "step"})
    every = max(1, math.ceil(sum(len(rows) for rows in curves) / max_rows))
    data = []
    for label, rows in zip(labels, curves):
        kept = [row for j, row in enumerate(rows) if j % every == 0 or j == len(rows) - 1]
        data += [[row["step"], label] + [_cell(row.get(m)) for m in metrics] for row in kept]
    table = wandb.Table(columns=["step", "lineKey"] + metrics, data=data, dtype=[int, str] + [float] * len(metrics),
                        optional=[False, False] + [True] * len(metrics))
    charts = {}
    for metric in metrics:
        title = metric if every == 1 else f"{metric} (1 evaluation in {every}, and the last)"
        charts[f"curves/{metric}"] = wandb.plot_table(
            "wandb/lineseries/v0", table, {"step": "step", "lineKey": "lineKey", "lineVal": metric},
            {"title": title, "xname": "step"})
    return charts


def _log_group(group_dir: Path, results: list[dict[str, Any]], logger_cfg, name, init_timeout, group,
               run_dirs=None) -> str:
    """log_group without the error policy."""
    table = members_table(results)  # built first: a bad result fails before any W&B run exists
    charts = curve_charts([_curve_rows(Path(d)) for d in run_dirs], _member_labels(results)) if run_dirs else {}
    run = _start(
        logger_cfg,
        wandb_dir=group_dir,
        name=name or group_dir.name,
        identity={"group": group},
        config=_common_config(results),
        job_type=f"{getattr(logger_cfg, 'job_type', None) or 'train'}-group",
        init_timeout=init_timeout,
        run_id=group_run_id(group_dir, results, name),
    )
    try:
        run.log({"members": table, **charts})
        run.summary.update(_group_summary(results))
        run_id = run.id
        run.finish()
    except BaseException:
        finish_failed(run)
        raise
    _mark_logged(group_dir, run_id)
    return run_id


def log_group(
    group_dir: str | os.PathLike,
    results: list[dict[str, Any]],
    logger_cfg,
    *,
    name: str | None = None,
    init_timeout: float | None = None,
    group: str | None = None,
    run_dirs: list[str | os.PathLike] | None = None,
) -> str | None:
    """Log a whole compile group as ONE W&B run whose members form a ``wandb.Table``.

    Table: one row per member (its index, status, diverged_step, the flattened config
    values that differ between members, its final metrics). With ``run_dirs`` (the members'
    folders, in the order of ``results``) their curves too: one chart per metric, a line per
    member (:func:`curve_charts`). Config: what all members share.
    Summary: member counts by status and the best final test metric. Same policy as
    :func:`log_run`: returns the run id, or None after exactly one TrackingWarning.
    ``group_dir`` holds the group's ``wandb/`` folder and its marker; when the marker already
    names this group's run (:func:`group_run_id`), nothing is logged again. ``group``: the
    W&B group (the sweep) unless ``logger.group`` or ``WANDB_RUN_GROUP`` names one.
    """
    try:
        if not tracking_enabled(logger_cfg):
            return None
        results = list(results)
        logged = logged_run_id(group_dir)
        if logged and logged.removesuffix(OFFLINE_SUFFIX) == group_run_id(group_dir, results, name):
            return logged
        with table_temp_dirs_removed():
            return _log_group(Path(group_dir), results, logger_cfg, name, init_timeout, group, run_dirs)
    except Exception as error:  # noqa: BLE001 - the policy: any W&B failure is one warning
        warn_failure("group", group_dir, error)
        return None


def log_report(out_dir: str | os.PathLike, tables: dict[str, Any], images: dict[str, str | os.PathLike],
               logger_cfg, *, name: str, config: dict[str, Any] | None = None,
               summary: dict[str, Any] | None = None, init_timeout: float | None = None,
               group: str | None = None) -> str | None:
    """One W&B run (``job_type="report"``) holding a claim's tables and figures.

    ``tables`` maps a key to a pandas DataFrame (logged as ``wandb.Table``), ``images`` a key
    to a PNG path. The report folder's own files (tables, verdict, README, figures) are also
    one ``report`` artifact. The run id is fixed by ``out_dir`` and ``name``, so a rerun of
    the claim replaces its report run instead of adding one. Same error policy as
    :func:`log_run`: one warning, never an exception.
    """
    if not tracking_enabled(logger_cfg):
        return None
    out_dir = Path(out_dir)
    run = None
    try:
        import wandb

        # One id per report folder and name: a rerun of the claim replaces its report run.
        run = _start(logger_cfg, wandb_dir=out_dir, name=name, config=config or {}, job_type="report",
                     init_timeout=init_timeout, run_id=stable_run_id(out_dir, name), identity={"group": group})
        payload: dict[str, Any] = {}
        for key, frame in tables.items():
            frame = frame.astype(object).where(frame.notna(), None)
            payload[key] = wandb.Table(columns=[str(c) for c in frame.columns],
                                       data=[[_clean(v) for v in row] for row in frame.itertuples(index=False)])
        for key, path in images.items():
            if Path(path).exists():
                payload[key] = wandb.Image(str(path))
        with table_temp_dirs_removed():
            run.log(payload)
        for key, value in (summary or {}).items():
            run.summary[key] = _clean(value)
        _log_files_artifact(run, name, "report", sorted(p for p in out_dir.iterdir() if p.suffix in REPORT_SUFFIXES))
        run_id = run.id
        run.finish()
        return run_id
    except Exception as exc:  # noqa: BLE001 - tracking never stops a report
        if run is not None:
            finish_failed(run)
        warn_failure("logging the report", out_dir, exc)
        return None
