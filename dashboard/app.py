"""The Dash app: a live fleet model behind a page of views and controls.

It binds 127.0.0.1 unless told otherwise; a host reachable from other machines is
served only behind basic auth (``--auth USER:PASSWORD`` or ``TWIN_DASHBOARD_AUTH``).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
from importlib import resources
from pathlib import Path

import dash_auth
from dash import Dash
from flask import Response
from werkzeug.serving import BaseWSGIServer, make_server

from dashboard.callbacks import register
from dashboard.layout import build_layout
from dashboard.live import LiveFleet, allowed_sources

AUTH_ENV = "TWIN_DASHBOARD_AUTH"
BOOTSTRAP_URL = "/_twin/bootstrap.min.css"
"""Bootstrap's stylesheet, served from the bootstrap-flask package: the page needs no CDN."""


class BindRefused(ValueError):
    """The address and credentials asked for would expose the dashboard unprotected."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def credentials(
    host: str, auth: str | None, env: dict[str, str] | None = None
) -> tuple[str, str] | None:
    """The basic-auth user and password to serve ``host`` with (from ``auth`` or the
    environment), or None on loopback without any. Raises `BindRefused` for a
    non-loopback host without credentials, or for credentials not shaped USER:PASSWORD."""
    env = os.environ if env is None else env
    auth = auth or env.get(AUTH_ENV) or None
    if auth is None:
        if is_loopback(host):
            return None
        raise BindRefused(
            f"--host {host} is reachable from other machines: give --auth USER:PASSWORD "
            f"(or set {AUTH_ENV})"
        )
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        raise BindRefused("--auth: expected USER:PASSWORD")
    return user, password


def create_app(live: LiveFleet, login: tuple[str, str] | None = None) -> Dash:
    """The Dash app over a live fleet, behind basic auth when ``login`` is given."""
    app = Dash(
        __name__, title="Fleet twin", external_stylesheets=[BOOTSTRAP_URL],
        suppress_callback_exceptions=False, update_title=None,
    )  # fmt: skip
    if login is not None:
        dash_auth.BasicAuth(app, {login[0]: login[1]}, secret_key=os.urandom(24).hex())
    css = resources.files("flask_bootstrap") / "static/bootstrap5/css/bootstrap.min.css"
    stylesheet = css.read_bytes()
    cache = {"Cache-Control": "max-age=3600"}
    app.server.add_url_rule(
        BOOTSTRAP_URL, "twin_bootstrap",
        lambda: Response(stylesheet, mimetype="text/css", headers=cache),
    )  # fmt: skip
    app.layout = lambda: build_layout(live)
    register(app, live)
    return app


def live_fleet(path: Path, root: Path | None = None, seed: int = 42) -> LiveFleet:
    """A live fleet of ``path``; its picker offers the configs and scenarios under
    ``root`` (the working directory) and ``path`` itself."""
    sources = allowed_sources(root or Path.cwd(), [path])
    first = next(name for name, p in sources.items() if p == path.resolve())
    return LiveFleet(sources, first, seed=seed)


def quiet_server(app: Dash, host: str, port: int) -> BaseWSGIServer:
    """A threaded web server for the app on ``host:port`` (0: any free port) that logs only
    warnings and errors: no line per request, so not one per refresh of the page."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    return make_server(host, port, app.server, threaded=True)


def serve(path: Path, host: str, port: int, login: tuple[str, str] | None) -> None:
    """Run the dashboard until interrupted; one line says where it is, then only warnings."""
    live = live_fleet(path)
    server = quiet_server(create_app(live, login), host, port)
    where = f"[{host}]" if ":" in host else host
    print(f"fleet twin dashboard on http://{where}:{server.server_port}/ (Ctrl-C stops it)",
          file=sys.stderr, flush=True)  # fmt: skip
    live.start()
    try:
        server.serve_forever()  # returns on Ctrl-C
    finally:
        live.stop()
