"""``harness-table``: an ablation table over seeds from stored results or a W&B project.

    harness-table multirun/ --by train.batch_size --metric test/accuracy
    harness-table multirun/ --by train.batch_size --by optim.lr --metric test/loss --out tables/
    harness-table --wandb-project me/harness --by train.batch_size --metric test/accuracy

Every ``result.json`` under RESULTS_DIR is loaded (:func:`harness.store.load_results`); the
table (:func:`harness.report.tables.ablation_table`) is printed with rich, and written as
Markdown, CSV and/or LaTeX when ``--out`` is given. A bad input (missing folder, no results,
unknown column) prints one ``error:`` line naming the option, the value and some available
columns, and exits with status 2.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from harness.runtime import console_command

EXIT_USAGE = 2
FORMATS = {"md": "to_markdown", "csv": "to_csv", "tex": "to_latex"}
# Columns that describe a run rather than configure it: never offered as --by suggestions.
NOT_CONFIG_PREFIXES = ("timings.", "run_dir", "config_hash", "diverged_step")


class UsageError(Exception):
    """A user error: printed as one ``error:`` line, exit status 2, no traceback."""


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``harness-table``."""
    parser = argparse.ArgumentParser(
        prog="harness-table",
        description="Ablation table over seeds: mean, bootstrap 95% CI and run counts (diverged runs counted, not dropped).",
    )
    parser.add_argument("results_dir", nargs="?", metavar="RESULTS_DIR", help="folder searched recursively for result.json")
    parser.add_argument("--by", action="append", required=True, metavar="COLUMN",
                        help="column to group by (repeatable), e.g. train.batch_size")
    parser.add_argument("--metric", required=True, metavar="COLUMN", help="metric column, e.g. test/accuracy")
    parser.add_argument("--direction", choices=("higher", "lower"), default=None,
                        help="which way the metric is better (default: lower for loss/mse, else higher)")
    parser.add_argument("--out", metavar="DIR", help="write the table files into DIR")
    parser.add_argument("--format", default="md,csv,tex", metavar="LIST", help="comma-separated subset of md,csv,tex (default: all)")
    parser.add_argument("--name", metavar="STEM", help="file name stem (default: <metric>_by_<columns>)")
    parser.add_argument("--caption", help="caption for the Markdown and LaTeX tables")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when any result.json could not be read or was not trusted (each is named either way)")
    parser.add_argument("--wandb-project", metavar="ENTITY/PROJECT", help="read runs from a W&B project instead of RESULTS_DIR (needs network)")
    return parser


# ---------------------------------------------------------------- sources


def load_dir(results_dir: str):
    """Every stored result under ``results_dir``; UsageError if the folder is missing or empty."""
    from harness.folders import distrust
    from harness.store import load_results

    path = Path(results_dir)
    if not path.exists():
        raise UsageError(f"RESULTS_DIR {results_dir!r} does not exist")
    if not path.is_dir():
        raise UsageError(f"RESULTS_DIR {results_dir!r} is not a folder")
    problems: list = []
    df = load_results(path, problems, verify=distrust)
    for bad, why in problems:  # each named, counted in the summary, the rest tabulated
        print(f"warning: skipped {bad}: {why}", file=sys.stderr)
    if df.empty and problems:
        raise UsageError(f"RESULTS_DIR {results_dir!r} holds no readable result.json: {len(problems)} unreadable "
                         f"(first: {problems[0][0]}: {problems[0][1]})")
    if df.empty:
        raise UsageError(f"RESULTS_DIR {results_dir!r} holds no result.json (searched all subfolders)")
    df.attrs["unreadable"] = len(problems)
    return df



# W&B run states for runs that carry no harness ``status`` in their summary.
WANDB_STATES = {"finished": "ok", "crashed": "failed", "failed": "failed", "killed": "failed"}


