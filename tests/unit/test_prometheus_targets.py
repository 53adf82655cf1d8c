"""What `cortex up` tells Prometheus to scrape, from what the processes say about themselves."""

from __future__ import annotations

from pathlib import Path

from cortex.embedded.prometheus import target_groups, write_if_changed


def info(
    service: str, port: int, pid: int, prefix: str = "cortex", **meta: str
) -> dict[str, object]:
    return {
        "name": f"{prefix}-{service}",
        "metadata": {
            "service": service,
            "admin_url": f"http://127.0.0.1:{port}",
            "pid": str(pid),
            **meta,
        },
    }


def test_every_process_of_the_platform_is_a_target_named_as_the_supervisor_names_it() -> None:
    infos = [
        info("registry", 4001, 11),
        info("registry", 4002, 12),
        info("gateway", 4003, 13),
        info("host", 4004, 14, host_id="host-1"),
        info("registry", 4999, 99, prefix="other"),  # another platform on the same NATS
        {"name": "cortex-broken", "metadata": {"service": "broken"}},  # no admin port
    ]
    names = {"11": "registry-1", "12": "registry-2", "13": "gateway"}
    groups = target_groups(infos, "cortex-", names, nats_metrics=True)
    assert groups == [
        {"targets": ["127.0.0.1:4003"], "labels": {"component": "gateway", "process": "gateway"}},
        {"targets": ["127.0.0.1:4004"], "labels": {"component": "host", "process": "host-1"}},
        {
            "targets": ["127.0.0.1:4003"],
            "labels": {
                "component": "nats",
                "process": "gateway",
                "__metrics_path__": "/metrics/nats",
            },
        },
        {
            "targets": ["127.0.0.1:4001"],
            "labels": {"component": "registry", "process": "registry-1"},
        },
        {
            "targets": ["127.0.0.1:4002"],
            "labels": {"component": "registry", "process": "registry-2"},
        },
    ]
    without_nats = target_groups(infos, "cortex-", names, nats_metrics=False)
    assert "nats" not in {g["labels"]["component"] for g in without_nats}


def test_the_targets_file_is_replaced_whole_and_only_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "prometheus" / "targets.json"
    assert write_if_changed(path, "[]\n")
    assert not write_if_changed(path, "[]\n")
    assert write_if_changed(path, "[1]\n")
    assert path.read_text() == "[1]\n"
    assert [p.name for p in path.parent.iterdir()] == ["targets.json"]
