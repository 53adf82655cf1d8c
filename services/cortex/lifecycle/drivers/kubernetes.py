"""The `kubernetes` driver: each replica a pod in one namespace, seen through a watch.

The pods it makes and the agents' anchor ConfigMaps are listed once and then watched (a list
again after the watch expires or fails), so `observe` reads a cache and each change wakes the
reconciler. What the API answers goes into what the reconciler sees: a pod that ended before it
was ever ready is a start failure of its agent; one that cannot be scheduled or pulled is the
agent's status reason; an API server that cannot be reached, or that refuses (403), blinds the
driver, and that is every such agent's status reason. None of it ends the lifecycle service.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import aiohttp
from kubernetes.aio import client
from kubernetes.aio import config as _config
from kubernetes.aio import watch as _watch

from cortex.contracts.registry import Health, ReplicaState
from cortex.kernel.logging import get_logger
from cortex.kernel.secrets import Sealer, sealed_values

from . import kubernetes_objects as objects
from .host import new_instance_id
from .port import (
    Observation,
    ObservedInstance,
    Placement,
    StartFailure,
    StartRequest,
)

log = get_logger()

# Parts of the client without type annotations; the models take plain dicts as well.
config: Any = _config
watch: Any = _watch

Manifest = dict[str, Any]

WATCH_SECONDS = 300
"""How long one watch request runs before it is renewed (the server ends it anyway)."""
MAX_BACKOFF = 30.0

_WAITING_REASONS = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
}
"""Why a container may never start that retrying in place will not fix by itself."""


def explain(exc: BaseException, action: str) -> str:
    """An API failure as an agent's status reason: what was refused and what to check."""
    if isinstance(exc, client.ApiException):
        why = _message(exc)
        if exc.status in (401, 403):
            return (
                f"the Kubernetes API refused to {action} ({exc.status} {exc.reason}): {why}; "
                "check the lifecycle service's Role in the agents' namespace"
            )
        return f"the Kubernetes API did not {action} ({exc.status} {exc.reason}): {why}"
    return f"the Kubernetes API could not be reached to {action}: {exc or type(exc).__name__}"


