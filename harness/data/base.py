"""The one in-memory form every data set takes: numpy arrays split into train / val / test.

Generators and loaders return a :class:`Dataset`; the training function only ever sees its
arrays (moved to the device once per compile group). Arrays keep a *natural layout* and the
models adapt to it:

- ``vector``   x: float32 [n, d]          (Playground features, bag of words)
- ``signal``   x: float32 [n, length, channels]   (MNIST-1D: [n, 40, 1]; a 1-D CNN convolves
  over ``length``, an RNN reads it as ``length`` time steps of ``channels`` features)
- ``image``    x: float32 [n, height, width, channels]  (digits 8x8x1, MNIST 28x28x1; an RNN
  reads rows as time steps)
- ``sequence`` x: float32 [n, time, features]  (adding, copy)
- ``tokens``   x: int32 [n, time] with values in [0, vocab_size)  (sentiment; an RNN embeds
  them, an FNN turns them into a bag of words)

Targets: int32 class indices [n] for classification; float32 [n] for scalar regression;
int32 [n, time] for per-step classification (copy task, ``targets="sequence"``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

LAYOUTS = ("vector", "signal", "image", "sequence", "tokens")
TASKS = ("classification", "regression")


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A data set split three ways, plus what a model and a report need to know about it."""

    name: str
    task: str  # "classification" | "regression"
    layout: str  # one of LAYOUTS
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray  # may have 0 rows when data.val_fraction == 0
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int = 0  # classes for classification; 0 for regression
    vocab_size: int = 0  # tokens layout only
    feature_names: tuple[str, ...] = ()  # Playground input features, in column order
    targets: str = "example"  # "example": one target per example; "sequence": one per step
    # Playground only: the square the points live in, for decision-boundary plots.
    input_extent: tuple[float, float] | None = None
    # Anything a report may want: generator arguments, analytic baselines, class names.
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example (without the batch axis)."""
        return tuple(self.x_train.shape[1:])

    @property
    def num_outputs(self) -> int:
        """Width of the model's last layer: classes, or 1 for scalar regression."""
        return self.num_classes if self.task == "classification" else 1

    @property
    def sizes(self) -> dict[str, int]:
        """Number of examples per split."""
        return {"train": len(self.x_train), "val": len(self.x_val), "test": len(self.x_test)}

    def arrays(self) -> dict[str, np.ndarray]:
        """The six arrays by name, the form the training function takes."""
        return {
            "x_train": self.x_train,
            "y_train": self.y_train,
            "x_val": self.x_val,
            "y_val": self.y_val,
            "x_test": self.x_test,
            "y_test": self.y_test,
        }


def split_validation(
    x: np.ndarray, y: np.ndarray, val_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Carve a validation split from training data: a random ``val_fraction`` of the rows.

    Returns ``x_train, y_train, x_val, y_val``. ``val_fraction == 0`` gives an empty split.
    """
    n = len(x)
    n_val = int(round(n * val_fraction))
    order = rng.permutation(n)
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    return x[train_idx], y[train_idx], x[val_idx], y[val_idx]
