"""API.md A, "OpenAPI tells the truth": every service's document is valid OpenAPI 3 and
says what the kernel answers. The statuses an operation really answers are checked by the
contract fuzz (tests/e2e/test_contract_fuzz.py, schemathesis' status check); this checks
the rules the shared machinery (shared/openapi.py) applies to every operation, old or new."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from openapi_spec_validator import validate

from shared.config import Settings
from shared.errors import PROBLEM_MIMETYPE

SERVICES = ["identity", "crm", "routing"]
METHODS = {"get", "put", "post", "patch", "delete"}


@pytest.fixture(params=SERVICES)
def document(request: pytest.FixtureRequest, make_settings: Callable[..., Settings]) -> Any:
    module = __import__(f"services.{request.param}.app", fromlist=["create_app"])
    app = module.create_app(make_settings(request.param))
    answer = app.test_client().get("/openapi.json")
    assert answer.status_code == 200
    return answer.get_json()


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        section, kind, name = node["$ref"].removeprefix("#/").split("/")
        node = spec[section][kind][name]
    return node


def parameters(spec: dict[str, Any], path: str, operation: dict[str, Any]) -> dict[str, Any]:
    found = [*spec["paths"][path].get("parameters", []), *operation.get("parameters", [])]
    return {(p := resolve(spec, raw))["name"]: p for raw in found}


def test_the_document_is_valid_openapi(document: Any) -> None:
    validate(document)


def test_every_operation_has_a_unique_readable_operation_id(document: Any) -> None:
    ids = [op.get("operationId") for _, _, op in operations(document)]
    assert all(isinstance(i, str) and i[:1].islower() and i.isalnum() for i in ids), ids
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_no_status_is_declared_that_the_service_never_sends(document: Any) -> None:
    for path, method, operation in operations(document):
        codes = set(operation["responses"])
        assert "422" not in codes, (method, path)  # validation answers 400
        assert "default" not in codes, (method, path)  # a catch-all hides the real ones


def test_errors_are_problem_documents_with_their_headers(document: Any) -> None:
    for path, method, operation in operations(document):
        for code, raw in operation["responses"].items():
            response = resolve(document, raw)
            assert "X-Request-ID" in response.get("headers", {}), (method, path, code)
            if path == "/readyz":
                continue  # its 503 is the readiness report itself, not a problem
            if int(code) >= 300:
                content = response["content"]
                assert list(content) == [PROBLEM_MIMETYPE], (method, path, code)
                schema = resolve(document, content[PROBLEM_MIMETYPE]["schema"])
                assert {"type", "title", "status", "detail"} <= set(schema["required"])
            if code in ("429", "503"):
                assert "Retry-After" in response["headers"], (method, path, code)


def test_input_auth_and_body_statuses_are_declared(document: Any) -> None:
    for path, method, operation in operations(document):
        codes = set(operation["responses"])
        params = parameters(document, path, operation)
        assert "X-Request-ID" in params, (method, path)
        takes_input = "requestBody" in operation or any(
            p["in"] != "header" or p["name"] == "Idempotency-Key" for p in params.values()
        )
        if takes_input:
            assert "400" in codes, (method, path)
        scoped = bool(operation.get("security", document.get("security")))
        if scoped:
            assert {"401", "403"} <= codes, (method, path)
        if method in ("post", "put", "patch"):
            assert {"400", "413", "415"} <= codes, (method, path)
        if method == "post" and scoped:
            assert "Idempotency-Key" in params, (method, path)
            assert "409" in codes, (method, path)
        if any(p["in"] == "path" for p in params.values()):
            assert "404" in codes, (method, path)
        if path != "/healthz":
            assert "503" in codes, (method, path)


def test_operations_no_scope_guards_take_no_api_key(document: Any) -> None:
    public = {path for path, _, op in operations(document) if op.get("security") == []}
    assert {"/healthz", "/readyz", "/metrics"} <= public
    for path, _, operation in operations(document):
        if path in public:
            assert "401" not in operation["responses"] or path == "/v1/documents/callback"
            assert "Idempotency-Key" not in parameters(document, path, operation), path


def test_route_specific_statuses_are_declared(make_settings: Callable[..., Settings]) -> None:
    from services.crm.app import create_app as crm_app
    from services.identity.app import create_app as identity_app

    identity = identity_app(make_settings("identity")).test_client().get("/openapi.json").json
    crm = crm_app(make_settings("crm")).test_client().get("/openapi.json").json
    assert identity is not None and crm is not None

    def codes(spec: dict[str, Any], operation_id: str) -> set[str]:
        (op,) = [op for _, _, op in operations(spec) if op["operationId"] == operation_id]
        return set(op["responses"])

    assert "423" in codes(identity, "checkVerification")
    assert "429" in codes(identity, "sendChallenge")
    assert "401" in codes(identity, "documentCallback")
    assert "429" in codes(crm, "lookupCase")
    assert "308" in codes(crm, "getProfile")


def test_jwks_keys_are_typed_ed25519_jwks(make_settings: Callable[..., Settings]) -> None:
    from services.identity.app import create_app

    client = create_app(make_settings("identity")).test_client()
    spec = client.get("/openapi.json").json
    assert spec is not None
    keys = resolve(spec, spec["components"]["schemas"]["Jwks"])["properties"]["keys"]
    jwk = resolve(spec, keys["items"])
    assert {"kty", "crv", "x", "kid", "alg", "use"} <= set(jwk["required"])
    served = client.get("/.well-known/jwks.json").json
    assert served is not None and served["keys"]
    for key in served["keys"]:
        assert set(key) <= set(jwk["properties"])
        assert key["kty"] in jwk["properties"]["kty"]["enum"]
