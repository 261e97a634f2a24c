"""The harness's group schemas as a Hydra config source that loads them but lists nothing.

A YAML file of a config group names its schema in its defaults list (``- data_schema``), so
``data/data_schema`` must load; stored in Hydra's ConfigStore it would also be offered as a
choice (``data=data_schema`` in --help, tab completion and "Available options"), which is
not a data set. This source answers only for the schemas in ``harness.config.GROUP_SCHEMAS``
and is added to the search path only in processes that imported ``harness.config`` (the
harness's apps and the jobs they start), so other Hydra apps in the same environment never
see it.
"""

from __future__ import annotations

from typing import List, Optional

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from hydra.plugins.search_path_plugin import SearchPathPlugin
from omegaconf import OmegaConf


def _schema(config_path: str) -> Optional[type]:
    """The schema dataclass stored under ``config_path`` (with or without .yaml), or None."""
    from harness.config import GROUP_SCHEMAS

    return GROUP_SCHEMAS.get(config_path.rstrip("/").removesuffix(".yaml"))


class HarnessSchemaSource(ConfigSource):
    """Loads ``<group>/<group>_schema``; is never a group, so Hydra never lists from it."""

    @staticmethod
    def scheme() -> str:
        return "harness-schema"

    def load_config(self, config_path: str) -> ConfigResult:
        node = _schema(config_path)
        if node is None:
            raise ConfigLoadError(f"ConfigSource: config not found: {config_path}")
        return ConfigResult(config=OmegaConf.structured(node), path=self.full_path(),
                            provider=self.provider, header={"package": None})

    def available(self) -> bool:
        return True

    def is_group(self, config_path: str) -> bool:
        return False

    def is_config(self, config_path: str) -> bool:
        return _schema(config_path) is not None

    def list(self, config_path: str, results_filter: Optional[ObjectType]) -> List[str]:
        return []


class HarnessSchemaSearchPath(SearchPathPlugin):
    """Adds :class:`HarnessSchemaSource` to the search path of the harness's own apps."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        import sys

        config = sys.modules.get("harness.config")
        if config is not None and config.GROUP_SCHEMAS:
            search_path.append(provider="harness-schema", path="harness-schema://")
