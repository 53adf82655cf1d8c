from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cortex.kernel.settings import SettingsError, load_settings, redact_url


def test_defaults_need_nothing_set() -> None:
    s = load_settings({})
    assert (s.http_host, s.http_port, s.nats_port, s.data_dir) == (
        "127.0.0.1",
        8080,
        4222,
        ".cortex",
    )
    assert s.effective_nats_url == "nats://127.0.0.1:4222"
    assert s.effective_store.startswith("sqlite:///")
    assert s.effective_store.endswith("/store")


def test_environment_values_are_converted() -> None:
    s = load_settings(
        {
            "CORTEX_HTTP_PORT": "9000",
            "CORTEX_LOG_LEVEL": "DEBUG",
            "CORTEX_REQUEST_TIMEOUT": "2.5",
            "OTHER": "x",
            "CORTEX_UNKNOWN": "y",
        }
    )
    assert (s.http_port, s.log_level, s.request_timeout) == (9000, "debug", 2.5)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CORTEX_HTTP_PORT": "eighty"}, "CORTEX_HTTP_PORT"),
        ({"CORTEX_NATS_PORT": "70000"}, "CORTEX_NATS_PORT"),
        ({"CORTEX_LOG_LEVEL": "loud"}, "CORTEX_LOG_LEVEL"),
    ],
)
def test_a_bad_value_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(env)


def test_secrets_never_appear_in_what_is_logged() -> None:
    s = load_settings(
        {
            "CORTEX_ADMIN_TOKEN": "sekret",
            "CORTEX_STORE": "arangodb://root:pw@db:8529/cortex",
            "CORTEX_HOST_SECRET_VALUES": '[[["api_key"], "sk-live-9"]]',
        }
    )
    shown = str(s.redacted())
    assert "sekret" not in shown
    assert "pw" not in shown
    assert "sk-live-9" not in shown
    assert redact_url("arangodb://root:pw@db:8529/c") == "arangodb://root:***@db:8529/c"
    assert redact_url("nats://host:4222") == "nats://host:4222"


def test_the_log_stream_is_sized_to_the_data_dirs_disk_unless_set(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    sized = load_settings({"CORTEX_DATA_DIR": str(tmp_path / "not" / "made" / "yet")})
    size = sized.subjects().logs_max_bytes
    assert 16 << 20 <= size <= 1 << 30
    assert size & (size - 1) == 0  # a power of two: it stays put as the free space moves
    assert size <= max(free // 10, 16 << 20)
    chosen = load_settings({"CORTEX_LOGS_MAX_BYTES": str(64 << 20)})
    logs = next(s for s in chosen.subjects().streams() if s.name == "CORTEX_LOGS")
    assert logs.max_bytes == 64 << 20


def test_tls_settings_come_as_a_pair_of_existing_files(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("x")
    key.write_text("x")
    with pytest.raises(SettingsError, match="CORTEX_TLS_CERT and CORTEX_TLS_KEY go together"):
        load_settings({"CORTEX_TLS_CERT": str(cert)})
    with pytest.raises(SettingsError, match=f"CORTEX_TLS_KEY: no file {tmp_path}/gone.pem"):
        load_settings({"CORTEX_TLS_CERT": str(cert), "CORTEX_TLS_KEY": str(tmp_path / "gone.pem")})
    served = load_settings({"CORTEX_TLS_CERT": str(cert), "CORTEX_TLS_KEY": str(key)})
    assert served.http_url == "https://127.0.0.1:8080"
    assert load_settings({}).http_url == "http://127.0.0.1:8080"


def test_the_events_stream_keeps_what_the_events_days_setting_says() -> None:
    day = 86_400.0

    def events_age(environ: dict[str, str]) -> float:
        subjects = load_settings(environ).subjects()
        (events,) = [s for s in subjects.streams() if s.name == subjects.events_stream]
        return events.max_age_seconds

    assert events_age({}) == 7 * day
    assert events_age({"CORTEX_EVENTS_DAYS": "90"}) == 90 * day
    with pytest.raises(SettingsError, match="CORTEX_EVENTS_DAYS"):
        load_settings({"CORTEX_EVENTS_DAYS": "0"})
