"""deploy/k8s runs on Kubernetes what docker-compose.yml runs on one machine.

No cluster: every manifest is validated against the Kubernetes API schemas that
`kubernetes-validate` ships (strict: an unknown or misspelt field fails), and the
manifests are compared with docker-compose.yml process by process (command, image,
environment, health check, grace period), so that the two cannot drift apart.
"""

from __future__ import annotations

import copy
import functools
import re
import shlex
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
OVERLAY = K8S / "overlays" / "example"

# The oldest Kubernetes the manifests are written for (docs/deploy.md), and the
# newest whose schemas the installed kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())

HTTP_SERVICES = ("identity", "crm", "routing")
# Settings whose value differs from compose's on purpose: Redis is external on
# Kubernetes (a cluster, its address and password in the Secret).
DIFFERENT = {"REDIS_URL"}
ADDED = {"REDIS_CLUSTER"}


@functools.cache
def parsed(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def load(path: Path) -> list[dict[str, Any]]:
    return copy.deepcopy(parsed(path))  # a test may change what it is given


def kustomization(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((folder / "kustomization.yaml").read_text())
    return data


def base_objects() -> list[dict[str, Any]]:
    return [doc for name in kustomization(BASE)["resources"] for doc in load(BASE / name)]


def overlay_objects() -> list[dict[str, Any]]:
    """The overlay's own whole resources (not the base, not its partial patches)."""
    return [
        doc
        for name in kustomization(OVERLAY)["resources"]
        if (OVERLAY / name).is_file()
        for doc in load(OVERLAY / name)
    ]


def compose() -> dict[str, Any]:
    services: dict[str, Any] = load(ROOT / "docker-compose.yml")[0]["services"]
    return services


def app_services() -> dict[str, Any]:
    """compose's services built from this repository's image (not redis, postgres, nginx)."""
    return {name: s for name, s in compose().items() if "build" in s}


def deployments() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in base_objects() if d["kind"] == "Deployment"}


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in base_objects() if d["kind"] == kind}


