"""Registers ``hydra/launcher=fused`` with Hydra.

Hydra only instantiates plugin classes defined under the ``hydra_plugins`` package, so this
module holds a thin subclass; the launcher's logic lives in :mod:`harness.sweep.launcher`.
"""

from hydra.core.config_store import ConfigStore

from harness.sweep import launcher


class FusedLauncher(launcher.FusedLauncher):
    """See :class:`harness.sweep.launcher.FusedLauncher`."""


ConfigStore.instance().store(group="hydra/launcher", name="fused", node=launcher.FusedLauncherConf, provider="harness")
