"""What an `http` step's output and errors show of credentials: nothing."""

from __future__ import annotations

from cortex.workflow.redaction import redact_headers, redact_text, redact_url


def test_credential_headers_are_hidden_by_name_or_by_the_look_of_the_value() -> None:
    shown = redact_headers(
        [
            ("Content-Type", "application/json"),
            ("Set-Cookie", "sid=abc123; HttpOnly"),
            ("Set-Cookie", "theme=dark"),
            ("X-Api-Key", "k-123456"),
            ("X-Upstream-Token", "t-99"),
            ("WWW-Authenticate", 'Bearer realm="api"'),
            ("X-Echo", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig"),
            ("X-Note", "an ordinary value"),
            ("Link", "<https://example.com/page/2>; rel=next"),
        ]
    )
    assert shown == {
        "content-type": "application/json",
        "set-cookie": "***, ***",
        "x-api-key": "***",
        "x-upstream-token": "***",
        "www-authenticate": "***",
        "x-echo": "***",
        "x-note": "an ordinary value",
        "link": "<https://example.com/page/2>; rel=next",
    }


def test_urls_lose_their_password_and_secret_query_values() -> None:
    assert (
        redact_url("https://bot:hunter22@api.example.com/v1/items?page=2&api_key=XYZ&token=abc")
        == "https://bot:***@api.example.com/v1/items?page=2&api_key=***&token=***"
    )
    assert redact_url("https://maps.example.com/geo?q=x&key=AIza123") == (
        "https://maps.example.com/geo?q=x&key=***"
    )
    assert redact_url("https://api.example.com/v1/items?page=2") == (
        "https://api.example.com/v1/items?page=2"
    )


def test_known_secrets_are_cut_out_of_error_texts() -> None:
    assert (
        redact_text("401: token s3cr3t-value refused for s3cr3t-value", ["s3cr3t-value", "ab"])
        == "401: token *** refused for ***"
    )


def test_credential_shapes_are_cut_out_of_error_texts_unasked() -> None:
    said = "refused: Bearer abc.def-123456 and eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.x"
    assert redact_text(said, []) == "refused: Bearer *** and ***"
