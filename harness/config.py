"""Config schema: dataclasses registered in Hydra's ConfigStore, so types are checked at compose time.

Every value a user can set lives here with its type and default. Each YAML file under
``conf/`` names its schema in its ``defaults:`` list, so a misspelt key or a wrong type fails
while Hydra composes the config, before any compute. Value checks (ranges, known names) live
in :mod:`harness.validate`.
"""

from __future__ import annotations

from importlib import resources
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf


@dataclass
class DataConfig:
    """Which data set, and how it is generated and split. Not every key applies to every set."""

    name: str = MISSING  # spiral | circle | xor | gauss | reg_plane | reg_gauss | mnist1d | digits | adding | copy | sentiment | files
    seed: int = 0  # data seed: generation and splits (static: a new seed is a new data set)
    noise: float = 0.0  # Playground: 0 .. 0.5 on its slider, up to 0.8 from its URL
    num_samples: Optional[int] = None  # Playground: 500 classification / 1200 regression
    train_fraction: float = 0.5  # Playground's "ratio of training to test data"
    val_fraction: float = 0.0  # carved from the training split
    features: list[str] = field(default_factory=lambda: ["x1", "x2"])  # Playground inputs
    shuffle_positions: bool = False  # mnist1d: one fixed permutation of the 40 positions
    length: int = 50  # adding / copy / sentiment: sequence length T
    vocab_size: int = 0  # sentiment: 0 = the generator's own vocabulary
    path: Optional[str] = None  # files: a folder with IDX files (raw or .gz) or an .npz
    max_train: Optional[int] = None  # keep only the first N training examples (few labels)
    classes: Optional[list[int]] = None  # keep only these classes (relabelled 0..k-1)
    layout: str = "auto"  # auto | vector | image | sequence: override the natural layout


@dataclass
class ModelConfig:
    """One schema for every model family; keys a family does not use are left at defaults."""

    family: str = "fnn"  # fnn | cnn | rnn
    activation: str = "tanh"  # relu tanh sigmoid linear gelu elu leaky_relu softplus swish
    init: str = "default"  # default (lecun normal, zero bias) | playground | he | glorot | zero
    init_scale: float = 1.0  # multiplies every initial weight (dynamic)
    dropout: float = 0.0  # static: a new rate is a new program
    hidden: list[int] = field(default_factory=lambda: [8, 8])  # fnn widths; [] = linear model
    tokens: str = "bag"  # fnn on tokens: bag (counts, order lost) | flatten (embed, keep positions)
    # cnn
    channels: list[int] = field(default_factory=lambda: [25, 25, 25])
    kernel: int = 5
    stride: int = 2
    padding: str = "SAME"
    pool: str = "none"  # none | max | avg (after each conv, window 2)
    dense: list[int] = field(default_factory=list)  # cnn head widths before the output
    # rnn
    cell: str = "gru"  # simple | gru | lstm
    units: int = 64
    layers: int = 1
    bidirectional: bool = False
    readout: str = "last"  # last | mean | flatten
    embed_dim: int = 16  # tokens input: embedding width (rnn; fnn with tokens=flatten)


@dataclass
class ScheduleConfig:
    """Learning-rate schedule; steps are optimizer steps."""

    kind: str = "constant"  # constant | cosine | warmup | warmup_cosine
    warmup_steps: float = 0.0  # dynamic
    final_fraction: float = 0.0  # cosine: lr at the end as a fraction of optim.lr


@dataclass
class OptimConfig:
    """Optimizer (optax). Numbers are dynamic: sweeping them never recompiles."""

    name: str = "sgd"  # sgd | momentum | nesterov | adam | adamw | rmsprop
    lr: float = 0.03
    momentum: float = 0.9  # momentum / nesterov
    b1: float = 0.9  # adam / adamw
    b2: float = 0.999
    eps: float = 1e-8  # adam / adamw / rmsprop
    decay: float = 0.9  # rmsprop
    weight_decay: float = 0.0  # decoupled, scaled by the learning rate (as optax.adamw)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)


