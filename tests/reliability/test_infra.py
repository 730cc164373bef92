"""Which failures are the infrastructure's: those are retried, never answered with an apology or a 500."""

from __future__ import annotations

import redis.exceptions

from gateway.shared.infra import is_infrastructure_error


def test_a_write_on_a_socket_redis_closed_while_restarting_is_infrastructure() -> None:
    # What redis-py's health check raised in a fault test while Redis restarted: a RuntimeError, no ConnectionError.
    closed = RuntimeError("unable to perform operation on <TCPTransport closed=True>; the handler is closed")
    assert is_infrastructure_error(closed)


def test_redis_errors_and_their_causes_are_infrastructure_and_bugs_are_not() -> None:
    assert is_infrastructure_error(redis.exceptions.ConnectionError("Connection refused"))
    wrapped = ValueError("while admitting")
    wrapped.__cause__ = redis.exceptions.TimeoutError("Timeout reading from socket")
    assert is_infrastructure_error(wrapped)
    assert is_infrastructure_error(redis.exceptions.ResponseError("OOM command not allowed"))
    assert not is_infrastructure_error(RuntimeError("dictionary changed size during iteration"))
    assert not is_infrastructure_error(redis.exceptions.ResponseError("WRONGTYPE Operation against a key"))
