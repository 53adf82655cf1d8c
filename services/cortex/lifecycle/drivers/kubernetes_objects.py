"""The Kubernetes objects an agent of runtime `kubernetes` is made of: pure functions, no API.

Per agent:
- an *anchor* ConfigMap named after the agent: the owner of everything else, so deleting it
  (when the agent is deleted or terminated) lets Kubernetes' garbage collector remove the rest;
- an immutable ConfigMap per config (`<agent>-<hash>`) with the replica's spec, secret values
  masked, and an immutable Secret beside it with those values, read through `secretKeyRef`;
- one Pod per replica, named by its instance id, running the template's image as an agent host
  dedicated to that one replica (`CORTEX_HOST_REPLICA`).

Why pods and not a Deployment: docs/kubernetes.md ("Agents as pods").
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import msgspec

from cortex.contracts.hosts import ReplicaSpec
from cortex.contracts.lifecycle import ResourceList, TemplateView
from cortex.kernel.secrets import ValuePath, mask
from cortex.kernel.settings import Settings

from ..projections import AgentRecord

Manifest = dict[str, Any]

GROUP = "cortex.codevald.dev"
AGENT_ID = f"{GROUP}/agent-id"
PART = f"{GROUP}/part"
MANAGED = {"app.kubernetes.io/managed-by": "cortex-lifecycle"}
SELECTOR = "app.kubernetes.io/managed-by=cortex-lifecycle"
"""Every object the driver makes carries this label: what it lists and watches."""

ADMIN_PORT = 9090
AGENT_DIR = "/etc/cortex/agent"
NKEY_DIR = "/etc/cortex/nats"
NATS_CA_DIR = "/etc/cortex/nats-tls"
REPLICA_FILE = "replica.json"
SECRET_KEY = "values.json"


@dataclass(frozen=True, slots=True)
class PodSettings:
    """What every agent pod shares, from the lifecycle's settings (`CORTEX_KUBERNETES_*`)."""

    namespace: str
    service_account: str = "cortex-agent"
    env_config_map: str = "cortex-agent-env"
    """A ConfigMap in the namespace whose keys become each pod's environment (NATS's URL,
    the subject prefix, TLS files...): the chart makes it."""
    nkey_secret: str = ""
    """A Secret in the namespace holding `host.nk`, the agent hosts' NATS seed; empty: none."""
    nats_ca_secret: str = ""
    """A Secret in the namespace holding `ca.crt`, the CA of NATS's TLS certificate, for a
    NATS whose CA the image does not trust already; empty: none."""
    image_pull_policy: str = "IfNotPresent"


def pod_settings(settings: Settings) -> PodSettings:
    return PodSettings(
        namespace=settings.kubernetes_namespace or "cortex-agents",
        service_account=settings.kubernetes_service_account,
        env_config_map=settings.kubernetes_env_config_map,
        nkey_secret=settings.kubernetes_nkey_secret,
        nats_ca_secret=settings.kubernetes_nats_ca_secret,
    )


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """One config of one agent as Kubernetes holds it."""

    name: str
    """Of the ConfigMap and of the Secret: `<agent>-<hash of what they hold>`."""
    config_map: Manifest
    secret: Manifest | None


def labels(agent: AgentRecord, template: TemplateView, part: str) -> dict[str, str]:
    found = {
        **MANAGED,
        "app.kubernetes.io/name": "cortex-agent",
        PART: part,
        f"{GROUP}/agent": agent.name,
        AGENT_ID: agent.id,
        f"{GROUP}/template": template.name,
        f"{GROUP}/template-version": template.version,
    }
    if agent.pool:
        found[f"{GROUP}/pool"] = agent.pool
    return found


def anchor(agent: AgentRecord, template: TemplateView, namespace: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": agent.name,
            "namespace": namespace,
            "labels": labels(agent, template, "agent"),
        },
        "data": {"agent-id": agent.id, "agent": agent.name},
    }


def owned_by(anchor_uid: str, agent: AgentRecord) -> list[Manifest]:
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": agent.name,
            "uid": anchor_uid,
            "blockOwnerDeletion": True,
        }
    ]


def replica_spec(agent: AgentRecord, template: TemplateView, config: dict[str, Any]) -> ReplicaSpec:
    """The spec each pod's host runs; its instance id is the pod's name, set by the host."""
    return ReplicaSpec(
        instance_id="",
        agent_id=agent.id,
        agent_name=agent.name,
        template=template.name,
        template_version=template.version,
        handler=template.handler or "",
        config=mask(config),
        concurrency=template.concurrency,
        max_deliveries=template.max_deliveries,
        startup_timeout=template.health.startup_timeout,
        stop_grace=template.health.stop_grace,
    )


def agent_config(
    agent: AgentRecord,
    template: TemplateView,
    config: dict[str, Any],
    secrets: list[tuple[ValuePath, Any]],
    namespace: str,
    owner: list[Manifest] | None = None,
) -> AgentConfig:
    """`config` as stored (secret values sealed); `secrets` those values opened, with where
    they go. Both objects are immutable and named by a hash of what they hold, so a changed
    config is a new pair and a running pod never sees its config change under it."""
    spec = msgspec.json.encode(replica_spec(agent, template, config)).decode()
    values = json.dumps([[list(path), value] for path, value in secrets], sort_keys=True)
    digest = hashlib.sha256(f"{agent.id}\0{spec}\0{values}".encode()).hexdigest()[:10]
    name = f"{agent.name}-{digest}"
    metadata: Manifest = {
        "name": name,
        "namespace": namespace,
        "labels": labels(agent, template, "config"),
    }
    if owner:
        metadata["ownerReferences"] = owner
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "immutable": True,
        "data": {REPLICA_FILE: spec},
    }
    secret = None
    if secrets:
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": metadata,
            "immutable": True,
            "type": "Opaque",
            "stringData": {SECRET_KEY: values},
        }
    return AgentConfig(name=name, config_map=config_map, secret=secret)