REGULARIZERS = ("none", "l1", "l2")  # the choices of regularizer.kind


@dataclass
class RegularizerConfig:
    """Penalty on weights (kernels, not biases), as in TensorFlow Playground."""

    kind: str = "none"  # none | l1 | l2
    rate: float = 0.0  # dynamic
    # L1 as Playground: a weight the L1 step pushes across 0 is set to 0 and frozen (a dead link)
    dead_links: bool = False


@dataclass
class TrainConfig:
    """Batch size and budget. Exactly one budget applies: steps or examples if set, else epochs."""

    batch_size: int = 10  # static: it is a shape
    epochs: Optional[int] = 200
    steps: Optional[int] = None
    examples: Optional[int] = None
    eval_every: Optional[int] = None  # steps between evaluations; default one epoch
    loss: str = "auto"  # auto | playground | cross_entropy | mse | half_mse | tanh_squared
    order: str = "reshuffle"  # reshuffle (each epoch) | fixed (one permutation) | stored (Playground)
    partial_batch: str = "drop"  # drop | carry (Playground: the leftover joins the next epoch's first batch)
    order_seed: Optional[int] = None  # data-order seed; default = seed
    grad_noise_scale: bool = False  # measure B_simple (McCandlish et al.) at each evaluation
    # Epochs between checkpoints (orbax; resume after a kill or SLURM preemption); null/0: off.
    # Changes no result: not part of the compile group or of the config hash.
    checkpoint_every: Optional[int] = None
    init_from: Optional[str] = None  # a params.npz (output.save_params=true): every layer but the head
    freeze: str = "none"  # none | features (train the head only: a linear probe)
    # A run whose training loss at an evaluation exceeds this multiple of its initial (step-0)
    # loss is stored as diverged at that step, as one whose parameters overflow is. 100: above
    # every run that trained or recovered in docs/reliability.md's measurement (at most 55x),
    # far below lr=1e6 / 1e30 (1e5x and more). null: off (only overflow counts).
    diverge_above: Optional[float] = 100.0


@dataclass
class LoggerConfig:
    """Where runs are tracked besides result.json."""

    name: str = "wandb"  # wandb | none
    project: Optional[str] = None  # null: WANDB_PROJECT, else "harness"
    entity: Optional[str] = None
    group: Optional[str] = None  # null: WANDB_RUN_GROUP, else the sweep's folder (multiruns)
    job_type: str = "train"
    tags: list[str] = field(default_factory=list)
    run_name: Optional[str] = None  # null: WANDB_NAME, else the job's overrides that vary in its sweep
    mode: Optional[str] = None  # offline unless WANDB_MODE / this says otherwise
    dir: Optional[str] = None  # null: WANDB_DIR, else the job's output dir


@dataclass
class OutputConfig:
    """What a run writes beside result.json."""

    # auto: a single run draws its PNGs (curves, boundary, confusion), a sweep's members do not
    # (hundreds of figures nobody opens cost most of a sweep's time): `harness-plot <folder>`
    # draws them from the stored records when wanted | true: always | false: never
    plots: Any = "auto"
    save_params: bool = False
    boundary_resolution: int = 50  # decision-boundary grid, points per side (2-D data)
    discretize: bool = False  # draw the boundary as two colours (Playground's "Discretize output")
    # true: a stored record of a different config in this run's / sweep's folder is moved aside
    # into <folder>/replaced/<time>/ (never deleted); false: such a folder is refused (harness/folders.py)
    overwrite: bool = False


