"""Refactors change no number: small configs trained now store exactly the records stored
before (tests/fixtures/reference_results.json, written by scripts/reference_results.py).

The cases cover each model family, an optimizer with a penalty, a fused group of four
members (different learning rates, seeds and regularizer kinds in one program) and a run
trained in checkpointed segments; every float is compared exactly on a platform whose records
are stored (``scripts/reference_results.py`` says why records are per platform).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("reference_results", ROOT / "scripts" / "reference_results.py")
reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)

PLATFORMS = json.loads(reference.FIXTURE.read_text())["platforms"]
HERE = reference.platform()
# Off a stored platform: how far another CPU's last bits may take a few epochs' numbers. AMD
# EPYC (AVX2) against Intel Xeon (AVX-512) records: at most 3.7e-7 relative and equal confusion
# matrices, measured on these cases; the bounds leave room for CPUs not seen yet.
RTOL, ATOL = 1e-4, 1e-6


def stored(case: str) -> tuple[list, bool]:
    """(the stored members of ``case``, whether they are this platform's own)."""
    for entry in PLATFORMS:
        if entry["platform"] == HERE and case in entry["cases"]:
            return entry["cases"][case], True
    return next(entry["cases"][case] for entry in PLATFORMS if case in entry["cases"]), False


def test_fixture_holds_every_case():
    assert sorted({case for entry in PLATFORMS for case in entry["cases"]}) == sorted(reference.CASES)
    assert all(sorted(entry["platform"]) == sorted(HERE) for entry in PLATFORMS)


def _numbers(value):
    """Every number in a record field, in order (the curves file's text parsed)."""
    if isinstance(value, str):
        return [float(x) for line in value.splitlines()[1:] for x in line.split(",")]
    if isinstance(value, dict):
        return [x for key in sorted(value) for x in _numbers(value[key])]
    if isinstance(value, list):
        return [x for item in value for x in _numbers(item)]
    return [float(value)] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


def _assert_close(case: str, member: int, field: str, a, b) -> None:
    """Another platform's record: the same shape of everything, numbers within tolerance; the
    boundary's hash cannot be near, so its shape and type stand for it."""
    if field == "boundary":
        a, b = {k: v for k, v in a.items() if k != "sha256"}, {k: v for k, v in b.items() if k != "sha256"}
    if field == "curves_csv":
        assert a.splitlines()[0] == b.splitlines()[0], f"{case} member {member}: curve columns differ"
    if field in ("metrics", "curves_csv", "confusion_matrix"):
        got, want = np.array(_numbers(a)), np.array(_numbers(b))
        assert got.shape == want.shape, f"{case} member {member}: {field} has other entries"
        if field == "confusion_matrix":  # a test example on the boundary may change class
            assert np.abs(got - want).sum() <= 2, f"{case} member {member}: confusion matrix differs"
        else:
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=f"{case} member {member}: {field}")
        return
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True), f"{case} member {member}: {field} differs"


@pytest.mark.parametrize("case", sorted(reference.CASES))
def test_stored_records_are_reproduced_bitwise(case, tmp_path):
    """Bitwise on a platform with stored records; elsewhere within RTOL of another platform's
    (run scripts/reference_results.py --add there to make it bitwise)."""
    now = json.loads(json.dumps(reference.compute(case, tmp_path)))  # the same JSON round trip as stored
    before, own = stored(case)
    assert len(now) == len(before)
    label = case if own else f"{case} (no records for {HERE}: compared with another platform's)"
    for member, (a, b) in enumerate(zip(now, before)):
        for field in sorted(set(a) | set(b)):
            if not own:
                _assert_close(label, member, field, a.get(field), b.get(field))
                continue
            # json.dumps spells every float exactly (and NaN as NaN), so equal text is equal bits.
            assert json.dumps(a.get(field), sort_keys=True) == json.dumps(b.get(field), sort_keys=True), \
                f"{case} member {member}: {field} differs from the stored reference"


def test_off_platform_comparison_still_catches_a_changed_number():
    """The tolerance for another CPU's records passes their last bits, not a real change."""
    (record,), _ = stored("fnn_sgd")
    metrics = dict(record["metrics"])
    key = next(k for k, v in metrics.items() if isinstance(v, float) and v)
    _assert_close("fnn_sgd", 0, "metrics", {**metrics, key: metrics[key] * (1 + 1e-7)}, metrics)
    with pytest.raises(AssertionError):
        _assert_close("fnn_sgd", 0, "metrics", {**metrics, key: metrics[key] * (1 + 1e-3)}, metrics)
    lines = record["curves_csv"].splitlines(keepends=True)
    changed = "".join([lines[0], lines[1].replace(",", ",9", 1), *lines[2:]])  # a value x -> 9x
    with pytest.raises(AssertionError, match="curves_csv"):
        _assert_close("fnn_sgd", 0, "curves_csv", changed, record["curves_csv"])
    with pytest.raises(AssertionError):
        _assert_close("fnn_sgd", 0, "status", "diverged", record["status"])
