"""``harness-claim``: a claim file in, a report folder out.

    harness-claim claim=small_batch                      # full protocol
    harness-claim claim=small_batch claim.scale=small    # the same, small enough for tests
    harness-claim claim=nonlinearity out=reports logger=none

Runs every (setting, protocol) sweep of the claim as a real ``harness-train`` multirun into
``<out>/<claim>/runs/`` (rerunning resumes), then writes ``<out>/<claim>/``: table.md,
table.csv, table.tex, figures, verdict.json and README.md, and logs a W&B report run.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from harness.config import CONF_PATH
from harness.errors import ConfigError
from harness.runtime import console_command

log = logging.getLogger("harness.claim")


def run_claim(cfg: DictConfig) -> Path:
    """Run, analyse and report one claim; returns the report folder."""
    from harness import store
    from harness.claim.analyze import adjust_claim
    from harness.claim.check import check_claim, hydra_compose
    from harness.claim.report import is_evidence, verdicts, write_figures, write_readme, write_tables
    from harness.claim.run import run_sweeps, stage_root
    from harness.claim.spec import resolve_scale, stages, sweeps
    from harness.results import versions

    claim = resolve_scale(OmegaConf.to_container(cfg.claim, resolve=True))
    member_logger = "wandb" if cfg.member_runs_to_wandb else "none"
    out = Path(cfg.out) / claim["name"]
    root = str(stage_root(out))
    before = [s.with_root(root) for s in stages(claim, logger=member_logger)]
    plan = [s.with_root(root) for s in sweeps(claim, logger=member_logger)]
    check_claim(claim, before + plan, hydra_compose)  # the whole file, before anything is written
    _make_folder(out)
    started = time.perf_counter()
    timings = run_sweeps(before + plan, out, quiet=not cfg.progress)
    analyses, extensions = extend_grids(claim, plan, out, timings, quiet=not cfg.progress)
    adjust_claim(analyses, claim)
    command = "harness-claim " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    write_tables(analyses, claim, out)
    figure_paths = write_figures(analyses, claim, out)
    code = {"commit": versions().get("git_commit"), "dirty": versions().get("git_dirty")}
    verdict = verdicts(analyses, claim, code)
    verdict["grid_extensions"] = extensions
    timings["total"] = time.perf_counter() - started
    write_readme(analyses, claim, out, command.strip(), timings, figure_paths, stage_sweeps=before)
    store.write_json_atomic(out / "verdict.json", verdict)
    if cfg.logger.name == "wandb":
        from harness.track.wandb_logger import log_report

        table = {f"{a.sweep.setting}/{a.sweep.protocol}": a.table for a in analyses}
        log_report(out, table, {k: str(v) for k, v in figure_paths.items()}, cfg.logger,
                   name=f"report-{claim['name']}-{claim.get('scale', 'full')}", group=claim["name"],
                   config={"claim": claim}, summary={f"verdict/{s}/{p}": v["verdict"]
                                                     for s, ps in verdict["settings"].items() for p, v in ps.items()})
    evidence = is_evidence(claim)
    print(f"\n{claim['name']}: \"{claim['statement']}\""
          + ("" if evidence else f"  [scale {claim.get('scale')}: not evidence]"))
    for a in analyses:
        shown = a.verdict["verdict"] + ("" if evidence else " (not evidence)")
        if a.verdict.get("role") == "control":
            shown = f"control: {a.verdict['verdict']}"
        print(f"  {a.sweep.setting:>10} / {a.sweep.protocol:<16} {shown:<13} {a.verdict['reason']}")
        for name, pair in (a.verdict.get("pairs") or {}).items() if len(a.verdict.get("pairs") or {}) > 1 else []:
            print(f"  {'':>10}   {name:<16} {pair['verdict']:<13} p = {pair['p']:.3g}, Holm-adjusted {pair['p_adjusted']:.3g}")
        for name, extra in (a.verdict.get("also") or {}).items():
            print(f"  {'':>10}   {name:<16} {extra['verdict']:<13} {extra['reason']}")
    print(f"report: {out.resolve()}/README.md  ({timings['total']:.0f} s)")
    return out


def extend_grids(claim: dict, plan: list, out: Path, timings: dict, *, quiet: bool) -> tuple[list, list[str]]:
    """Analyse every sweep; while a nuisance choice sits on a grid edge, run one more grid
    value past that edge (in the grid's own spacing) and analyse again, each scientific value
    extended at most ``claim.grid_extensions`` times per edge (counted from the runs on disk,
    so a rerun resumes rather than repeats). Returns the analyses and the extension folders the
    grids hold (``setting/protocol/extend_<depth>_<key>_<side>_<values>``)."""
    from harness.claim.analyze import EXTEND, analyze_sweep, extension_sweeps
    from harness.claim.run import run_sweeps, sweep_dir
    from harness.claim.spec import GRID_EXTENSIONS

    limit = int(claim.get("grid_extensions", GRID_EXTENSIONS))
    analyses = [analyze_sweep(claim, s, out) for s in plan]
    seen = set()
    while True:  # ends: every extension deepens one (value, key, side), at most `limit` deep
        extra = [e for a in analyses if a.verdict.get("grid_edge") for e in extension_sweeps(claim, a, limit)]
        if not extra:
            break
        if {(e.setting, e.protocol) for e in extra} <= seen:  # its runs did not land in the grid
            raise RuntimeError("grid extension made no progress: " + ", ".join(f"{e.setting}/{e.protocol}" for e in extra))
        seen |= {(e.setting, e.protocol) for e in extra}
        timings.update(run_sweeps(extra, out, quiet=quiet))
        analyses = [analyze_sweep(claim, s, out) for s in plan]
    # Every extension the grids hold, run now or by an earlier run that this one resumed.
    ran = [f"{s.setting}/{s.protocol}/{d.name}" for s in plan
           for d in sorted(sweep_dir(out, s).glob(f"{EXTEND}*")) if d.is_dir()]
    return analyses, ran


def _make_folder(out: Path) -> None:
    """The report folder, or a ConfigError naming ``out`` if it cannot be made (nothing else
    has been written by then)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError("out", str(out.parent), f"a folder the report can be written to ({exc.strerror or exc})") from None


@hydra.main(config_path=CONF_PATH, config_name="claim_app", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    try:
        run_claim(cfg)
    except ConfigError as exc:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1)


def main() -> None:
    """Console entry point."""
    from harness import hydra_errors
    from harness.config import register_configs

    hydra_errors.install()
    register_configs()
    _hydra_main()


command = console_command(main)  # harness-claim and python -m harness.claim


if __name__ == "__main__":
    command()
