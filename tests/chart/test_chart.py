"""The Helm chart in charts/cortex, checked as its user would meet it.

`helm lint`, `helm template` with the default values and with everything enabled, every rendered
manifest validated against the Kubernetes schemas (`kubernetes-validate --strict`), then what a
user notices: probes on the admin port, non-root pods, where NATS and the secrets come from, one
Deployment per process, rollouts and disruption budgets that keep a replica up, and Grafana
dashboards whose queries name only metrics that exist.

helm comes from `tools/fetch-helm.sh` (into the virtualenv's bin/); without it these tests fail.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cortex.kernel.metrics import CATALOGUE
from cortex.kernel.metrics_doc import load_everything
from tests.support.manifests import manifest_problems

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "cortex"
DASHBOARDS = sorted((CHART / "dashboards").glob("*.json"))
HELM = Path(sys.executable).parent / "helm"
RELEASE = "cortex"
NAMESPACE = "cortex"

ADMIN_PORT = 9090
SERVICES = ("registry", "lifecycle", "messaging", "workflow")
EVERY_PROCESS = ("gateway", *SERVICES, "host")

# Prometheus adds `instance` and `job` to every scraped series; `cortex up`'s targets file and
# the chart's ServiceMonitor add `component` and `process`.
TARGET_LABELS = frozenset({"instance", "job", "component", "process"})
NATS_MONITOR_URLS = "{http://nats-0.nats-headless:8222,http://nats-1.nats-headless:8222}"
DASHBOARD_NAMES = ("overview", "agents", "messaging", "workflows", "infrastructure")

CUSTOM_NATS_URL = "nats://nats.messaging.svc:4222"
ALL_ENABLED = (
    *(f"services.{name}.enabled=true" for name in SERVICES),
    "hosts.enabled=true",
    "store.existingSecret=cortex-store",
    "tokensFile.existingSecret=cortex-tokens",
    "gateway.ingress.enabled=true",
    "metrics.serviceMonitor.enabled=true",
    f"metrics.natsMonitorUrls={NATS_MONITOR_URLS}",
    f"nats.url={CUSTOM_NATS_URL}",
    "nats.nkeysSecret=cortex-nats-nkeys",
    "natsNetworkPolicy.enabled=true",
)

# Kubernetes versions to validate against: the oldest the chart supports (Chart.yaml kubeVersion)
# and kubernetes-validate's newest.
OLDEST_KUBERNETES = "1.25.0"

Doc = dict[str, Any]


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    if not HELM.is_file():
        pytest.fail(
            f"helm is not installed at {HELM}: run tools/fetch-helm.sh (make helm) first",
            pytrace=False,
        )
    return subprocess.run(
        [str(HELM), *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def set_flags(values: tuple[str, ...]) -> list[str]:
    return [flag for value in values for flag in ("--set", value)]


def render(*values: str) -> list[Doc]:
    result = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *set_flags(values))
    assert result.returncode == 0, f"helm template failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [doc for doc in of_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def containers(deployment: Doc) -> list[Doc]:
    return list(deployment["spec"]["template"]["spec"]["containers"])


def component(doc: Doc) -> str:
    return str(doc["metadata"]["labels"]["app.kubernetes.io/component"])


@pytest.fixture(scope="module")
def default_docs() -> list[Doc]:
    return render()


@pytest.fixture(scope="module")
def all_docs() -> list[Doc]:
    return render(*ALL_ENABLED)


@pytest.fixture(params=["default_docs", "all_docs"])
def docs(request: pytest.FixtureRequest) -> list[Doc]:
    """The chart rendered with the default values, then with every process and option on."""
    rendered: list[Doc] = request.getfixturevalue(request.param)
    return rendered


@pytest.fixture(scope="module")
def kubernetes_validate() -> Any:
    try:
        import kubernetes_validate
    except ImportError:
        pytest.fail("kubernetes-validate is not installed: pip install -e '.[dev]'", pytrace=False)
    return kubernetes_validate


# --- lint and schema ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags",
    [(), ("--strict",), ("--strict", *set_flags(ALL_ENABLED))],
    ids=["lint", "strict", "strict-all-enabled"],
)
def test_helm_lint_passes(flags: tuple[str, ...]) -> None:
    result = helm("lint", str(CHART), *flags)
    assert result.returncode == 0, f"helm lint failed:\n{result.stdout}\n{result.stderr}"


@pytest.mark.parametrize("version", [OLDEST_KUBERNETES, "latest"])
def test_every_rendered_manifest_is_valid_kubernetes(
    docs: list[Doc], kubernetes_validate: Any, version: str
) -> None:
    if version == "latest":
        version = kubernetes_validate.latest_version()
    problems = manifest_problems(docs, version)
    assert not problems, "\n".join(problems)


def relabelled(endpoint: Doc, pod_labels: dict[str, str], pod: str) -> dict[str, str] | None:
    """The target labels Prometheus makes of a pod with an endpoint's relabelings (the subset
    of the rules the chart uses); None when the pod is dropped."""
    meta = {
        f"__meta_kubernetes_pod_label_{re.sub(r'[^a-zA-Z0-9_]', '_', k)}": v
        for k, v in pod_labels.items()
    }
    meta["__meta_kubernetes_pod_name"] = pod
    for rule in endpoint.get("relabelings", []):
        value = ";".join(meta.get(name, "") for name in rule.get("sourceLabels", []))
        matched = re.fullmatch(rule.get("regex", "(.*)"), value)
        if rule.get("action", "replace") == "keep":
            if not matched:
                return None
        elif matched:
            meta[rule["targetLabel"]] = matched.expand(
                re.sub(r"\$(\d+)", r"\\\1", rule.get("replacement", "$1"))
            )
    return {k: v for k, v in meta.items() if not k.startswith("__")}


def test_service_monitor_scrapes_every_process_and_the_nats_metrics(all_docs: list[Doc]) -> None:
    (monitor,) = of_kind(all_docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    endpoints = {e["path"]: e for e in monitor["spec"]["endpoints"]}
    assert sorted(endpoints) == ["/metrics", "/metrics/nats"]
    selected = [
        svc
        for svc in of_kind(all_docs, "Service")
        if monitor["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    ]
    assert len(selected) == 1, "the ServiceMonitor must select exactly the metrics Service"
    for endpoint in endpoints.values():
        (port,) = [p for p in selected[0]["spec"]["ports"] if p["name"] == endpoint["port"]]
        assert port["port"] == ADMIN_PORT
    pods = selected[0]["spec"]["selector"].items()
    scraped: dict[str, list[dict[str, str]]] = {path: [] for path in endpoints}
    for deployment in of_kind(all_docs, "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert pods <= labels.items(), f"{deployment['metadata']['name']} is not scraped"
        pod = f"{deployment['metadata']['name']}-5d8f9c7b6-x2x4q"
        for path, endpoint in endpoints.items():
            target = relabelled(endpoint, labels, pod)
            if target is not None:
                scraped[path].append(target)
    assert sorted(t["component"] for t in scraped["/metrics"]) == sorted(EVERY_PROCESS)
    assert all(t["process"].startswith(f"{RELEASE}-{t['component']}-") for t in scraped["/metrics"])
    # The NATS figures come from the gateways only (the one holding the lease answers).
    (nats,) = scraped["/metrics/nats"]
    assert nats == {"component": "nats", "process": f"{RELEASE}-gateway-5d8f9c7b6-x2x4q"}


def test_the_gateway_is_given_the_nats_monitoring_urls(all_docs: list[Doc]) -> None:
    config = named(all_docs, "ConfigMap", f"{RELEASE}-env")
    assert config["data"]["CORTEX_NATS_MONITOR_URLS"] == (
        "http://nats-0.nats-headless:8222,http://nats-1.nats-headless:8222"
    )
    assert config["data"]["CORTEX_METRICS_PER_AGENT"] == "false"
    without = [v for v in ALL_ENABLED if not v.startswith("metrics.natsMonitorUrls")]
    (monitor,) = of_kind(render(*without), "ServiceMonitor")
    assert [e["path"] for e in monitor["spec"]["endpoints"]] == ["/metrics"]


# --- which processes run -----------------------------------------------------------------------


def test_default_values_deploy_only_the_gateway(default_docs: list[Doc]) -> None:
    assert [d["metadata"]["name"] for d in of_kind(default_docs, "Deployment")] == [
        f"{RELEASE}-gateway"
    ]
    assert not of_kind(default_docs, "Ingress")
    assert not of_kind(default_docs, "ServiceMonitor")
    service = named(default_docs, "Service", f"{RELEASE}-gateway")
    assert service["spec"]["type"] == "ClusterIP"
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(80, "http")]
    (gateway,) = containers(named(default_docs, "Deployment", f"{RELEASE}-gateway"))
    http = [p["containerPort"] for p in gateway["ports"] if p["name"] == "http"]
    assert http == [8080]


def test_everything_enabled_deploys_one_deployment_per_process(all_docs: list[Doc]) -> None:
    deployments = of_kind(all_docs, "Deployment")
    assert sorted(component(d) for d in deployments) == sorted(EVERY_PROCESS)
    for deployment in deployments:
        name = component(deployment)
        assert deployment["metadata"]["name"] == f"{RELEASE}-{name}"
        # Every process runs twice; what one replica must do alone is held under a lease.
        assert deployment["spec"]["replicas"] == 2
        (container,) = containers(deployment)
        # The image's entrypoint is `python -m`; the argument picks the process.
        assert container["args"] == [f"cortex.{name}"]
        selector = deployment["spec"]["selector"]["matchLabels"].items()
        assert selector <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_every_deployment_rolls_out_a_ready_pod_before_stopping_one(docs: list[Doc]) -> None:
    for deployment in of_kind(docs, "Deployment"):
        assert deployment["spec"]["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        }, deployment["metadata"]["name"]


def test_processes_with_replicas_keep_one_pod_through_disruptions(docs: list[Doc]) -> None:
    budgets = {component(pdb): pdb for pdb in of_kind(docs, "PodDisruptionBudget")}
    for deployment in of_kind(docs, "Deployment"):
        name = component(deployment)
        assert deployment["spec"]["replicas"] > 1
        budget = budgets.pop(name)
        assert budget["spec"]["minAvailable"] == 1
        assert "maxUnavailable" not in budget["spec"]
        selector = budget["spec"]["selector"]["matchLabels"]
        assert selector == deployment["spec"]["selector"]["matchLabels"]
    assert not budgets, f"budgets without a Deployment: {sorted(budgets)}"


def test_a_single_replica_has_no_disruption_budget() -> None:
    docs = render(*ALL_ENABLED, "services.registry.replicas=1")
    assert named(docs, "Deployment", f"{RELEASE}-registry")["spec"]["replicas"] == 1
    assert "registry" not in {component(pdb) for pdb in of_kind(docs, "PodDisruptionBudget")}
    assert not of_kind(render("podDisruptionBudget.enabled=false"), "PodDisruptionBudget")


def test_agent_hosts_are_named_after_their_pod(all_docs: list[Doc]) -> None:
    (host,) = containers(named(all_docs, "Deployment", f"{RELEASE}-host"))
    (var,) = [v for v in host["env"] if v["name"] == "CORTEX_HOST_NAME"]
    assert var["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_ingress_routes_to_the_gateway_service(all_docs: list[Doc]) -> None:
    (ingress,) = of_kind(all_docs, "Ingress")
    backends = [
        path["backend"]["service"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert backends == [{"name": f"{RELEASE}-gateway", "port": {"name": "http"}}]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (("services.registry.enabled=true",), "store.existingSecret"),
        (("nats.replicas=0",), "at '/nats/replicas': minimum: got 0, want 1"),
        (("nats.replicas=6",), "at '/nats/replicas': maximum: got 6, want 5"),
        (
            (
                "services.lifecycle.enabled=true",
                "store.url=sqlite:////tmp/cortex/store",
            ),
            "services.lifecycle.replicas must be 1",
        ),
        (("gateway.replica=2",), "at '/gateway': additional properties 'replica' not allowed"),
        (("logLevel=verbose",), "at '/logLevel': value must be one of"),
        (("store.url=postgres://db",), "at '/store/url'"),
    ],
    ids=[
        "service-without-store",
        "no-stream-replicas",
        "six-stream-replicas",
        "sqlite-with-two-replicas",
        "misspelt-value",
        "unknown-log-level",
        "unknown-store",
    ],
)
def test_values_that_cannot_work_are_refused(values: tuple[str, ...], message: str) -> None:
    result = helm("template", RELEASE, str(CHART), *set_flags(values))
    assert result.returncode != 0
    assert message in result.stderr


# --- every pod ---------------------------------------------------------------------------------


def resolve_port(container: Doc, port: int | str) -> int:
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return int(number)


def env_of(container: Doc, docs: list[Doc]) -> Iterator[tuple[str, Doc]]:
    """(name, source) of every variable: literal and secret env, and ConfigMap keys."""
    for var in container.get("env", []):
        yield var["name"], var
    for source in container.get("envFrom", []):
        assert "configMapRef" in source, "only ConfigMaps are expected in envFrom"
        config = named(docs, "ConfigMap", source["configMapRef"]["name"])
        for key, value in config["data"].items():
            yield key, {"name": key, "value": value, "configMap": True}


def test_every_container_is_probed_on_the_admin_port(docs: list[Doc]) -> None:
    for deployment in of_kind(docs, "Deployment"):
        for container in containers(deployment):
            for probe, path in (("readinessProbe", "/ready"), ("livenessProbe", "/health")):
                check = container[probe]["httpGet"]
                assert check["path"] == path, f"{deployment['metadata']['name']} {probe}"
                assert resolve_port(container, check["port"]) == ADMIN_PORT


def test_every_pod_runs_as_non_root_on_a_read_only_filesystem(docs: list[Doc]) -> None:
    for deployment in of_kind(docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] == 30
        scratch = [v["name"] for v in pod["volumes"] if "emptyDir" in v]
        for container in containers(deployment):
            context = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
            assert context["runAsNonRoot"] is True
            assert context.get("runAsUser", 1) != 0
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts.get("/tmp") in scratch, "/tmp must be a writable emptyDir"


def test_every_process_is_configured_for_the_cluster(docs: list[Doc]) -> None:
    expected_url = CUSTOM_NATS_URL if len(of_kind(docs, "Deployment")) > 1 else "nats://nats:4222"
    for deployment in of_kind(docs, "Deployment"):
        for container in containers(deployment):
            env = {name: var.get("value") for name, var in env_of(container, docs)}
            assert env["CORTEX_NATS_URL"] == expected_url
            assert env["CORTEX_NATS_PREFIX"] == "cortex"
            # Every stream on three servers: the official chart's cluster of three.
            assert env["CORTEX_NATS_REPLICAS"] == "3"
            assert env["CORTEX_LOG_FORMAT"] == "json"
            assert env["CORTEX_ADMIN_HOST"] == "0.0.0.0"
            assert env["CORTEX_ADMIN_PORT"] == str(ADMIN_PORT)
            if component(deployment) == "gateway":
                assert env["CORTEX_HTTP_HOST"] == "0.0.0.0"
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(ADMIN_PORT)
        assert annotations["prometheus.io/path"] == "/metrics"


def test_the_messaging_replicas_have_room_for_the_log_index(all_docs: list[Doc]) -> None:
    """Each messaging replica indexes the central logs in its data dir (about 2.2 times the
    log stream's size); the others need little scratch space."""
    config = named(all_docs, "ConfigMap", f"{RELEASE}-env")
    assert config["data"]["CORTEX_LOGS_MAX_BYTES"] == str(1 << 30)
    for deployment in of_kind(all_docs, "Deployment"):
        (tmp,) = [
            v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "tmp"
        ]
        wanted = "3Gi" if component(deployment) == "messaging" else "256Mi"
        assert tmp["emptyDir"]["sizeLimit"] == wanted, component(deployment)


def test_stream_replicas_follow_the_nats_cluster_they_are_given() -> None:
    config = named(render("nats.replicas=1"), "ConfigMap", f"{RELEASE}-env")
    assert config["data"]["CORTEX_NATS_REPLICAS"] == "1"


# --- secrets -----------------------------------------------------------------------------------


def secret_ref(container: Doc, docs: list[Doc], name: str) -> dict[str, str] | None:
    """Where variable `name` comes from: its secretKeyRef; fails on a literal value."""
    refs = []
    for var_name, var in env_of(container, docs):
        if var_name != name:
            continue
        assert "value" not in var, f"{name} must come from a Secret, not a literal value"
        refs.append(var["valueFrom"]["secretKeyRef"])
    assert len(refs) <= 1
    return refs[0] if refs else None


ADMIN_TOKEN = "s3cret-admin-token"
STORE_URL = "arangodb://root:pw@db:8529/cortex"
EVERY_SERVICE_AND_HOSTS = (
    *(f"services.{name}.enabled=true" for name in SERVICES),
    "hosts.enabled=true",
)


@pytest.mark.parametrize(
    ("values", "token_ref", "store_ref"),
    [
        (("store.existingSecret=db",), None, {"name": "db", "key": "url"}),
        ((f"adminToken.value={ADMIN_TOKEN}", f"store.url={STORE_URL}"), None, None),
        (
            (
                "adminToken.existingSecret=mine",
                "adminToken.existingSecretKey=admin",
                "store.existingSecret=db",
                "store.existingSecretKey=dsn",
            ),
            {"name": "mine", "key": "admin"},
            {"name": "db", "key": "dsn"},
        ),
    ],
    ids=["generated-token", "given-as-values", "existing-secrets"],
)
def test_admin_token_and_store_url_reach_the_pods_only_through_secrets(
    values: tuple[str, ...], token_ref: dict[str, str] | None, store_ref: dict[str, str] | None
) -> None:
    docs = render(*EVERY_SERVICE_AND_HOSTS, *values)
    secrets = {s["metadata"]["name"]: s for s in of_kind(docs, "Secret")}

    def made_by_chart(ref: dict[str, str]) -> str:
        return base64.b64decode(secrets[ref["name"]]["data"][ref["key"]]).decode()

    for deployment in of_kind(docs, "Deployment"):
        (container,) = containers(deployment)
        token = secret_ref(container, docs, "CORTEX_ADMIN_TOKEN")
        store = secret_ref(container, docs, "CORTEX_STORE")
        if component(deployment) == "gateway":
            assert token is not None, "the gateway needs the admin token"
            if token_ref is not None:
                assert token == token_ref
            elif f"adminToken.value={ADMIN_TOKEN}" in values:
                assert made_by_chart(token) == ADMIN_TOKEN
            else:
                assert len(made_by_chart(token)) >= 32, "a generated token must be long"
        else:
            assert token is None, "only the gateway gets the admin token"
        if component(deployment) in SERVICES:
            assert store is not None, "every service needs the event store"
            if store_ref is not None:
                assert store == store_ref
            else:
                assert made_by_chart(store) == STORE_URL
        else:
            assert store is None, "only the services get the event store URL"
    # Neither appears in clear anywhere but in its Secret.
    clear = yaml.safe_dump_all([doc for doc in docs if doc["kind"] != "Secret"])
    assert ADMIN_TOKEN not in clear
    assert "root:pw@" not in clear


def test_tokens_file_is_mounted_read_only_into_the_gateway(all_docs: list[Doc]) -> None:
    deployment = named(all_docs, "Deployment", f"{RELEASE}-gateway")
    (container,) = containers(deployment)
    path = {name: var.get("value") for name, var in env_of(container, all_docs)}[
        "CORTEX_TOKENS_FILE"
    ]
    (mount,) = [m for m in container["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
    assert mount["readOnly"] is True
    (volume,) = [
        v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]
    ]
    assert volume["secret"]["secretName"] == "cortex-tokens"


# --- dashboards --------------------------------------------------------------------------------


def test_dashboards_ship_in_a_configmap_for_the_grafana_sidecar(docs: list[Doc]) -> None:
    (config,) = [
        c for c in of_kind(docs, "ConfigMap") if c["metadata"]["labels"].get("grafana_dashboard")
    ]
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert sorted(config["data"]) == [path.name for path in DASHBOARDS]
    for name, text in config["data"].items():
        dashboard = json.loads(text)
        assert dashboard["uid"], name
        assert dashboard["panels"], name


def panels_of(dashboard: Doc) -> Iterator[Doc]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panels_of(panel)  # rows carry their panels when collapsed


def data_panels(dashboard: Doc) -> Iterator[Doc]:
    """Every panel that shows data (rows only group them)."""
    return (panel for panel in panels_of(dashboard) if panel["type"] != "row")


def queries_of(dashboard: Doc) -> Iterator[str]:
    """Every panel's PromQL; a variable's `label_values(metric, label)` as `metric{label=""}`,
    which names the same metric and label."""
    for panel in data_panels(dashboard):
        for target in panel.get("targets", []):
            yield target["expr"]
    for variable in query_variables(dashboard):
        metric, label = label_values(variable)
        yield f'{metric}{{{label}=""}}'


def query_variables(dashboard: Doc) -> list[Doc]:
    variables = dashboard.get("templating", {}).get("list", [])
    return [v for v in variables if v.get("type") == "query"]


def label_values(variable: Doc) -> tuple[str, str]:
    query = variable["query"]
    text = query["query"] if isinstance(query, dict) else query
    found = re.fullmatch(r"label_values\(\s*([\w:]+)\s*,\s*(\w+)\s*\)", text)
    assert found, f"variable {variable['name']}: only label_values(metric, label) is expected"
    return found.group(1), found.group(2)


def exported_series() -> dict[str, frozenset[str]]:
    """Every series name the processes export, with its labels (from the code's catalogue)."""
    load_everything()
    return {name: labels for doc in CATALOGUE.values() for name, labels in doc.series().items()}


PROMQL_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "atan2", "group_left", "group_right"}
)
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


