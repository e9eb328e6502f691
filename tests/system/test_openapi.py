from html.parser import HTMLParser


def test_openapi_spec_lists_the_api_with_bearer_auth(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    spec = response.json
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path in ("/api/auth/login", "/api/keys/", "/api/files/upload", "/api/scan/{scan_id}/status"):
        assert path in spec["paths"], path


def _references(html: str) -> list[str]:
    """Every URL the page makes a browser load (scripts, styles, icons, images)."""
    found: list[str] = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            for name in ("src", "href"):
                if attrs.get(name):
                    found.append(attrs[name])

    Collector().feed(html)
    return found


def test_swagger_ui_loads_every_asset_from_the_app_itself(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    references = _references(page.get_data(as_text=True))
    assert any(ref.endswith("swagger-ui-bundle.js") for ref in references)
    assert any(ref.endswith("swagger-ui.css") for ref in references)
    for ref in references:
        assert ref.startswith("/api/docs/"), f"{ref} is not served by the app"
        with client.get(ref) as asset:
            assert asset.status_code == 200, ref
            assert len(asset.data) > 0, ref
    # No inline script: the page's own start-up is a file the policy allows as 'self'.
    assert "<script>" not in page.get_data(as_text=True)
    with client.get("/api/docs/swagger-init.js") as response:
        init = response.get_data(as_text=True)
    assert "SwaggerUIBundle" in init and "validatorUrl: null" in init
    # The page names the document it shows, and that document is there.
    assert 'data-spec-url="/api/openapi.json"' in page.get_data(as_text=True)


def test_docs_policy_allows_this_site_alone(client):
    policy = client.get("/api/docs").headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["default-src"] == "'none'"
    assert "http" not in policy and "unsafe" not in policy
    # Data answers keep the policy that allows nothing.
    assert client.get("/api/health").headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_files_outside_the_docs_are_not_served(client):
    for name in ("index.html", "swagger-ui.js.map", "..%2Fconfig.py", "LICENSE"):
        response = client.get(f"/api/docs/{name}")
        assert response.status_code == 404, name
        assert response.json["error"]["code"]
