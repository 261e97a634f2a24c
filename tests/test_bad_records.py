"""Readers name bad records (issue #15, item 2): ``harness-table`` and the claim analysis
report each unreadable or malformed ``result.json`` by path, count it, and go on with the
rest; ``--strict`` makes that a non-zero exit."""

from __future__ import annotations

import shutil

import pytest

from harness import store
from test_table_cli import harness_table, make_run

# What a damaged or hand-edited record can look like, and what it is named as.
BAD = {
    "list": ("[1, 2]", "not an object"),
    "number": ("3.5", "not an object"),
    "deep": ("[" * 200_000, "nested too deeply"),
    "metrics-list": ('{"status": "ok", "metrics": [1, 2], "config": {}}', '"metrics" is a list'),
    "truncated": (None, "not valid JSON"),
    "directory": (None, "a directory"),
}


def plant(root, name: str) -> None:
    """A bad record ``name`` (a key of BAD) in its own run folder."""
    folder = root / name
    folder.mkdir(parents=True)
    text, _ = BAD[name]
    if name == "directory":
        (folder / store.RESULT_FILE).mkdir()
    elif name == "truncated":  # a good record cut half-way
        make_run(root, "whole", status="ok", seed=9, bs=16, acc=0.5)
        data = (root / "whole" / store.RESULT_FILE).read_bytes()
        shutil.rmtree(root / "whole")
        (folder / store.RESULT_FILE).write_bytes(data[: len(data) // 2])
    else:
        (folder / store.RESULT_FILE).write_text(text)


@pytest.mark.parametrize("name", sorted(BAD))
def test_read_record_names_what_is_wrong(tmp_path, name):
    plant(tmp_path, name)
    record, why = store.read_record(tmp_path / name)
    assert record is None
    assert BAD[name][1] in why


def test_table_names_each_bad_record_counts_it_and_tabulates_the_rest(tmp_path):
    for seed in range(3):
        make_run(tmp_path, f"good{seed}", status="ok", seed=seed, bs=16, acc=0.9)
    for name in BAD:
        plant(tmp_path, name)
    proc = harness_table(tmp_path, "--by", "train.batch_size", "--metric", "test/accuracy")
    assert proc.returncode == 0, proc.stderr
    warnings = proc.stderr.strip().splitlines()
    assert len(warnings) == len(BAD)
    for name, (_, why) in BAD.items():
        assert any(str(tmp_path / name / store.RESULT_FILE) in w and why in w for w in warnings), (name, warnings)
    assert "3 runs" in proc.stdout and f"{len(BAD)} unreadable result.json skipped" in proc.stdout

    strict = harness_table(tmp_path, "--by", "train.batch_size", "--metric", "test/accuracy", "--strict")
    assert strict.returncode == 1
    assert strict.stderr.strip().splitlines()[-1].startswith("error: --strict: 6 result.json")


def test_a_folder_whose_only_record_is_truncated_says_so(tmp_path):
    plant(tmp_path, "truncated")
    proc = harness_table(tmp_path, "--by", "seed", "--metric", "test/accuracy")
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert "no readable result.json: 1 unreadable" in last and "not valid JSON" in last
    assert "holds no result.json" not in proc.stderr
