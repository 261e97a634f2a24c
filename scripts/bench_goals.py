"""The workloads that measure the goals of the "pay for training" issue (#12); bench.py runs them.

    python scripts/bench.py --workload sweep256   # the issue's 256-config spiral sweep vs PyTorch eager,
                                                  # torch.func vmap ensembling and Keras fit
    python scripts/bench.py --workload sweep4096  # the same sweep at 4096 configs vs PyTorch eager
    python scripts/bench.py --workload basic32    # fused vs Hydra's basic launcher, 32 configs, defaults
    python scripts/bench.py --workload extras     # the default 256 sweep vs no W&B / no plots
    python scripts/bench.py --workload mainjob    # harness-claim claim=small_batch, cold, per run trained
    python scripts/bench.py --workload suite      # the default test suite's wall time

The sweep is the issue's: ``harness-train -m data=spiral model.hidden=[8,8] optim=sgd
train.batch_size=10 train.epochs=100`` over 8 learning rates x 32 seeds (x 512 seeds for 4096
configs), every harness sweep cold (a fresh, empty HARNESS_CACHE_DIR). ``--quick`` runs each at
a size of a few minutes (its rows say so).

The ``torch.func`` peer trains every member of the sweep at once as one ensemble
(``torch.func.stack_module_state`` + ``functional_call`` + ``vmap(grad(loss))``): each member has
its own initialisation (the eager peer's, from its seed), its own data order, its own learning
rate (plain SGD per member), the same batch size and epochs, and every split evaluated before
training and after each epoch, as the other peers do.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve().parent / "bench.py"

# The sweep (docs/benchmarks.md, "Changes made ...", item 6, used these learning rates).
LRS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0]
SWEEP_BASE = ["data=spiral", "model.hidden=[8,8]", "optim=sgd", "train.batch_size=10", "train.epochs=100"]
NO_EXTRAS = ["logger=none", "output.plots=false"]
GOAL_WORKLOADS = ["sweep256", "sweep4096", "basic32", "extras", "mainjob", "suite"]


def _bench():
    """bench.py's helpers (Runner, run_peer, ...), imported late: bench.py imports this module."""
    sys.path.insert(0, str(SCRIPT.parent))
    main = sys.modules.get("__main__")
    if main is not None and Path(getattr(main, "__file__", "") or "").resolve() == SCRIPT:
        return main
    import bench

    return bench


@dataclasses.dataclass
class Sweep:
    """The issue's spiral sweep at some size: ``len(lrs) x seeds`` configs."""

    lrs: list[float]
    seeds: int

    @property
    def n(self) -> int:
        return len(self.lrs) * self.seeds

    def overrides(self) -> list[str]:
        return SWEEP_BASE + ["optim.lr=" + ",".join(repr(float(x)) for x in self.lrs), f"seed=range(0,{self.seeds})"]

    def workload(self, name: str, torch_subset: int, keras_subset: int):
        """bench.Workload of the same sweep (the peers' spec and the extrapolation use it)."""
        b = _bench()
        return b.Workload(name, "Playground spiral, FNN [8,8] tanh, SGD, batch 10, 100 epochs", "spiral", "fnn",
                          "fnn", "sgd", 100, list(self.lrs), [10], list(range(self.seeds)),
                          torch_subset=torch_subset, keras_subset=keras_subset)


def sizes(quick: bool) -> dict[str, Any]:
    if quick:
        return {"sweep256": Sweep(LRS[:2], 8), "sweep4096": Sweep(LRS[:2], 16), "basic32": Sweep(LRS[:2], 2),
                "extras": Sweep(LRS[:2], 8), "torch_subset": 2, "keras_subset": 1, "rounds": 1}
    return {"sweep256": Sweep(LRS, 32), "sweep4096": Sweep(LRS, 512), "basic32": Sweep(LRS, 4),
            "extras": Sweep(LRS, 32), "torch_subset": 8, "keras_subset": 4, "rounds": 2}


