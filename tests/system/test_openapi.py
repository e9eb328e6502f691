def test_openapi_spec_lists_the_api_with_bearer_auth(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    spec = response.json
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path in ("/api/auth/login", "/api/keys/", "/api/files/upload", "/api/scan/{scan_id}/status"):
        assert path in spec["paths"], path


def test_swagger_ui_is_served(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    assert b"swagger" in response.data.lower()
