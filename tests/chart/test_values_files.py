"""The chart with each values file of charts/cortex/ci (minimal, production, TLS, external
NATS), rendered by real helm and validated against the schemas of Kubernetes 1.28 to 1.33;
then what each file is for, as its user would check it on the cluster."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.test_chart import (
    CHART,
    NAMESPACE,
    RELEASE,
    Doc,
    containers,
    helm,
    named,
    of_kind,
)
from tests.support.manifests import manifest_problems

ROOT = Path(__file__).resolve().parents[2]
VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
KUBERNETES = ["1.28.0", "1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0"]
DRIVER = ROOT / "services" / "cortex" / "lifecycle" / "drivers" / "kubernetes.py"


def rendered(name: str) -> list[Doc]:
    result = helm(
        "template", RELEASE, str(CHART), "--namespace", NAMESPACE, "-f", str(CHART / "ci" / name)
    )
    assert result.returncode == 0, f"helm template -f {name} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def files() -> dict[str, list[Doc]]:
    return {path.name: rendered(path.name) for path in VALUES}


def test_the_four_values_files_are_there() -> None:
    assert [p.name.removesuffix("-values.yaml") for p in VALUES] == [
        "external-nats",
        "minimal",
        "production",
        "tls",
    ]


@pytest.mark.parametrize("version", KUBERNETES)
@pytest.mark.parametrize("name", [p.name for p in VALUES])
def test_every_manifest_of_every_values_file_is_valid_kubernetes(
    files: dict[str, list[Doc]], name: str, version: str
) -> None:
    problems = manifest_problems(files[name], version)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", [p.name for p in VALUES])
def test_helm_lint_passes_strictly_with_each_values_file(name: str) -> None:
    result = helm("lint", str(CHART), "--strict", "-f", str(CHART / "ci" / name))
    assert result.returncode == 0, result.stdout + result.stderr


def deployments(docs: list[Doc]) -> dict[str, Doc]:
    return {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d
        for d in docs
        if d["kind"] == "Deployment"
    }


def env(container: Doc) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_production_keeps_every_process_up_through_disruptions_behind_network_policies(
    files: dict[str, list[Doc]],
) -> None:
    docs = files["production-values.yaml"]
    running = deployments(docs)
    assert set(running) == {"gateway", "registry", "lifecycle", "messaging", "workflow", "host"}
    budgets = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]
        for d in of_kind(docs, "PodDisruptionBudget")
    }
    assert budgets == set(running)
    policies = {d["metadata"]["name"]: d for d in of_kind(docs, "NetworkPolicy")}
    assert set(policies) == {RELEASE, f"{RELEASE}-agents", f"{RELEASE}-nats"}
    own = policies[RELEASE]["spec"]
    assert own["policyTypes"] == ["Ingress"]
    ports = sorted(rule["ports"][0]["port"] for rule in own["ingress"])
    assert ports == [8080, 9090]
    [metrics] = [r for r in own["ingress"] if r["ports"][0]["port"] == 9090]
    assert metrics["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }
    assert of_kind(docs, "ServiceMonitor")


def test_only_the_lifecycle_may_make_agents_and_only_what_its_driver_does(
    files: dict[str, list[Doc]],
) -> None:
    docs = files["production-values.yaml"]
    role = named(docs, "Role", f"{RELEASE}-agents")
    assert role["metadata"]["namespace"] == "cortex-agents"
    granted = {
        (verb, resource)
        for rule in role["rules"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    # What the driver's code calls: `<verb>_namespaced_<kind>`, and the watch over each list.
    calls = set(
        re.findall(
            r"(list|read|create|delete)_namespaced_(pod|config_map|secret)", DRIVER.read_text()
        )
    )
    resource = {"pod": "pods", "config_map": "configmaps", "secret": "secrets"}
    used = {("get" if verb == "read" else verb, resource[kind]) for verb, kind in calls}
    used |= {("watch", r) for v, r in used if v == "list"}
    assert granted == used
    binding = named(docs, "RoleBinding", f"{RELEASE}-agents")
    [subject] = binding["subjects"]
    assert (subject["name"], subject["namespace"]) == (f"{RELEASE}-lifecycle", NAMESPACE)
    accounts = {
        name: d["spec"]["template"]["spec"]["serviceAccountName"]
        for name, d in deployments(docs).items()
    }
    assert [n for n, a in accounts.items() if a == f"{RELEASE}-lifecycle"] == ["lifecycle"]
    lifecycle_env = env(containers(deployments(docs)["lifecycle"])[0])
    assert lifecycle_env["CORTEX_KUBERNETES_NAMESPACE"] == "cortex-agents"
    assert lifecycle_env["CORTEX_KUBERNETES_NKEY_SECRET"] == "cortex-nats-nkeys"
    agent_env = named(docs, "ConfigMap", lifecycle_env["CORTEX_KUBERNETES_ENV_CONFIG_MAP"])
    assert agent_env["metadata"]["namespace"] == "cortex-agents"
    assert agent_env["data"] == named(docs, "ConfigMap", f"{RELEASE}-env")["data"]
    agents_account = named(
        docs, "ServiceAccount", lifecycle_env["CORTEX_KUBERNETES_SERVICE_ACCOUNT"]
    )
    assert agents_account["automountServiceAccountToken"] is False
    # The agents' pods may reach NATS through its policy.
    [agents_rule] = [
        rule
        for rule in named(docs, "NetworkPolicy", f"{RELEASE}-nats")["spec"]["ingress"]
        if rule["from"][0]
        .get("namespaceSelector", {})
        .get("matchLabels", {})
        .get("kubernetes.io/metadata.name")
        == "cortex-agents"
    ]
    assert agents_rule["from"][0]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/managed-by": "cortex-lifecycle"
    }


def test_with_tls_every_process_trusts_the_nats_ca_from_its_secret(
    files: dict[str, list[Doc]],
) -> None:
    docs = files["tls-values.yaml"]
    for name, deployment in deployments(docs).items():
        [container] = containers(deployment)
        assert env(container)["CORTEX_NATS_TLS_CA"] == "/etc/cortex/nats-tls/ca.crt", name
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        assert volumes["nats-ca"]["secret"] == {
            "secretName": "nats-ca",
            "items": [{"key": "ca.crt", "path": "ca.crt"}],
        }
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["nats-ca"] == {
            "name": "nats-ca",
            "mountPath": "/etc/cortex/nats-tls",
            "readOnly": True,
        }
    config = named(docs, "ConfigMap", f"{RELEASE}-env")["data"]
    assert config["CORTEX_NATS_URL"] == "tls://nats.nats.svc:4222"
    lifecycle_env = env(containers(deployments(docs)["lifecycle"])[0])
    assert lifecycle_env["CORTEX_KUBERNETES_NATS_CA_SECRET"] == "nats-ca"
    assert named(docs, "Ingress", RELEASE)["spec"]["tls"]


def test_an_external_nats_is_what_every_process_connects_to(
    files: dict[str, list[Doc]],
) -> None:
    docs = files["external-nats-values.yaml"]
    config = named(docs, "ConfigMap", f"{RELEASE}-env")["data"]
    assert config["CORTEX_NATS_URL"] == "nats://nats.example.net:4222"
    assert config["CORTEX_NATS_REPLICAS"] == "1"
    assert not of_kind(docs, "NetworkPolicy")
    assert not of_kind(docs, "PodDisruptionBudget")  # one replica each: nothing to keep up
    for deployment in deployments(docs).values():
        assert deployment["spec"]["replicas"] == 1


def test_minimal_is_the_gateway_alone(files: dict[str, list[Doc]]) -> None:
    assert set(deployments(files["minimal-values.yaml"])) == {"gateway"}


def test_production_backs_up_nightly_as_the_operator_with_the_store_from_its_secret(
    files: dict[str, list[Doc]],
) -> None:
    assert not of_kind(files["minimal-values.yaml"], "CronJob")
    docs = files["production-values.yaml"]
    job = named(docs, "CronJob", f"{RELEASE}-backup")
    assert job["spec"]["schedule"] == "17 3 * * *"
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert "cortex admin backup" in container["args"][0]
    assert "-mtime +14 -delete" in container["args"][0]
    assert env(container)["CORTEX_STORE"] == {
        "secretKeyRef": {"name": "cortex-store", "key": "url"}
    }
    assert env(container)["CORTEX_NATS_NKEY"] == "/etc/cortex/nats/admin.nk"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["nats-nkey"]["secret"]["items"] == [{"key": "admin.nk", "path": "admin.nk"}]
    claim = named(docs, "PersistentVolumeClaim", f"{RELEASE}-backup")
    assert volumes["backup"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_a_backup_of_stores_inside_the_pods_is_refused() -> None:
    result = helm(
        "template", RELEASE, str(CHART), "-f", str(CHART / "ci" / "external-nats-values.yaml"),
        "--set", "backup.enabled=true",
    )  # fmt: skip
    assert result.returncode != 0
    assert "store.url is SQLite" in result.stderr
