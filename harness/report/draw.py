"""``harness-plot``: draw the per-run PNGs of stored runs, on demand.

    harness-plot multirun/2026-12-02/10-00-00          # every job of a sweep without its PNGs
    harness-plot multirun/2026-12-02/10-00-00/3 --redraw

A single run draws ``curves.png``, ``boundary.png`` and ``confusion.png`` when it is stored.
A sweep's jobs do not by default (``output.plots=auto``): hundreds of figures nobody opens
cost most of a sweep's wall time. Everything the figures show is stored (``curves.csv``,
``boundary.npz``, the confusion matrix in ``result.json``), so this command draws them later,
for the runs someone looks at, exactly as the run itself would have.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence

from omegaconf import DictConfig, OmegaConf

from harness import store
from harness.runtime import console_command

FIGURES = ("curves.png", "boundary.png", "confusion.png")  # what write_run_plots may draw
DRAWN = ("ok", "diverged")  # statuses of a record that has curves to draw


def draw_run(run_dir: str | Path, cfg: DictConfig, result: dict[str, Any]) -> list[Path]:
    """Draw one stored run's PNGs beside its record; return the paths written.

    Data sets with a 2-D input space (Playground's) put their training and test points on the
    boundary figure, as the run's own inputs before feature mapping.
    """
    from harness.data.cache import dataset_for, points_dataset
    from harness.report.plots import write_run_plots  # matplotlib: only when drawing

    dataset = points_dataset(cfg) if dataset_for(cfg).input_extent is not None else None
    return write_run_plots(run_dir, result, dataset=dataset)


def _drawn_already(run_dir: Path) -> bool:
    return any((run_dir / name).is_file() for name in FIGURES) and not store.stale_temps(run_dir)


def draw_folders(folders: Sequence[str | Path], *, redraw: bool = False) -> dict[str, int]:
    """Draw the PNGs of every stored run in ``folders`` (run folders or sweep folders) that
    has none yet (all with ``redraw``); counts of drawn, kept, skipped (failed or unreadable
    records) and failed drawings. A drawing that fails is a warning, and the rest go on."""
    counts = {"drawn": 0, "kept": 0, "skipped": 0, "failed": 0}
    for folder in folders:
        for run_dir in store.find_results(folder):
            result = store.read_result(run_dir)
            if result is None or result.get("status") not in DRAWN or not isinstance(result.get("config"), dict):
                counts["skipped"] += 1
                continue
            if not redraw and _drawn_already(run_dir):
                counts["kept"] += 1
                continue
            store.remove_stale_temps(run_dir)
            try:
                draw_run(run_dir, OmegaConf.create(result["config"]), result)
                counts["drawn"] += 1
            except Exception as exc:  # noqa: BLE001 - one bad run must not stop the others
                warnings.warn(f"plots for {run_dir} failed: {type(exc).__name__}: {exc}", stacklevel=1)
                counts["failed"] += 1
    return counts


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness-plot",
        description="Draw curves.png, boundary.png and confusion.png for stored runs: a run folder, "
                    "or a sweep's folder (every run below it). A sweep's runs have none by default "
                    "(output.plots=auto).")
    parser.add_argument("folders", nargs="+", help="run or sweep folders (each with result.json files below it)")
    parser.add_argument("--redraw", action="store_true", help="draw again where the PNGs exist")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for folder in args.folders:
        path = Path(folder)
        if not path.is_dir():
            print(f"error: {folder} is not a folder (a run or sweep folder is expected)", file=sys.stderr)
            return 2
        if not store.find_results(path):
            print(f"error: {folder} holds no result.json (a run or sweep folder is expected)", file=sys.stderr)
            return 2
    warnings.simplefilter("default")
    counts = draw_folders(args.folders, redraw=args.redraw)
    print(f"drew the plots of {counts['drawn']} runs; {counts['kept']} had them already (--redraw draws them "
          f"again), {counts['skipped']} have no curves (failed or unreadable records), {counts['failed']} failed")
    return 1 if counts["failed"] else 0


command = console_command(main)  # harness-plot


if __name__ == "__main__":
    command()
