"""``python -m harness.claim``: the same as the ``harness-claim`` command."""

from harness.claim.cli import command

command()
