"""The gateway's HTTP edge: what every request meets before a route runs (docs/security.md).

``body`` refuses oversized and over-nested bodies before they are read or parsed, ``headers`` adds
the security headers, ``timeouts`` closes connections of clients that send too slowly. ``create_app``
mounts the middlewares; ``run_gateway`` hands uvicorn the protocol.
"""

from gateway.edge.body import BodyLimits
from gateway.edge.headers import SecurityHeaders
from gateway.edge.timeouts import timed_protocol

__all__ = ["BodyLimits", "SecurityHeaders", "timed_protocol"]
