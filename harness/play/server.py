"""The playground's web app: a small JSON API, a Server-Sent Events stream, the static page.

Starlette (ASGI, a few small dependencies, its own test client) served by uvicorn. Training
runs in worker threads (``anyio.to_thread``): XLA releases the GIL, so the event loop keeps
answering while a chunk trains. Play is one SSE stream per page: each event is a snapshot
after one chunk of epochs; Pause closes the stream, which stops training at the next chunk.

    GET  /                              the page (harness/play/static/index.html)
    GET  /api/options                   the controls' values and defaults
    GET  /api/check?<settings>          parse and check settings (no training)
    POST /api/session?<settings>        start a session (JSON body also accepted) -> info + snapshot
    GET  /api/session/<id>?since=N      snapshot (curves from period N on)
    POST /api/session/<id>/step?since=N[&epochs=E]   train one chunk (or E epochs) -> snapshot
    POST /api/session/<id>/change?lr=..&rate=..      new rates from the next epoch on, no
                                        recompile (the Playground's live controls) -> snapshot
    POST /api/session/<id>/weight?layer=L&source=I&dest=J&value=V   set one weight -> snapshot
    POST /api/session/<id>/bias?layer=L&dest=J&value=V              set one bias -> snapshot
    POST /api/session/<id>/focus?node=X  the node the big heatmap shows (empty: the output)
    GET  /api/session/<id>/stream?since=N[&chunks=K]   SSE: train chunk after chunk, one
                                        snapshot each (K chunks, or until the client leaves)
    DELETE /api/session/<id>
    GET  /api/command?<settings>&epochs=E   the harness-train / W&B sweep / claim that reproduce it

A bad setting answers 400 with ``{"error": "optim.lr=-1.0 is not allowed: ...", "key": ...,
"param": ...}``, the same line ``harness-train`` prints; an unknown session answers 404.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from anyio import to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from harness.errors import ConfigError, DataError
from harness.play import settings as play_settings
from harness.play.session import Session

STATIC = Path(__file__).resolve().parent / "static"
log = logging.getLogger("harness.play")
MAX_SESSIONS = 16  # the oldest idle session is dropped past this
MIN_EVENT_S = 0.04  # at most ~25 snapshots a second per stream: a browser draws no faster


class UnknownSession(LookupError):
    """A session id this server does not hold (ended, evicted, or from before a restart)."""


def error_response(exc: Exception, status: int = 400) -> JSONResponse:
    body: dict[str, Any] = {"error": str(exc)}
    if isinstance(exc, ConfigError):
        body["key"] = exc.key
        # the URL's name of the key (harness.validate names config keys only)
        by_key = {key: name for name, (key, _) in play_settings.PARAMS.items()}
        body["param"] = getattr(exc, "param", None) or by_key.get(exc.key)
    return JSONResponse(body, status_code=status)


def _since(request: Request) -> int:
    raw = request.query_params.get("since", "0")
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigError("since", raw, "an integer >= 0 (the first period to send)")
    return value


def _chunks(request: Request) -> int | None:
    raw = request.query_params.get("chunks")
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError("chunks", raw, "an integer >= 1 (chunks to stream before the stream ends)")
    return value


def _epochs(request: Request) -> int | None:
    raw = request.query_params.get("epochs")
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= 1000:
        raise ConfigError("epochs", raw, "an integer from 1 to 1000 (epochs to train)")
    return value


def _query(request: Request, drop: tuple[str, ...] = ()) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items() if k not in drop}


def create_app(chunk: int = 5) -> Starlette:
    """The app; ``chunk`` is the number of epochs each step or stream event trains."""
    sessions: OrderedDict[str, Session] = OrderedDict()

    def remember(session: Session) -> None:
        sessions[session.id] = session
        while len(sessions) > MAX_SESSIONS:
            sessions.popitem(last=False)

    def lookup(request: Request) -> Session:
        sid = request.path_params["sid"]
        if sid not in sessions:
            raise UnknownSession(sid)
        sessions.move_to_end(sid)
        return sessions[sid]

    def guarded(handler):
        """User errors -> 400 JSON, unknown sessions -> 404 JSON, anything else -> 500 JSON
        (and a traceback in the server's log)."""

        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except (ConfigError, DataError) as exc:
                return error_response(exc)
            except UnknownSession as exc:
                return JSONResponse({"error": f"no session {exc.args[0]!r} (it ended or the server restarted)"},
                                    status_code=404)
            except Exception as exc:  # a bug, not the user's input: say so, keep serving
                log.exception("harness-play: %s %s failed", request.method, request.url.path)
                return JSONResponse({"error": f"internal error ({type(exc).__name__}: {exc}); see the server's log"},
                                    status_code=500)

        return wrapped

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def options(request: Request) -> Response:
        s = play_settings
        return JSONResponse({
            "defaults": {name: default for name, (_, default) in s.PARAMS.items()},
            "data": {"classification": list(s.CLASSIFICATION_SETS), "regression": list(s.REGRESSION_SETS)},
            "features": list(s.FEATURE_NAMES),
            "learning_rates": list(s.LEARNING_RATES),
            "reg_rates": list(s.REG_RATES),
            "activations": list(s.ACTIVATIONS),
            "regularizers": list(s.REGULARIZERS),
            "compare": {name: {"key": c.key, "labels": list(c.labels)} for name, c in s.COMPARE.items()},
            "limits": {"layers": s.MAX_LAYERS, "neurons": s.MAX_NEURONS, "seeds": s.MAX_SEEDS},
            "chunk": chunk,
            "live": list(s.LIVE),
            "hidable": [list(c) for c in s.HIDABLE_CONTROLS],
        })

    async def check(request: Request) -> Response:
        settings = play_settings.parse(_query(request))
        await to_thread.run_sync(play_settings.member_configs, settings)
        return JSONResponse({"settings": settings.as_dict(), "query": settings.query()})

    async def create(request: Request) -> Response:
        query: dict[str, Any] = _query(request)
        body = await request.body()
        if body:
            try:
                data = json.loads(body)
            except ValueError as exc:
                return JSONResponse({"error": f"the request body is not JSON: {exc}"}, status_code=400)
            if not isinstance(data, dict):
                return JSONResponse({"error": "the request body must be a JSON object of settings"}, status_code=400)
            query.update(data)
        settings = play_settings.parse(query)
        session = await to_thread.run_sync(Session, settings, chunk)
        remember(session)
        snap = await to_thread.run_sync(session.snapshot, 0)
        return JSONResponse({**session.info(), "snapshot": snap})

    async def snapshot(request: Request) -> Response:
        session = lookup(request)
        return JSONResponse(await to_thread.run_sync(session.snapshot, _since(request)))

    async def step(request: Request) -> Response:
        session = lookup(request)
        since, epochs = _since(request), _epochs(request)
        await to_thread.run_sync(session.step, epochs)
        return JSONResponse(await to_thread.run_sync(session.snapshot, since))

    def changing(act):
        """A route that changes a session (``act(session, query)``) and answers its snapshot."""

        async def handler(request: Request) -> Response:
            session = lookup(request)
            since = _since(request)
            query = _query(request, drop=("since",))
            await to_thread.run_sync(act, session, query)
            return JSONResponse(await to_thread.run_sync(session.snapshot, since))

        return handler

    def weight(session: Session, q: dict[str, str]) -> None:
        session.edit(q.get("layer"), q.get("dest"), q.get("source", ""), q.get("value"))

    def bias(session: Session, q: dict[str, str]) -> None:
        session.edit(q.get("layer"), q.get("dest"), None, q.get("value"))

    async def stream(request: Request) -> Response:
        session = lookup(request)
        since, chunks = _since(request), _chunks(request)

        async def events():
            nonlocal since
            sent = 0
            while chunks is None or sent < chunks:
                t0 = time.monotonic()
                if session.done:
                    yield "event: done\ndata: {}\n\n"
                    return
                await to_thread.run_sync(session.step)
                snap = await to_thread.run_sync(session.snapshot, since)
                since = snap["periods"]
                yield f"data: {json.dumps(snap)}\n\n"
                sent += 1
                if await request.is_disconnected():
                    return
                await asyncio.sleep(max(0.0, MIN_EVENT_S - (time.monotonic() - t0)))

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    async def delete(request: Request) -> Response:
        sessions.pop(request.path_params["sid"], None)
        return JSONResponse({"deleted": request.path_params["sid"]})

    async def command(request: Request) -> Response:
        raw = request.query_params.get("epochs", "200")
        try:
            epochs = int(raw)
        except ValueError:
            epochs = 0
        if epochs < 1:
            raise ConfigError("train.epochs", raw, "an integer >= 1")
        settings = play_settings.parse(_query(request, drop=("epochs",)))
        return JSONResponse(play_settings.commands(settings, epochs))

    async def favicon(request: Request) -> Response:
        return Response(status_code=204)

    routes = [
        Route("/", index),
        Route("/favicon.ico", favicon),
        Route("/api/options", guarded(options)),
        Route("/api/check", guarded(check)),
        Route("/api/command", guarded(command)),
        Route("/api/session", guarded(create), methods=["POST"]),
        Route("/api/session/{sid}", guarded(snapshot)),
        Route("/api/session/{sid}", guarded(delete), methods=["DELETE"]),
        Route("/api/session/{sid}/step", guarded(step), methods=["POST"]),
        Route("/api/session/{sid}/change", guarded(changing(lambda s, q: s.change(q))), methods=["POST"]),
        Route("/api/session/{sid}/weight", guarded(changing(weight)), methods=["POST"]),
        Route("/api/session/{sid}/bias", guarded(changing(bias)), methods=["POST"]),
        Route("/api/session/{sid}/focus", guarded(changing(lambda s, q: s.set_focus(q.get("node")))), methods=["POST"]),
        Route("/api/session/{sid}/stream", guarded(stream)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.sessions = sessions
    return app
