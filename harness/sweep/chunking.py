"""Split a compile group into chunks of members that fit in memory at once."""

from __future__ import annotations

import math

from harness.data.base import Dataset
from harness.train.memory import available_bytes, member_bytes


def max_members(cfg, dataset: Dataset, memory_fraction: float = 0.5) -> int:
    """Members per chunk so that a chunk uses at most ``memory_fraction`` of free memory."""
    per_member = max(member_bytes(cfg, dataset), 1)
    return max(1, int(available_bytes() * memory_fraction // per_member))


def chunk_sizes(n: int, limit: int) -> list[int]:
    """Split ``n`` members into near-equal chunks of at most ``limit``."""
    count = math.ceil(n / max(limit, 1))
    base, extra = divmod(n, count)
    return [base + (1 if i < extra else 0) for i in range(count)]