@dataclass
class Config:
    """The whole composed config of one training run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    regularizer: RegularizerConfig = field(default_factory=RegularizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    seed: int = 0  # init seed (dynamic)
    # The metric each job returns to Hydra's sweeper (Optuna, Ax, Nevergrad), e.g. val/accuracy;
    # null: a job returns all its final metrics.
    optimized_metric: Optional[str] = None
    # Quasi-random search (harness/sweep/search.py): search.n points of search.<path>=<dist>.
    search: dict[str, Any] = field(default_factory=lambda: {"n": 0, "method": "sobol", "seed": 0})


# Hydra's config path of the configs shipped with the package (conf/ in the repo, installed as
# the package harness.conf: pyproject.toml maps one to the other, editable or not).
CONF_PACKAGE = "harness.conf"
CONF_PATH = f"pkg://{CONF_PACKAGE}"

# The schemas that a group's YAML files name in their defaults list (``- data_schema``).
# They are served by hydra_plugins/harness_schema, which loads them but never lists them, so
# they are not offered as choices in --help, tab completion or "Available options". A plain
# module constant: processes that Hydra starts elsewhere (a SLURM job restores Hydra's
# ConfigStore, not this module's state) have it as soon as they import harness.config.
GROUP_SCHEMAS: dict[str, type] = {
    f"{group}/{group}_schema": node
    for group, node in (("data", DataConfig), ("model", ModelConfig), ("optim", OptimConfig),
                        ("regularizer", RegularizerConfig), ("logger", LoggerConfig))
}


def conf_dir() -> Path:
    """The folder of the shipped configs (conf/ of a checkout or the installed harness/conf)."""
    return Path(str(resources.files(CONF_PACKAGE)))


CONF_DIR = conf_dir()  # the one place that says where conf/ is


def register_configs() -> None:
    """Put the root schema into Hydra's ConfigStore (idempotent; the group schemas are
    GROUP_SCHEMAS, served by hydra_plugins/harness_schema)."""
    ConfigStore.instance().store(name="schema", node=Config)
    OmegaConf.register_new_resolver("harness.groups", group_options, replace=True)


def group_options(*groups: str) -> str:
    """One line per config group that has options, listing them (the help templates in
    conf/hydra/help/ name the groups their command uses)."""
    from hydra.core.global_hydra import GlobalHydra

    hydra = GlobalHydra.instance()
    lines = []
    for group in groups:
        if hydra.is_initialized():  # as Hydra finds them, external search paths included
            options = hydra.config_loader().get_group_options(group)
        else:
            options = sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))
        if options:
            lines.append(f"  {group}: {', '.join(options)}")
    return "\n".join(lines)


PLOTS = (True, False, "auto")  # output.plots


def draws_plots(plots: Any, multirun: bool) -> bool:
    """Whether a job with ``output.plots=plots`` draws its PNGs when it is stored: ``auto``
    draws them for a single run, not for a multirun's jobs (harness-plot draws those later)."""
    return multirun is False if plots == "auto" else bool(plots)


# id of a read-only config -> (weak reference to it, its resolved plain form)
_RESOLVED: dict[int, tuple[Any, Any]] = {}


def resolved(cfg: Any) -> Any:
    """``OmegaConf.to_container(cfg, resolve=True)``: a fresh copy, the caller's to change.

    For a read-only config (a sweep's composed jobs are made read-only) the conversion runs
    once and later calls copy its result: a sweep converts each job's config several times
    (grouping, hashing, storing; ~0.4 ms each) and a copy of plain data costs ~0.04 ms. The
    entry goes when the config does (a weak reference), so a new config at a reused id never
    sees an old one's values.
    """
    import copy
    import weakref

    if not OmegaConf.is_readonly(cfg):
        return OmegaConf.to_container(cfg, resolve=True)
    key = id(cfg)
    hit = _RESOLVED.get(key)
    if hit is None or hit[0]() is not cfg:
        hit = (weakref.ref(cfg, lambda _ref, key=key: _RESOLVED.pop(key, None)),
               OmegaConf.to_container(cfg, resolve=True))
        _RESOLVED[key] = hit
    return copy.deepcopy(hit[1])
