#!/usr/bin/env python
"""Side-by-side benchmark: the fused launcher against the usual ways to run the same sweep.

    python scripts/bench.py --workload spiral          # Playground spiral, FNN [8,8] tanh, SGD
    python scripts/bench.py --workload mnist1d_cnn     # MNIST-1D reference CNN, Adam
    python scripts/bench.py --workload mnist1d_gru     # MNIST-1D reference bidirectional GRU, Adam
    python scripts/bench.py --workload wandb           # what W&B adds to a fused spiral sweep
    python scripts/bench.py --workload profile         # compile/run vs members, convs in loops, composing
    python scripts/bench.py --workload compile         # the engine's compile vs a hand-written jit(vmap(train))
    python scripts/bench.py --workload sweep256        # the issue's 256-config sweep vs PyTorch eager,
                                                       # torch.func vmap ensembling and Keras fit
    python scripts/bench.py --workload sweep4096       # the same sweep at 4096 configs vs PyTorch eager
    python scripts/bench.py --workload basic32         # fused vs Hydra's basic launcher, 32 configs, defaults
    python scripts/bench.py --workload extras          # the default 256 sweep vs no W&B / no plots
    python scripts/bench.py --workload mainjob         # harness-claim claim=small_batch, cold, s per run trained
    python scripts/bench.py --workload suite           # the default test suite's wall time
    python scripts/bench.py --workload goals           # every workload that measures a goal of issue #12
    python scripts/bench.py --workload all             # the goals' workloads, then spiral, GRU, wandb, profile
    python scripts/bench.py --workload spiral --quick  # a small version (a few minutes)

Every run ends with one row per goal of the "pay for training" issue (scripts/bench_targets.py):
the measured ratio, the numbers it comes from, the load average at the start and end of the
workload that measured it, and met / not met / not measured in this run. The goal workloads
(sweep256 ... suite) are in scripts/bench_goals.py.

One run of the script measures, on this machine, for the same sweep and the same budgets,
the wall time per config (= one training job) of

  fused     ``harness-train -m <sweep>`` (the fused launcher, one process), cold: a fresh,
            empty persistent compile cache; then warm (same cache, new sweep folder); and
            with ``HARNESS_CPU_DEVICES=1`` (cold; the default is 2);
  basic     ``harness-train -m hydra/launcher=basic <sweep>`` (Hydra's basic launcher: one job
            after another in one process), the whole sweep;
  loop      a shell loop of single ``harness-train`` runs (one process per job) on a subset:
            the first job of each compile structure (cold compile) and one more (warm
            persistent cache), extrapolated to the sweep;
  joblib    ``harness-train -m hydra/launcher=joblib hydra.launcher.n_jobs=<cores> <sweep>``;
  torch     a PyTorch eager loop per config (same model, data arrays, optimizer, steps, batch
            size, one evaluation of every split per epoch), torch.set_num_threads(1) and (2),
            on a random subset of configs, extrapolated;
  keras     Keras 3 ``model.fit`` per config (JAX backend), on a random subset, extrapolated;

plus this machine's f32 matmul peak (jitted 2048x2048 matmul, best of several) to put the
achieved GFLOP/s (analytic FLOP counts, see ``flops_per_config``) in proportion.

Every harness run trains with ``logger=none output.plots=false`` (the peers neither plot nor
track; ``--workload wandb`` measures W&B and plots on their own). Every subprocess's output
is kept in a log under a temporary folder (printed at the start). A variant that fails is
reported as failed; the others still run. Results go to stdout as a markdown table and, for
full (non ``--quick``) runs, into docs/benchmarks.md between ``<!-- bench:<workload> -->``
markers; the hand-written text around the markers is kept.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import itertools
import json
import math
import os
import platform
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = ROOT / "conf"
DOC = ROOT / "docs" / "benchmarks.md"
CORES = os.cpu_count() or 1
# Overrides every harness run of the comparison gets: no plots, no W&B (the peers have neither).
COMMON = ["logger=none", "output.plots=false"]
VARIANT_TIMEOUT_S = 1200
# The goals are measured by these (scripts/bench_goals.py and bench_compile.py; the CNN's
# run phase by mnist1d_cnn); `all` runs them and the older side-by-side workloads.
GOALS = ["compile", "mnist1d_cnn", "sweep256", "sweep4096", "basic32", "extras", "suite", "mainjob"]
WORKLOADS = ["spiral", "mnist1d_cnn", "mnist1d_gru", "wandb", "profile", "compile", "sweep256", "sweep4096",
             "basic32", "extras", "mainjob", "suite"]
ALL = GOALS + ["spiral", "mnist1d_gru", "wandb", "profile"]


# -- workloads -----------------------------------------------------------------------------


@dataclasses.dataclass
class Workload:
    name: str
    title: str
    data: str
    model: str  # harness model preset
    kind: str  # fnn | cnn | gru (the peers' model)
    optim: str  # sgd | adam
    epochs: int
    lrs: list[float]
    batch_sizes: list[int]
    seeds: list[int]
    torch_subset: int  # configs the PyTorch loop runs (per thread count)
    keras_subset: int  # configs Keras runs
    loop_extra: int = 1  # warm single runs per compile structure in the shell loop
    devices_variant: bool = True  # also run the fused sweep with HARNESS_CPU_DEVICES=1 (the default is 2)
    scale_variant: bool = False  # also run the fused sweep with 4x the seeds (marginal cost per config)

    @property
    def base(self) -> list[str]:
        return [f"data={self.data}", f"model={self.model}", f"optim={self.optim}", f"train.epochs={self.epochs}"]

    def scaled(self, factor: int) -> "Workload":
        seeds = list(range(len(self.seeds) * factor))
        return dataclasses.replace(self, seeds=seeds, scale_variant=False)

    @property
    def sweep_overrides(self) -> list[str]:
        return [
            "optim.lr=" + ",".join(_num(v) for v in self.lrs),
            "train.batch_size=" + ",".join(str(v) for v in self.batch_sizes),
            "seed=" + ",".join(str(v) for v in self.seeds),
        ]

    def configs(self) -> list[dict[str, Any]]:
        """Every job of the sweep, in Hydra's basic-sweeper order."""
        return [
            {"lr": lr, "batch_size": bs, "seed": s}
            for lr, bs, s in itertools.product(self.lrs, self.batch_sizes, self.seeds)
        ]

    def job_overrides(self, c: dict[str, Any]) -> list[str]:
        return self.base + [f"optim.lr={_num(c['lr'])}", f"train.batch_size={c['batch_size']}", f"seed={c['seed']}"]


def _num(v: float) -> str:
    return repr(float(v))


def workloads(quick: bool) -> dict[str, Workload]:
    if quick:
        return {
            "spiral": Workload("spiral", "Playground spiral, FNN [8,8] tanh, SGD", "spiral", "fnn", "fnn", "sgd",
                               20, [0.01, 0.1], [10, 30], [0, 1], torch_subset=3, keras_subset=2),
            "mnist1d_cnn": Workload("mnist1d_cnn", "MNIST-1D, reference CNN, Adam", "mnist1d", "mnist1d_cnn", "cnn",
                                    "adam", 1, [0.01, 0.03], [100], [0, 1], torch_subset=2, keras_subset=2),
            "mnist1d_gru": Workload("mnist1d_gru", "MNIST-1D, reference bidirectional GRU, Adam", "mnist1d",
                                    "mnist1d_gru", "gru", "adam", 1, [0.01, 0.03], [100], [0], torch_subset=2,
                                    keras_subset=1, devices_variant=False),
        }
    return {
        "spiral": Workload("spiral", "Playground spiral, FNN [8,8] tanh, SGD", "spiral", "fnn", "fnn", "sgd",
                           50, [0.003, 0.01, 0.03, 0.1, 0.3], [10, 30], [0, 1, 2, 3], torch_subset=8, keras_subset=4,
                           scale_variant=True),
        "mnist1d_cnn": Workload("mnist1d_cnn", "MNIST-1D, reference CNN, Adam", "mnist1d", "mnist1d_cnn", "cnn",
                                "adam", 5, [0.003, 0.01, 0.03], [100], [0, 1, 2, 3], torch_subset=4, keras_subset=3),
        "mnist1d_gru": Workload("mnist1d_gru", "MNIST-1D, reference bidirectional GRU, Adam", "mnist1d", "mnist1d_gru",
                                "gru", "adam", 2, [0.01, 0.03], [100], [0, 1, 2], torch_subset=3, keras_subset=2,
                                devices_variant=False),
    }


# -- model facts: parameters and analytic FLOPs --------------------------------------------