def run_harness_sweep(runner, name: str, overrides: list[str], n: int, cache: Path | None = None,
                      env: dict[str, str] | None = None) -> dict[str, Any]:
    """``harness-train -m <overrides>`` into a fresh sweep folder, timed from start to exit."""
    b = _bench()
    sweep_dir = runner.root / "runs" / name
    shutil.rmtree(sweep_dir, ignore_errors=True)
    cache = cache or runner.fresh_cache(name)
    cmd = b.harness_cmd() + ["-m"] + overrides + [f"hydra.sweep.dir={sweep_dir}"]
    res = runner.run(name, cmd, {"HARNESS_CACHE_DIR": str(cache), "WANDB_MODE": "offline", **(env or {})})
    res.update(b.summarize_results(b.read_results(sweep_dir), n))
    res.update(b.launcher_line(res["log"]))
    res["wandb_runs"] = len(list(sweep_dir.glob("**/offline-run-*")))
    res["pngs"] = len(list(sweep_dir.glob("**/*.png")))
    res.update({"measured": n, "configs": n, "total_s": res["wall_s"], "per_config_s": res["wall_s"] / n,
                "command": " ".join(["harness-train", "-m"] + overrides)})
    if res["completed"] < n:
        res["ok"] = False
    return res


def _record(variants: dict[str, Any], name: str, label: str, fn) -> None:
    print(f"  {label} ...", end=" ", flush=True)
    try:
        res = fn()
    except Exception as exc:  # noqa: BLE001 - a failing variant is reported, not fatal
        res = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    res["label"] = label
    variants[name] = res
    if res.get("ok"):
        total = res.get("total_s", res.get("wall_s"))
        per = res.get("per_config_s")
        print(f"{total:.1f}s" + (f", {per:.4f}s per config" if per else "")
              + (" (extrapolated)" if res.get("extrapolated") else ""), flush=True)
    else:
        print(f"FAILED ({res.get('error') or 'rc=' + str(res.get('rc'))}; log {res.get('log')})", flush=True)


def _peers(runner, w, variants: dict[str, Any], seed: int, keras: bool, func: bool) -> None:
    """PyTorch eager (1 thread) on a random subset, extrapolated; torch.func over every config;
    Keras fit on a random subset, extrapolated."""
    b = _bench()
    import os

    os.environ["HARNESS_CACHE_DIR"] = str(runner.data_cache)  # data generation for the export only
    data_npz = runner.root / f"data-{w.name}.npz"
    data = b.export_data(w, data_npz)
    configs = w.configs()
    rng = random.Random(seed)
    subset = b.stratified(rng, configs, w.torch_subset)
    _record(variants, "torch_t1", f"PyTorch eager, 1 thread, {len(subset)} of {len(configs)} configs, extrapolated",
            lambda: b.run_peer(runner, w, f"{w.name}-torch-t1", "torch", data_npz, data, subset, 1))
    if func:
        for threads in (1, 2):
            _record(variants, f"torch_func_t{threads}",
                    f"torch.func vmap ensemble of all {len(configs)} configs, {threads} thread{'s' * (threads > 1)}",
                    lambda threads=threads: run_torch_func(runner, w, f"{w.name}-torch-func-t{threads}", data_npz,
                                                           data, threads))
    if keras:
        ks = b.stratified(rng, configs, w.keras_subset)
        _record(variants, "keras", f"Keras 3 fit (JAX backend), {len(ks)} of {len(configs)} configs, extrapolated",
                lambda: b.run_peer(runner, w, f"{w.name}-keras", "keras", data_npz, data, ks))
    for k in ("torch_t1", "keras"):
        v = variants.get(k) or {}
        if v.get("ok"):
            v["per_config_s"] = v["total_s"] / v["configs"]