def _quantities(given: ResourceList) -> dict[str, str]:
    return {k: v for k, v in msgspec.structs.asdict(given).items() if v is not None}


def _mount_secret(
    mounts: list[Manifest],
    volumes: list[Manifest],
    name: str,
    secret: str,
    key: str,
    directory: str,
    mode: int | None = None,
) -> None:
    """One key of a Secret as a read-only file `<directory>/<key>` in the container."""
    source: Manifest = {"secretName": secret, "items": [{"key": key, "path": key}]}
    if mode is not None:
        source["defaultMode"] = mode
    mounts.append({"name": name, "mountPath": directory, "readOnly": True})
    volumes.append({"name": name, "secret": source})


def _env(name: str, value: str) -> Manifest:
    return {"name": name, "value": value}


def pod(
    agent: AgentRecord,
    template: TemplateView,
    instance_id: str,
    config: AgentConfig,
    settings: PodSettings,
    owner: list[Manifest] | None = None,
) -> Manifest:
    health = template.health
    env = [
        {"name": "CORTEX_HOST_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        _env("CORTEX_HOST_REPLICA", f"{AGENT_DIR}/{REPLICA_FILE}"),
        _env("CORTEX_HOST_CAPACITY", "1"),
        _env("CORTEX_ADMIN_HOST", "0.0.0.0"),
        _env("CORTEX_ADMIN_PORT", str(ADMIN_PORT)),
        _env("CORTEX_SHUTDOWN_GRACE", f"{health.stop_grace:g}"),
        # The image is the agent's code: its handler's package is where code may come from.
        _env("CORTEX_AGENT_MODULES", (template.handler or "").partition(":")[0].split(".")[0]),
    ]
    if config.secret is not None:
        env.append(
            {
                "name": "CORTEX_HOST_SECRET_VALUES",
                "valueFrom": {"secretKeyRef": {"name": config.name, "key": SECRET_KEY}},
            }
        )
    mounts: list[Manifest] = [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "agent", "mountPath": AGENT_DIR, "readOnly": True},
    ]
    volumes: list[Manifest] = [
        {"name": "tmp", "emptyDir": {}},
        {"name": "agent", "configMap": {"name": config.name}},
    ]
    if settings.nkey_secret:
        env += [
            _env("CORTEX_NATS_NKEY", f"{NKEY_DIR}/host.nk"),
            _env("CORTEX_NATS_INBOX_PREFIX", "_CORTEX.host"),
        ]
        _mount_secret(mounts, volumes, "nkey", settings.nkey_secret, "host.nk", NKEY_DIR, 0o400)
    if settings.nats_ca_secret:
        env.append(_env("CORTEX_NATS_TLS_CA", f"{NATS_CA_DIR}/ca.crt"))
        _mount_secret(mounts, volumes, "nats-ca", settings.nats_ca_secret, "ca.crt", NATS_CA_DIR)
    resources = {
        kind: found
        for kind, given in (
            ("requests", template.resources.requests),
            ("limits", template.resources.limits),
        )
        if (found := _quantities(given))
    }
    container: Manifest = {
        "name": "agent",
        "image": template.image or "",
        "imagePullPolicy": settings.image_pull_policy,
        "args": ["cortex.host"],
        "envFrom": [{"configMapRef": {"name": settings.env_config_map}}],
        "env": env,
        "ports": [{"name": "admin", "containerPort": ADMIN_PORT, "protocol": "TCP"}],
        # Up while the process answers; ready once the replica's `on_start` is done.
        "startupProbe": {
            "httpGet": {"path": "/health", "port": "admin"},
            "periodSeconds": 2,
            "failureThreshold": 30,
        },
        "readinessProbe": {
            "httpGet": {"path": "/ready", "port": "admin"},
            "periodSeconds": 2,
            "timeoutSeconds": 2,
            "failureThreshold": 2,
        },
        "livenessProbe": {
            "httpGet": {"path": "/health", "port": "admin"},
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        # The start error, or the last lines of output, become the pod's termination message:
        # what the agent's status reason shows when it fails to start.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }
    if resources:
        container["resources"] = resources
    metadata: Manifest = {
        "name": instance_id,
        "namespace": settings.namespace,
        "labels": labels(agent, template, "replica"),
        "annotations": {
            f"{GROUP}/config": config.name,
            # As the chart's pods: Prometheus's pod discovery scrapes the host's metrics.
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(ADMIN_PORT),
            "prometheus.io/path": "/metrics",
        },
    }
    if owner:
        metadata["ownerReferences"] = owner
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            # The reconciler replaces a replica that ended; a kubelet restarting it in place
            # would be a second controller with its own backoff, hiding start failures.
            "restartPolicy": "Never",
            "serviceAccountName": settings.service_account,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": math.ceil(health.stop_grace),
            "securityContext": {
                "runAsNonRoot": True,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
            "volumes": volumes,
        },
    }


def preview(
    agent: AgentRecord,
    template: TemplateView,
    config: dict[str, Any],
    secret_paths: list[ValuePath],
    settings: PodSettings,
    instance_id: str,
) -> list[Manifest]:
    """What the driver would apply for the agent and its first replica (dry runs): secret
    values shown as `***`, and no owner references (the anchor's uid is the server's)."""
    shown = agent_config(
        agent, template, config, [(p, "***") for p in secret_paths], settings.namespace
    )
    objects = [anchor(agent, template, settings.namespace), shown.config_map]
    if shown.secret is not None:
        objects.append(shown.secret)
    objects.append(pod(agent, template, instance_id, shown, settings))
    return objects
