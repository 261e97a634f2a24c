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

from conftest import compose_config
from harness.errors import ConfigError
from harness.play.server import create_app
from harness.train.hparams import hparams_of, static_part
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
    assert session["problem"] == "classification" and session["groups"] == 1 and session["loss"] == "tanh_squared"  # experiment=playground: its loss
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
    r = client.post("/api/session?compare=reg&rate=0.01&lr=0.1&hidden=3")
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
    client.app.state.sessions[sid].step = lambda epochs=None: 1 / 0
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
    assert opts["live"] == ["lr", "rate"]
    # Playground's classroom controls by its own state names (playground.ts HIDABLE_CONTROLS).
    assert ["Learning rate", "learningRate"] in opts["hidable"] and len(opts["hidable"]) == 15


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
    from harness.train.engine import run_group

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


# --- the Playground's live controls: rates while training, weights, one epoch, loss, hover ---


@pytest.fixture
def compiles():
    """Counts lowerings and backend compiles of any JAX program while the test runs."""
    from jax import monitoring

    count = {"n": 0}
    events = ("/jax/core/compile/jaxpr_to_mlir_module_duration", "/jax/core/compile/backend_compile_duration")

    def listener(event, duration, **kwargs):
        if event in events:
            count["n"] += 1

    monitoring.register_event_duration_secs_listener(listener)
    yield count
    monitoring.unregister_event_duration_listener(listener)


def _new(client, query: str = "") -> str:
    r = client.post(f"/api/session?data=circle&activation=tanh&lr=0.1&{SMALL}&{query}")
    assert r.status_code == 200, r.text
    return r.json()["id"]


def test_learning_rate_change_takes_effect_at_the_next_epoch_without_compiling(client, compiles):
    import jax

    from harness.train import engine

    changed, twin = _new(client), _new(client)
    for sid in (changed, twin):
        client.post(f"/api/session/{sid}/step?epochs=2")  # periods 0, 1, 2
    session = client.app.state.sessions[changed]
    (program, _), = session.groups
    before = jax.device_get(program.state)
    curves, confusions = program.curves_so_far()
    executable = program.compiled.advance
    compiled_before, lowered_before = engine.TRACE_COUNT["n"], compiles["n"]

    snap = client.post(f"/api/session/{changed}/change?lr=1").json()
    assert snap["query"]["lr"] == "1" and snap["changes"] == [{"epoch": 2, "change": "lr 0.1 -> 1"}]
    snap = client.post(f"/api/session/{changed}/step?epochs=1").json()
    other = client.post(f"/api/session/{twin}/step?epochs=1").json()

    # Nothing compiled: not the engine's programs, not any other JAX program; the same executable ran.
    assert engine.TRACE_COUNT["n"] == compiled_before and snap["compiled"] == compiled_before
    assert compiles["n"] == lowered_before and program.compiled.advance is executable
    test, test_twin = (np.asarray(s["curves"]["test"], float) for s in (snap, other))
    np.testing.assert_array_equal(test[:, :3], test_twin[:, :3])  # the epochs before the change
    assert np.all(test[:, 3] != test_twin[:, 3])  # the next epoch trained at the new rate
    # ... exactly as a program built with lr=1 does from the same state.
    cfgs = [m.cfg for m in session.members]
    assert all(float(c.optim.lr) == 1.0 for c in cfgs)
    fresh = engine.GroupProgram(cfgs, segment_periods=1)
    fresh.restore(before, 3, curves, confusions)
    fresh.step()
    got, _ = fresh.curves_so_far()
    mine, _ = program.curves_so_far()
    np.testing.assert_array_equal(got["test/loss"], mine["test/loss"])