def bench_sweep(name: str, runner, quick: bool, seed: int) -> dict[str, Any]:
    """sweep256 / sweep4096: the fused sweep cold (no extras) against the peers."""
    sz = sizes(quick)
    sw: Sweep = sz[name]
    w = sw.workload(name, sz["torch_subset"], sz["keras_subset"])
    print(f"\n## {name}: the issue's spiral sweep, {sw.n} configs ({len(sw.lrs)} lr x {sw.seeds} seeds), "
          f"100 epochs, batch 10", flush=True)
    variants: dict[str, Any] = {}
    _record(variants, "fused_cold", f"fused launcher, cold, {sw.n} configs, logger=none output.plots=false",
            lambda: run_harness_sweep(runner, f"{name}-fused-cold", sw.overrides() + NO_EXTRAS, sw.n))
    _record(variants, "fused_cold_dev1", "the same, HARNESS_CPU_DEVICES=1 (one CPU device; the default is 2)",
            lambda: run_harness_sweep(runner, f"{name}-fused-cold-dev1", sw.overrides() + NO_EXTRAS, sw.n,
                                      env={"HARNESS_CPU_DEVICES": "1"}))
    _peers(runner, w, variants, seed, keras=name == "sweep256", func=name == "sweep256")
    return {"configs": sw.n, "variants": variants, "when": dt.datetime.now().isoformat(timespec="seconds"),
            "commands": [f"HARNESS_CACHE_DIR=$(mktemp -d) harness-train -m {' '.join(sw.overrides() + NO_EXTRAS)}",
                         f"HARNESS_CPU_DEVICES=1 HARNESS_CACHE_DIR=$(mktemp -d) harness-train -m "
                         f"{' '.join(sw.overrides() + NO_EXTRAS)}"]}


def bench_basic32(runner, quick: bool) -> dict[str, Any]:
    sw: Sweep = sizes(quick)["basic32"]
    print(f"\n## basic32: fused vs Hydra's basic launcher, {sw.n} configs, defaults as shipped (W&B offline member "
          "runs, plots=auto), cold", flush=True)
    variants: dict[str, Any] = {}
    _record(variants, "fused", "fused launcher (the default), cold",
            lambda: run_harness_sweep(runner, "basic32-fused", sw.overrides(), sw.n))
    _record(variants, "basic", "hydra/launcher=basic, cold",
            lambda: run_harness_sweep(runner, "basic32-basic", sw.overrides() + ["hydra/launcher=basic"], sw.n))
    return {"configs": sw.n, "variants": variants, "when": dt.datetime.now().isoformat(timespec="seconds"),
            "commands": [f"WANDB_MODE=offline HARNESS_CACHE_DIR=$(mktemp -d) harness-train -m {' '.join(sw.overrides())}"
                         f"{x}" for x in ("", " hydra/launcher=basic")]}


EXTRAS = {
    "default": ("defaults as shipped (W&B offline, hydra.launcher.wandb=auto: above 64 members one run per compile "
                "group; output.plots=auto)", []),
    "member": ("defaults + hydra.launcher.wandb=member (a W&B run per member)", ["hydra.launcher.wandb=member"]),
    "default_noplots": ("defaults + output.plots=false", ["output.plots=false"]),
    "none_plots": ("logger=none (plots as shipped)", ["logger=none"]),
    "none": ("logger=none output.plots=false", NO_EXTRAS),
}


def bench_extras(runner, quick: bool) -> dict[str, Any]:
    """The 256-config sweep with and without W&B and plots, each cold, interleaved ``rounds``
    times (the least of a variant's walls counts: the machine is shared)."""
    sz = sizes(quick)
    sw: Sweep = sz["extras"]
    rounds = sz["rounds"]
    print(f"\n## extras: the {sw.n}-config sweep with and without W&B and plots, cold, {rounds} round(s)", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in EXTRAS}
    for i in range(rounds):
        for key, (label, over) in EXTRAS.items():
            tmp: dict[str, Any] = {}
            _record(tmp, key, f"{label} [round {i + 1}]",
                    lambda key=key, over=over, i=i: run_harness_sweep(runner, f"extras-{key}-{i}",
                                                                      sw.overrides() + over, sw.n))
            runs[key].append(tmp[key])
    variants = {}
    for key, rs in runs.items():
        ok = [x for x in rs if x.get("ok")]
        best = min(ok, key=lambda x: x["wall_s"]) if ok else {}
        variants[key] = {"label": EXTRAS[key][0], "ok": bool(ok) and len(ok) == len(rs),
                         "wall_s": best.get("wall_s"), "walls": [x["wall_s"] for x in ok],
                         "cpu_s": best.get("cpu_s"), "launcher_wall_s": best.get("launcher_wall_s"),
                         "per_config_s": best["wall_s"] / sw.n if ok else None, "test_accuracy": best.get("test_accuracy"),
                         "wandb_runs": best.get("wandb_runs", 0), "pngs": best.get("pngs", 0),
                         "log": (rs[0] if rs else {}).get("log"), "command": best.get("command")}
    return {"configs": sw.n, "rounds": rounds, "variants": variants,
            "when": dt.datetime.now().isoformat(timespec="seconds"),
            "commands": [f"WANDB_MODE=offline HARNESS_CACHE_DIR=$(mktemp -d) harness-train -m "
                         f"{' '.join(sw.overrides() + over)}" for _, over in EXTRAS.values()]}