def model_shape(w: Workload, data: dict[str, Any]) -> dict[str, Any]:
    """Parameter count and multiply-accumulates per example of the workload's model.

    FNN: sum of in x out per dense layer. CNN: per conv layer L_out x C_out x K x C_in, plus
    the head. GRU: per direction and step 3 x (in x units + units x units) (three gates), x T
    steps x 2 directions, plus the flatten readout's dense layer. Elementwise work (biases,
    activations, gate products) is not counted.
    """
    d_in = int(data["x_train"].shape[-1]) if w.kind == "fnn" else 1
    classes = int(data["num_classes"])
    if w.kind == "fnn":
        dims = [d_in, 8, 8, classes]
        macs = sum(a * b for a, b in zip(dims, dims[1:]))
        params = sum(a * b + b for a, b in zip(dims, dims[1:]))
        return {"params": params, "macs": macs, "desc": "dense 2-8-8-2"}
    length = int(data["x_train"].shape[1])
    if w.kind == "cnn":
        macs = params = 0
        c_in, n = 1, length
        for _ in range(3):  # 25 channels, kernel 3, stride 2, one zero each side
            n = (n + 2 - 3) // 2 + 1
            macs += n * 25 * 3 * c_in
            params += 3 * c_in * 25 + 25
            c_in = 25
        macs += n * 25 * classes
        params += n * 25 * classes + classes
        return {"params": params, "macs": macs, "desc": "conv 3x(25ch, k3, s2) + dense 125-10"}
    units = 6
    per_step = 3 * (1 * units + units * units)
    macs = 2 * length * per_step + 2 * length * units * classes
    params = 2 * (3 * (units + units * units) + 4 * units) + 2 * length * units * classes + classes
    return {"params": params, "macs": macs, "desc": "biGRU 6 units x 40 steps + dense 480-10"}


def flops_per_config(w: Workload, bs: int, data: dict[str, Any], macs: int) -> dict[str, float]:
    """Training FLOPs ~ 6 x MACs per example trained (forward + two backward products),
    evaluation 2 x MACs per example over every split, once before training and once per epoch."""
    n_train = int(data["x_train"].shape[0])
    spe = max(n_train // bs, 1)
    steps = w.epochs * spe
    n_eval = int(data["x_eval"].shape[0])
    train = 6.0 * macs * steps * bs
    evals = 2.0 * macs * n_eval * (w.epochs + 1)
    return {"steps": steps, "train": train, "eval": evals, "total": train + evals}


# -- data (from the harness itself) ---------------------------------------------------------


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from harness.config import register_configs

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides)


def export_data(w: Workload, path: Path) -> dict[str, Any]:
    """The workload's arrays from harness.data.load_dataset (same data config as the sweep),
    saved as .npz for the peers: training split, and every split stacked for evaluation."""
    import numpy as np

    from harness.data import load_dataset

    cfg = compose(w.base)
    ds = load_dataset(cfg.data)
    xs, ys = [ds.x_train, ds.x_val, ds.x_test], [ds.y_train, ds.y_val, ds.y_test]
    split = np.concatenate([np.full(len(x), i, np.int32) for i, x in enumerate(xs)])
    arrays = {
        "x_train": ds.x_train.astype(np.float32),
        "y_train": ds.y_train.astype(np.int64),
        "x_eval": np.concatenate(xs).astype(np.float32),
        "y_eval": np.concatenate(ys).astype(np.int64),
        "split": split,
    }
    np.savez(path, **arrays)
    return {**arrays, "num_classes": ds.num_classes, "sizes": ds.sizes,
            "init": str(cfg.model.get("init", "default")), "eps": float(cfg.optim.eps)}


# -- running things -------------------------------------------------------------------------


def harness_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "harness-train"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "harness.train"]


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


