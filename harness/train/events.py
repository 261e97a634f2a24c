"""What training reports while it runs: the phase a group is in and each finished segment.

The engine and the segmented loop (:func:`harness.train.checkpoint.train_group`) call
:func:`phase` and :func:`segment`; every active listener hears them: the progress display
(:class:`harness.sweep.progress.Display`) and a job's live W&B run
(:class:`harness.track.live.LiveRun`). With no listener nothing happens, so the playground and
tests that train directly see no change.
This module sits beside the engine so that training never imports the sweep layer that
displays it (the layer contract in pyproject.toml).
"""

from __future__ import annotations

from typing import Any, Protocol


class Listener(Protocol):
    def phase(self, text: str) -> None: ...

    def program_segment(self, program: Any) -> None: ...


_LISTENERS: list[Listener] = []  # in the order they started listening


def listen(listener: Listener) -> None:
    """``listener`` receives what training reports until :func:`unlisten`."""
    _LISTENERS.append(listener)


def unlisten(listener: Listener) -> None:
    _LISTENERS.remove(listener)


def phase(text: str) -> None:
    """The current group is now in ``text`` ("compiling", "training"); no-op without a listener."""
    for listener in list(_LISTENERS):
        listener.phase(text)


def segment(program: Any) -> None:
    """A :class:`~harness.train.engine.GroupProgram` finished a segment; no-op without a listener."""
    for listener in list(_LISTENERS):
        listener.program_segment(program)
