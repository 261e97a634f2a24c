"""Errors a user can fix by changing the config: they print as one line, never a traceback."""

from __future__ import annotations

from typing import Any, Iterable


NO_VALUE = object()  # a ConfigError about a key as such (``~train``), not about a value of it


class ConfigError(ValueError):
    """A config value that is not allowed: names the key, the value and what is allowed."""

    def __init__(self, key: str, value: Any, allowed: str | Iterable[Any]):
        if not isinstance(allowed, str):
            allowed = "one of " + ", ".join(str(a) for a in allowed)
        self.key, self.value, self.allowed = key, value, allowed
        shown = key if value is NO_VALUE else f"{key}={value!r}"
        super().__init__(f"{shown} is not allowed: {allowed}")


class DataError(ValueError):
    """Data that cannot be read (a missing or malformed file): says which path and why."""
