"""A sweep's jobs draw no PNGs by default (output.plots=auto); harness-plot draws them later
from the stored records, exactly as a run would have, and a single run still draws its own."""

from __future__ import annotations

import pytest

from conftest import run_cli
from harness.config import draws_plots
from harness.report.draw import FIGURES, main as harness_plot


@pytest.mark.parametrize("plots, multirun, drawn", [
    ("auto", False, True), ("auto", True, False), (True, True, True), (True, False, True),
    (False, False, False), (False, True, False),
])
def test_auto_draws_for_a_single_run_and_not_for_a_sweeps_jobs(plots, multirun, drawn):
    assert draws_plots(plots, multirun) is drawn


def test_harness_plot_draws_a_sweeps_missing_pngs_from_its_records(tmp_path, capsys):
    sweep = tmp_path / "s"
    proc = run_cli(["-m", "data=circle", "train.epochs=2", "logger=none", "seed=0,1", f"hydra.sweep.dir={sweep}"],
                   tmp_path)
    assert proc.returncode == 0, proc.stderr
    jobs = [sweep / "0", sweep / "1"]
    assert not any((job / name).exists() for job in jobs for name in FIGURES)
    assert f"harness-plot {sweep}" in proc.stdout + proc.stderr  # the sweep says how to get them

    assert harness_plot([str(sweep)]) == 0
    assert "drew the plots of 2 runs" in capsys.readouterr().out
    for job in jobs:
        assert all((job / name).stat().st_size > 0 for name in FIGURES)

    before = {job: (job / "boundary.png").stat().st_mtime_ns for job in jobs}
    assert harness_plot([str(sweep)]) == 0  # drawn already: kept
    assert "drew the plots of 0 runs; 2 had them already" in capsys.readouterr().out
    assert {job: (job / "boundary.png").stat().st_mtime_ns for job in jobs} == before
    assert harness_plot([str(jobs[0]), "--redraw"]) == 0  # one run folder, drawn again
    assert "drew the plots of 1 runs" in capsys.readouterr().out


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_harness_plot_refuses_a_folder_without_records_in_one_line(tmp_path, capsys, make):
    folder = tmp_path / "f"
    if make == "empty":
        folder.mkdir()
    assert harness_plot([str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {folder} ")
    assert not folder.exists() or not any(folder.iterdir())


def test_a_bad_plots_value_is_one_line_naming_the_key(tmp_path):
    proc = run_cli(["output.plots=yes", "train.epochs=1", "logger=none", f"hydra.run.dir={tmp_path / 'r'}"], tmp_path)
    assert proc.returncode != 0
    assert "output.plots" in proc.stderr and "auto, true or false" in proc.stderr
    assert not (tmp_path / "r" / "result.json").exists()