def promql_names(expr: str) -> tuple[set[str], set[str]]:
    """The metric names and the label names a PromQL expression (Grafana variables allowed)
    refers to."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries: [5m], [$__rate_interval]
    text = re.sub(r"\$\{[^}]*\}|\$\w+", "0", text)  # other Grafana variables
    labels: set[str] = set()
    for matchers in re.findall(r"\{([^}]*)\}", text):
        labels.update(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    text = re.sub(r"\{[^}]*\}", " ", text)
    for grouping in GROUPING.findall(text):
        labels.update(name.strip() for name in grouping.split(",") if name.strip())
    text = GROUPING.sub(" ", text)
    text = re.sub(r"(?<![\w:])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[a-z]*", " ", text)  # numbers
    metrics = {
        match.group()
        for match in re.finditer(r"[A-Za-z_:][\w:]*", text)
        if match.group() not in PROMQL_KEYWORDS and not text[match.end() :].lstrip().startswith("(")
    }
    return metrics, labels


def test_promql_names_reads_metrics_and_labels() -> None:
    assert promql_names(
        'histogram_quantile(0.95, sum by (le, service) (rate(cortex_x_bucket{code!="ok"}'
        "[$__rate_interval]))) / on (service) group_left sum(up offset 5m) > bool 1e3"
    ) == ({"cortex_x_bucket", "up"}, {"le", "service", "code"})


@pytest.mark.parametrize("path", DASHBOARDS, ids=[path.name for path in DASHBOARDS])
def test_dashboard_queries_name_only_exported_metrics(path: Path) -> None:
    exported = exported_series()
    queries = list(queries_of(json.loads(path.read_text())))
    assert queries, f"{path.name} has no queries"
    for expr in queries:
        metrics, labels = promql_names(expr)
        assert metrics, f"no metric in {expr!r}"
        unknown = metrics - exported.keys()
        assert not unknown, f"{path.name}: {expr!r} names metrics nobody exports: {unknown}"
        known_labels = TARGET_LABELS.union(*(exported[m] for m in metrics))
        assert labels <= known_labels, (
            f"{path.name}: {expr!r} uses labels {labels - known_labels} its metrics do not have"
        )


def test_the_five_dashboards_are_there() -> None:
    names = {path.stem for path in DASHBOARDS}
    assert set(DASHBOARD_NAMES) <= names, f"missing: {set(DASHBOARD_NAMES) - names}"
    uids = [json.loads(path.read_text())["uid"] for path in DASHBOARDS]
    assert len(set(uids)) == len(uids), "two dashboards share a uid"


@pytest.mark.parametrize("path", DASHBOARDS, ids=[path.name for path in DASHBOARDS])
def test_every_panel_says_what_it_shows_in_which_unit_from_the_chosen_source(path: Path) -> None:
    dashboard = json.loads(path.read_text())  # parses
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    using_variable = {"type": "prometheus", "uid": "${datasource}"}
    for variable in query_variables(dashboard):
        assert variable["datasource"] == using_variable, variable["name"]
    panels = list(data_panels(dashboard))
    assert panels, f"{path.name} has no panels"
    for panel in panels:
        where = f"{path.name}: panel {panel.get('title')!r}"
        assert panel.get("title", "").strip(), f"{where} has no title"
        assert panel.get("description", "").strip(), f"{where} has no description"
        assert panel.get("fieldConfig", {}).get("defaults", {}).get("unit"), f"{where}: no unit"
        assert panel.get("datasource") == using_variable, f"{where}: not the datasource variable"
        assert panel.get("targets"), f"{where} has no query"
        for target in panel["targets"]:
            assert target.get("datasource") == using_variable, f"{where}: {target['refId']}"
            assert target.get("expr", "").strip(), f"{where}: {target['refId']} has no query"


def test_the_dashboards_are_what_their_generator_writes() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "dashboards.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, (
        f"{result.stderr}edit tools/dashboards.py and run it, not the JSON"
    )


def test_the_modules_agent_code_may_come_from_reach_every_process() -> None:
    """Only the built-in agents by default; the packages an agent image installs when named."""
    default = named(render(), "ConfigMap", f"{RELEASE}-env")
    assert default["data"]["CORTEX_AGENT_MODULES"] == ""
    named_ones = named(render("agentModules={acme.agents,billing}"), "ConfigMap", f"{RELEASE}-env")
    assert named_ones["data"]["CORTEX_AGENT_MODULES"] == "acme.agents,billing"


def test_what_http_steps_may_reach_reaches_every_process() -> None:
    default = named(render(), "ConfigMap", f"{RELEASE}-env")["data"]
    assert (default["CORTEX_HTTP_STEP_ALLOW"], default["CORTEX_HTTP_STEP_MAX_BYTES"]) == (
        "",
        "1048576",
    )
    opened = named(
        render("workflows.httpStepAllow={10.0.0.0/8,*.svc.cluster.local:8080}"),
        "ConfigMap",
        f"{RELEASE}-env",
    )["data"]
    assert opened["CORTEX_HTTP_STEP_ALLOW"] == "10.0.0.0/8,*.svc.cluster.local:8080"


def test_each_process_signs_in_to_nats_with_its_own_roles_seed_only(all_docs: list[Doc]) -> None:
    from cortex.embedded.nats_auth import roles
    from cortex.kernel.settings import load_settings

    inboxes = {role.name: role.inbox_prefix for role in roles(load_settings({}).subjects())}
    for deployment in of_kind(all_docs, "Deployment"):
        name = component(deployment)
        pod = deployment["spec"]["template"]["spec"]
        (volume,) = [v for v in pod["volumes"] if v["name"] == "nats-nkey"]
        assert volume["secret"]["secretName"] == "cortex-nats-nkeys"
        assert volume["secret"]["items"] == [{"key": f"{name}.nk", "path": f"{name}.nk"}]
        (container,) = containers(deployment)
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == "nats-nkey"]
        assert mount["readOnly"] is True
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["CORTEX_NATS_NKEY"] == f"{mount['mountPath']}/{name}.nk"
        # The reply subjects the role's NATS user may read (cortex nats-users).
        assert env["CORTEX_NATS_INBOX_PREFIX"] == inboxes[name]


def test_without_a_seeds_secret_no_process_looks_for_one(default_docs: list[Doc]) -> None:
    for deployment in of_kind(default_docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert all(v["name"] != "nats-nkey" for v in pod["volumes"])
        (container,) = containers(deployment)
        assert all(e["name"] != "CORTEX_NATS_NKEY" for e in container.get("env", []))


def test_only_the_platforms_pods_reach_nats(all_docs: list[Doc], default_docs: list[Doc]) -> None:
    assert not of_kind(default_docs, "NetworkPolicy")
    (policy,) = of_kind(all_docs, "NetworkPolicy")
    spec = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "nats"}}
    assert spec["policyTypes"] == ["Ingress"]
    clients, routes = spec["ingress"]
    (platform,) = clients["from"]
    assert platform["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "cortex",
        "app.kubernetes.io/instance": RELEASE,
    }
    assert platform["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": NAMESPACE
    }
    # Every pod the chart runs carries the labels the policy admits.
    for deployment in of_kind(all_docs, "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert platform["podSelector"]["matchLabels"].items() <= labels.items()
    assert {p["port"] for p in clients["ports"]} == {4222, 8222}
    assert routes["from"] == [{"podSelector": spec["podSelector"]}]
    assert [p["port"] for p in routes["ports"]] == [6222]
