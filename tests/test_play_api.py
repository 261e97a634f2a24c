"""harness-play's server: sessions train with the engine, snapshots stream, bad input is a 400.

Every session here has three members of one small network (one hidden layer of 3), so the
whole module compiles one program: the single-network session with seeds=3 and the compare
session over the regularizer kind (a dynamic setting) share it.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import subprocess
import sys
import urllib.request
import warnings

import numpy as np
import pytest
import yaml

with warnings.catch_warnings():  # Starlette 1.x prefers httpx2 to httpx for its test client; both work
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from conftest import ROOT, compose_config
from harness.errors import ConfigError
from harness.play.server import create_app
from harness.sweep.plan import hparams_of, static_part
from harness.validate import validate_config

SMALL = "hidden=3&seeds=3"


@pytest.fixture(scope="module")
def client():
    from harness.runtime import setup_jax

    setup_jax()
    with TestClient(create_app(chunk=4)) as c:
        yield c


@pytest.fixture(scope="module")
def session(client):
    r = client.post(f"/api/session?data=circle&activation=tanh&lr=0.1&{SMALL}")
    assert r.status_code == 200, r.text
    return r.json()


def _field(encoded: str, resolution: int) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(encoded), np.uint8)
    assert raw.shape == (resolution * resolution,)
    return raw.astype(np.float32) / 127.5 - 1.0


def test_session_start_step_snapshot(client, session):
    assert session["problem"] == "classification" and session["groups"] == 1
    assert [m["seed"] for m in session["members"]] == [0, 1, 2]
    assert len(session["points"]["train"]) == 250 and len(session["points"]["test"]) == 250
    assert session["query"]["hidden"] == "3" and session["settings"]["lr"] == 0.1
    first = session["snapshot"]
    assert first["epoch"] == 0 and first["periods"] == 0
    fields0 = [_field(f, session["resolution"]) for f in first["fields"]]

    sid = session["id"]
    steps = [client.post(f"/api/session/{sid}/step?since=0").json() for _ in range(3)]
    # A chunk is 4 evaluation periods (epochs); period 0 is the evaluation before training.
    assert [s["epoch"] for s in steps] == [3, 7, 11]
    last = steps[-1]
    assert last["periods"] == 12 and not any(last["diverged"])
    for name in ("train", "test"):
        assert all(len(c) == 12 for c in last["curves"][name])
    test = np.asarray(last["curves"]["test"], float)
    assert np.all(test[:, -1] < test[:, 0]), test  # every seed learns something
    fields = [_field(f, session["resolution"]) for f in last["fields"]]
    assert all(np.abs(a - b).max() > 0.01 for a, b in zip(fields, fields0))  # the boundaries moved
    # Playground's thumbnails: each hidden neuron of the first network, each input feature.
    thumbs = session["thumb_resolution"]
    assert len(last["neurons"]) == 3 and all(np.abs(_field(n, thumbs)).max() > 0.1 for n in last["neurons"])
    assert sorted(session["feature_fields"]) == sorted(["x1", "x2", "x1sq", "x2sq", "x1x2", "sin_x1", "sin_x2"])
    x1 = _field(session["feature_fields"]["x1"], thumbs).reshape(thumbs, thumbs)
    assert x1[0, 0] < 0 < x1[0, -1]  # x1 grows to the right

    # Incremental: curves from period `since` on, without training.
    snap = client.get(f"/api/session/{sid}?since=10").json()
    assert snap["epoch"] == 11 and all(len(c) == 2 for c in snap["curves"]["test"])
    assert snap["curves"]["test"][0] == last["curves"]["test"][0][10:]


def test_stream_sends_one_snapshot_per_chunk(client, session):
    sid = session["id"]
    before = client.get(f"/api/session/{sid}?since=0").json()["periods"]
    r = client.get(f"/api/session/{sid}/stream?since={before}&chunks=2")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[len("data: "):]) for line in r.text.splitlines() if line.startswith("data: ")]
    assert [e["periods"] for e in events] == [before + 4, before + 8]
    assert events[0]["since"] == before and events[1]["since"] == before + 4  # each sends what is new
    assert all(len(c) == 4 for c in events[1]["curves"]["test"])


def test_compare_returns_one_field_per_value(client):
    r = client.post(f"/api/session?compare=reg&rate=0.01&lr=0.1&hidden=3")
    assert r.status_code == 200, r.text
    info = r.json()
    assert [label for _, label in info["values"]] == ["no penalty", "L1", "L2"]
    assert info["groups"] == 1  # the penalty kind and rate are numbers: one fused program
    snap = client.post(f"/api/session/{info['id']}/step?since=0").json()
    assert len(snap["fields"]) == 3 and all(snap["fields"])
    fields = [_field(f, info["resolution"]) for f in snap["fields"]]
    assert np.abs(fields[0] - fields[2]).max() > 0  # different penalties, different networks
    assert len({tuple(c) for c in snap["curves"]["train"]}) == 3
    assert snap["neurons"] is None  # thumbnails only with one network on screen


@pytest.mark.slow
def test_regression_and_a_static_comparison(client):
    """A regression set, and a comparison over a shape (batch size): one program per value."""
    r = client.post("/api/session?data=reg_plane&hidden=2&compare=batch&lr=0.01")
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["problem"] == "regression" and info["groups"] == 4
    assert isinstance(info["points"]["train"][0][2], float)
    snap = client.post(f"/api/session/{info['id']}/step?since=0").json()
    assert snap["epoch"] == 3 and len(snap["fields"]) == 4
    test = np.asarray(snap["curves"]["test"], float)
    assert np.all(test[:, -1] < test[:, 0])


class Cli(str):
    """An override whose harness-train error message the API must repeat word for word."""


def _cli_message(override: str) -> str:
    """What harness-train prints for the same override (without 'error: ')."""
    with pytest.raises(ConfigError) as exc:
        validate_config(compose_config([override]))
    return str(exc.value)


@pytest.mark.parametrize(
    "query, key, needle",
    [
        ("lr=-1", "optim.lr", Cli("optim.lr=-1")),  # the message harness-train prints for optim.lr=-1
        ("lr=abc", "optim.lr", "optim.lr='abc' is not allowed: a number"),
        ("rate=-0.5&reg=l2", "regularizer.rate", Cli("regularizer.rate=-0.5")),
        ("noise=0.9", "data.noise", "data.noise=0.9 is not allowed"),
        ("ratio=1.5", "data.train_fraction", "data.train_fraction=1.5 is not allowed"),
        ("batch=0", "train.batch_size", "train.batch_size=0 is not allowed: an integer >= 1"),
        ("batch=100000", "train.batch_size", "is not allowed: an integer <= 250 (the training-set size)"),
        ("data=moons", "data", "data='moons' is not allowed: one of circle, xor, gauss, spiral"),
        ("data=circle&problem=regression", "data", "one of reg_plane, reg_gauss (a regression data set)"),
        ("features=x3", "data.features", "names from x1, x2"),
        ("features=", "data.features", "a non-empty list"),
        ("hidden=9", "model.hidden", "up to 6 layers of 1 to 8 neurons"),
        ("hidden=1,1,1,1,1,1,1", "model.hidden", "up to 6 layers"),
        ("activation=softmaxx", "model.activation", "model.activation='softmaxx' is not allowed: one of"),
        ("compare=depth", "compare", "compare='depth' is not allowed: one of none, activation, lr"),
        ("compare=rate&reg=none", "regularizer.kind", "l1 or l2 when compare=rate"),
        ("seeds=99", "seeds", "an integer >= 1 and <= 8"),
        ("seed=-1", "seed", "an integer >= 0"),
        ("colour=blue", "colour", "a parameter of the page: data, problem"),
    ],
)
def test_bad_settings_are_400_with_one_clear_line(client, query, key, needle):
    for r in (client.get(f"/api/check?{query}"), client.post(f"/api/session?{query}")):
        assert r.status_code == 400, r.text
        body = r.json()
        assert body["key"] == key and body["param"], body
        assert "\n" not in body["error"] and "Traceback" not in body["error"]
        if isinstance(needle, Cli):  # the very line harness-train prints
            assert body["error"] == _cli_message(needle)
        else:
            assert needle in body["error"], body["error"]


def test_other_bad_requests(client, session):
    assert client.post("/api/session", content=b"{not json").status_code == 400
    r = client.post("/api/session", content=b"[1, 2]")
    assert r.status_code == 400 and "JSON object" in r.json()["error"]
    r = client.post("/api/session", json={"lr": -2})  # JSON bodies are checked like queries
    assert r.status_code == 400 and r.json()["error"].startswith("optim.lr=-2.0 is not allowed")
    r = client.post("/api/session/nope/step")
    assert r.status_code == 404 and "no session 'nope'" in r.json()["error"]
    assert client.get(f"/api/session/{session['id']}?since=-1").status_code == 400
    assert client.get(f"/api/session/{session['id']}/stream?chunks=0").status_code == 400
    r = client.get("/api/command?epochs=0")
    assert r.status_code == 400 and r.json()["key"] == "train.epochs"
    assert client.get("/api/check").json()["query"]["data"] == "circle"  # defaults are fine


def test_a_bug_is_a_500_with_a_message_not_a_dead_server(client):
    sid = client.post(f"/api/session?{SMALL}").json()["id"]
    client.app.state.sessions[sid].step = lambda: 1 / 0
    r = client.post(f"/api/session/{sid}/step")
    assert r.status_code == 500 and r.json()["error"].startswith("internal error (ZeroDivisionError")
    assert client.get(f"/api/session/{sid}").status_code == 200  # still serving


def test_page_and_options(client):
    page = client.get("/")
    assert page.status_code == 200 and "<title>harness playground</title>" in page.text
    for name in ("play.js", "play.css"):
        assert client.get(f"/static/{name}").status_code == 200
    opts = client.get("/api/options").json()
    assert opts["learning_rates"][0] == 0.00001 and opts["learning_rates"][-1] == 10
    assert opts["reg_rates"][0] == 0 and opts["reg_rates"][-1] == 10
    assert set(opts["compare"]) == {"activation", "lr", "batch", "reg", "rate", "features"}


def test_commands_reproduce_the_screen(client):
    query = "data=xor&noise=0.1&ratio=0.3&batch=5&features=x1,x2,x1x2&hidden=4&lr=0.01&reg=l2&rate=0.003&compare=lr&seeds=2"
    cmd = client.get(f"/api/command?{query}&epochs=50").json()
    argv = shlex.split(cmd["hydra"])
    assert argv[:2] == ["harness-train", "-m"] and "seed=0,1" in argv and "train.epochs=50" in argv
    swept = next(a for a in argv if a.startswith("optim.lr="))
    assert swept == "optim.lr=1e-05,0.0001,0.001,0.003,0.01,0.03,0.1,0.3,1.0,3.0,10.0"
    fixed = [a for a in argv[2:] if a not in (swept, "seed=0,1")]
    # One member of the sweep composes to the config the page trained (but for the budget).
    from harness.play.settings import member_configs, parse

    members = member_configs(parse(dict(p.split("=") for p in query.split("&"))))
    assert len(members) == 22
    mine = members[3]  # lr=0.0001, seed 1
    theirs = compose_config(fixed + ["optim.lr=0.0001", "seed=1", "logger=none"])
    mine_static, theirs_static = static_part(mine.cfg), static_part(theirs)
    for part in (mine_static, theirs_static):
        part["train"].pop("epochs")
        part.pop("output")
    assert mine_static == theirs_static
    assert hparams_of(mine.cfg) == pytest.approx(hparams_of(theirs))

    from harness.claim.spec import sweeps

    claim = yaml.safe_load(cmd["claim"])
    (sweep,) = sweeps(claim)
    assert "optim.lr=1e-05,0.0001,0.001,0.003,0.01,0.03,0.1,0.3,1.0,3.0,10.0" in sweep.overrides
    assert claim["seeds"] >= 5 and cmd["claim_command"] == "harness-claim claim=play_lr"
    wandb = yaml.safe_load(cmd["wandb"])
    assert wandb["parameters"]["optim.lr"]["values"][-1] == 10.0 and wandb["parameters"]["seed"]["values"] == [0, 1]
    assert "data.features=[x1,x2,x1x2]" in wandb["command"] and wandb["command"][-1] == "${args_no_hyphens}"


def test_cli_serves_the_page_on_localhost(tmp_path):
    bad = subprocess.run([sys.executable, "-m", "harness.play.cli", "port=http"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: port='http' is not allowed: an integer from 0 to 65535"
    proc = subprocess.Popen([sys.executable, "-m", "harness.play.cli", "port=0"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        found = re.search(r"http://([\d.]+):(\d+)/", line)
        assert found and found.group(1) == "127.0.0.1", line + proc.stderr.read() if proc.poll() is not None else line
        base = found.group(0)
        with urllib.request.urlopen(base, timeout=30) as r:
            assert "<title>harness playground</title>" in r.read().decode()
        with urllib.request.urlopen(base + "api/options", timeout=30) as r:
            assert json.loads(r.read())["limits"]["layers"] == 6
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_page_curves_are_what_harness_train_computes(client):
    """The curves on the page are harness-train's: the science command at the epoch shown
    trains to the same losses (up to the page's 6 decimals)."""
    from harness.sweep.engine import run_group

    query = "data=xor&hidden=3&seeds=3&lr=0.1&reg=l1&rate=0.001"
    info = client.post(f"/api/session?{query}").json()
    for _ in range(3):
        snap = client.post(f"/api/session/{info['id']}/step?since=0").json()
    epochs = snap["epoch"]
    argv = shlex.split(client.get(f"/api/command?{query}&epochs={epochs}").json()["hydra"])
    fixed = [a for a in argv[2:] if not a.startswith("seed=")]
    cfgs = [compose_config(fixed + [f"seed={s}", "logger=none"]) for s in (0, 1, 2)]
    group = run_group(cfgs)
    for i, out in enumerate(group.outputs):
        for name in ("train", "test"):
            np.testing.assert_allclose(snap["curves"][name][i], out["curves"][f"{name}/loss"], atol=2e-6)