def test_regularization_rate_changes_live_for_every_compared_member(client):
    r = client.post("/api/session?compare=reg&rate=0.01&lr=0.1&hidden=3")
    sid = r.json()["id"]
    snap = client.post(f"/api/session/{sid}/change?rate=0.3").json()
    assert snap["changes"] == [{"epoch": 0, "change": "rate 0.01 -> 0.3"}]
    session = client.app.state.sessions[sid]
    (program, _), = session.groups
    np.testing.assert_allclose(np.asarray(program.hparams["l1"]), [0.0, 0.3, 0.0])
    np.testing.assert_allclose(np.asarray(program.hparams["l2"]), [0.0, 0.0, 0.3])
    # One network on screen only: no weights to show or edit while comparing.
    assert snap["network"] is None
    r = client.post(f"/api/session/{sid}/weight?layer=0&source=0&dest=0&value=1")
    assert r.status_code == 400 and r.json()["key"] == "compare"


def test_live_change_refuses_what_needs_a_restart():
    from harness.play.settings import ParamError, live_change, parse

    with pytest.raises(ParamError, match=r"^batch='3' is not allowed: one of lr, rate"):
        live_change(parse({}), {"batch": "3"})
    with pytest.raises(ParamError, match=r"^optim.lr='0.3' is not allowed: unchanged while compare=lr"):
        live_change(parse({"compare": "lr"}), {"lr": "0.3"})
    assert live_change(parse({"reg": "l2", "rate": "0.01"}), {"rate": "0.1"}).rate == 0.1


def _forward(view: list[dict], x: np.ndarray) -> np.ndarray:
    """The Playground's forward pass (tanh hidden units, a tanh output unit) from the page's weights."""
    h = x
    for layer in view:
        h = np.tanh(h @ np.asarray(layer["weights"]) + np.asarray(layer["biases"]))
    return h[:, 0]


def test_page_weights_and_playground_loss_are_the_network_s(client):
    sid = _new(client)
    snap = client.post(f"/api/session/{sid}/step?epochs=3").json()
    view = snap["network"]
    assert [np.shape(layer["weights"]) for layer in view] == [(2, 3), (3, 1)]
    ds = client.app.state.sessions[sid].dataset
    for split, (x, y) in {"train": (ds.x_train, ds.y_train), "test": (ds.x_test, ds.y_test)}.items():
        expected = np.mean(0.5 * (_forward(view, x) - (2.0 * y - 1.0)) ** 2)  # labels -1/+1
        assert snap["playground"][split][0][-1] == pytest.approx(expected, abs=2e-5)
        assert len(snap["playground"][split][0]) == snap["periods"] == 4


def test_one_epoch_step(client):
    sid = _new(client)
    first = client.post(f"/api/session/{sid}/step?epochs=1&since=0").json()
    assert (first["epoch"], first["periods"]) == (1, 2)  # the initial evaluation, then one epoch
    second = client.post(f"/api/session/{sid}/step?epochs=1&since=2").json()
    assert (second["epoch"], second["periods"]) == (2, 3) and len(second["curves"]["test"][0]) == 1


def test_edited_weight_and_bias_take_effect_in_the_running_network(client):
    edited, twin = _new(client), _new(client)
    for sid in (edited, twin):
        client.post(f"/api/session/{sid}/step?epochs=1")
    before = client.get(f"/api/session/{edited}").json()
    snap = client.post(f"/api/session/{edited}/weight?layer=1&source=2&dest=0&value=-1.5").json()
    snap = client.post(f"/api/session/{edited}/bias?layer=0&dest=1&value=0.75").json()
    assert snap["network"][1]["weights"][2] == [-1.5] and snap["network"][0]["biases"][1] == 0.75
    assert snap["changes"] == [{"epoch": 1, "change": "weight h0-2 -> out = -1.5"},
                               {"epoch": 1, "change": "bias of h0-1 = 0.75"}]
    untouched = [before["network"][0]["weights"], before["network"][1]["biases"]]
    assert [snap["network"][0]["weights"], snap["network"][1]["biases"]] == untouched
    res = client.app.state.sessions[edited].members[0].cfg.output.boundary_resolution
    assert np.abs(_field(snap["fields"][0], res) - _field(before["fields"][0], res)).max() > 0.05  # the field moved
    assert snap["fields"][1:] == before["fields"][1:]  # other seeds' networks are not on screen
    # The next epoch trains from the edited weights.
    after = client.post(f"/api/session/{edited}/step?epochs=1").json()
    other = client.post(f"/api/session/{twin}/step?epochs=1").json()
    assert after["curves"]["train"][0][:2] == other["curves"]["train"][0][:2]
    assert after["curves"]["train"][0][2] != other["curves"]["train"][0][2]
    assert after["curves"]["train"][1] == other["curves"]["train"][1]


