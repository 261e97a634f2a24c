"""Errors a user can fix by changing the config: they print as one line, never a traceback."""

from __future__ import annotations

from typing import Any, Iterable


class ConfigError(ValueError):
    """A config value that is not allowed: names the key, the value and what is allowed."""

    def __init__(self, key: str, value: Any, allowed: str | Iterable[Any]):
        if not isinstance(allowed, str):
            allowed = "one of " + ", ".join(str(a) for a in allowed)
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value!r} is not allowed: {allowed}")


class DataError(ValueError):
    """Data that cannot be read (a missing or malformed file): says which path and why."""
