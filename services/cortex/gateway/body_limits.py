"""How big a request body may be: larger ones are refused with 413 before they are read whole.

Only a message's payload can need much: up to 64 MiB travels by claim check, and base64 adds a
third to a binary one. Everything else (agents, templates, state, workflow parameters) travels
as one NATS message, which `cortex up` lets be 8 MiB, so a bigger body could not be stored
anyway and one oversized request cannot make a gateway hold 96 MiB."""

from __future__ import annotations

BODY_LIMIT = 8 * 1024 * 1024
MESSAGE_BODY_LIMIT = 96 * 1024 * 1024
