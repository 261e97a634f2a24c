"""harness-play: TensorFlow Playground's page, trained by the harness's compiled engine.

Serves the page and prints its address; Ctrl-C stops it.

    harness-play                     # http://127.0.0.1:8765/
    harness-play port=9000           # another port; port=0 picks a free one
    harness-play host=0.0.0.0        # listen beyond this machine (there is no login: trusted networks only)
    harness-play chunk=10            # epochs trained per streamed snapshot

Arguments are key=value as for the other harness commands (keys: host, port, chunk); a bad
one prints one line and exits with status 2. -h or --help prints this text.
See docs/playground.md.
"""

from __future__ import annotations

import socket
import sys

from harness.errors import ConfigError
from harness.hydra_errors import EXIT_CONFIG_ERROR

DEFAULTS = {"host": "127.0.0.1", "port": 8765, "chunk": 5}


def parse_args(argv: list[str]) -> dict:
    """``key=value`` arguments over :data:`DEFAULTS`; ConfigError names the bad one."""
    args = dict(DEFAULTS)
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in DEFAULTS:
            raise ConfigError("argument", arg, "key=value with key one of " + ", ".join(DEFAULTS))
        if key == "host":
            if not value:
                raise ConfigError("host", value, "an address to listen on, e.g. 127.0.0.1")
            args[key] = value
            continue
        try:
            number = int(value)
        except ValueError:
            number = -1
        low, high = (0, 65535) if key == "port" else (1, 1000)
        if not low <= number <= high:
            raise ConfigError(key, value, f"an integer from {low} to {high}")
        args[key] = number
    return args


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: a free port), so the printed address is the real one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError("port" if port else "host", port if port else host, f"a free address to listen on ({exc.strerror})") from None
    sock.listen(128)
    return sock


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if {"-h", "--help"} & set(argv):
        print(__doc__.strip())
        return
    from harness.runtime import setup_jax

    try:
        args = parse_args(argv)
        sock = bind(args["host"], args["port"])
        setup_jax()  # the persistent compile cache: a structure compiled once is fast next time
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG_ERROR) from None
    import logging

    logging.getLogger("jax").setLevel(logging.WARNING)
    import uvicorn

    from harness.play.server import create_app

    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"harness-play: serving the playground on http://{shown}:{port}/ (Ctrl-C stops it)", flush=True)
    config = uvicorn.Config(create_app(chunk=args["chunk"]), log_level="warning", timeout_graceful_shutdown=1)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