class Runner:
    """Runs subprocesses with their output in logs under one temporary folder."""

    def __init__(self, root: Path, data_cache: Path) -> None:
        self.root = root
        self.data_cache = data_cache  # generated data sets (mnist1d), shared; never compiled programs

    def fresh_cache(self, name: str) -> Path:
        """An empty persistent compile cache, with the generated data sets copied in."""
        cache = self.root / "cache" / name
        shutil.rmtree(cache, ignore_errors=True)  # cold means empty
        cache.mkdir(parents=True, exist_ok=True)
        for f in self.data_cache.glob("*.npz"):
            shutil.copy2(f, cache / f.name)
        return cache

    def run(self, name: str, cmd: list[str], env: dict[str, str] | None = None,
            timeout: float = VARIANT_TIMEOUT_S, cwd: Path | None = None) -> dict[str, Any]:
        log = self.root / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        full_env = {k: v for k, v in os.environ.items() if k not in ("HARNESS_CPU_DEVICES", "XLA_FLAGS")}
        full_env.update({"PYTHONUNBUFFERED": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true"})
        full_env.update(env or {})
        load_before = loadavg()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        with open(log, "w") as f:
            f.write("$ " + " ".join(cmd) + "\n")
            f.write("# env: " + " ".join(f"{k}={v}" for k, v in (env or {}).items()) + "\n")
            f.flush()
            try:
                rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=full_env, cwd=cwd or self.root,
                                    timeout=timeout).returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
        wall = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        # CPU seconds of the process and the descendants it waited for: less sensitive than wall
        # time to other people's processes on a shared machine.
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        return {"rc": rc, "ok": rc == 0, "wall_s": wall, "cpu_s": cpu, "log": str(log), "load_before": load_before,
                "load_after": loadavg()}


def read_results(sweep_dir: Path) -> list[dict[str, Any]]:
    out = []
    for p in sorted(sweep_dir.glob("**/result.json")):
        try:
            out.append(json.loads(p.read_text()))
        except (OSError, json.JSONDecodeError):
            pass
    return out


def summarize_results(results: list[dict[str, Any]], expected: int) -> dict[str, Any]:
    """Statuses, compile/run seconds (a group's members share one timing: counted once)."""
    statuses = [r.get("status") for r in results]
    groups = {}
    for r in results:
        t = r.get("timings") or {}
        if "compile_s" in t:
            groups[(t["compile_s"], t["run_s"], t.get("group_members"))] = t
    acc = [r["metrics"].get("test/accuracy") for r in results if r.get("metrics", {}).get("test/accuracy") is not None]
    return {
        "completed": sum(s in ("ok", "diverged") for s in statuses),
        "diverged": statuses.count("diverged"),
        "failed": sum(s not in ("ok", "diverged") for s in statuses) + max(expected - len(results), 0),
        "compile_s": sum(t["compile_s"] for t in groups.values()),
        "run_s": sum(t["run_s"] for t in groups.values()),
        "programs": len(groups),
        "devices": max([t.get("devices", 1) for t in groups.values()] or [1]),
        "test_accuracy": sum(acc) / len(acc) if acc else None,
    }


def launcher_line(log: str) -> dict[str, float]:
    """The fused launcher's closing line: its own compile / run / wall seconds."""
    try:
        text = Path(log).read_text(errors="replace")
    except OSError:
        return {}
    m = re.findall(r"(?:compose ([\d.]+)s validate ([\d.]+)s )?compile ([\d.]+)s run ([\d.]+)s "
                   r"(?:store ([\d.]+)s )?wall ([\d.]+)s", text)
    if not m:
        return {}
    names = ("compose", "validate", "compile", "run", "store", "wall")
    return {f"launcher_{n}_s": float(v) for n, v in zip(names, m[-1]) if v}


# -- the variants -----------------------------------------------------------------------------


def run_sweep(runner: Runner, w: Workload, name: str, launcher: list[str], cache: Path,
              env: dict[str, str] | None = None, extra: list[str] | None = None) -> dict[str, Any]:
    sweep_dir = runner.root / "runs" / name
    shutil.rmtree(sweep_dir, ignore_errors=True)  # a stale folder would be resumed, not measured
    cmd = harness_cmd() + ["-m"] + w.base + w.sweep_overrides + COMMON + launcher + (extra or []) + [
        f"hydra.sweep.dir={sweep_dir}"]
    res = runner.run(name, cmd, {"HARNESS_CACHE_DIR": str(cache), **(env or {})})
    n = len(w.configs())
    res.update(summarize_results(read_results(sweep_dir), n))
    res.update(launcher_line(res["log"]))
    res.update({"measured": n, "configs": n, "total_s": res["wall_s"]})
    if res["completed"] < n:
        res["ok"] = False
    return res


def run_loop(runner: Runner, w: Workload, name: str) -> dict[str, Any]:
    """One process per job: the first job of each structure compiles cold, later ones read the
    persistent cache. Runs ``1 + loop_extra`` jobs per structure; extrapolates the rest."""
    cache = runner.fresh_cache(name)
    configs = w.configs()
    by_bs: dict[int, list[dict[str, Any]]] = {}
    for c in configs:
        by_bs.setdefault(c["batch_size"], []).append(c)
    cold, warm, logs, results = [], [], [], []
    cpu = 0.0
    ok = True
    for bs, cs in by_bs.items():
        for i, c in enumerate(cs[: 1 + w.loop_extra]):
            run_dir = runner.root / "runs" / name / f"bs{bs}-{i}"
            shutil.rmtree(run_dir, ignore_errors=True)
            cmd = harness_cmd() + w.job_overrides(c) + COMMON + [f"hydra.run.dir={run_dir}"]
            r = runner.run(f"{name}-bs{bs}-{i}", cmd, {"HARNESS_CACHE_DIR": str(cache)})
            logs.append(r["log"])
            cpu += r["cpu_s"]
            rs = read_results(run_dir)
            ok = ok and r["ok"] and bool(rs) and rs[0].get("status") in ("ok", "diverged")
            results += rs
            (cold if i == 0 else warm).append(r["wall_s"])
    n = len(configs)
    per_warm = sum(warm) / len(warm) if warm else (sum(cold) / len(cold))
    total = sum(cold) + per_warm * (n - len(cold))
    res = {"ok": ok, "rc": 0 if ok else 1, "wall_s": sum(cold) + sum(warm), "total_s": total, "measured": len(cold) + len(warm),
           "configs": n, "extrapolated": True, "cold_s": cold, "warm_s": warm, "cpu_s": cpu,
           "log": logs[0] if logs else "",
           "logs": logs, "load_before": "", "load_after": loadavg()}
    res.update(summarize_results(results, len(cold) + len(warm)))
    return res


def run_peer(runner: Runner, w: Workload, name: str, peer: str, data_npz: Path, data: dict[str, Any],
             subset: list[dict[str, Any]], threads: int | None = None) -> dict[str, Any]:
    spec = {"peer": peer, "kind": w.kind, "optim": w.optim, "epochs": w.epochs, "data": str(data_npz),
            "configs": [subset[0]] + subset, "threads": threads, "init": data["init"], "eps": data["eps"]}
    spec_path = runner.root / "specs" / f"{name}.json"
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(json.dumps(spec))
    out_path = runner.root / "specs" / f"{name}.out.json"
    env = {"KERAS_BACKEND": "jax"} if peer == "keras" else {}
    res = runner.run(name, [sys.executable, str(Path(__file__).resolve()), "--worker", str(spec_path),
                            "--worker-out", str(out_path)], env)
    n = len(w.configs())
    try:
        out = json.loads(out_path.read_text())
    except (OSError, json.JSONDecodeError):
        res.update({"ok": False, "measured": 0, "configs": n})
        return res
    # times[0] is a warm-up: the first config again, run first. Its excess over that batch
    # size's steady time is one-time cost (lazy init, first trace) and counts as fixed.
    times = out["times"]
    warm_c, measured = subset[0], list(zip(subset, times[1:]))
    by_bs: dict[int, list[float]] = {}
    for c, t in measured:
        by_bs.setdefault(c["batch_size"], []).append(t)
    steady = {bs: sum(ts) / len(ts) for bs, ts in by_bs.items()}
    fixed = max(res["wall_s"] - sum(times[1:]) - steady[warm_c["batch_size"]], 0.0)
    configs = w.configs()
    total = fixed + sum(steady[c["batch_size"]] for c in configs)
    acc = [a for a in out["test_accuracy"][1:] if a is not None]
    res.update({"measured": len(measured), "configs": n, "extrapolated": len(measured) < n,
                "steady_s": sum(steady[c["batch_size"]] for c in configs) / n, "steady_by_bs": steady,
                "fixed_s": fixed, "times": times, "total_s": total, "threads": threads,
                "import_s": out.get("import_s"), "test_accuracy": sum(acc) / len(acc) if acc else None,
                "subset": subset})
    return res


def stratified(rng: random.Random, configs: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """A random subset of about ``k`` configs with as many of each batch size (at least one):
    per-config time depends on the batch size (steps), not on lr or seed."""
    by_bs: dict[int, list[dict[str, Any]]] = {}
    for c in configs:
        by_bs.setdefault(c["batch_size"], []).append(c)
    per = max(1, math.ceil(k / len(by_bs)))
    out = []
    for cs in by_bs.values():
        out += rng.sample(cs, min(per, len(cs)))
    return out


def combine_peaks(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The better of two peak measurements (the machine is shared: load lowers either)."""
    g = {n: max(x for x in (a.get("gflops", {}).get(n), b.get("gflops", {}).get(n)) if x is not None)
         for n in set(a.get("gflops", {})) | set(b.get("gflops", {}))}
    return {"gflops": g, "peak_gflops": max(g.values()) if g else None, "runs": [a.get("gflops"), b.get("gflops")]}


def run_peak(runner: Runner) -> dict[str, Any]:
    code = (
        "import json,time,jax,jax.numpy as jnp\n"
        "f=jax.jit(lambda a,b:a@b)\nout={}\n"
        "for n in (1024,2048):\n"
        "  a=jnp.ones((n,n),jnp.float32)*0.5; b=jnp.ones((n,n),jnp.float32)*0.25; f(a,b).block_until_ready()\n"
        "  best=1e9\n"
        "  for _ in range(15):\n"
        "    t=time.perf_counter(); f(a,b).block_until_ready(); best=min(best,time.perf_counter()-t)\n"
        "  out[n]=2*n**3/best/1e9\n"
        "print('PEAK '+json.dumps(out))\n"
    )
    res = runner.run("matmul-peak", [sys.executable, "-c", code])
    text = Path(res["log"]).read_text()
    m = re.search(r"PEAK (\{.*\})", text)
    res["gflops"] = json.loads(m.group(1)) if m else {}
    res["peak_gflops"] = max(res["gflops"].values()) if res["gflops"] else None
    return res


def run_startup(runner: Runner, w: Workload) -> dict[str, Any]:
    """What a harness process costs before any compute: compose and print one config."""
    res = runner.run("startup-cfg-job", harness_cmd() + w.base + COMMON + ["--cfg", "job"],
                     {"HARNESS_CACHE_DIR": str(runner.fresh_cache("startup"))})
    return res


# -- peers: PyTorch eager and Keras fit (run in a worker subprocess) -------------------------


def worker(spec_path: str, out_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    if spec["peer"] == "torch_func":  # the whole sweep as one vmapped ensemble
        _goals().torch_func_worker(spec, out_path)
        return
    t0 = time.perf_counter()
    if spec["peer"] == "torch":
        import torch  # noqa: F401
        if spec["threads"]:
            torch.set_num_threads(int(spec["threads"]))
        train = _torch_train
    else:
        os.environ.setdefault("KERAS_BACKEND", "jax")
        import keras  # noqa: F401
        train = _keras_train
    import numpy as np

    data = dict(np.load(spec["data"]))
    import_s = time.perf_counter() - t0
    times, accs = [], []
    for c in spec["configs"]:
        t = time.perf_counter()
        acc = train(spec, data, c)
        times.append(time.perf_counter() - t)
        accs.append(acc)
        print(f"{spec['peer']} {c} {times[-1]:.3f}s test acc {acc}", flush=True)
    Path(out_path).write_text(json.dumps({"times": times, "test_accuracy": accs, "import_s": import_s}))


def _torch_model(kind: str, init: str, classes: int, d_in: int, length: int):
    from torch import nn

    if kind == "fnn":
        model = nn.Sequential(nn.Linear(d_in, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, classes))
        if init == "playground":
            for m in model:
                if isinstance(m, nn.Linear):
                    nn.init.uniform_(m.weight, -0.5, 0.5)
                    nn.init.constant_(m.bias, 0.1)
        return model
    if kind == "cnn":
        n = length
        for _ in range(3):
            n = (n + 2 - 3) // 2 + 1
        return nn.Sequential(
            nn.Conv1d(1, 25, 3, 2, 1), nn.ReLU(), nn.Conv1d(25, 25, 3, 2, 1), nn.ReLU(),
            nn.Conv1d(25, 25, 3, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(25 * n, classes))

    class GRU(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(1, 6, batch_first=True, bidirectional=True)
            self.out = nn.Linear(length * 12, classes)

        def forward(self, x):
            h, _ = self.gru(x)
            return self.out(h.reshape(h.shape[0], -1))

    return GRU()


def _torch_train(spec: dict, data: dict, c: dict) -> float | None:
    """Our training loop in eager PyTorch: a fresh permutation per epoch, n // bs steps of bs
    examples, evaluation of every split (stacked) before training and after each epoch."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    torch.manual_seed(c["seed"])
    kind = spec["kind"]
    x_tr, y_tr = torch.from_numpy(data["x_train"]), torch.from_numpy(data["y_train"])
    x_ev, y_ev = torch.from_numpy(data["x_eval"]), torch.from_numpy(data["y_eval"])
    if kind == "cnn":  # [n, length, 1] -> [n, 1, length]
        x_tr, x_ev = x_tr.transpose(1, 2).contiguous(), x_ev.transpose(1, 2).contiguous()
    split = torch.from_numpy(data["split"])
    classes = int(max(data["y_train"].max(), data["y_eval"].max()) + 1)
    length = data["x_train"].shape[1]
    model = _torch_model(kind, spec["init"], classes, data["x_train"].shape[-1], length)
    if spec["optim"] == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=c["lr"])
    else:
        opt = torch.optim.Adam(model.parameters(), lr=c["lr"], eps=spec["eps"])
    n, bs = len(x_tr), c["batch_size"]
    spe = max(n // bs, 1)
    g = torch.Generator().manual_seed(c["seed"])
    masks = [(split == s) for s in range(3)]

    def evaluate():
        model.eval()
        with torch.no_grad():
            outs = [model(x_ev[i:i + 1024]) for i in range(0, len(x_ev), 1024)]
            out = torch.cat(outs)
            losses = F.cross_entropy(out, y_ev, reduction="none")
            hits = (out.argmax(1) == y_ev).float()
            vals = [(losses[m].mean().item(), hits[m].mean().item()) if m.any() else (None, None) for m in masks]
        model.train()
        return vals

    curves = [evaluate()]
    for _epoch in range(spec["epochs"]):
        perm = torch.randperm(n, generator=g)
        for s in range(spe):
            idx = perm[s * bs:(s + 1) * bs]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x_tr[idx]), y_tr[idx])
            loss.backward()
            opt.step()
        curves.append(evaluate())
    acc = curves[-1][2][1]
    return None if acc is None or not np.isfinite(acc) else float(acc)


def _keras_train(spec: dict, data: dict, c: dict) -> float | None:
    """``model.fit`` with the same model, optimizer, epochs and batch size; validation on every
    split (stacked) after each epoch, and one evaluation before training, as ours."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(c["seed"])
    kind = spec["kind"]
    classes = int(max(data["y_train"].max(), data["y_eval"].max()) + 1)
    x_tr, y_tr, x_ev, y_ev = data["x_train"], data["y_train"], data["x_eval"], data["y_eval"]
    L = keras.layers
    if kind == "fnn":
        if spec["init"] == "playground":
            ki, bi = keras.initializers.RandomUniform(-0.5, 0.5), keras.initializers.Constant(0.1)
        else:
            ki, bi = "glorot_uniform", "zeros"
        layers = [keras.Input(x_tr.shape[1:]), L.Dense(8, "tanh", kernel_initializer=ki, bias_initializer=bi),
                  L.Dense(8, "tanh", kernel_initializer=ki, bias_initializer=bi),
                  L.Dense(classes, kernel_initializer=ki, bias_initializer=bi)]
    elif kind == "cnn":
        layers = [keras.Input(x_tr.shape[1:])]
        for _ in range(3):
            layers += [L.ZeroPadding1D(1), L.Conv1D(25, 3, strides=2, activation="relu")]
        layers += [L.Flatten(), L.Dense(classes)]
    else:
        layers = [keras.Input(x_tr.shape[1:]), L.Bidirectional(L.GRU(6, return_sequences=True)), L.Flatten(),
                  L.Dense(classes)]
    model = keras.Sequential(layers)
    opt = (keras.optimizers.SGD(c["lr"]) if spec["optim"] == "sgd"
           else keras.optimizers.Adam(c["lr"], epsilon=spec["eps"]))
    model.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    bs = c["batch_size"]
    # Same steps per epoch as ours (n // bs, no partial batch): fit on a whole number of batches.
    keep = (len(x_tr) // bs) * bs
    model.evaluate(x_ev, y_ev, batch_size=1024, verbose=0)
    model.fit(x_tr[:keep], y_tr[:keep], batch_size=bs, epochs=spec["epochs"], validation_data=(x_ev, y_ev),
              validation_batch_size=1024, shuffle=True, verbose=0)
    test = data["split"] == 2
    pred = np.asarray(model.predict(x_ev[test], batch_size=1024, verbose=0)).argmax(1)
    return float((pred == y_ev[test]).mean())


# -- one workload -------------------------------------------------------------------------------


def bench_workload(w: Workload, runner: Runner, peak: dict[str, Any], seed: int, only: set[str] | None) -> dict[str, Any]:
    print(f"\n## {w.name}: {w.title}; {len(w.configs())} configs ({len(w.lrs)} lr x {len(w.batch_sizes)} batch "
          f"sizes x {len(w.seeds)} seeds), {w.epochs} epochs", flush=True)
    os.environ["HARNESS_CACHE_DIR"] = str(runner.data_cache)  # data generation for the export only
    data_npz = runner.root / f"data-{w.name}.npz"
    data = export_data(w, data_npz)
    shape = model_shape(w, data)
    configs = w.configs()
    flops = {bs: flops_per_config(w, bs, data, shape["macs"]) for bs in w.batch_sizes}
    sweep_flops = sum(flops[c["batch_size"]]["total"] for c in configs)
    sweep_steps = sum(flops[c["batch_size"]]["steps"] for c in configs)
    rng = random.Random(seed)
    variants: dict[str, dict[str, Any]] = {}

    def want(name: str) -> bool:
        return only is None or any(name.startswith(o) for o in only)

    def record(name: str, label: str, fn) -> None:
        if not want(name):
            return
        print(f"  {label} ...", end=" ", flush=True)
        try:
            res = fn()
        except Exception as exc:  # noqa: BLE001 - a failing variant is reported, not fatal
            res = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "configs": len(configs), "measured": 0}
        res["label"] = label
        variants[name] = res
        if res.get("ok"):
            print(f"{res['total_s']:.1f}s total, {res['total_s'] / res.get('configs', len(configs)):.3f}s per config"
                  + (" (extrapolated)" if res.get("extrapolated") else ""), flush=True)
        else:
            print(f"FAILED ({res.get('error') or 'rc=' + str(res.get('rc'))}; log {res.get('log')})", flush=True)

    start = run_startup(runner, w) if want("fused") else {}
    cold = runner.fresh_cache("fused-cold")
    record("fused_cold", "fused launcher, cold compile cache",
           lambda: run_sweep(runner, w, f"{w.name}-fused-cold", [], cold, extra=["hydra.launcher.progress=false"]))
    record("fused_warm", "fused launcher, warm compile cache",
           lambda: run_sweep(runner, w, f"{w.name}-fused-warm", [], cold, extra=["hydra.launcher.progress=false"]))
    record("fused_noprecompile", "fused launcher, cold, hydra.launcher.precompile=false",
           lambda: run_sweep(runner, w, f"{w.name}-fused-noprecompile", [], runner.fresh_cache(f"{w.name}-nopre"),
                             extra=["hydra.launcher.progress=false", "hydra.launcher.precompile=false"]))
    if w.devices_variant:
        record("fused_dev1", "fused launcher, HARNESS_CPU_DEVICES=1, cold",
               lambda: run_sweep(runner, w, f"{w.name}-fused-dev1", [], runner.fresh_cache(f"{w.name}-dev1"),
                                 env={"HARNESS_CPU_DEVICES": "1"}, extra=["hydra.launcher.progress=false"]))
    if w.scale_variant:
        big = w.scaled(4)
        record("fused_x4", f"fused launcher, cold, {len(big.configs())} configs (seeds x4)",
               lambda: run_sweep(runner, big, f"{w.name}-fused-x4", [], runner.fresh_cache(f"{w.name}-x4"),
                                 extra=["hydra.launcher.progress=false"]))
        if w.kind == "fnn":  # cheap enough to show how the per-config cost falls with sweep size
            bigger = w.scaled(16)
            record("fused_x16", f"fused launcher, cold, {len(bigger.configs())} configs (seeds x16)",
                   lambda: run_sweep(runner, bigger, f"{w.name}-fused-x16", [], runner.fresh_cache(f"{w.name}-x16"),
                                     extra=["hydra.launcher.progress=false"]))
    record("basic", "Hydra basic launcher (one process, jobs in turn), cold",
           lambda: run_sweep(runner, w, f"{w.name}-basic", ["hydra/launcher=basic"],
                             runner.fresh_cache(f"{w.name}-basic")))
    record("loop", "shell loop of single runs (one process per job), cold then warm cache",
           lambda: run_loop(runner, w, f"{w.name}-loop"))
    record("joblib", f"Hydra joblib launcher, n_jobs={CORES}, cold",
           lambda: run_sweep(runner, w, f"{w.name}-joblib", ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={CORES}"],
                             runner.fresh_cache(f"{w.name}-joblib")))
    torch_subset = stratified(rng, configs, w.torch_subset)
    for threads in (1, 2):
        record(f"torch_t{threads}", f"PyTorch eager, {threads} thread{'s' if threads > 1 else ''}",
               lambda threads=threads: run_peer(runner, w, f"{w.name}-torch-t{threads}", "torch", data_npz, data,
                                                torch_subset, threads))
    keras_subset = stratified(rng, configs, w.keras_subset)
    record("keras", "Keras 3 fit (JAX backend)",
           lambda: run_peer(runner, w, f"{w.name}-keras", "keras", data_npz, data, keras_subset))

    n = len(configs)
    for name, v in variants.items():
        if not v.get("ok"):
            continue
        nv = v.get("configs", n)  # the seeds x4 variant has more
        flops_v = sweep_flops * nv / n
        v["per_config_s"] = v["total_s"] / nv
        v["configs_per_s"] = nv / v["total_s"]
        compute_s = v.get("run_s") if name.startswith(("fused", "basic", "joblib")) else None
        if name.startswith("torch") or name == "keras":
            compute_s = v["steady_s"] * nv  # per-config time in the worker (keras: includes its compile)
        if compute_s:
            v["gflops_compute"] = flops_v / compute_s / 1e9
        v["gflops_wall"] = flops_v / v["total_s"] / 1e9
    x4, cold = variants.get("fused_x4", {}), variants.get("fused_cold", {})
    if x4.get("ok") and cold.get("ok"):
        x4["marginal_s"] = (x4["total_s"] - cold["total_s"]) / (x4["configs"] - cold["configs"])
    return {
        "workload": dataclasses.asdict(w), "configs": n, "shape": shape, "sweep_flops": sweep_flops,
        "sweep_steps": sweep_steps, "flops_per_config": {str(k): v for k, v in flops.items()},
        "sizes": data["sizes"], "variants": variants, "startup": start, "peak": peak,
        "torch_subset": torch_subset, "keras_subset": keras_subset,
        "commands": commands(w), "when": dt.datetime.now().isoformat(timespec="seconds"),
    }


def bench_wandb(w: Workload, runner: Runner, rounds: int = 2) -> dict[str, Any]:
    """The spiral sweep with logger=none, W&B per member and W&B per group (offline), on a warm
    compile cache so only the writer's work differs, interleaved ``rounds`` times (the machine
    is shared: the least of a variant's runs is its estimate); plots once, for scale."""
    print(f"\n## wandb: W&B (offline) overhead on the fused {w.name} sweep, {len(w.configs())} configs", flush=True)
    os.environ["HARNESS_CACHE_DIR"] = str(runner.data_cache)
    cache = runner.fresh_cache("wandb")
    common = ["hydra.launcher.progress=false"]
    kinds = {
        "warmup": ("warm-up (fills the compile cache; not counted)", ["logger=none", "output.plots=false"]),
        "none": ("logger=none", ["logger=none", "output.plots=false"]),
        "member": ("logger=wandb hydra.launcher.wandb=member", ["logger=wandb", "hydra.launcher.wandb=member",
                                                                "output.plots=false"]),
        "group": ("logger=wandb hydra.launcher.wandb=group", ["logger=wandb", "hydra.launcher.wandb=group",
                                                              "output.plots=false"]),
        "plots": ("logger=none output.plots=true (the default plots, for scale)", ["logger=none", "output.plots=true"]),
    }
    plan = ["warmup"] + ["none", "member", "group"] * rounds + ["plots"]
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    for i, key in enumerate(plan):
        label, over = kinds[key]
        print(f"  {label} ...", end=" ", flush=True)
        sweep_dir = runner.root / "runs" / f"wandb-{i}-{key}"
        shutil.rmtree(sweep_dir, ignore_errors=True)
        cmd = harness_cmd() + ["-m"] + w.base + w.sweep_overrides + over + common + [f"hydra.sweep.dir={sweep_dir}"]
        try:
            res = runner.run(f"wandb-{i}-{key}", cmd, {"HARNESS_CACHE_DIR": str(cache), "WANDB_MODE": "offline"})
            res.update(summarize_results(read_results(sweep_dir), len(w.configs())))
            res.update(launcher_line(res["log"]))
            res["wandb_runs"] = len(list(sweep_dir.glob("**/offline-run-*")))
            res["ok"] = res["ok"] and res["completed"] == len(w.configs())
        except Exception as exc:  # noqa: BLE001
            res = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        runs[key].append(res)
        print(f"{res['wall_s']:.1f}s wall, {res['cpu_s']:.1f}s CPU" if res.get("ok") else f"FAILED ({res.get('log')})",
              flush=True)
    variants = {}
    for key, rs in runs.items():
        ok = [x for x in rs if x.get("ok")]
        variants[key] = {
            "label": kinds[key][0], "ok": bool(ok) and len(ok) == len(rs), "runs": rs,
            "wall_s": min(x["wall_s"] for x in ok) if ok else None,
            "cpu_s": min(x["cpu_s"] for x in ok) if ok else None,
            "walls": [x["wall_s"] for x in ok], "cpus": [x["cpu_s"] for x in ok],
            "launcher_wall_s": min((x.get("launcher_wall_s") or 1e9) for x in ok) if ok else None,
            "wandb_runs": max((x.get("wandb_runs", 0) for x in ok), default=0),
            "log": rs[0].get("log") if rs else "",
        }
    return {"workload": dataclasses.asdict(w), "configs": len(w.configs()), "variants": variants, "rounds": rounds,
            "when": dt.datetime.now().isoformat(timespec="seconds"),
            "commands": [" ".join(["WANDB_MODE=offline", "harness-train", "-m"] + w.base + w.sweep_overrides
                                  + kinds[k][1] + common + ["hydra.sweep.dir=..."]) for k in ("none", "member", "group", "plots")]}


def commands(w: Workload) -> list[str]:
    sweep = " ".join(w.base + w.sweep_overrides + COMMON)
    one = " ".join(w.job_overrides(w.configs()[0]) + COMMON)
    return [
        f"HARNESS_CACHE_DIR=$(mktemp -d) harness-train -m {sweep} hydra.sweep.dir=... hydra.launcher.progress=false",
        f"HARNESS_CPU_DEVICES=1 HARNESS_CACHE_DIR=$(mktemp -d) harness-train -m {sweep} hydra.sweep.dir=...",
        f"HARNESS_CACHE_DIR=$(mktemp -d) harness-train -m {sweep} hydra/launcher=basic hydra.sweep.dir=...",
        f"for each job: harness-train {one} hydra.run.dir=...   # one process per job, shared cache",
        f"HARNESS_CACHE_DIR=$(mktemp -d) harness-train -m {sweep} hydra/launcher=joblib hydra.launcher.n_jobs={CORES} "
        "hydra.sweep.dir=...",
    ]


# -- profile: the measurements behind "what limits it" (run in worker subprocesses) --------------


PROFILE_PROGRAMS = [
    ("spiral FNN, batch 10, 50 epochs", ["data=spiral", "model=fnn", "optim=sgd", "train.epochs=50",
                                          "train.batch_size=10"], [1, 4, 20, 80]),
    ("MNIST-1D CNN, batch 100, 5 epochs", ["data=mnist1d", "model=mnist1d_cnn", "optim=adam", "train.epochs=5",
                                            "train.batch_size=100"], [1, 12]),
    ("MNIST-1D GRU, batch 100, 2 epochs", ["data=mnist1d", "model=mnist1d_gru", "optim=adam", "train.epochs=2",
                                            "train.batch_size=100"], [1, 6]),
]


def profile_members(overrides: list[str], counts: list[int]) -> list[dict[str, Any]]:
    """Trace, compile and run the engine's program (jit(vmap(train)), data shared) for several
    member counts, without the persistent cache; members differ in seed (init and data order)."""
    from harness.runtime import setup_jax

    setup_jax(compile_cache=False)
    import jax
    import jax.numpy as jnp
    import numpy as np

    from harness.data.cache import dataset_for
    from harness.data.playground import boundary_grid
    from harness.train.hparams import stack_hparams
    from harness.train.loop import make_train, prepare_data

    cfg = compose(overrides)
    ds = dataset_for(cfg)
    out = []
    for n in counts:
        train, budget = make_train(cfg, ds)
        data = {k: jnp.asarray(v) for k, v in prepare_data(ds, boundary_grid(ds, 50)).items()}
        hp = {k: np.repeat(v, n, 0) for k, v in stack_hparams([cfg]).items()}
        hp["seed"] = hp["order_seed"] = np.arange(n, dtype=np.int32)
        hp = {k: jnp.asarray(v) for k, v in hp.items()}
        keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(n))
        f = jax.jit(jax.vmap(train, in_axes=(0, 0, None)))
        t0 = time.perf_counter()
        lowered = f.lower(hp, keys, data)
        t1 = time.perf_counter()
        compiled = lowered.compile()
        t2 = time.perf_counter()
        runs = []
        for _ in range(2):
            t = time.perf_counter()
            jax.block_until_ready(compiled(hp, keys, data))
            runs.append(time.perf_counter() - t)
        out.append({"members": n, "trace_s": t1 - t0, "compile_s": t2 - t1, "run_s": min(runs),
                    "hlo_lines": lowered.as_text().count("\n"), "steps": budget.total_steps,
                    "member_steps_per_s": n * budget.total_steps / min(runs)})
        print(json.dumps(out[-1]), flush=True)
    return out


