"""The pages of the web interface. Each page is a template with no user data in it: the page's
script asks the JSON API for everything it shows, with the bearer token it signed in with, so the
interface can show nothing the API does not promise."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, url_for

from ..audit.services import ACTIONS, OUTCOMES
from ..auth.rules import PASSWORD_RULE
from ..scans.models import STATUSES
from ..scans.results.query import SORT_KEYS
from ..scans.results.report import VERDICTS

# Scripts, styles, images and API calls from this site alone; no inline script or style at all.
UI_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

blp = Blueprint(
    "ui",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/ui/static",
)

# page name -> (title, template); the navigation shows them in this order.
PAGES = {
    "files": "Files",
    "history": "History",
    "indicators": "Indicators",
    "keys": "Keys",
    "admin": "Admin",
}


@blp.after_request
def _page_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = UI_CSP
    return response


def _page(name: str, title: str, scripts: tuple[str, ...] = (), **context) -> str:
    """A page and its scripts: api.js, then any it shares with other pages, then its own."""
    scripts = ("api", *scripts, name)
    return render_template(f"ui/{name}.html", page=name, title=title, pages=PAGES, scripts=scripts, **context)


@blp.get("/")
def home() -> Response:
    return redirect(url_for("ui.files"))


@blp.get("/signin")
def signin() -> str:
    return _page("signin", "Sign in")


@blp.get("/register")
def register() -> str:
    return _page("register", "Create an account", password_rule=PASSWORD_RULE)


@blp.get("/files")
def files() -> str:
    return _page("files", "Files", scripts=("live",))


@blp.get("/scans/<uuid:scan_id>")
def scan(scan_id) -> str:
    return _page("scan", "Scan", scripts=("live", "tables"), scan_id=scan_id)


@blp.get("/history")
def history() -> str:
    return _page("history", "History", statuses=STATUSES, verdicts=VERDICTS, sort_keys=SORT_KEYS)


@blp.get("/indicators")
def indicators() -> str:
    return _page("indicators", "Indicators")


@blp.get("/keys")
def keys() -> str:
    return _page("keys", "Keys")


@blp.get("/admin")
def admin() -> str:
    return _page(
        "admin", "Admin", actions=sorted({a.split(".")[0] for a in ACTIONS}) + list(ACTIONS), outcomes=OUTCOMES
    )
