"""``hydra/sweeper=harness``: Hydra's basic sweeper without its second composition of every job.

Before launching, the basic sweeper composes every job once to check it can be composed
(``validate_batch_is_legal``); the fused launcher then composes them again itself and checks
every value before any compute, so under the fused launcher that first pass only doubles the
sweep's start-up (~0.2-0.7 s per job here). With any other launcher it still runs.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore

from harness.sweep.launcher import FusedLauncher


@dataclass
class HarnessSweeperConf:
    """Same settings as the basic sweeper."""

    _target_: str = "hydra_plugins.harness_fused.fused_sweeper.HarnessSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, str]] = None


class HarnessSweeper(BasicSweeper):
    """The basic sweeper; under the fused launcher the launcher does the composing check."""

    def sweep(self, arguments: List[str]) -> Any:
        """The basic sweep; a config error (nothing computed) leaves an existing sweep folder's
        ``multirun.yaml`` as it was, so a typo never rewrites the record of a stored sweep."""
        import yaml
        from hydra.errors import CompactHydraException

        from harness import store

        path = Path(str(self.config.hydra.sweep.dir)) / "multirun.yaml"
        before = path.read_bytes() if path.is_file() else None
        try:
            return super().sweep(arguments)
        except (SystemExit, CompactHydraException, yaml.YAMLError) as exc:
            config_error = not isinstance(exc, SystemExit) or exc.code == 2
            if config_error and before is not None and path.parent.is_dir():
                store.write_bytes_atomic(path, before)
            raise

    def split_arguments(self, overrides: List[Any], max_batch_size: Optional[int]) -> List[List[List[str]]]:
        """The basic sweeper's batches; a sweep of no jobs (``seed='range(0)'``) is refused in
        one line, exit 2, before its folder or ``multirun.yaml`` is written."""
        import os
        import sys

        batches = BasicSweeper.split_arguments(overrides, max_batch_size)
        if not any(batches):
            empty = [o.input_line for o in overrides if o.is_sweep_override() and not list(o.sweep_string_iterator())]
            shown = empty[0] if empty else " ".join(o.input_line for o in overrides)
            message = f"{shown!r} is not allowed: a sweep of at least one job (it expands to none)"
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise ValueError(message)
            print(f"error: {message}", file=sys.stderr)
            sys.exit(2)
        return batches

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        if isinstance(self.launcher, FusedLauncher):
            return
        super().validate_batch_is_legal(batch)


ConfigStore.instance().store(group="hydra/sweeper", name="harness", node=HarnessSweeperConf, provider="harness")