def bench_mainjob(runner, quick: bool) -> dict[str, Any]:
    """``harness-claim claim=small_batch logger=none progress=false``, cold: an empty
    HARNESS_CACHE_DIR (no compiled programs, no generated data); wall / runs trained."""
    b = _bench()
    print("\n## mainjob: harness-claim claim=small_batch, cold" + (" (claim.scale=small)" if quick else ""), flush=True)
    out = runner.root / "mainjob-out"
    shutil.rmtree(out, ignore_errors=True)
    cache = runner.root / "cache" / "mainjob-empty"
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    args = ["claim=small_batch", "logger=none", "progress=false"] + (["claim.scale=small"] if quick else [])
    exe = Path(sys.executable).parent / "harness-claim"
    cmd = ([str(exe)] if exe.exists() else [sys.executable, "-m", "harness.claim.cli"]) + args + [f"out={out}"]
    res = runner.run("mainjob", cmd, {"HARNESS_CACHE_DIR": str(cache)}, timeout=3 * 3600)
    results = b.read_results(out)
    statuses = [r.get("status") for r in results]
    res["runs"] = sum(s in ("ok", "diverged") for s in statuses)
    res["result_files"] = len(results)
    res["command"] = "harness-claim " + " ".join(args) + " out=<tmp>"
    res["label"] = "harness-claim, cold"
    text = Path(res["log"]).read_text(errors="replace")
    m = re.search(r"report: .*\((\d+) s\)", text)
    res["claim_total_s"] = float(m.group(1)) if m else None
    print(f"  {res['wall_s']:.0f}s wall, {res['runs']} runs trained" if res["ok"] else f"  FAILED ({res['log']})",
          flush=True)
    return {**res, "variants": {"mainjob": {"ok": res["ok"], "log": res["log"]}},
            "when": dt.datetime.now().isoformat(timespec="seconds"),
            "commands": [f"HARNESS_CACHE_DIR=$(mktemp -d) {res['command']}"]}


def bench_suite(runner, quick: bool) -> dict[str, Any]:
    """The default test suite as scripts/test.sh runs it (pytest on up to 4 workers), timed.
    ``--quick`` times one small test file instead (not the goal's measurement)."""
    import os

    args = ["-m", "pytest", "-q", "-n", "auto", "--maxprocesses=4"] + (["tests/test_stats.py"] if quick else [])
    print("\n## suite: " + " ".join(["python"] + args), flush=True)
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    res = runner.run("suite", [sys.executable] + args, env, timeout=3600, cwd=ROOT)
    text = Path(res["log"]).read_text(errors="replace").strip().splitlines()
    summary = next((ln.strip("= ").strip() for ln in reversed(text) if re.search(r"\b(passed|failed|error)", ln)), "")
    res.update({"summary": summary, "command": "python " + " ".join(args), "label": "pytest"})
    print(f"  {res['wall_s']:.0f}s: {summary}", flush=True)
    return {**res, "variants": {"suite": {"ok": res["ok"], "log": res["log"]}},
            "when": dt.datetime.now().isoformat(timespec="seconds"), "commands": [res["command"]]}


def run(name: str, runner, quick: bool, seed: int) -> dict[str, Any]:
    if name in ("sweep256", "sweep4096"):
        return bench_sweep(name, runner, quick, seed)
    return {"basic32": lambda: bench_basic32(runner, quick), "extras": lambda: bench_extras(runner, quick),
            "mainjob": lambda: bench_mainjob(runner, quick), "suite": lambda: bench_suite(runner, quick)}[name]()


