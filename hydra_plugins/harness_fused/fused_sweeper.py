"""``hydra/sweeper=harness``: Hydra's basic sweeper without its second composition of every job.

Before launching, the basic sweeper composes every job once to check it can be composed
(``validate_batch_is_legal``); the fused launcher then composes them again itself and checks
every value before any compute, so under the fused launcher that first pass only doubles the
sweep's start-up (~0.2-0.7 s per job here). With any other launcher it still runs.
"""

from dataclasses import dataclass
from typing import Dict, Optional, Sequence

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

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        if isinstance(self.launcher, FusedLauncher):
            return
        super().validate_batch_is_legal(batch)


ConfigStore.instance().store(group="hydra/sweeper", name="harness", node=HarnessSweeperConf, provider="harness")
