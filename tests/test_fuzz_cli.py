"""Fuzz: a random bad value for every key of the config schema, through the real CLI
(issue #15, item 5). The keys come from the schema dataclasses, not a hand list; every case
must give one ``error:`` line naming its key, exit 2, and write nothing. All cases run in one
subprocess (tests/cli_driver.py), so JAX and Hydra are imported once."""

from __future__ import annotations

import dataclasses
import typing

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from conftest import run_cases
from harness.config import Config

# Words the config grammar reads as something other than junk: never drawn as a bad value.
MEANINGFUL = {"inf", "nan", "null", "none", "true", "false", "yes", "no", "on", "off", "infinity"}


def schema_keys(cls=Config, prefix: str = "") -> dict[str, typing.Any]:
    """Every leaf key of the schema (dotted) with its type."""
    hints = typing.get_type_hints(cls)
    keys = {}
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            keys.update(schema_keys(kind, f"{prefix}{f.name}."))
        else:
            keys[prefix + f.name] = kind
    return keys


def base_type(kind):
    """``Optional[X]`` -> X; ``list[int]`` -> list; ``dict[...]`` -> dict."""
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if typing.get_origin(kind) is typing.Union and len(args) == 1:
        kind = args[0]
    return typing.get_origin(kind) or kind


junk = st.from_regex(r"q[a-z]{0,7}", fullmatch=True).filter(lambda s: s not in MEANINGFUL)
unresolvable = st.sampled_from(["${oc.env:HARNESS_FUZZ_NEVER_SET}", "${no_such.key}"]) | \
    junk.map(lambda s: "${" + s + "}")


def bad_value(kind) -> st.SearchStrategy[str]:
    """Values no key of this type takes: the wrong type, or an interpolation that cannot resolve."""
    base = base_type(kind)
    if base in (int, float, bool):
        wrong = junk | st.sampled_from(["[1]", "{a: 1}"])
        if base is int:
            wrong |= st.floats(0.5, 1e6).filter(lambda x: x != int(x)).map(repr)
    elif base is str:
        wrong = st.sampled_from(["[1, 2]", "{a: 1}", "[]"])
    elif base is list:
        wrong = junk | st.sampled_from(["{a: 1}"])
    else:  # dict
        wrong = junk | st.sampled_from(["[1, 2]"])
    return wrong | unresolvable


KEYS = schema_keys()
CASES = st.tuples(*[bad_value(kind).map(lambda v, k=key: (k, v)) for key, kind in KEYS.items()])


# One drawn example, never shrunk: each try is a whole subprocess; a failure lists every bad case.
@settings(max_examples=1, deadline=None, derandomize=True, phases=[Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(CASES, st.lists(st.sampled_from(sorted(KEYS)), min_size=4, max_size=4, unique=True))
def test_a_bad_value_for_any_schema_key_is_one_line_exit_2_and_nothing_written(tmp_path_factory, drawn, swept):
    base = tmp_path_factory.mktemp("fuzz")
    quick = ["logger=none", "output.plots=false", "train.epochs=1"]
    # The quick settings never set the key under test (a later override of an untyped key, such
    # as output.plots, would replace the bad value before anything checks it).
    def rest(key):
        return [q for q in quick if q.split("=")[0] != key]

    cases = [[f"{key}={value}", *rest(key)] for key, value in drawn]
    by_key = dict(drawn)
    # And inside a multirun (the fused launcher's own checks): two jobs, both with the bad value.
    cases += [["-m", "seed=0,1", f"{key}={by_key[key]}", *rest(key), "hydra.sweep.dir=S"] for key in swept]
    results = run_cases(cases, base)
    assert len(results) == len(KEYS) + len(swept) > 80
    failures = []
    for result, (key, value) in zip(results, [*drawn, *((k, by_key[k]) for k in swept)]):
        lines = result["stderr"].strip().splitlines()
        ok = (result["code"] == 2 and len(lines) == 1 and lines[0].startswith("error: ")
              and key.split(".")[-1] in lines[0] and result["files"] == [])
        if not ok:
            failures.append(f"{key}={value!r}: code {result['code']}, files {result['files'][:3]}, "
                            f"stderr {result['stderr'][-300:]!r}")
    assert not failures, "\n".join(failures)
