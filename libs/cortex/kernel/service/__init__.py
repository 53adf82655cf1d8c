"""The service runtime: what every platform service is built on."""

from cortex.kernel.service.context import Context
from cortex.kernel.service.runtime import ServiceRuntime

__all__ = ["Context", "ServiceRuntime"]