def profile_conv() -> list[dict[str, Any]]:
    """The CNN's training step (batch 100, MNIST-1D shapes) with Flax's nn.Conv and with the
    same convolution written as patches @ kernel (im2col): one jitted step, 100 steps in a
    lax.scan (how the engine runs them), and 12 vmapped members x 100 scanned steps."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import linen as nn

    B, L, M = 100, 40, 12

    class Im2colConv(nn.Module):
        features: int

        @nn.compact
        def __call__(self, x):  # kernel 3, stride 2, one zero each side
            k = self.param("kernel", nn.initializers.lecun_normal(), (3 * x.shape[-1], self.features))
            b = self.param("bias", nn.initializers.zeros_init(), (self.features,))
            xp = jnp.pad(x, ((0, 0), (1, 1), (0, 0)))
            n = (x.shape[1] + 2 - 3) // 2 + 1
            patches = jnp.concatenate([xp[:, i:i + 2 * n - 1:2] for i in range(3)], axis=-1)
            return patches @ k + b

    class CNN(nn.Module):
        im2col: bool = False

        @nn.compact
        def __call__(self, x):
            for _ in range(3):
                x = nn.relu(Im2colConv(25)(x) if self.im2col else nn.Conv(25, (3,), (2,), padding=1)(x))
            return nn.Dense(10)(x.reshape(x.shape[0], -1))

    x = jnp.asarray(np.random.default_rng(0).normal(size=(B, L, 1)).astype(np.float32))
    y = jnp.asarray(np.random.default_rng(1).integers(0, 10, B))

    def bench(f, *a, n=10):
        f = jax.jit(f)
        t = time.perf_counter()
        jax.block_until_ready(f(*a))
        first = time.perf_counter() - t
        best = 1e9
        for _ in range(n):
            t = time.perf_counter()
            jax.block_until_ready(f(*a))
            best = min(best, time.perf_counter() - t)
        return first, best

    out = []
    for im2col in (False, True):
        m = CNN(im2col)
        p0 = m.init(jax.random.PRNGKey(0), x)
        g = jax.grad(lambda p, x, y: -jnp.mean(jax.nn.log_softmax(m.apply(p, x))[jnp.arange(B), y]))

        def sgd_step(p, _):
            return jax.tree_util.tree_map(lambda a, b: a - 0.01 * b, p, g(p, x, y)), None

        ps = jax.vmap(lambda k: m.init(k, x))(jax.random.split(jax.random.PRNGKey(0), M))
        tag = "patches @ kernel (im2col)" if im2col else "flax nn.Conv"
        for what, f, arg, steps, n in (
            ("one jitted step", lambda p: sgd_step(p, None)[0], p0, 1, 30),
            ("100 steps in lax.scan", lambda p: jax.lax.scan(sgd_step, p, None, length=100)[0], p0, 100, 5),
            (f"{M} vmapped members x 100 scanned steps",
             jax.vmap(lambda p: jax.lax.scan(sgd_step, p, None, length=100)[0]), ps, 100 * M, 2),
        ):
            first, best = bench(f, arg, n=n)
            out.append({"conv": tag, "what": what, "compile_and_first_s": first,
                        "ms_per_member_step": 1e3 * best / steps})
            print(json.dumps(out[-1]), flush=True)
    return out


def profile_compose() -> list[dict[str, Any]]:
    """Composing one job with Hydra (what the sweeper and the launcher each do per job) against
    copying a composed config and setting the swept values."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from harness.config import register_configs

    register_configs()
    GlobalHydra.instance().clear()
    base = ["data=spiral", "model=fnn", "optim=sgd", "train.epochs=50"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        hydra_compose("config", overrides=base)
        t = time.perf_counter()
        for i in range(20):
            hydra_compose("config", overrides=base + [f"optim.lr={0.01 * (i + 1)}", "train.batch_size=10", f"seed={i}"],
                          return_hydra_config=True)
        per_compose = (time.perf_counter() - t) / 20
        cfg = hydra_compose("config", overrides=base)
        t = time.perf_counter()
        for i in range(200):
            c = cfg.copy()
            OmegaConf.update(c, "optim.lr", 0.01 * (i + 1))
            OmegaConf.update(c, "seed", i)
        per_update = (time.perf_counter() - t) / 200
    return [{"what": "Hydra compose of one job (with its hydra config)", "ms": 1e3 * per_compose},
            {"what": "copy a composed config + set lr and seed", "ms": 1e3 * per_update}]


def bench_profile(runner: Runner) -> dict[str, Any]:
    print("\n## profile: compile and run vs members, convolution in loops, composing", flush=True)
    parts: dict[str, Any] = {}
    jobs = [(f"members-{i}", ["members", str(i)]) for i in range(len(PROFILE_PROGRAMS))]
    jobs += [("members-0-llvm-expensive", ["members", "0", "llvm"]), ("conv", ["conv"]), ("compose", ["compose"])]
    for name, argv in jobs:
        print(f"  {name} ...", end=" ", flush=True)
        out_path = runner.root / "specs" / f"profile-{name}.json"
        out_path.parent.mkdir(parents=True, exist_ok=True)
        env = {"HARNESS_CACHE_DIR": str(runner.fresh_cache(f"profile-{name}")), "HARNESS_COMPILE_CACHE": "0"}
        if argv[-1] == "llvm":  # the runtime's XLA flag turned off (it keeps a user's own setting)
            env["XLA_FLAGS"] = "--xla_llvm_disable_expensive_passes=false"
        res = runner.run(f"profile-{name}", [sys.executable, str(Path(__file__).resolve()), "--worker-profile",
                                             ",".join(argv), "--worker-out", str(out_path)], env)
        try:
            res["rows"] = json.loads(out_path.read_text())
        except (OSError, json.JSONDecodeError):
            res["ok"] = False
        parts[name] = res
        print(f"{res['wall_s']:.0f}s" if res.get("ok") else f"FAILED ({res['log']})", flush=True)
    return {"parts": parts, "when": dt.datetime.now().isoformat(timespec="seconds"),
            "variants": {k: {"ok": v.get("ok"), "log": v.get("log")} for k, v in parts.items()}}


def worker_profile(what: str, out_path: str) -> None:
    argv = what.split(",")
    if argv[0] == "members":
        label, overrides, counts = PROFILE_PROGRAMS[int(argv[1])]
        counts = counts[-2:] if len(argv) > 2 else counts  # the flag check: the larger counts only
        rows = [{"program": label, "xla_flags": os.environ.get("XLA_FLAGS", "(runtime default)"), **r}
                for r in profile_members(overrides, counts)]
    elif argv[0] == "conv":
        rows = profile_conv()
    else:
        rows = profile_compose()
    Path(out_path).write_text(json.dumps(rows))


def profile_table(r: dict[str, Any]) -> str:
    parts = r["parts"]
    lines = [f"Measured {r['when']} (no persistent cache; every number is one process's best of a few runs).", "",
             "**Compile and run of the engine's program against member count** (`jit(vmap(train))` as `run_group` "
             "builds it; members differ in seed and data order):", "",
             "| program | XLA flags | members | trace s | compile s | run s | member-steps/s | HLO lines |",
             "|---|---|---|---|---|---|---|---|"]
    for name, part in parts.items():
        if not name.startswith("members"):
            continue
        if not part.get("ok"):
            lines.append(f"| {name} | FAILED | | | | | | see `{part.get('log')}` |")
            continue
        for x in part["rows"]:
            lines.append(f"| {x['program']} | {x['xla_flags']} | {x['members']} | {x['trace_s']:.1f} | "
                         f"{x['compile_s']:.1f} | {x['run_s']:.3f} | {x['member_steps_per_s']:,.0f} | {x['hlo_lines']} |")
    conv = parts.get("conv", {})
    lines += ["", "**The CNN's training step (batch 100) inside and outside loops**, Flax `nn.Conv` against the "
              "same convolution as `patches @ kernel`:", "",
              "| convolution | what | compile + first call s | ms per member-step |", "|---|---|---|---|"]
    for x in conv.get("rows", []):
        lines.append(f"| {x['conv']} | {x['what']} | {x['compile_and_first_s']:.2f} | {x['ms_per_member_step']:.2f} |")
    comp = parts.get("compose", {})
    lines += ["", "**Composing configs**: what Hydra costs per composed job (the basic sweeper composes every job "
              "once to check it and the basic launcher once more; the fused launcher composes one job per structure "
              "and copies and updates that for the others):", "", "| what | ms per job |", "|---|---|"]
    for x in comp.get("rows", []):
        lines.append(f"| {x['what']} | {x['ms']:.1f} |")
    return "\n".join(lines) + "\n"


# -- reporting ------------------------------------------------------------------------------------


def _f(x: Any, fmt: str = "{:.2f}") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return fmt.format(x)


def best_torch(variants: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    ok = [(k, v) for k, v in variants.items() if k.startswith("torch") and v.get("ok")]
    if not ok:
        return None, None
    return min(ok, key=lambda kv: kv[1]["per_config_s"])


def workload_table(r: dict[str, Any]) -> str:
    v = r["variants"]
    peak = (r.get("peak") or {}).get("peak_gflops")
    fused = v.get("fused_cold") if (v.get("fused_cold") or {}).get("ok") else None
    warm = v.get("fused_warm") if (v.get("fused_warm") or {}).get("ok") else None
    w = r["workload"]
    shape = r["shape"]
    lines = [
        f"**{w['title']}** — {r['configs']} configs ({len(w['lrs'])} lr × batch size {w['batch_sizes']} × "
        f"{len(w['seeds'])} seeds), {w['epochs']} epochs, data {r['sizes']}; model {shape['desc']}, "
        f"{shape['params']} parameters, {shape['macs']} MACs/example; sweep {r['sweep_steps']} optimizer steps, "
        f"{r['sweep_flops'] / 1e9:.2f} GFLOP (analytic). Measured {r['when']}.",
        "",
        "| variant | configs run | wall s (what ran) | CPU s (what ran) | per config s | configs/s | compile s | "
        "run s | GFLOP/s compute | % peak | GFLOP/s wall | fused cold is × faster | fused warm is × faster | "
        "test acc |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, x in v.items():
        if not x.get("ok"):
            lines.append(f"| {x.get('label', name)} | FAILED | | | | | | | | | | | | see `{x.get('log', '')}` |")
            continue
        meas = f"{x['measured']}/{x['configs']}" + (" (extrap.)" if x.get("extrapolated") else "")
        gc = x.get("gflops_compute")
        pct = _f(100 * gc / peak, "{:.2f}%") if gc and peak else "–"
        speed = _f(x["per_config_s"] / fused["per_config_s"], "{:.2f}×") if fused and not name.startswith("fused") else ""
        speed_w = _f(x["per_config_s"] / warm["per_config_s"], "{:.2f}×") if warm and not name.startswith("fused") else ""
        comp = x.get("compile_s") if "compile_s" in x else None
        run = x.get("run_s") if "run_s" in x else (x.get("steady_s") and x["steady_s"] * x["configs"])
        label = x["label"]
        if name.startswith("torch") or name == "keras":
            label += f" (fixed {x['fixed_s']:.1f}s + {x['steady_s']:.3f}s/config)"
        if name == "loop":
            label += f" (cold {', '.join(f'{t:.1f}' for t in x['cold_s'])}s; warm {', '.join(f'{t:.1f}' for t in x['warm_s'])}s)"
        lines.append(
            f"| {label} | {meas} | {x['wall_s']:.1f} | {_f(x.get('cpu_s'), '{:.1f}')} | {x['per_config_s']:.3f} | "
            f"{x['configs_per_s']:.2f} | "
            f"{_f(comp, '{:.1f}')} | {_f(run, '{:.2f}')} | {_f(gc)} | {pct} | {_f(x.get('gflops_wall'), '{:.3f}')} | "
            f"{speed} | {speed_w} | {_f(x.get('test_accuracy'), '{:.3f}')} |")
    lines += ["", "Columns: *CPU s* = user + system CPU seconds of the process(es) that ran, descendants "
              "included (less sensitive to other people's load than wall time); *per config s* = whole-sweep time (extrapolated where only a subset ran) / configs, "
              "everything included (process start-up, imports, composing, compiling, training, storing); *compile s* "
              "and *run s* are the harness's own timings from result.json (a group's members share them; the shell "
              "loop's cover only the jobs it ran; for the peers *run s* is the steady per-config time × configs, "
              "Keras's including its per-model trace and compile); *GFLOP/s compute* = analytic sweep FLOPs / run s; "
              "*GFLOP/s wall* = sweep FLOPs / whole-sweep time; *× faster* = that row's per-config time / the "
              "fused launcher's.", ""]
    notes = []
    if fused:
        lw = fused.get("launcher_wall_s")
        if lw:
            notes.append(
                f"fused cold: {fused['wall_s']:.1f}s in all = {fused['wall_s'] - lw:.1f}s before the launcher's clock "
                f"(interpreter, imports, composing the jobs' configs, validation) "
                f"+ {lw:.1f}s in the launcher, of which compile {fused['launcher_compile_s']:.1f}s and run "
                f"{fused['launcher_run_s']:.1f}s ({fused['programs']} program(s)); "
                f"{r['sweep_steps'] / max(fused['run_s'], 1e-9):,.0f} member-steps/s in the run phase")
    x4 = v.get("fused_x4") or {}
    if x4.get("marginal_s") is not None:
        notes.append(f"marginal cost of one more config in a fused sweep (seeds x4 minus the {r['configs']}-config "
                     f"sweep, both cold): {x4['marginal_s']:.3f}s per config")
    st = r.get("startup") or {}
    if st.get("ok"):
        notes.append(f"one bare `harness-train --cfg job` (start-up + compose one config, no compute): {st['wall_s']:.1f}s")
    if notes:
        lines += ["- " + n for n in notes] + [""]
    return "\n".join(lines)


def wandb_table(r: dict[str, Any]) -> str:
    v = r["variants"]
    none = v.get("none") or {}
    lines = [f"Fused spiral sweep, {r['configs']} configs, warm compile cache, WANDB_MODE=offline; logger=none, "
             f"member and group interleaved {r.get('rounds', 1)} times, each variant's least time counts. "
             f"Measured {r['when']}.", "",
             "| variant | wall s (least) | all walls s | CPU s (least) | launcher wall s | W&B runs written | "
             "overhead, wall | overhead, CPU |", "|---|---|---|---|---|---|---|---|"]
    for k, x in v.items():
        if k == "warmup":
            continue
        if not x.get("ok"):
            lines.append(f"| {x['label']} | FAILED | | | | | | see `{x.get('log', '')}` |")
            continue
        ow = _f(100 * (x["wall_s"] / none["wall_s"] - 1), "{:+.0f}%") if none.get("ok") and k != "none" else ""
        oc = _f(100 * (x["cpu_s"] / none["cpu_s"] - 1), "{:+.0f}%") if none.get("ok") and k != "none" else ""
        lines.append(f"| {x['label']} | {x['wall_s']:.1f} | {', '.join(f'{t:.1f}' for t in x['walls'])} | "
                     f"{x['cpu_s']:.1f} | {_f(x.get('launcher_wall_s'), '{:.1f}')} | {x.get('wandb_runs', 0)} | "
                     f"{ow} | {oc} |")
    return "\n".join(lines) + "\n"


def _goals():
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_goals

    return bench_goals


def targets(all_results: dict[str, dict[str, Any]], absent: str = "not measured in this run") -> str:
    """One row per goal of the "pay for training" issue (scripts/bench_targets.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_targets

    return bench_targets.targets(all_results, absent)


def loads_from_body(body: str) -> dict[str, str]:
    """The load averages a block's header states (blocks written before results kept them)."""
    m = re.search(r"load average at start ([\d. ]+?), at end ([\d. ]+?);", body)
    out = {"load_start": m.group(1), "load_end": m.group(2)} if m else {}
    c = re.search(r"harness code (\w+)", body)
    if c:
        out["code"] = c.group(1)
    return out


def code_state() -> str:
    """The harness code measured: the commit, and a digest of the files under harness/,
    hydra_plugins/ and conf/ as they are on disk (other commits do not change it)."""
    import hashlib

    h = hashlib.sha256()
    for d in ("harness", "hydra_plugins", "conf"):
        for f in sorted((ROOT / d).rglob("*")):
            if f.is_file() and f.suffix in (".py", ".yaml", ".yml"):
                h.update(str(f.relative_to(ROOT)).encode())
                h.update(f.read_bytes())
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        head = ""
    return f"{head or 'unknown'} (code digest {h.hexdigest()[:10]})"


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"nproc": CORES, "python": platform.python_version(), "platform": platform.platform()}
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import reference_results

    info.update(reference_results.cpu())  # the CPU model and the vector extensions XLA compiles for
    try:
        mem = Path("/proc/meminfo").read_text()
        info["mem_gib"] = round(int(re.search(r"MemTotal:\s*(\d+)", mem).group(1)) / 2**20, 1)
    except (OSError, AttributeError):
        pass
    info["uptime"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    versions = {}
    for pkg in ("jax", "jaxlib", "flax", "optax", "hydra-core", "hydra-joblib-launcher", "wandb", "torch", "keras", "numpy"):
        try:
            from importlib.metadata import version

            versions[pkg] = version(pkg)
        except Exception:  # noqa: BLE001
            versions[pkg] = "not installed"
    info["versions"] = versions
    return info


def previous_peaks(doc: Path) -> dict[str, Any]:
    """Per-workload peaks recorded in the doc's machine block (kept across runs)."""
    try:
        m = re.search(r"<!-- bench:machine:begin -->.*?<!-- data: (.*?) -->", doc.read_text(), re.S)
        return dict(json.loads(m.group(1).replace("- -", "--")).get("peaks") or {}) if m else {}
    except (OSError, json.JSONDecodeError):
        return {}


def machine_md(m: dict[str, Any], peak: dict[str, Any] | None, peaks: dict[str, Any] | None = None) -> str:
    vs = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    p = (peak or {}).get("gflops") or {}
    peak_s = ", ".join(f"{n}×{n}: {g:.0f} GFLOP/s" for n, g in p.items()) or "not measured"
    per = "; ".join(f"{w}: {max(x['gflops'].values()):.0f} GFLOP/s ({x.get('when')})"
                    for w, x in (peaks or {}).items() if x.get("gflops"))
    return (f"- {m['nproc']} CPU cores ({m.get('cpu')}; {m.get('simd', '')}), {m.get('mem_gib')} GiB memory, "
            f"Python {m['python']}, {m['platform']}\n- versions: {vs}\n"
            f"- f32 matmul peak (jitted, best of 15 at the start and 15 at the end of a workload; each table "
            f"uses its own): last measured {peak_s}" + (f"; by workload: {per}" if per else "") +
            f"\n- `uptime` at the start of the last run: {m['uptime']}\n")


def write_doc(doc: Path, block: str, body: str, data: dict[str, Any]) -> None:
    """Replace (or append) the block ``block`` of the doc, and rebuild the targets block from
    the data of every block."""
    text = doc.read_text() if doc.exists() else (
        "# Benchmarks\n\nGenerated blocks (between `<!-- bench:... -->` markers) are rewritten by "
        "`python scripts/bench.py`; the text around them is not.\n\n"
        "<!-- bench:targets:begin -->\n<!-- bench:targets:end -->\n")
    begin, end = f"<!-- bench:{block}:begin -->", f"<!-- bench:{block}:end -->"
    payload = json.dumps(data, default=str).replace("--", "- -")
    new = f"{begin}\n{body.rstrip()}\n\n<!-- data: {payload} -->\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + new + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + f"\n\n## Results: {block}\n\n" + new + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(rebuild_targets(text))


def rebuild_targets(text: str) -> str:
    """The doc's text with its targets block rebuilt from the data of every block in it."""
    everything = {}
    for m in re.finditer(r"<!-- bench:(\w+):begin -->(.*?)<!-- data: (.*?) -->\n<!-- bench:\1:end -->", text, re.S):
        try:
            everything[m.group(1)] = {**loads_from_body(m.group(2)), **json.loads(m.group(3).replace("- -", "--"))}
        except json.JSONDecodeError:
            pass
    tb, te = "<!-- bench:targets:begin -->", "<!-- bench:targets:end -->"
    if tb in text and te in text:
        text = text[: text.index(tb)] + tb + "\n" + targets(everything, "not measured yet (`--workload {wl}`)") + te + text[text.index(te) + len(te):]
    return text


# -- main -------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", default="spiral",
                    choices=WORKLOADS + ["goals", "all"])
    ap.add_argument("--quick", action="store_true", help="a small version of each sweep (a few minutes)")
    ap.add_argument("--only", default=None, help="comma-separated variant name prefixes (fused,basic,loop,joblib,"
                                                  "torch,keras); default all")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random peer subsets")
    ap.add_argument("--doc", default=None, help=f"markdown file to update (default {DOC.relative_to(ROOT)} for full "
                                                "runs, none for --quick); 'none' to skip")
    ap.add_argument("--keep", default=None, help="folder for logs and runs (default: a new temporary folder)")
    ap.add_argument("--targets", action="store_true", help="run nothing: rebuild the doc's targets block from the "
                                                           "blocks it holds, and print it")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    ap.add_argument("--worker-profile", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.worker_out)
        return 0
    if args.worker_profile:
        worker_profile(args.worker_profile, args.worker_out)
        return 0

    if args.targets:
        doc = Path(args.doc) if args.doc and args.doc != "none" else DOC
        text = rebuild_targets(doc.read_text())
        doc.write_text(text)
        tb = "<!-- bench:targets:begin -->"
        print(text[text.index(tb) + len(tb):text.index("<!-- bench:targets:end -->")].strip())
        return 0
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="harness-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"logs and runs: {root}", flush=True)
    data_cache = root / "data-cache"
    data_cache.mkdir(exist_ok=True)
    runner = Runner(root, data_cache)
    mach = machine()
    print(f"machine: {mach['nproc']} cores, {mach.get('cpu')}, {mach.get('mem_gib')} GiB; {mach['uptime']}", flush=True)
    only = set(args.only.split(",")) if args.only else None
    wls = workloads(args.quick)
    names = ALL if args.workload == "all" else GOALS if args.workload == "goals" else [args.workload]
    doc = None if args.doc == "none" else Path(args.doc) if args.doc else (None if args.quick else DOC)
    status = 0
    this_run: dict[str, dict[str, Any]] = {}
    for name in names:
        t0 = time.perf_counter()
        code_before = code_state()
        load_start = loadavg()
        peak: dict[str, Any] = {}
        if name in _goals().GOAL_WORKLOADS:
            r = _goals().run(name, runner, args.quick, args.seed)
            body = _goals().table(name, r)
        elif name == "wandb":
            r = bench_wandb(wls["spiral"], runner)
            body = wandb_table(r)
        elif name == "profile":
            r = bench_profile(runner)
            body = profile_table(r)
        elif name == "compile":  # the engine's program against a hand-written jit(vmap(train))
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            import bench_compile

            print("\n## compile: the engine's program vs a hand-written jit(vmap(train))", flush=True)
            rows = bench_compile.run(1 if args.quick else 2)
            r = {"rows": rows, "when": dt.datetime.now().isoformat(timespec="seconds"),
                 "variants": {row["program"]: {"ok": True} for row in rows}}
            body = (f"{bench_compile.MEMBERS} members, cold (no persistent cache), best of {1 if args.quick else 2} "
                    "processes per side (`python scripts/bench_compile.py`):\n\n" + bench_compile.table(rows) + "\n")
        else:
            peak = run_peak(runner)
            print(f"f32 matmul peak (start): {peak.get('gflops')} GFLOP/s", flush=True)
            r = bench_workload(wls[name], runner, peak, args.seed, only)
            peak = combine_peaks(peak, run_peak(runner))
            print(f"f32 matmul peak (best of start and end): {peak.get('gflops')} GFLOP/s", flush=True)
            r["peak"] = peak
            body = workload_table(r)
        r["quick"] = args.quick
        r["machine"] = mach
        r["script_s"] = time.perf_counter() - t0
        r["load_end"] = loadavg()
        r["load_start"] = load_start
        r["code"] = code_before
        code_after = code_state()
        same = code_after.split("(")[-1] == code_before.split("(")[-1]
        code = (f"harness code {code_before}" if same else
                f"**the harness code changed during this run** ({code_before} at the start, {code_after} at the end)")
        header = (f"Machine: {mach['nproc']} cores, {mach.get('cpu')}, {mach.get('mem_gib')} GiB; load average at "
                  f"start {load_start}, "
                  f"at end {r['load_end']}; {code}; this workload took {r['script_s']:.0f}s of the script"
                  f"{' (--quick)' if args.quick else ''}.\n\n")
        body = header + body
        if "commands" in r:
            body += "\nCommands (each timed from process start to exit):\n\n```bash\n" + "\n".join(r["commands"]) + "\n```\n"
        print("\n" + body, flush=True)
        if any(not v.get("ok") for v in r["variants"].values()):
            status = 1
        (root / f"result-{name}.json").write_text(json.dumps(r, indent=1, default=str))
        this_run[name] = r
        if doc is not None:
            write_doc(doc, name, body, r)
            if peak:  # a wandb-only run measures no peak: keep the block as it is
                peaks = previous_peaks(doc)
                peaks[name] = {"gflops": peak.get("gflops"), "when": r.get("when")}
                write_doc(doc, "machine", machine_md(mach, peak, peaks), {"machine": mach, "peak": peak, "peaks": peaks})
    print("\n## Goals of the \"pay for training\" issue, this run" + (" (--quick: sizes are not the goals')"
                                                                   if args.quick else "") + "\n")
    print(targets(this_run), flush=True)
    if doc is not None:
        print(f"updated {doc}")
    print(f"logs and runs kept in {root}")
    return status


if __name__ == "__main__":
    sys.exit(main())