def test_hovered_node_field_for_the_big_heatmap(client):
    sid = _new(client)
    client.post(f"/api/session/{sid}/step?epochs=2")
    info = client.app.state.sessions[sid].info()
    res, thumbs = info["resolution"], info["thumb_resolution"]
    snap = client.post(f"/api/session/{sid}/focus?node=h0-2").json()
    assert snap["focus"]["node"] == "h0-2"
    big = _field(snap["focus"]["field"], res).reshape(res, res)
    small = _field(snap["neurons"][2], thumbs).reshape(thumbs, thumbs)
    # Both grids span the same square corner to corner: the corners are the same points.
    corners = (0, -1)
    np.testing.assert_allclose([big[i, j] for i in corners for j in corners],
                               [small[i, j] for i in corners for j in corners], atol=1 / 127)
    assert client.get(f"/api/session/{sid}").json()["focus"]["node"] == "h0-2"  # later snapshots too
    x2 = _field(client.post(f"/api/session/{sid}/focus?node=x2").json()["focus"]["field"], res).reshape(res, res)
    assert x2[0, 0] > 0 > x2[-1, 0]  # x2 grows upwards
    # An input the network does not use is still a picture (the page shows every input).
    sq = _field(client.post(f"/api/session/{sid}/focus?node=x1sq").json()["focus"]["field"], res).reshape(res, res)
    assert sq[0, 0] == sq[0, -1] > sq[0, res // 2]
    assert client.post(f"/api/session/{sid}/focus?node=").json()["focus"] is None  # back to the output


@pytest.mark.parametrize(
    "route, key, needle",
    [
        ("change?batch=3", "batch", "batch='3' is not allowed: one of lr, rate (the settings that change while training)"),
        ("change?lr=-1", "optim.lr", "optim.lr=-1.0 is not allowed: a finite number > 0"),
        ("weight?layer=2&source=0&dest=0&value=1", "layer", "layer='2' is not allowed: an integer from 0 to 1"),
        ("weight?layer=0&dest=0&value=1", "source", "source='' is not allowed: an integer from 0 to 1"),
        ("weight?layer=0&source=0&dest=3&value=1", "dest", "dest='3' is not allowed: an integer from 0 to 2"),
        ("bias?layer=0&dest=0&value=abc", "value", "value='abc' is not allowed: a finite number"),
        ("bias?layer=1&dest=0&value=inf", "value", "value='inf' is not allowed: a finite number"),
        ("focus?node=h1-0", "node", "node='h1-0' is not allowed: an input feature (x1, x2, x1sq"),
        ("focus?node=x3", "node", "node='x3' is not allowed"),
        ("step?epochs=0", "epochs", "epochs='0' is not allowed: an integer from 1 to 1000"),
    ],
)
def test_bad_live_changes_are_400_and_change_nothing(client, session, route, key, needle):
    sid = session["id"]
    before = client.get(f"/api/session/{sid}").json()
    r = client.post(f"/api/session/{sid}/{route}")
    assert r.status_code == 400 and r.json()["key"] == key and r.json()["error"].startswith(needle), r.text
    after = client.get(f"/api/session/{sid}").json()
    for name in ("network", "changes", "query", "periods", "focus"):
        assert after[name] == before[name], name
