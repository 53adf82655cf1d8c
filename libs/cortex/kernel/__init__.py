"""The shared kernel every service stands on: settings, logging, errors, the event store port
and its adapters, the NATS bus, projections and the service runtime."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("codevald-cortex")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
