"""Refactors change no number: small configs trained now store exactly the records stored
before (tests/fixtures/reference_results.json, written by scripts/reference_results.py).

The cases cover each model family, an optimizer with a penalty, a fused group of four
members (different learning rates, seeds and regularizer kinds in one program) and a run
trained in checkpointed segments; every float is compared exactly.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("reference_results", ROOT / "scripts" / "reference_results.py")
reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)

STORED = json.loads(reference.FIXTURE.read_text())["cases"]


def test_fixture_holds_every_case():
    assert sorted(STORED) == sorted(reference.CASES)


@pytest.mark.parametrize("case", sorted(reference.CASES))
def test_stored_records_are_reproduced_bitwise(case, tmp_path):
    now = json.loads(json.dumps(reference.compute(case, tmp_path)))  # the same JSON round trip as stored
    before = STORED[case]
    assert len(now) == len(before)
    for member, (a, b) in enumerate(zip(now, before)):
        for field in sorted(set(a) | set(b)):
            # json.dumps spells every float exactly (and NaN as NaN), so equal text is equal bits.
            assert json.dumps(a.get(field), sort_keys=True) == json.dumps(b.get(field), sort_keys=True), \
                f"{case} member {member}: {field} differs from the stored reference"