def wandb_row(run) -> dict[str, Any] | None:
    """One table row from a W&B public-API run, or None for a compile-group run.

    The harness logger puts the resolved config in the run config and the final metrics,
    ``status``, ``budget`` and ``timings`` in the summary (see harness.track.wandb_logger),
    so the row has the same columns as one from ``load_results``.
    """
    if str(getattr(run, "job_type", "") or "").endswith("-group"):
        return None  # a group run summarises members that are rows of their own
    summary = dict(getattr(run.summary, "_json_dict", None) or run.summary_metrics or {})
    config = dict(run.config or {})
    row: dict[str, Any] = {"run_dir": "wandb:" + "/".join(run.path)}
    from harness.store import flatten

    row.update(flatten({k: v for k, v in summary.items() if not k.startswith("_")}))
    row.update(flatten(config))
    row["status"] = summary.get("status") or WANDB_STATES.get(str(run.state), str(run.state))
    row["seed"] = config.get("seed")
    return row


def _project_runs(api, project: str):
    """The project's runs with config and summary in the listing query (one request per page)."""
    try:
        return api.runs(project, per_page=500, lazy=False)
    except TypeError:  # wandb < 0.19 has no ``lazy``: its runs always come fully loaded
        return api.runs(project, per_page=500)


def load_wandb(project: str):
    """The runs of a W&B project (``ENTITY/PROJECT``) as a results DataFrame, via ``wandb.Api()``.

    Needs network and a W&B login; any failure (offline mode, no key, unreachable server,
    unknown project) becomes one UsageError line.
    """
    import pandas as pd

    if project.count("/") != 1 or not all(project.split("/")):
        raise UsageError(f"--wandb-project {project!r} is not ENTITY/PROJECT")
    mode = os.environ.get("WANDB_MODE", "").lower()
    if mode in ("offline", "disabled", "dryrun"):
        raise UsageError(f"--wandb-project {project!r} needs the W&B server, but WANDB_MODE={mode}; "
                         "unset it (and log in), or pass a RESULTS_DIR")
    if "WANDB_MODE" in os.environ and not mode:
        del os.environ["WANDB_MODE"]  # an empty value fails wandb's settings validation with an opaque error
    try:
        import wandb

        api = wandb.Api(timeout=20)
        rows = [row for run in _project_runs(api, project) if (row := wandb_row(run)) is not None]
    except Exception as exc:  # network, auth and API errors all end the same way for the user
        detail = (str(exc).strip().splitlines() or [""])[0][:200]
        raise UsageError(f"--wandb-project {project!r}: cannot read runs from W&B ({type(exc).__name__}: {detail})") from None
    if not rows:
        raise UsageError(f"--wandb-project {project!r} has no runs")
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- checks


def _suggest(value: str, candidates: Sequence[str], limit: int = 8) -> str:
    """Closest names first, then others, at most ``limit``; says how many there are in all."""
    close = difflib.get_close_matches(value, candidates, n=limit, cutoff=0.4)
    shown = close + [c for c in candidates if c not in close][: limit - len(close)]
    more = len(candidates) - len(shown)
    return ", ".join(shown) + (f", ... ({len(candidates)} in all)" if more > 0 else "")


def metric_columns(df) -> list[str]:
    """Numeric columns that look like metrics: ``split/name`` ones and ``weight_sparsity``."""
    import pandas as pd

    out = []
    for column in df.columns:
        if ("/" in column or column == "weight_sparsity") and pd.api.types.is_numeric_dtype(df[column]):
            out.append(column)
    return sorted(out)


def config_columns(df) -> list[str]:
    """Columns worth grouping by: config and budget keys, seed and status."""
    return sorted(c for c in df.columns if "/" not in c and not c.startswith(NOT_CONFIG_PREFIXES) and c != "weight_sparsity")


def check_columns(df, by: list[str], metric: str) -> None:
    """UsageError for a --by or --metric that is not a column (or not numeric)."""
    import pandas as pd

    for column in by:
        if column not in df.columns:
            raise UsageError(f"--by {column!r} is not a column of the results; available: {_suggest(column, config_columns(df))}")
    if metric not in df.columns:
        raise UsageError(f"--metric {metric!r} is not a column of the results; available: {_suggest(metric, metric_columns(df))}")
    if not pd.to_numeric(df[metric], errors="coerce").notna().any():
        raise UsageError(f"--metric {metric!r} holds no numbers; available: {_suggest(metric, metric_columns(df))}")


