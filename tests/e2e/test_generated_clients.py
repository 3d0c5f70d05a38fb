"""API.md A: "a client generated from [the OpenAPI document] (openapi-python-client) works
without hand edits". The product runs as `make run` starts it; a client is generated for
each service from the document it serves (openapi-python-client runs ruff on its output)
and used as an integrator would: a verification started and checked, the JWKS read, a
profile resolved, a task created."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from tests.conftest import API_KEYS
from tests.e2e.product import Product, start_product

BIN = Path(sys.executable).parent  # openapi-python-client and ruff, from the dev extra


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    running = start_product(Path(tmp_path_factory.mktemp("product")), workers=1)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def clients(product: Product, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """service -> name of the package generated for it, importable from a temp dir."""
    out = tmp_path_factory.mktemp("generated")
    names: dict[str, str] = {}
    for service, url in product.urls.items():
        document = httpx.get(f"{url}/openapi.json", timeout=30)
        validate(document.json())
        path = out / f"{service}.json"
        path.write_bytes(document.content)
        name = f"sb_{service}_client_{uuid.uuid4().hex[:8]}"
        done = subprocess.run(
            [str(BIN / "openapi-python-client"), "generate", "--path", str(path)]
            + ["--meta", "none", "--output-path", str(out / name)],
            env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        # A document the generator had to guess at is reported as a warning.
        assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
        names[service] = name
    sys.path.insert(0, str(out))
    return names


def module(package: str, name: str) -> ModuleType:
    return importlib.import_module(f"{package}.{name}")


def client(package: str, url: str, scope: str) -> Any:
    return module(package, "client").AuthenticatedClient(
        base_url=url, token=API_KEYS[scope], raise_on_unexpected_status=True
    )


def test_a_verification_is_started_and_checked_with_the_generated_client(
    product: Product, clients: dict[str, str]
) -> None:
    pkg, url = clients["identity"], product.urls["identity"]
    api, models = f"{pkg}.api.identity", module(pkg, "models")
    channel = client(pkg, url, "channel")
    customer = f"c-gen-{uuid.uuid4().hex[:8]}"

    enrolled = module(api, "enroll_factor").sync_detailed(
        customer,
        client=channel,
        body=models.Enroll.from_dict({"type": "kba", "answers": {"first_pet": "rex"}}),
    )
    assert enrolled.status_code == 201, enrolled.content

    started = module(api, "start_verification").sync_detailed(
        client=channel,
        body=models.Start.from_dict({"customer_id": customer, "channel": "chat"}),
        x_request_id="gen-client-1",
    )
    assert started.status_code == 201, started.content
    assert started.headers["X-Request-ID"] == "gen-client-1"
    verification = started.parsed
    assert isinstance(verification, models.Verification)
    assert verification.status == "pending"

    checked = module(api, "check_verification").sync_detailed(
        verification.verification_id,
        client=channel,
        body=models.Check.from_dict({"factor": "kba", "answers": {"first_pet": "rex"}}),
        idempotency_key=uuid.uuid4().hex,
    )
    assert checked.status_code == 200, checked.content
    assert isinstance(checked.parsed, models.Verification)
    assert "kba" in checked.parsed.satisfied_factors

    # A documented error arrives parsed as the problem document.
    missing = module(api, "get_verification").sync_detailed("v-unknown", client=channel)
    assert missing.status_code == 404
    assert isinstance(missing.parsed, models.Problem)
    assert missing.parsed.status == 404

    keys = module(f"{pkg}.api.well_known", "get_jwks").sync(
        client=module(pkg, "client").Client(base_url=url)
    )
    assert keys is not None and keys.keys
    assert isinstance(keys.keys[0].kid, str) and keys.keys[0].kid
    assert keys.keys[0].kty in ("OKP", "EC")


def test_a_profile_is_resolved_with_the_generated_client(
    product: Product, clients: dict[str, str]
) -> None:
    pkg, url = clients["crm"], product.urls["crm"]
    models = module(pkg, "models")
    phone = f"+86138{uuid.uuid4().int % 10**8:08d}"
    resolve = module(f"{pkg}.api.crm", "resolve_profile")
    body = models.Resolve.from_dict(
        {"identifiers": [{"type": "phone", "value": phone}], "create": True}
    )
    created = resolve.sync_detailed(client=client(pkg, url, "channel"), body=body)
    assert created.status_code == 201, created.content
    again = resolve.sync_detailed(client=client(pkg, url, "channel"), body=body)
    assert again.status_code == 200, again.content
    assert isinstance(again.parsed, models.Profile)
    assert again.parsed.id == created.parsed.id


def test_a_task_is_created_with_the_generated_client(
    product: Product, clients: dict[str, str]
) -> None:
    pkg, url = clients["routing"], product.urls["routing"]
    models = module(pkg, "models")
    created = module(f"{pkg}.api.routing", "create_task").sync_detailed(
        client=client(pkg, url, "channel"),
        body=models.TaskIn.from_dict({"channel": "chat", "customer_id": "c-gen-task"}),
    )
    assert created.status_code == 201, created.content
    task = created.parsed
    assert isinstance(task, models.Task)
    fetched = module(f"{pkg}.api.routing", "get_task").sync(
        task.task_id, client=client(pkg, url, "channel")
    )
    assert fetched is not None and fetched.task_id == task.task_id