# -- the torch.func ensemble peer (runs in bench.py's worker subprocess) -----------------------


def run_torch_func(runner, w, name: str, data_npz: Path, data: dict[str, Any], threads: int) -> dict[str, Any]:
    import json

    configs = w.configs()
    spec = {"peer": "torch_func", "kind": w.kind, "optim": w.optim, "epochs": w.epochs, "data": str(data_npz),
            "configs": configs, "threads": threads, "init": data["init"], "eps": data["eps"]}
    spec_path = runner.root / "specs" / f"{name}.json"
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(json.dumps(spec))
    out_path = runner.root / "specs" / f"{name}.out.json"
    res = runner.run(name, [sys.executable, str(SCRIPT), "--worker", str(spec_path), "--worker-out", str(out_path)])
    try:
        out = json.loads(out_path.read_text())
    except (OSError, json.JSONDecodeError):
        res.update({"ok": False, "measured": 0, "configs": len(configs)})
        return res
    acc = [a for a in out["test_accuracy"] if a is not None]
    n = len(configs)
    res.update({"measured": n, "configs": n, "extrapolated": False, "total_s": res["wall_s"],
                "per_config_s": res["wall_s"] / n, "train_s": out["train_s"], "import_s": out["import_s"],
                "threads": threads, "test_accuracy": sum(acc) / len(acc) if acc else None})
    return res


