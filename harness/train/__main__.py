"""``python -m harness.train``: the same as the ``harness-train`` command."""

from harness.cli import command

command()