def parse_formats(text: str) -> list[str]:
    """``"md,csv"`` -> ``["md", "csv"]``; UsageError naming an unknown format."""
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    for f in formats:
        if f not in FORMATS:
            raise UsageError(f"--format {f!r} is not allowed: one of {', '.join(FORMATS)}")
    if not formats:
        raise UsageError(f"--format {text!r} names no format: use a subset of {','.join(FORMATS)}")
    return formats


# ---------------------------------------------------------------- output


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in text)


def default_stem(metric: str, by: list[str]) -> str:
    """``test/accuracy`` by ``train.batch_size`` -> ``test-accuracy_by_train.batch_size``."""
    return f"{_slug(metric)}_by_{'_'.join(_slug(b) for b in by)}"


def print_table(table, title: str, source: str, unreadable: int = 0) -> None:
    """The table on the terminal, best row in bold green, with a counts footer."""
    from rich.console import Console
    from rich.table import Table

    from harness.report.tables import display_rows

    header, rows, best = display_rows(table)
    n_by = len(table.attrs.get("by") or [])
    rich_table = Table(title=title, title_justify="left")
    for i, name in enumerate(header):
        rich_table.add_column(name, justify="left" if i < n_by else "right", overflow="fold")
    for cells, is_best in zip(rows, best):
        rich_table.add_row(*cells, style="bold green" if is_best else None)
    # Piped output has no terminal width: use a wide one rather than wrap every cell.
    console = Console(width=None if sys.stdout.isatty() else 240, highlight=False)
    console.print(rich_table)
    totals = {c: int(table[c].sum()) for c in ("n", "ok", "diverged", "failed")}
    console.print(
        f"{totals['n']} runs from {source}: {totals['ok']} ok, {totals['diverged']} diverged, {totals['failed']} failed "
        f"(diverged/failed runs are counted, their metric left out of the mean)"
        + (f"; {unreadable} unreadable result.json skipped (named above)" if unreadable else "")
    )


def write_outputs(table, out: str, stem: str, formats: list[str], caption: str | None) -> list[Path]:
    """The table files in ``out``, one per format."""
    from harness.report import tables

    written = []
    for fmt in formats:
        path = Path(out) / f"{stem}.{fmt}"
        writer = getattr(tables, FORMATS[fmt])
        try:
            written.append(writer(table, path) if fmt == "csv" else writer(table, path, caption))
        except OSError as exc:
            raise UsageError(f"--out {out!r}: cannot write {path.name} ({exc.strerror or exc})") from None
    return written


def run(args: argparse.Namespace) -> int:
    """Load, check, tabulate, print and write; UsageError for anything the user can fix."""
    if bool(args.results_dir) == bool(args.wandb_project):
        raise UsageError("give either RESULTS_DIR or --wandb-project ENTITY/PROJECT (exactly one)")
    formats = parse_formats(args.format)
    df = load_wandb(args.wandb_project) if args.wandb_project else load_dir(args.results_dir)
    by = list(dict.fromkeys(args.by))  # a repeated --by adds nothing
    check_columns(df, by, args.metric)
    # Imported only now: the error paths above should answer without loading scipy.
    from harness.report.tables import ablation_table, default_caption, default_direction

    direction = args.direction or default_direction(args.metric)
    table = ablation_table(df, by, args.metric, direction=direction)
    source = args.results_dir or f"W&B {args.wandb_project}"
    caption = args.caption or f"{default_caption(table)} Source: {source}."
    unreadable = int(df.attrs.get("unreadable", 0))
    print_table(table, f"{args.metric} ({direction} is better) by {', '.join(by)}", source, unreadable)
    if args.out:
        for path in write_outputs(table, args.out, args.name or default_stem(args.metric, by), formats, caption):
            print(f"wrote {path}")
    if unreadable and args.strict:
        print(f"error: --strict: {unreadable} result.json could not be read or were not trusted (named above)",
              file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point of ``harness-table``."""
    args = build_parser().parse_args(argv)
    try:
        code = run(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = EXIT_USAGE
    raise SystemExit(code)


command = console_command(main)  # harness-table


if __name__ == "__main__":
    command()
