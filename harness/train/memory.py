"""Memory a member of a group needs, and memory there is: estimates from shapes, no compile.

harness.validate checks a config against them; harness.sweep.chunking splits groups with them.
"""

from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp

from harness.data.base import Dataset
from harness.models import build_model
from harness.train.loop import EVAL_CHUNK
from harness.train.objective import num_model_outputs, resolve_loss

BYTES = 4  # float32
# Parameters live several times over: params, grads, two optimizer moments, the masked copy
# kept for divergence, and the update.
PARAM_COPIES = 8


def _sizes(cfg, dataset: Dataset) -> tuple[int, int]:
    """(parameters, activations per example of one forward pass) of a member's model."""
    loss = resolve_loss(str(cfg.train.loss), dataset.task)
    model = build_model(
        cfg.model,
        layout=dataset.layout,
        input_shape=dataset.input_shape,
        num_outputs=num_model_outputs(loss, dataset.task, dataset.num_classes),
        vocab_size=dataset.vocab_size,
        targets=dataset.targets,
    )
    x = jnp.zeros((1,) + dataset.input_shape, dataset.x_train.dtype)

    def init_and_capture(key):
        variables = model.init(key, x, train=False)
        _, state = model.apply(variables, x, train=False, capture_intermediates=True, mutable=["intermediates"])
        return variables["params"], state

    params, state = jax.eval_shape(init_and_capture, jax.random.PRNGKey(0))
    n_params = sum(math.prod(p.shape) for p in jax.tree_util.tree_leaves(params))
    per_example = sum(math.prod(a.shape) for a in jax.tree_util.tree_leaves(state))
    return n_params, per_example


def member_bytes(cfg, dataset: Dataset) -> int:
    """Estimated peak bytes of one member: parameter copies plus activations of the largest
    forward pass (an evaluation chunk or a training batch, with its backward pass)."""
    n_params, per_example = _sizes(cfg, dataset)
    n_eval = min(EVAL_CHUNK, sum(dataset.sizes.values()))
    activations = per_example * max(n_eval, 3 * int(cfg.train.batch_size))
    return BYTES * (PARAM_COPIES * n_params + activations + int(cfg.train.batch_size) * math.prod(dataset.input_shape))


def boundary_bytes(cfg, dataset: Dataset) -> int:
    """Estimated bytes of the decision-boundary grid (2-D Playground data only): its
    ``resolution``² input points and one forward pass over all of them, in one piece."""
    if dataset.input_extent is None or not dataset.feature_names:
        return 0
    points = int(cfg.output.boundary_resolution) ** 2
    _, per_example = _sizes(cfg, dataset)
    return BYTES * points * (len(dataset.feature_names) + per_example)


def available_bytes() -> int:
    """Memory the member axis may use: the accelerator's limit, or available host memory."""
    device = jax.local_devices()[0]
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    return host_available_bytes()


def host_available_bytes() -> int:
    """Available host memory (where data sets are generated)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
