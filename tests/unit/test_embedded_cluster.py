"""What `cortex up` plans for a NATS cluster and service replicas, before it starts anything:
the nodes' configurations (checked by nats-server itself), their ports, the stream replicas,
the process names and the banner."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cortex.embedded.natsserver import cluster_configs
from cortex.embedded.up import (
    UpError,
    banner,
    check_nats_ports,
    nats_server_configs,
    replica_names,
    stream_replicas,
)
from cortex.kernel.settings import load_settings
from tests.support.ports import free_port


def test_every_node_routes_to_the_others_and_nats_server_accepts_its_config(
    tmp_path: Path,
) -> None:
    nodes = cluster_configs(tmp_path, [4222, 4223, 4224], [6222, 6223, 6224], [0, 0, 0])
    assert [n.server_name for n in nodes] == ["cortex-n1", "cortex-n2", "cortex-n3"]
    assert [n.store_dir for n in nodes] == [tmp_path / "n1", tmp_path / "n2", tmp_path / "n3"]
    assert [n.routes for n in nodes] == [(6223, 6224), (6222, 6224), (6222, 6223)]
    for node in nodes:
        config = node.write(node.store_dir / "nats.conf")
        checked = subprocess.run(
            [*node.argv(config), "-t"], capture_output=True, text=True, timeout=30, check=False
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_cluster_takes_three_client_route_and_monitor_ports(tmp_path: Path) -> None:
    settings = load_settings(
        {}, nats_cluster=3, nats_port=4222, nats_monitor_port=8222, data_dir=str(tmp_path)
    )
    nodes = nats_server_configs(settings, tmp_path)
    assert [(n.port, n.cluster_port, n.monitor_port) for n in nodes] == [
        (4222, 6222, 8222),
        (4223, 6223, 8223),
        (4224, 6224, 8224),
    ]
    assert [n.store_dir for n in nodes] == [tmp_path / "nats" / f"n{i}" for i in (1, 2, 3)]
    (single,) = nats_server_configs(load_settings({}, data_dir=str(tmp_path)), tmp_path)
    assert (single.store_dir, single.cluster_name) == (tmp_path / "nats", "")


def test_ports_past_the_last_one_are_refused_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(UpError, match="CORTEX_NATS_PORT to at most 63533"):
        nats_server_configs(load_settings({}, nats_cluster=3, nats_port=63534), tmp_path)
    with pytest.raises(UpError, match="CORTEX_NATS_MONITOR_PORT"):
        nats_server_configs(
            load_settings({}, nats_cluster=3, nats_port=4222, nats_monitor_port=65534), tmp_path
        )


def test_a_port_meant_twice_is_refused_naming_the_setting(tmp_path: Path) -> None:
    http = free_port()
    settings = load_settings({}, nats_cluster=3, nats_port=http - 2000, nats_monitor_port=0)
    with pytest.raises(UpError, match=f"port {http} is also meant for CORTEX_HTTP_PORT"):
        check_nats_ports(nats_server_configs(settings, tmp_path), http)


def test_a_cluster_keeps_three_copies_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CORTEX_NATS_REPLICAS", raising=False)
    assert stream_replicas(load_settings({}, nats_cluster=3)) == 3
    assert stream_replicas(load_settings({})) == 1
    monkeypatch.setenv("CORTEX_NATS_REPLICAS", "2")
    assert stream_replicas(load_settings({}, nats_cluster=3, nats_replicas=2)) == 2


def test_replicas_of_a_service_are_numbered_only_when_there_are_several() -> None:
    assert replica_names("registry", 1) == ["registry"]
    assert replica_names("registry", 2) == ["registry-1", "registry-2"]


def test_the_banner_says_how_nats_and_the_services_run(tmp_path: Path) -> None:
    def shown(nats_nodes: int, **overrides: object) -> str:
        return banner(
            load_settings({}, nats_port=4222, **overrides),
            data_dir=tmp_path,
            http_url="http://127.0.0.1:8080",
            nats_url=",".join(f"nats://127.0.0.1:{4222 + n}" for n in range(max(nats_nodes, 1))),
            token="t",
            token_source="from CORTEX_ADMIN_TOKEN",
            services=["registry", "lifecycle"],
            hosts=1,
            nats_nodes=nats_nodes,
        )

    single = shown(1)
    assert "NATS         nats://127.0.0.1:4222   (embedded nats-server, JetStream)\n" in single
    assert "services     registry, lifecycle, gateway; 1 agent host(s)" in single
    assert "replicas" not in single
    cluster = shown(3, nats_cluster=3, nats_replicas=3, replicas=2)
    assert (
        "nats://127.0.0.1:4222, nats://127.0.0.1:4223, nats://127.0.0.1:4224   (embedded 3-node "
        "nats-server cluster, JetStream; routes on ports 6222-6224)" in cluster
    )
    assert "every stream with 3 replicas" in cluster
    assert "services     registry, lifecycle (2 replicas each), gateway" in cluster
