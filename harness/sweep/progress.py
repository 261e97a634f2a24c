"""What training shows while it runs: the phase, epochs or segments with the latest metrics.

One display serves a sweep (the fused launcher: compile groups, members done) and a single
``harness-train`` run (a group of one):

    group 2/5 (8 members): compiling
    group 2/5 (8 members): epoch 20/50  train/loss 0.412  val/loss 0.437 (mean of 8)

On a terminal it is one rich progress bar whose description changes in place. Anywhere
else (CI, SLURM logs, a pipe) it is plain log lines: one per phase and at most one per
:data:`LINE_EVERY_S` seconds for segments (and the last), never a carriage return.

The engine reports through :mod:`harness.train.events` (``phase``, ``segment``), which go to
the display that is active (``with Display(...)``) and do nothing when none is, so the
playground and tests that train directly see no change. Reporting reads values the engine
has already copied to the host; it changes no computation.

Epochs or segments are only known between segments: a group trains in segments when
``train.checkpoint_every`` is set, and a single run always does (about
:data:`harness.train.checkpoint.LIVE_SEGMENTS` of them); a fused sweep's group without
checkpoints trains as one XLA call and the display shows ``compiling`` then ``training``.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import Any, Optional

import numpy as np

from harness.train import events

log = logging.getLogger("harness.progress")

LINE_EVERY_S = 10.0  # off a terminal: at most one segment line per group this often (and the last)
# The latest value of each of these curves is shown after a segment, when the run has it.
SHOWN_CURVES = ("train/loss", "val/loss", "val/accuracy", "val/mse")

# The engine reports through harness.train.events; a Display listens while it is active.
phase = events.phase


def position(budget, next_period: int) -> str:
    """``epoch 12/50`` (an epochs budget) or ``step 600/6000`` after the periods before
    ``next_period`` (period 0 is the evaluation before training)."""
    step = min(max(int(next_period) - 1, 0) * budget.eval_every, budget.total_steps)
    if budget.kind == "epochs" and budget.steps_per_epoch > 0:
        epoch = step / budget.steps_per_epoch
        shown = f"{epoch:.0f}" if abs(epoch - round(epoch)) < 1e-9 else f"{epoch:.1f}"
        return f"epoch {shown}/{budget.size}"
    return f"step {step}/{budget.total_steps}"


def latest_metrics(curves: dict[str, Any], members: int) -> dict[str, float]:
    """The last value of each shown curve, averaged over the members whose value is finite
    (a diverged member's inf/nan is left out; a curve with no finite value is left out)."""
    shown = {}
    for name in SHOWN_CURVES:
        if name not in curves:
            continue
        last = np.asarray(curves[name], np.float64)[:members, -1]
        finite = last[np.isfinite(last)]
        if finite.size:
            shown[name] = float(finite.mean())
    return shown


def metrics_text(metrics: dict[str, float], members: int) -> str:
    """``train/loss 0.412  val/loss 0.437 (mean of 8)``."""
    text = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
    return f"{text} (mean of {members})" if text and members > 1 else text


class Display:
    """Progress of ``total`` members: a rich bar on a terminal, log lines elsewhere.

    ``group(label)`` names what trains now; :func:`phase` and :func:`segment` (from the
    engine) add to it; ``advance(n)`` counts members done. ``interactive`` (default: whether
    stdout is a terminal) picks the bar; ``enabled=False`` shows nothing at all.
    """

    def __init__(self, enabled: bool, total: int, *, interactive: Optional[bool] = None, console=None) -> None:
        self.enabled = bool(enabled) and total > 0
        self.total = total
        self.console = console
        self.interactive = (console.is_terminal if console is not None else sys.stdout.isatty()) \
            if interactive is None else bool(interactive)
        self.label = ""
        self.text = ""
        self.last_line = -math.inf
        self.bar = None
        self.extras = None

    # -- lifetime ---------------------------------------------------------------------------

    def __enter__(self) -> "Display":
        if self.enabled and self.interactive:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), transient=False,
                                console=self.console)
            self.bar.start()
            self.task = self.bar.add_task("members", total=self.total)
        events.listen(self)
        return self

    def __exit__(self, *exc) -> None:
        events.unlisten(self)
        if self.bar is not None:
            self.bar.stop()

    # -- what is shown ----------------------------------------------------------------------

    def group(self, label: str) -> None:
        """A new group (or chunk) starts: ``label`` prefixes what follows."""
        self.label = label
        self.last_line = -math.inf
        self._show(label, line=False)  # its first phase says what it does

    def phase(self, text: str) -> None:
        self._show(f"{self.label}: {text}" if self.label else text, line=True)

    def program_segment(self, program) -> None:
        """A :class:`~harness.train.engine.GroupProgram` finished a segment: show where it is
        (epoch or step) and its latest train/val metrics."""
        self.segment(position(program.budget, program.next_period),
                     latest_metrics(program.curves[-1] if program.curves else {}, program.n_members),
                     program.n_members, done=program.done)

    def segment(self, where: str, metrics: dict[str, float], members: int, *, done: bool = False) -> None:
        """After a segment: where training is and its latest metrics (log lines throttled)."""
        text = f"{where}  {metrics_text(metrics, members)}".rstrip()
        now = time.monotonic()
        line = done or now - self.last_line >= LINE_EVERY_S
        if line:
            self.last_line = now
        self._show(f"{self.label}: {text}" if self.label else text, line=line)

    def describe(self, text: str) -> None:
        """Replace the whole description (the SLURM wait's job states): bar only."""
        self._show(text, line=False)

    def advance(self, n: int) -> None:
        """``n`` more members are done."""
        if self.bar is not None:
            self.bar.advance(self.task, n)

    def writer(self, done: int, total: int) -> None:
        """Plots and W&B runs written so far by the background writer: a second bar."""
        if self.bar is not None:
            if self.extras is None:
                self.extras = self.bar.add_task("plots and W&B runs", total=total)
            self.bar.update(self.extras, completed=done, total=total)

    def _show(self, text: str, *, line: bool) -> None:
        if not self.enabled or text == self.text:
            return
        self.text = text
        if self.bar is not None:
            self.bar.update(self.task, description=text)
        elif line:
            log.info(text)