def _message(exc: client.ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except ValueError:
        return str(exc.body or exc.reason)


_API_ERRORS = (client.ApiException, aiohttp.ClientError, asyncio.TimeoutError, OSError)


@dataclass(frozen=True, slots=True)
class _Pod:
    name: str
    agent_id: str
    phase: str
    ready: bool
    ever_ready: bool
    deleting: bool
    node: str
    created: datetime | None
    reason: str | None
    """Why it is not running, where Kubernetes says."""


def _read_pod(raw: Manifest, before: _Pod | None) -> _Pod:
    meta, spec, status = raw.get("metadata", {}), raw.get("spec", {}), raw.get("status", {})
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready = conditions.get("Ready", {}).get("status") == "True"
    reason = None
    scheduled = conditions.get("PodScheduled", {})
    if scheduled.get("status") == "False":
        reason = f"not scheduled: {scheduled.get('message') or scheduled.get('reason')}"
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        waiting, ended = state.get("waiting"), state.get("terminated")
        if waiting and waiting.get("reason") in _WAITING_REASONS:
            reason = f"{waiting['reason']}: {waiting.get('message') or ''}".strip(": ")
        if ended:
            said = (ended.get("message") or "").strip().splitlines()
            reason = f"exited with code {ended.get('exitCode')}" + (
                f": {said[-1]}" if said else f" ({ended.get('reason')})"
            )
    created = meta.get("creationTimestamp")
    return _Pod(
        name=meta["name"],
        agent_id=(meta.get("labels") or {}).get(objects.AGENT_ID, ""),
        phase=status.get("phase") or "Pending",
        ready=ready,
        ever_ready=ready or bool(before and before.ever_ready),
        deleting=bool(meta.get("deletionTimestamp")),
        node=spec.get("nodeName") or "",
        created=datetime.fromisoformat(created) if isinstance(created, str) else created,
        reason=reason,
    )


def _instance(pod: _Pod) -> ObservedInstance:
    ended = pod.phase in ("Failed", "Succeeded")
    health: Health = (
        "gone" if ended else ("unhealthy" if pod.ever_ready and not pod.ready else "healthy")
    )
    state: ReplicaState
    if pod.deleting or ended:
        state = "stopping"
    elif pod.ready:
        state = "running"
    else:
        state = "starting"
    return ObservedInstance(
        id=pod.name,
        agent_id=pod.agent_id,
        host_id=f"node/{pod.node}" if pod.node else "unscheduled",
        health=health,
        state=state,
        started_at=pod.created,
    )


class KubernetesDriver:
    runtime = "kubernetes"

    def __init__(
        self,
        settings: objects.PodSettings,
        sealer: Sealer,
        kubeconfig: str = "",
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._settings = settings
        self._sealer = sealer
        self._kubeconfig = kubeconfig
        self._on_change = on_change
        self._api: client.ApiClient | None = None
        self._pods: dict[str, _Pod] = {}
        self._anchors: dict[str, Manifest] = {}
        """Anchor ConfigMaps by agent id."""
        self._unseen: dict[str, str | None] = dict.fromkeys(
            ("pods", "configmaps"), "the Kubernetes API has not been read yet"
        )
        """Why each kind watched is not known now (None: it is)."""
        self._reported: set[str] = set()
        """Pods whose end was reported as a start failure (each once)."""
        self._tasks: list[asyncio.Task[None]] = []

    # --- connection and watches -----------------------------------------------------------

    async def open(self) -> None:
        """Start watching. A client that cannot be configured (no kubeconfig there, not in a
        pod) leaves the driver blind, saying why, rather than failing the service."""
        configuration = client.Configuration()
        try:
            if self._kubeconfig:
                await config.load_kube_config(
                    config_file=self._kubeconfig, client_configuration=configuration
                )
            else:
                config.load_incluster_config(client_configuration=configuration)
        except Exception as exc:  # the loaders raise their own errors, OSError and ValueError
            where = self._kubeconfig or "the pod's service account (in-cluster)"
            why = f"the Kubernetes client cannot be configured from {where}: {exc}"
            self._unseen = dict.fromkeys(self._unseen, why)
            log.error("kubernetes driver not configured", error=why)
            return
        self._api = client.ApiClient(configuration)
        core = client.CoreV1Api(self._api)
        selector = objects.SELECTOR
        self._tasks = [
            asyncio.create_task(
                self._follow("pods", core.list_namespaced_pod, selector, self._pod_event)
            ),
            asyncio.create_task(
                self._follow(
                    "configmaps",
                    core.list_namespaced_config_map,
                    f"{selector},{objects.PART}=agent",
                    self._anchor_event,
                )
            ),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._api is not None:
            await cast(Any, self._api).close()

    @property
    def _core(self) -> client.CoreV1Api:
        assert self._api is not None, "open() first"
        return client.CoreV1Api(self._api)

    def _plain(self, obj: Any) -> Manifest:
        assert self._api is not None
        found: Manifest = cast(Any, self._api).sanitize_for_serialization(obj)
        return found

    async def _follow(
        self,
        kind: str,
        lister: Callable[..., Any],
        selector: str,
        apply: Callable[[str, Manifest], None],
    ) -> None:
        """List, then watch from the list's version; again from a list after any failure."""
        pause = 1.0
        ns = self._settings.namespace
        while True:
            try:
                listed = await lister(ns, label_selector=selector)
                apply("SYNC", {"items": [self._plain(i) for i in listed.items]})
                self._unseen[kind] = None
                self._on_change()
                pause = 1.0
                stream = watch.Watch()
                async for event in stream.stream(
                    lister,
                    ns,
                    label_selector=selector,
                    resource_version=listed.metadata.resource_version,
                    timeout_seconds=WATCH_SECONDS,
                ):
                    apply(event["type"], self._plain(event["object"]))
                    self._on_change()
            except asyncio.CancelledError:
                raise
            except _API_ERRORS as exc:
                if isinstance(exc, client.ApiException) and exc.status == 410:
                    continue  # the version listed is too old to watch from: list again
                self._unseen[kind] = why = explain(exc, f"list {kind} in namespace {ns}")
                log.warning("kubernetes watch failed", kind=kind, error=why)
                self._on_change()
                await asyncio.sleep(pause)
                pause = min(MAX_BACKOFF, pause * 2)

    def _pod_event(self, kind: str, raw: Manifest) -> None:
        if kind == "SYNC":
            self._pods = {
                p.name: p
                for p in (_read_pod(i, self._pods.get(i["metadata"]["name"])) for i in raw["items"])
            }
        elif kind == "DELETED":
            self._pods.pop(raw["metadata"]["name"], None)
        else:
            name = raw["metadata"]["name"]
            self._pods[name] = _read_pod(raw, self._pods.get(name))

    def _anchor_event(self, kind: str, raw: Manifest) -> None:
        def agent_of(anchor: Manifest) -> str:
            return str((anchor["metadata"].get("labels") or {}).get(objects.AGENT_ID, ""))

        if kind == "SYNC":
            self._anchors = {agent_of(a): a for a in raw["items"]}
        elif kind == "DELETED":
            if self._anchors.get(agent_of(raw), {}).get("metadata", {}).get("uid") == raw[
                "metadata"
            ].get("uid"):
                self._anchors.pop(agent_of(raw), None)
        else:
            self._anchors[agent_of(raw)] = raw

    # --- the port ---------------------------------------------------------------------------

    async def observe(self) -> Observation:
        blind = next((why for why in self._unseen.values() if why), None)
        if blind is not None:
            return Observation(blind=blind)
        instances, notes, failures = [], {}, []
        for pod in self._pods.values():
            instances.append(_instance(pod))
            if pod.reason and not pod.ready:
                notes[pod.agent_id] = f"replica {pod.name}: {pod.reason}"
            if pod.phase == "Failed" and not pod.ever_ready and pod.name not in self._reported:
                self._reported.add(pod.name)
                failures.append(
                    StartFailure(
                        agent_id=pod.agent_id,
                        agent_fault=True,
                        error=f"replica {pod.name} {pod.reason or 'failed before it was ready'}",
                    )
                )
        self._reported &= self._pods.keys()
        return Observation(instances=instances, notes=notes, failures=failures)

    async def start(
        self,
        requests: Sequence[StartRequest],
        observation: Observation,
        pending: Mapping[str, int],
    ) -> tuple[list[Placement], list[StartFailure]]:
        placements: list[Placement] = []
        failures: list[StartFailure] = []
        for request in requests:
            try:
                placements += await self._start(request)
            except _API_ERRORS as exc:
                # A refused object (422: a quantity Kubernetes cannot read, an image name it
                # rejects) is the template's; anything else is the cluster's, and retried.
                invalid = isinstance(exc, client.ApiException) and exc.status == 422
                failures.append(
                    StartFailure(
                        agent_id=request.agent.id,
                        agent_fault=invalid,
                        error=explain(exc, f"start a replica of {request.agent.name}"),
                    )
                )
        return placements, failures

    async def _start(self, request: StartRequest) -> list[Placement]:
        agent, template, ns = request.agent, request.template, self._settings.namespace
        owner = objects.owned_by(await self._anchor(request), agent)
        secrets = [
            (path, self._sealer.open(value, "$.config"))
            for path, value in sealed_values(request.config)
        ]
        made = objects.agent_config(agent, template, request.config, secrets, ns, owner)
        for body, create in (
            (made.config_map, self._core.create_namespaced_config_map),
            (made.secret, self._core.create_namespaced_secret),
        ):
            if body is not None:
                await _create(create, ns, body)
        placed = []
        for _ in range(request.count):
            instance_id = new_instance_id(agent.name)
            body = objects.pod(agent, template, instance_id, made, self._settings, owner)
            await self._core.create_namespaced_pod(ns, cast(Any, body))
            placed.append(Placement(agent_id=agent.id, instance_id=instance_id, host_id="pods"))
        return placed

    async def _anchor(self, request: StartRequest) -> str:
        """The uid of the agent's anchor, made if missing. One left by a deleted agent of the
        same name (the watch has not caught up, or it was never collected) is replaced."""
        agent, ns = request.agent, self._settings.namespace
        known = self._anchors.get(agent.id)
        if known is not None:
            return str(known["metadata"]["uid"])
        body = objects.anchor(agent, request.template, ns)
        try:
            made = await self._core.create_namespaced_config_map(ns, cast(Any, body))
        except client.ApiException as exc:
            if exc.status != 409:
                raise
            found = self._plain(await self._core.read_namespaced_config_map(agent.name, ns))
            if found.get("data", {}).get("agent-id") == agent.id:
                self._anchors[agent.id] = found
                return str(found["metadata"]["uid"])
            await self._core.delete_namespaced_config_map(
                agent.name, ns, propagation_policy="Background"
            )
            made = await self._core.create_namespaced_config_map(ns, cast(Any, body))
        plain = self._plain(made)
        self._anchors[agent.id] = plain
        return str(plain["metadata"]["uid"])

    async def stop(self, instances: Sequence[ObservedInstance], grace: float) -> None:
        ns = self._settings.namespace
        for instance in instances:
            try:
                await self._core.delete_namespaced_pod(
                    instance.id, ns, grace_period_seconds=math.ceil(grace)
                )
            except client.ApiException as exc:
                if exc.status != 404:
                    log.warning("pod not deleted", pod=instance.id, error=explain(exc, "delete"))
            except _API_ERRORS as exc:
                log.warning("pod not deleted", pod=instance.id, error=explain(exc, "delete"))

    async def release(self, wanted: set[str]) -> None:
        """Delete the anchor, and so everything else, of each agent that is not `wanted` and
        has no pod left; and pods that ended, which Kubernetes keeps until deleted."""
        ns = self._settings.namespace
        with_pods = {p.agent_id for p in self._pods.values()}
        for pod in list(self._pods.values()):
            if pod.phase in ("Failed", "Succeeded") and not pod.deleting:
                await self._quietly(self._core.delete_namespaced_pod(pod.name, ns), pod.name)
        for agent_id, anchor in list(self._anchors.items()):
            if agent_id in wanted or agent_id in with_pods:
                continue
            name = anchor["metadata"]["name"]
            uid = anchor["metadata"]["uid"]
            deleted = await self._quietly(
                self._core.delete_namespaced_config_map(
                    name,
                    ns,
                    propagation_policy="Background",
                    body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid)),
                ),
                name,
            )
            if deleted:
                self._anchors.pop(agent_id, None)

    async def _quietly(self, call: Any, name: str) -> bool:
        try:
            await call
        except client.ApiException as exc:
            if exc.status in (404, 409):
                return True
            log.warning("not deleted", name=name, error=explain(exc, "delete"))
            return False
        except _API_ERRORS as exc:
            log.warning("not deleted", name=name, error=explain(exc, "delete"))
            return False
        return True


async def _create(create: Callable[..., Any], namespace: str, body: Manifest) -> None:
    """Create an immutable object named by its content: one that exists already is the same."""
    try:
        await create(namespace, body)
    except client.ApiException as exc:
        if exc.status != 409:
            raise
