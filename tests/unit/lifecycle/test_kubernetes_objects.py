"""From template and agent to the Kubernetes objects the `kubernetes` driver applies.

Every object is validated against the schemas of Kubernetes 1.28 to 1.33 (kubernetes-validate,
strict: an unknown field fails), then what a user of the cluster notices is checked: requests
and limits, labels, probes on the admin port, secret values only in a Secret, the grace period.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from cortex.contracts.hosts import ReplicaSpec
from cortex.contracts.lifecycle import TemplateView
from cortex.lifecycle.drivers import kubernetes_objects as objects
from cortex.lifecycle.projections import AgentRecord
from tests.support import lifecycle_records as records
from tests.support.manifests import manifest_problems

KUBERNETES = ["1.28.0", "1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0"]
SEALED = "cortex-sealed:v1:AAAA"
SETTINGS = objects.PodSettings(
    namespace="agents", nkey_secret="cortex-nats-host", nats_ca_secret="nats-ca"
)


def template(**changes: Any) -> TemplateView:
    return records.template(
        **{
            "resources": {
                "requests": {"cpu": "250m", "memory": "256Mi"},
                "limits": {"memory": "512Mi"},
            },
            "health": {"startup_timeout": 20, "stop_grace": 45.5},
            "concurrency": 4,
            **changes,
        }
    )


def agent(**changes: Any) -> AgentRecord:
    return records.agent(
        **{
            "replicas": 2,
            "config": {"model": "small", "auth": {"token": SEALED}},
            "pool": "eu",
            **changes,
        }
    )


def build(
    a: AgentRecord | None = None, t: TemplateView | None = None
) -> tuple[objects.AgentConfig, dict[str, Any]]:
    a, t = a or agent(), t or template()
    made = objects.agent_config(a, t, a.config, [(("auth", "token"), "sk-live-1")], "agents")
    return made, objects.pod(a, t, "summarizer-eu-0a1b2c3d", made, SETTINGS)


def container(pod: dict[str, Any]) -> dict[str, Any]:
    [only] = pod["spec"]["containers"]
    return only


def every_object() -> list[dict[str, Any]]:
    owner = objects.owned_by("9f1c2b3a-0000-4000-8000-000000000001", agent())
    made = objects.agent_config(
        agent(), template(), agent().config, [(("auth", "token"), "x")], "agents", owner
    )
    assert made.secret is not None
    plain = objects.agent_config(
        agent(config={"model": "small"}), template(resources={}), {"model": "small"}, [], "agents"
    )
    return [
        objects.anchor(agent(), template(), "agents"),
        made.config_map,
        made.secret,
        objects.pod(agent(), template(), "summarizer-eu-0a1b2c3d", made, SETTINGS, owner),
        objects.pod(
            agent(pool=None),
            template(resources={}),
            "summarizer-eu-9f8e7d6c",
            plain,
            objects.PodSettings(namespace="agents"),
        ),
        *objects.preview(
            agent(), template(), agent().config, [("auth", "token")], SETTINGS, "summarizer-eu-1"
        ),
    ]


@pytest.mark.parametrize("version", KUBERNETES)
def test_every_object_the_driver_makes_is_valid_kubernetes(version: str) -> None:
    problems = manifest_problems(every_object(), version)
    assert not problems, "\n".join(problems)


def test_the_templates_resources_become_requests_and_limits() -> None:
    _, pod = build()
    assert container(pod)["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"memory": "512Mi"},
    }
    _, bare = build(t=template(resources={}))
    assert "resources" not in container(bare)


def test_labels_name_the_agent_its_template_and_its_pool() -> None:
    made, pod = build()
    for doc in (pod, made.config_map, objects.anchor(agent(), template(), "agents")):
        found = doc["metadata"]["labels"]
        assert found["cortex.codevald.dev/agent"] == "summarizer-eu"
        assert found["cortex.codevald.dev/agent-id"] == agent().id
        assert found["cortex.codevald.dev/template"] == "summarizer"
        assert found["cortex.codevald.dev/template-version"] == "3"
        assert found["cortex.codevald.dev/pool"] == "eu"
        assert found["app.kubernetes.io/managed-by"] == "cortex-lifecycle"
    _, unpooled = build(a=agent(pool=None))
    assert "cortex.codevald.dev/pool" not in unpooled["metadata"]["labels"]


def test_probes_and_metrics_scraping_point_at_the_hosts_admin_port() -> None:
    _, pod = build()
    c = container(pod)
    assert c["ports"] == [{"name": "admin", "containerPort": 9090, "protocol": "TCP"}]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["CORTEX_ADMIN_PORT"] == "9090"
    assert env["CORTEX_ADMIN_HOST"] == "0.0.0.0"
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "admin"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": "admin"}
    assert c["startupProbe"]["httpGet"] == {"path": "/health", "port": "admin"}
    annotations = pod["metadata"]["annotations"]
    assert (annotations["prometheus.io/port"], annotations["prometheus.io/path"]) == (
        "9090",
        "/metrics",
    )


def test_the_pod_runs_the_templates_image_as_a_host_for_its_one_replica() -> None:
    made, pod = build()
    c = container(pod)
    assert c["image"] == "registry.example/summarizer:1.4"
    assert c["args"] == ["cortex.host"]
    env = {e["name"]: e for e in c["env"]}
    assert env["CORTEX_HOST_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["CORTEX_HOST_REPLICA"]["value"] == "/etc/cortex/agent/replica.json"
    assert {"name": "agent", "configMap": {"name": made.name}} in pod["spec"]["volumes"]
    spec = msgspec.json.decode(made.config_map["data"]["replica.json"], type=ReplicaSpec)
    assert (spec.agent_id, spec.handler, spec.concurrency) == (
        agent().id,
        "summarizer.agent:Summarizer",
        4,
    )
    assert pod["spec"]["restartPolicy"] == "Never"


def test_secret_values_are_only_in_the_secret_and_reach_the_pod_by_secret_key_ref() -> None:
    made, pod = build()
    everything_but_the_secret = json.dumps([made.config_map, pod])
    assert "sk-live-1" not in everything_but_the_secret
    assert SEALED not in everything_but_the_secret
    spec = msgspec.json.decode(made.config_map["data"]["replica.json"], type=ReplicaSpec)
    assert spec.config == {"model": "small", "auth": {"token": "***"}}
    assert made.secret is not None
    assert json.loads(made.secret["stringData"]["values.json"]) == [
        [["auth", "token"], "sk-live-1"]
    ]
    env = {e["name"]: e for e in container(pod)["env"]}
    assert env["CORTEX_HOST_SECRET_VALUES"]["valueFrom"] == {
        "secretKeyRef": {"name": made.name, "key": "values.json"}
    }
    plain = objects.agent_config(
        agent(config={"model": "small"}), template(), {"model": "small"}, [], "agents"
    )
    assert plain.secret is None


def test_a_changed_config_is_a_new_immutable_pair_and_the_same_config_the_same() -> None:
    first, _ = build()
    again, _ = build()
    changed, _ = build(a=agent(config={"model": "large", "auth": {"token": SEALED}}))
    assert first.name == again.name
    assert changed.name != first.name
    assert first.name.startswith("summarizer-eu-")
    assert first.config_map["immutable"] is True
    assert first.secret is not None
    assert first.secret["immutable"] is True


def test_everything_but_the_anchor_is_owned_by_the_anchor() -> None:
    owner = objects.owned_by("uid-1", agent())
    made = objects.agent_config(agent(), template(), agent().config, [], "agents", owner)
    pod = objects.pod(agent(), template(), "summarizer-eu-1", made, SETTINGS, owner)
    for doc in (made.config_map, pod):
        [ref] = doc["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["uid"]) == ("ConfigMap", "summarizer-eu", "uid-1")
    assert "ownerReferences" not in objects.anchor(agent(), template(), "agents")["metadata"]


def test_a_terminated_pod_gets_the_templates_grace_and_runs_unprivileged() -> None:
    _, pod = build()
    assert pod["spec"]["terminationGracePeriodSeconds"] == 46
    assert {"name": "CORTEX_SHUTDOWN_GRACE", "value": "45.5"} in container(pod)["env"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container(pod)["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["spec"]["automountServiceAccountToken"] is False


def test_the_nats_seed_and_ca_are_mounted_only_when_their_secrets_are_named() -> None:
    _, pod = build()
    env = {e["name"]: e.get("value") for e in container(pod)["env"]}
    assert env["CORTEX_NATS_NKEY"] == "/etc/cortex/nats/host.nk"
    assert env["CORTEX_NATS_TLS_CA"] == "/etc/cortex/nats-tls/ca.crt"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["nkey"]["secret"]["secretName"] == "cortex-nats-host"
    assert volumes["nats-ca"]["secret"]["secretName"] == "nats-ca"
    made, _ = build()
    bare = objects.pod(agent(), template(), "x-1", made, objects.PodSettings(namespace="agents"))
    names = {e["name"] for e in container(bare)["env"]}
    assert not names & {"CORTEX_NATS_NKEY", "CORTEX_NATS_TLS_CA"}


def test_a_dry_run_shows_secret_values_masked_and_no_owner() -> None:
    shown = objects.preview(
        agent(), template(), agent().config, [("auth", "token")], SETTINGS, "summarizer-eu-1"
    )
    assert [d["kind"] for d in shown] == ["ConfigMap", "ConfigMap", "Secret", "Pod"]
    assert json.loads(shown[2]["stringData"]["values.json"]) == [[["auth", "token"], "***"]]
    assert not any("ownerReferences" in d["metadata"] for d in shown)