def torch_func_worker(spec: dict[str, Any], out_path: str) -> None:
    """Train every config of ``spec`` at once: one vmapped ensemble (plain SGD, own lr each)."""
    t0 = time.perf_counter()
    import copy
    import json

    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch.func import functional_call, grad, stack_module_state, vmap

    b = _bench()
    if spec["threads"]:
        torch.set_num_threads(int(spec["threads"]))
    data = dict(np.load(spec["data"]))
    import_s = time.perf_counter() - t0
    if spec["optim"] != "sgd":
        raise SystemExit("the torch.func peer trains plain SGD only")
    t1 = time.perf_counter()
    configs = spec["configs"]
    bs = int(configs[0]["batch_size"])
    if any(int(c["batch_size"]) != bs for c in configs):
        raise SystemExit("the torch.func ensemble needs one batch size")
    kind = spec["kind"]
    x_tr, y_tr = torch.from_numpy(data["x_train"]), torch.from_numpy(data["y_train"])
    x_ev, y_ev = torch.from_numpy(data["x_eval"]), torch.from_numpy(data["y_eval"])
    if kind == "cnn":
        x_tr, x_ev = x_tr.transpose(1, 2).contiguous(), x_ev.transpose(1, 2).contiguous()
    split = torch.from_numpy(data["split"])
    classes = int(max(data["y_train"].max(), data["y_eval"].max()) + 1)
    models = []
    for c in configs:  # each member initialised as the eager peer initialises that seed
        torch.manual_seed(c["seed"])
        models.append(b._torch_model(kind, spec["init"], classes, data["x_train"].shape[-1], data["x_train"].shape[1]))
    params, buffers = stack_module_state(models)
    params = {k: v.detach().clone() for k, v in params.items()}
    base = copy.deepcopy(models[0]).to("meta")
    m = len(configs)
    lr = torch.tensor([float(c["lr"]) for c in configs], dtype=torch.float32)

    def forward(p, bu, x):
        return functional_call(base, (p, bu), (x,))

    def loss(p, bu, x, y):
        return F.cross_entropy(forward(p, bu, x), y)

    step_grad = vmap(grad(loss))  # per member: its params, its minibatch
    evaluate_all = vmap(forward, in_dims=(0, 0, None))  # every member on the shared evaluation set
    masks = [(split == s) for s in range(3)]
    n = len(x_tr)
    spe = max(n // bs, 1)
    gens = [torch.Generator().manual_seed(int(c["seed"])) for c in configs]

    def evaluate():
        with torch.no_grad():
            out = evaluate_all(params, buffers, x_ev)  # [m, n_eval, classes]
            losses = F.cross_entropy(out.reshape(-1, out.shape[-1]), y_ev.repeat(m), reduction="none").reshape(m, -1)
            hits = (out.argmax(-1) == y_ev).float()
            return [(losses[:, k].mean(1).tolist(), hits[:, k].mean(1).tolist()) if k.any() else (None, None)
                    for k in masks]

    curves = [evaluate()]
    for _epoch in range(spec["epochs"]):
        perms = torch.stack([torch.randperm(n, generator=g) for g in gens])  # [m, n]: own order per member
        for s in range(spe):
            idx = perms[:, s * bs:(s + 1) * bs]
            grads = step_grad(params, buffers, x_tr[idx], y_tr[idx])
            with torch.no_grad():
                for k, g in grads.items():
                    params[k].sub_(lr.view(-1, *([1] * (g.dim() - 1))) * g)
        curves.append(evaluate())
    train_s = time.perf_counter() - t1
    test_acc = curves[-1][2][1]
    accs = [None if a is None or not np.isfinite(a) else float(a) for a in (test_acc or [None] * m)]
    print(f"torch.func ensemble: {m} members, {spec['epochs']} epochs x {spe} steps in {train_s:.2f}s", flush=True)
    Path(out_path).write_text(json.dumps({"train_s": train_s, "import_s": import_s, "test_accuracy": accs}))


# -- tables -------------------------------------------------------------------------------------


def table(name: str, r: dict[str, Any]) -> str:
    v = r.get("variants") or {}
    if name in ("mainjob", "suite"):
        lines = ["| what | wall s | result | log |", "|---|---|---|---|"]
        res = (f"{r.get('runs')} runs trained ({r.get('result_files')} result.json files); "
               f"{r['wall_s'] / r['runs']:.3f} s per run" if name == "mainjob" and r.get("runs")
               else r.get("summary", "") if name == "suite" else "FAILED")
        lines.append(f"| `{r.get('command')}` | {r.get('wall_s', 0):.1f} | {res}{'' if r.get('ok') else ' (FAILED)'} | "
                     f"`{r.get('log')}` |")
        return "\n".join(lines) + "\n"
    fused = v.get("fused_cold") or v.get("fused") or {}
    lines = [f"{r['configs']} configs; measured {r.get('when')}.", "",
             "| variant | configs run | wall s (what ran) | CPU s | per config s | fused is × cheaper | W&B runs | PNGs | "
             "test acc |", "|---|---|---|---|---|---|---|---|---|"]
    for k, x in v.items():
        if not x.get("ok"):
            lines.append(f"| {x.get('label', k)} | FAILED | | | | | | | see `{x.get('log', '')}` |")
            continue
        walls = x.get("walls")
        wall = f"{x['wall_s']:.1f}" + (f" (least of {', '.join(f'{t:.1f}' for t in walls)})" if walls and
                                        len(walls) > 1 else "")
        label = x.get("label", k)
        if x.get("extrapolated"):
            label += f" (fixed {x['fixed_s']:.1f}s + {x['steady_s']:.3f}s/config)"
        if k.startswith("torch_func"):
            label += f" (training {x.get('train_s', 0):.1f}s, imports {x.get('import_s', 0):.1f}s)"
        per = x.get("per_config_s")
        meas = f"{x.get('measured', r['configs'])}/{x.get('configs', r['configs'])}" if "measured" in x else "all"
        ratio = (f"{per / fused['per_config_s']:.1f}×" if per and fused.get("ok") and x is not fused
                 and "per_config_s" in fused else "")
        acc = x.get("test_accuracy")
        lines.append(f"| {label} | {meas} | {wall} | {x.get('cpu_s') or 0:.1f} | {per:.4f} | {ratio} | "
                     f"{x.get('wandb_runs', '')} | {x.get('pngs', '')} | "
                     f"{'' if acc is None else f'{acc:.3f}'} |" if per is not None else
                     f"| {label} | {meas} | {wall} | {x.get('cpu_s') or 0:.1f} | – | | {x.get('wandb_runs', '')} | "
                     f"{x.get('pngs', '')} | |")
    return "\n".join(lines) + "\n"