def pod(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def containers(deployment: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = pod(deployment)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def main_container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod(deployment)["containers"]
    return container  # type: ignore[no-any-return]


def secret_keys() -> set[str]:
    """The keys secrets.env.example documents, commented ones (given from a file) too."""
    text = (OVERLAY / "secrets.env.example").read_text()
    return set(re.findall(r"^(?:#\s*)?([A-Z][A-Z0-9_]+)=", text, flags=re.M))


def environment(container: dict[str, Any]) -> dict[str, str | None]:
    """The container's variables: ConfigMap values, Secret keys (value None), own env."""
    config = of_kind("ConfigMap")
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(config[source["configMapRef"]["name"]]["data"])
        else:
            assert source["secretRef"]["name"] == "switchboard-secrets"
            env.update(dict.fromkeys(secret_keys()))
    env.update({item["name"]: item["value"] for item in container.get("env", [])})
    return env


def compose_command(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return command if isinstance(command, list) else shlex.split(command)


def seconds(duration: str) -> int:
    assert duration.endswith("s"), duration
    return int(duration[:-1])


# --- the files themselves ------------------------------------------------------------


def test_the_base_lists_every_manifest_beside_it() -> None:
    listed = set(kustomization(BASE)["resources"])
    present = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_valid_for_kubernetes(version: str) -> None:
    objects = base_objects() + overlay_objects()
    assert len(objects) >= 20
    for obj in objects:
        # raises on an unknown field, a wrong type, a missing required field
        kubernetes_validate.validate(obj, version, strict=True)


def test_a_schema_violation_is_caught() -> None:
    """The validator really rejects a misspelt field (the test above is not vacuous)."""
    broken = deployments()["identity"]
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


def test_the_overlay_builds_on_the_base_and_patches_what_exists() -> None:
    overlay = kustomization(OVERLAY)
    assert "../../base" in overlay["resources"]
    names = {(d["kind"], d["metadata"]["name"]) for d in base_objects()}
    for patch in overlay["patches"]:
        for doc in load(OVERLAY / patch["path"]):
            assert (doc["kind"], doc["metadata"]["name"]) in names, patch
    images = {c["image"].split(":")[0] for d in deployments().values() for c in containers(d)}
    assert images == {image["name"] for image in overlay["images"]}
    ingress = next(d for d in overlay_objects() if d["kind"] == "Ingress")
    backends = {
        (path["backend"]["service"]["name"], path["backend"]["service"]["port"]["name"])
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {(name, "http") for name in HTTP_SERVICES}


def test_the_ingress_reads_requests_whole_like_the_compose_proxy() -> None:
    """Slow clients stop at the Ingress, as at nginx in compose (docs/architecture.md)."""
    ingress = next(d for d in overlay_objects() if d["kind"] == "Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "on"
    nginx = (ROOT / "deploy" / "nginx" / "nginx.conf").read_text()
    body = re.search(r"client_max_body_size (\S+);", nginx)
    assert body and annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == body[1]
    # the upstream timeouts too (routing's 20 s long-poll fits in the read timeout)
    for timeout in ("connect", "send", "read"):
        value = re.search(rf"proxy_{timeout}_timeout (\d+)s;", nginx)
        assert value, timeout
        assert annotations[f"nginx.ingress.kubernetes.io/proxy-{timeout}-timeout"] == value[1]


# --- the same processes as compose -----------------------------------------------------


def test_every_process_compose_runs_has_a_workload_with_its_command_and_image() -> None:
    workloads = deployments()
    apps = app_services()
    assert set(workloads) == set(apps) - {"crm-migrate"}
    for name, service in apps.items():
        if name == "crm-migrate":
            continue
        container = main_container(workloads[name])
        assert container["command"] == compose_command(service), name
        assert container["image"] == service["image"], name
        assert "args" not in container, name


def test_the_crm_migrations_run_before_whatever_compose_starts_after_them() -> None:
    """compose's crm-migrate runs to completion first; here an init container does."""
    after = {
        name
        for name, service in app_services().items()
        if "crm-migrate" in (service.get("depends_on") or {})
    }
    assert after == {"crm", "crm-consumer"}
    migrate = app_services()["crm-migrate"]
    for name, deployment in deployments().items():
        inits = {c["name"]: c for c in pod(deployment).get("initContainers", [])}
        assert ("crm-migrate" in inits) == (name in after), name
        if name in after:
            assert inits["crm-migrate"]["command"] == compose_command(migrate)
            assert inits["crm-migrate"]["image"] == migrate["image"]
            assert environment(inits["crm-migrate"]).keys() >= {"DATABASE_URL", "SB_ENV"}


def test_every_process_gets_composes_environment() -> None:
    workloads = deployments()
    secrets = secret_keys()
    config = of_kind("ConfigMap")["switchboard-config"]["data"]
    assert not secrets & config.keys(), "a secret in the ConfigMap"
    for name, service in app_services().items():
        if name == "crm-migrate":
            continue
        want: dict[str, str] = service["environment"]
        got = environment(main_container(workloads[name]))
        assert got.keys() == want.keys() | ADDED, name
        for key, value in want.items():
            required = re.search(r"\$\{\w+:\?", value)
            if required or key in DIFFERENT or key in secrets:  # the operator's
                assert key in secrets and got[key] is None, (name, key)
            else:  # a literal, or ${X:-default}: the same value
                assert got[key] == re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value), (name, key)


def test_http_services_have_probes_a_service_a_budget_and_an_autoscaler() -> None:
    workloads, services = deployments(), compose()
    pdbs, hpas, svcs = (
        of_kind("PodDisruptionBudget"),
        of_kind("HorizontalPodAutoscaler"),
        of_kind("Service"),
    )
    for name in HTTP_SERVICES:
        container = main_container(workloads[name])
        (port,) = services[name]["expose"]
        assert container["ports"] == [{"name": "http", "containerPort": int(port)}]
        # compose's healthcheck asks /readyz on the same port
        assert f"127.0.0.1:{port}/readyz" in " ".join(services[name]["healthcheck"]["test"])
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert svcs[name]["spec"]["ports"] == [
            {"name": "http", "port": int(port), "targetPort": "http"}
        ]
        selector = {"app.kubernetes.io/name": name}
        assert svcs[name]["spec"]["selector"] == selector
        assert workloads[name]["spec"]["template"]["metadata"]["labels"].items() >= (
            selector.items()
        )
        assert pdbs[name]["spec"]["selector"]["matchLabels"] == selector
        hpa = hpas[name]["spec"]
        assert hpa["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        # a voluntary disruption never takes the last pod
        assert hpa["minReplicas"] >= 2 and pdbs[name]["spec"]["maxUnavailable"] == 1
        # the autoscaler owns the count: a replicas here would reset it on each apply
        assert "replicas" not in workloads[name]["spec"]
        # the IDENTITY_URL, CRM_URL, ROUTING_URL the services call each other by
        config = of_kind("ConfigMap")["switchboard-config"]["data"]
        assert config[f"{name.upper()}_URL"] == f"http://{name}:{port}"
    assert set(pdbs) == set(hpas) == set(svcs) == set(HTTP_SERVICES)


def test_every_worker_has_composes_heartbeat_check_as_its_liveness_probe() -> None:
    services = compose()
    for name, deployment in deployments().items():
        if name in HTTP_SERVICES:
            continue
        container = main_container(deployment)
        probe = container["livenessProbe"]["exec"]["command"]
        assert probe[:4] == ["python", "-m", "shared.consumer_main", "healthy"], name
        check = services[name]["healthcheck"]
        assert check["test"] == ["CMD", *probe], name
        assert container["livenessProbe"]["periodSeconds"] == seconds(check["interval"])
        assert container["livenessProbe"]["timeoutSeconds"] == seconds(check["timeout"])
        assert container["startupProbe"]["exec"]["command"] == probe, name


def test_every_container_has_resource_requests_and_limits() -> None:
    for name, deployment in deployments().items():
        for container in containers(deployment):
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert set(resources[bound]) == {"cpu", "memory"}, (name, container["name"])


def test_every_process_is_given_at_least_composes_time_to_stop() -> None:
    services = compose()
    for name, deployment in deployments().items():
        grace = pod(deployment)["terminationGracePeriodSeconds"]
        assert grace >= seconds(services[name]["stop_grace_period"]), name


# --- restricted pods -------------------------------------------------------------------


def writable_paths(container: dict[str, Any]) -> set[str]:
    """Where the process writes: SB_VAR_DIR (relative to the image's WORKDIR), its
    heartbeat, the metrics directory, gunicorn's --worker-tmp-dir, /tmp."""
    workdir = re.search(r"^WORKDIR (\S+)", (ROOT / "Dockerfile").read_text(), flags=re.M)
    assert workdir
    env = environment(container)
    var = PurePosixPath(workdir[1]) / (env.get("SB_VAR_DIR") or "var")
    paths = {str(var), "/tmp"}
    if env.get("SB_HEARTBEAT_FILE"):
        paths.add(str(PurePosixPath(str(env["SB_HEARTBEAT_FILE"])).parent))
    if env.get("PROMETHEUS_MULTIPROC_DIR"):
        paths.add(str(env["PROMETHEUS_MULTIPROC_DIR"]))
    tmp_dir = re.search(r"--worker-tmp-dir (\S+)", " ".join(container["command"]))
    if tmp_dir:
        paths.add(tmp_dir[1])
    return paths


def test_pods_run_as_non_root_on_a_read_only_root_writing_only_to_empty_dirs() -> None:
    for name, deployment in deployments().items():
        spec = pod(deployment)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        empty = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in containers(deployment):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert set(mounts.values()) <= empty, name
            for path in writable_paths(container):
                assert any(PurePosixPath(path).is_relative_to(mount) for mount in mounts), (
                    name,
                    container["name"],
                    path,
                )
            # gunicorn's metrics directory must exist, not just be writable
            multiproc = environment(container).get("PROMETHEUS_MULTIPROC_DIR")
            assert not multiproc or multiproc in mounts, (name, container["name"])
