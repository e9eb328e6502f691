"""Swagger UI at /api/docs, served from the flask-swagger-ui package's copy of Swagger UI's
files: the page works on a network with no way out, and its Content-Security-Policy names this
site alone. The page has no inline script, so the policy needs no 'unsafe-inline'."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from flask import Blueprint, Response, send_from_directory, url_for

from ..errors import NotFound

SWAGGER_UI_DIR = Path(str(files("flask_swagger_ui") / "dist"))
OWN_DIR = Path(__file__).resolve().parent / "static"
# Only what the page loads: the package also ships an unused preset and its own index page.
SWAGGER_UI_ASSETS = {"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png"}
OWN_ASSETS = {"swagger-init.js"}
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
ASSET_MAX_AGE = 3600

blp = Blueprint("docs", __name__, url_prefix="/api/docs")

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>scanner API</title>
  <link rel="stylesheet" href="{css}">
  <link rel="icon" type="image/png" href="{icon}">
</head>
<body>
  <div id="swagger-ui" data-spec-url="{spec}"></div>
  <script src="{bundle}"></script>
  <script src="{init}"></script>
</body>
</html>
"""


@blp.get("")
def page() -> Response:
    def asset(name: str) -> str:
        return url_for("docs.asset", name=name)

    html = _PAGE.format(
        css=asset("swagger-ui.css"),
        icon=asset("favicon-32x32.png"),
        spec=url_for("api-docs.openapi_json"),
        bundle=asset("swagger-ui-bundle.js"),
        init=asset("swagger-init.js"),
    )
    return Response(html, mimetype="text/html")


@blp.get("/<name>")
def asset(name: str) -> Response:
    if name in OWN_ASSETS:
        return send_from_directory(OWN_DIR, name, max_age=ASSET_MAX_AGE)
    if name in SWAGGER_UI_ASSETS:
        return send_from_directory(SWAGGER_UI_DIR, name, max_age=ASSET_MAX_AGE)
    raise NotFound("No such file of the API documentation")
