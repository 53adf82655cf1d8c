"""Importing agent classes named by templates (`package.module:Class`)."""

from __future__ import annotations

import importlib
import sys

from cortex.kernel.handlers import refusal
from cortex.sdk.agent import Agent


class HandlerError(Exception):
    """The template's handler cannot be used; the message says why, for the agent's status."""


def describe(exc: BaseException) -> str:
    """`Type: message`, for an agent's status and logs (`SystemExit: 2`)."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def extend_path(agent_path: str) -> None:
    """Make `CORTEX_AGENT_PATH` folders importable, first in line."""
    for folder in reversed([p for p in agent_path.split(":") if p]):
        if folder not in sys.path:
            sys.path.insert(0, folder)


def load_agent_class(handler: str, agent_path: str = "", agent_modules: str = "") -> type[Agent]:
    """The class `handler` names, from where the settings allow agent code to come from.

    Whatever importing the module raises, `SystemExit` and `KeyboardInterrupt` included, is the
    agent's failure, not the host's: the host goes on with its other agents."""
    why = refusal(handler, agent_path, agent_modules)
    if why:
        raise HandlerError(why)
    module_name, _, class_name = handler.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        where = (
            f"CORTEX_AGENT_PATH is {agent_path!r}" if agent_path else "CORTEX_AGENT_PATH is unset"
        )
        raise HandlerError(
            f"cannot import {module_name!r}: {exc}; agent hosts import handlers from the folders "
            f"in CORTEX_AGENT_PATH and the installed packages ({where})"
        ) from None
    except BaseException as exc:  # anything the module's own code raises while it loads
        raise HandlerError(f"cannot import {module_name!r}: {describe(exc)}") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise HandlerError(f"{module_name!r} has no {class_name!r}")
    if not (isinstance(cls, type) and issubclass(cls, Agent)):
        raise HandlerError(f"{handler} is not a subclass of cortex.sdk.Agent")
    return cls
