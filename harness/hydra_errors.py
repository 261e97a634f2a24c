"""One-line errors for config mistakes that Hydra catches while composing.

Hydra prints composition errors (a wrong type, an unknown key, an unknown group option, an
unparsable override) over several lines with a hint about HYDRA_FULL_ERROR. The harness's
rule is one line naming the key, the value and what is allowed, and a non-zero exit (2), so
:func:`install` wraps Hydra's reporting function for those errors only; anything else (a real
bug) keeps Hydra's report, and ``HYDRA_FULL_ERROR=1`` still gives the full traceback.
"""

from __future__ import annotations

import errno
import os
import re
import sys
from typing import Any

EXIT_CONFIG_ERROR = 2
EXIT_STORAGE_ERROR = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a Ctrl-C
# Errors of the place results go (full, read-only, not permitted, over quota, not a folder).
STORAGE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.ENOTDIR, errno.EFBIG}


def one_line(ex: BaseException) -> str:
    """A composition error as ``key=value is not allowed: what is allowed``."""
    from omegaconf.errors import OmegaConfBaseException

    own = _harness_error(ex)
    if own is not None:  # the harness's own check, wrapped by Hydra (a launcher option): as it is
        return str(own)
    text = str(ex)
    missing = re.search(r"Could not (?:find|load) '([^']+)'", text)
    if missing and "/" in missing.group(1):
        group, option = missing.group(1).rsplit("/", 1)
        options = _available_options(text)
        allowed = "one of " + ", ".join(options) if options else f"an option of the '{group}' group"
        return f"{group.replace('/', '.')}={option!r} is not allowed: {allowed}"
    override = getattr(ex, "override", None)
    if override:
        first = next((line.strip() for line in text.splitlines() if line.strip()), "")
        return f"{override!r} could not be parsed: {first} (see Hydra's override grammar)"
    cause = ex.__cause__
    if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
        message = str(getattr(cause, "msg", "") or cause).splitlines()[0].strip()
        value = getattr(cause, "value", None)
        appended = re.search(r"use \+(\S+?)=(.*)$", text, re.MULTILINE)  # "Could not override 'k'"
        if value is None and appended and appended.group(1) == cause.full_key:
            value = appended.group(2).strip()
        shown = f"={value!r}" if value is not None else ""
        if "not in" in message or "Key '" in message:
            return f"{cause.full_key}{shown} is not allowed: no such key ({message})"
        return f"{cause.full_key}{shown} is not allowed: {message}"
    in_file = re.search(r"full_key: (\S+)", text)
    if in_file:  # a bad key or value inside a config file: name the key, the value and the file
        where = re.search(r"In '([^']+)'", text)
        detail = re.search(r"raised while composing config:\s*\n\s*(.+)", text)
        message = detail.group(1).strip() if detail else text.splitlines()[0].strip()
        value = re.search(r"Value '(.*?)' of type", message)
        shown = f"={value.group(1)!r}" if value else ""
        if "not in" in message or message.startswith("Key '"):
            message = f"no such key ({message})"
        return (f"{in_file.group(1)}{shown} is not allowed: {message}"
                + (f" (in config file '{where.group(1)}')" if where else ""))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " -- ".join(lines) if lines else type(ex).__name__


def _harness_error(ex: BaseException) -> BaseException | None:
    """A :class:`~harness.errors.ConfigError` anywhere in ``ex``'s chain of causes, or None."""
    from harness.errors import ConfigError

    seen: set[int] = set()
    while ex is not None and id(ex) not in seen:
        if isinstance(ex, ConfigError):
            return ex
        seen.add(id(ex))
        ex = ex.__cause__ or ex.__context__
    return None


def check_override_keys(args: list[str]) -> None:
    """An override with nothing before ``=`` (``harness-train =0.1``) is refused in one line,
    exit 2; Hydra would take it for a config group named '' and fail with a traceback."""
    for arg in args:
        if not arg.startswith("-") and "=" in arg and not arg.split("=", 1)[0].lstrip("+~"):
            print(f"error: {arg!r} could not be parsed: an override needs a key before '=' (key=value)",
                  file=sys.stderr)
            sys.exit(EXIT_CONFIG_ERROR)


def yaml_line(ex: BaseException) -> str:
    """A config file that is not valid YAML: the file, where, and what the parser expected."""
    mark = getattr(ex, "problem_mark", None) or getattr(ex, "context_mark", None)
    where = f"{mark.name}, line {mark.line + 1}, column {mark.column + 1}" if mark else "a config file"
    what = " ".join(str(p) for p in (getattr(ex, "context", None), getattr(ex, "problem", None)) if p)
    what = " ".join((what or str(ex)).split())
    return f"{where} is not allowed: valid YAML ({what})"


def storage_line(ex: OSError) -> str:
    """A results folder that cannot be written: which file, why, and that nothing is partial."""
    name = str(ex.filename or "the results folder")
    temp = re.match(r"^(.*/)?\.(.+)\.[^./]+\.tmp$", name)  # a temp file: name its target
    if temp:
        name = (temp.group(1) or "") + temp.group(2)
    return (f"cannot write {name}: {ex.strerror or ex} (errno {errno.errorcode.get(ex.errno, ex.errno)}); "
            "files are written whole or not at all, so what is stored is complete: free space or fix the "
            "folder's permissions, then rerun the same command (finished jobs are skipped)")


def _available_options(text: str) -> list[str]:
    """The options Hydra lists under "Available options in '<group>':" (it never lists the
    group schemas: hydra_plugins/harness_schema)."""
    options, inside = [], False
    for line in text.splitlines():
        if line.startswith("Available options"):
            inside = True
        elif inside and line[:1] in ("\t", " ") and line.strip():
            options.append(line.strip())
        elif inside:
            break
    return options


def install() -> None:
    """Route Hydra's composition errors through :func:`one_line` (idempotent)."""
    import yaml
    from hydra._internal import utils as hydra_utils
    from hydra.errors import CompactHydraException

    original = hydra_utils.run_and_report
    if getattr(original, "_harness", False):
        return

    def run_and_report(func: Any) -> Any:
        try:
            return func()
        except CompactHydraException as ex:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"error: {one_line(ex)}", file=sys.stderr)
            sys.exit(EXIT_CONFIG_ERROR)
        except yaml.YAMLError as ex:  # a broken config file (Hydra lets the parser's error through)
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"error: {yaml_line(ex)}", file=sys.stderr)
            sys.exit(EXIT_CONFIG_ERROR)
        except Exception as ex:  # not a config mistake: Hydra's own report, unless storage failed
            if (isinstance(ex, OSError) and ex.errno in STORAGE_ERRNOS
                    and os.environ.get("HYDRA_FULL_ERROR") != "1"):
                print(f"error: {storage_line(ex)}", file=sys.stderr)
                sys.exit(EXIT_STORAGE_ERROR)

            error = ex  # `ex` is unbound once the except block ends; the closure keeps its own name

            def reraise() -> Any:
                raise error

            return original(reraise)

    run_and_report._harness = True  # type: ignore[attr-defined]
    hydra_utils.run_and_report = run_and_report
