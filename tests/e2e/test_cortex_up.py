"""`cortex up` as a user meets it: the API answers, auth holds, faults are survived."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.stack import ADMIN_TOKEN, CORTEX, Stack, descendants

pytestmark = pytest.mark.e2e


def wait_for(
    check: object, timeout: float = 30.0, what: str = "condition", poll: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = check()  # type: ignore[operator]
            if last:
                return
        except Exception as exc:
            last = exc
        time.sleep(poll)
    raise AssertionError(f"{what} not reached in {timeout}s (last: {last!r})")


def test_health_is_open_and_status_needs_a_token(stack: Stack) -> None:
    with stack.client(token=None) as anonymous:
        health = anonymous.get("/api/v1/health")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        assert anonymous.get("/health").status_code == 200
        assert anonymous.get("/ready").status_code == 200

        denied = anonymous.get("/api/v1/status")
        assert denied.status_code == 401
        assert denied.headers["content-type"] == "application/problem+json"
        assert denied.headers["www-authenticate"] == "Bearer"
        problem = denied.json()
        assert (problem["status"], problem["code"]) == (401, "unauthorized")
        assert problem["instance"] == "/api/v1/status"

    with stack.client(token="cxt_wrong") as wrong:
        assert wrong.get("/api/v1/status").json()["detail"] == "the bearer token is not valid"

    with stack.client() as admin:
        status = admin.get("/api/v1/status")
        assert status.status_code == 200
        body = status.json()
        names = {s["name"] for s in body["services"]}
        assert "gateway" in names
        assert body["nats"]["connected"] is True
        assert body["nats"]["jetstream"] is True
        assert body["nats"]["url"] == f"nats://127.0.0.1:{stack.nats_port}"


def test_unknown_routes_are_problems_too(stack: Stack) -> None:
    with stack.client() as admin:
        missing = admin.get("/api/v1/nothing-here")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.json()["code"] == "not_found"


def test_roles_limit_what_a_token_may_do(stack: Stack) -> None:
    env = {**os.environ, "CORTEX_DATA_DIR": str(stack.data_dir)}
    token = subprocess.run(
        [CORTEX, "tokens", "create", "dash", "--role", "viewer"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with stack.client(token=token) as viewer:
        assert viewer.get("/api/v1/status").status_code == 200
        spec = viewer.get("/api/v1/openapi.json")
        assert spec.status_code == 200
        assert "/api/v1/status" in spec.json()["paths"]
        # Writing needs operator; any non-read route exercises the role check.
        forbidden = viewer.post("/api/v1/status")
        assert forbidden.status_code in (403, 405)
    subprocess.run([CORTEX, "tokens", "revoke", "dash"], env=env, check=True, capture_output=True)
    with stack.client(token=token) as revoked:
        assert revoked.get("/api/v1/status").status_code == 401


def test_metrics_digest_counts_gateway_requests(stack: Stack) -> None:
    with stack.client() as admin:
        admin.get("/api/v1/status")
        digest = admin.get("/api/v1/metrics").json()
    assert digest["gateway_requests"] >= 1
    assert isinstance(digest["endpoints"], list)


def test_a_killed_nats_server_is_restarted_and_the_gateway_reconnects(
    fresh_stack: Stack,
) -> None:
    fresh_stack.start()
    nats_pid = fresh_stack.child_pid("nats-server")
    os.kill(nats_pid, signal.SIGKILL)
    wait_for(lambda: "nats exited" in fresh_stack.output, what="the supervisor noticing")
    wait_for(lambda: fresh_stack.child_pid("nats-server") != nats_pid, what="a new nats-server")

    def status_ok() -> bool:
        with fresh_stack.client() as admin:
            body = admin.get("/api/v1/status").json()
            return bool(body["nats"]["connected"]) and "gateway" in {
                s["name"] for s in body["services"]
            }

    wait_for(status_ok, what="the gateway reconnected")


def test_a_killed_gateway_is_restarted(fresh_stack: Stack) -> None:
    fresh_stack.start()
    gateway = fresh_stack.child_pid("cortex.gateway")
    os.kill(gateway, signal.SIGKILL)
    wait_for(lambda: "gateway exited" in fresh_stack.output, what="the supervisor noticing")

    def healthy() -> bool:
        with fresh_stack.client() as admin:
            return admin.get("/api/v1/status").status_code == 200

    wait_for(healthy, what="the gateway back")
    assert fresh_stack.child_pid("cortex.gateway") != gateway


def test_sigterm_stops_everything_and_a_second_start_reuses_the_data(tmp_path: Path) -> None:
    first = Stack(tmp_path / "s", CORTEX_ADMIN_TOKEN="").start()
    assert first.proc is not None
    children = descendants(first.proc.pid)
    assert len(children) >= 2  # nats-server and the gateway at least
    token_file = first.data_dir / "admin.token"
    token = token_file.read_text().strip()
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    assert token in first.output  # printed for the user

    # Connections the servers close as they stop wait in TIME_WAIT on the servers' ports: a
    # start right after must not take those ports for taken.
    held = [
        socket.create_connection(("127.0.0.1", port)) for port in (first.http_port, first.nats_port)
    ]
    with first.client(token=token) as admin:
        assert admin.get("/api/v1/status").status_code == 200
        assert first.stop() == 0
    for sock in held:
        sock.close()
    assert "cortex up: stopped" in first.output
    # Every process let go of NATS cleanly: nothing waited out its grace period.
    assert "not drained within the grace period" not in first.output
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()

    second = Stack(tmp_path / "s", CORTEX_ADMIN_TOKEN="")
    second.http_port, second.nats_port = first.http_port, first.nats_port
    second.env.update(
        {"CORTEX_HTTP_PORT": str(first.http_port), "CORTEX_NATS_PORT": str(first.nats_port)}
    )
    second.start()
    try:
        assert token_file.read_text().strip() == token
        with second.client(token=token) as admin:
            assert admin.get("/api/v1/status").status_code == 200
        assert (first.data_dir / "nats" / "jetstream").is_dir()
    finally:
        assert second.stop() == 0


def test_a_taken_port_is_a_clear_message_not_a_traceback(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "s")
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", stack.http_port))
        blocker.listen()
        done = subprocess.run(
            [CORTEX, "up"], env=stack.env, capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 1
    assert f"127.0.0.1:{stack.http_port} is not free" in done.stderr
    assert "CORTEX_HTTP_PORT" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_an_unwritable_data_dir_is_a_clear_message(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    stack = Stack(tmp_path / "s", CORTEX_DATA_DIR=str(blocker / "data"))
    done = subprocess.run([CORTEX, "up"], env=stack.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "is not writable" in done.stderr
    assert "CORTEX_DATA_DIR" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_a_second_cortex_up_on_the_same_data_dir_is_refused(stack: Stack) -> None:
    other = Stack(stack.root, CORTEX_DATA_DIR=str(stack.data_dir))
    done = subprocess.run([CORTEX, "up"], env=other.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "another `cortex up`" in done.stderr


def test_admin_token_from_the_environment_is_used(stack: Stack) -> None:
    with stack.client(token=ADMIN_TOKEN) as admin:
        assert admin.get("/api/v1/status").status_code == 200


def test_the_banner_means_every_service_and_agent_host_is_there(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "s", CORTEX_HOSTS="2").start()
    try:
        banner = stack.output[stack.output.index("is up.") :]
        assert "registry, lifecycle, messaging, workflow, gateway; 2 agent host(s)" in banner
        with stack.client() as admin:
            # Asked once, right after the banner: nothing to wait for.
            ready = admin.get("/ready")
            assert ready.status_code == 200
            assert ready.json()["checks"] == {"nats": True, "services": True, "hosts": True}
            hosts = admin.get("/api/v1/hosts").json()
        assert sorted((h["id"], h["health"]) for h in hosts) == [
            ("host-1", "healthy"),
            ("host-2", "healthy"),
        ]
    finally:
        stack.stop()


def test_a_signal_to_the_whole_process_group_stops_gracefully(tmp_path: Path) -> None:
    """make, Docker, systemd and CI runners signal the whole group, and make passes the
    signal on again: a second signal right after the first is the same request to stop, not
    an order to kill."""
    stack = Stack(tmp_path / "s").start()
    assert stack.proc is not None
    stack.proc.send_signal(signal.SIGTERM)
    wait_for(
        lambda: "cortex up: stopping" in stack.output, what="the first signal handled", poll=0.01
    )
    stack.proc.send_signal(signal.SIGTERM)
    assert stack.proc.wait(timeout=60) == 0
    out = stack.output
    assert "already stopping" in out
    assert "killing" not in out
    assert "cortex up: stopped" in out
    stopped = {line.split("|")[0].strip() for line in out.splitlines() if "service stopped" in line}
    assert {"registry", "lifecycle", "messaging", "workflow", "host-1"} <= stopped, out[-3000:]


def test_a_third_signal_kills_at_once(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "s").start()
    assert stack.proc is not None
    stack.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "cortex up: stopping" in stack.output, what="the first signal handled")
    stack.proc.send_signal(signal.SIGTERM)
    wait_for(
        lambda: "already stopping" in stack.output or "killing" in stack.output,
        what="the second signal handled",
    )
    if "killing" not in stack.output:  # else the second came after the window: also a kill
        stack.proc.send_signal(signal.SIGTERM)
    stack.proc.wait(timeout=60)
    assert "killing everything now" in stack.output


def test_a_log_stream_larger_than_the_disk_is_a_clear_message(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "s", CORTEX_LOGS_MAX_BYTES=str(1 << 50))
    done = subprocess.run([CORTEX, "up"], env=stack.env, capture_output=True, text=True, timeout=90)
    assert done.returncode == 1
    assert "cannot reserve" in done.stderr
    assert "CORTEX_LOGS_MAX_BYTES" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_only_an_admin_token_purges(stack: Stack) -> None:
    """A purge cannot be undone: an operator may terminate an agent, not purge it."""
    env = {**os.environ, "CORTEX_DATA_DIR": str(stack.data_dir)}
    token = subprocess.run(
        [CORTEX, "tokens", "create", "ops", "--role", "operator"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with stack.client() as admin, stack.client(token=token) as operator:
        agent = admin.post("/api/v1/agents", json={"name": "kept", "template": "echo"}).json()
        purge = operator.delete(f"/api/v1/agents/{agent['id']}", params={"purge": "true"})
        assert purge.status_code == 403
        assert "needs admin" in purge.json()["detail"]
        assert operator.get(f"/api/v1/agents/{agent['id']}").status_code == 200
        assert operator.delete(f"/api/v1/agents/{agent['id']}").status_code == 202
        assert operator.delete("/api/v1/dlq/any-id").status_code == 403
        assert (
            admin.delete(f"/api/v1/agents/{agent['id']}", params={"purge": "true"}).status_code
            == 202
        )
