"""The NeuralRenderer service on a gRPC server, with request bytes that are not valid protobuf answered as a
client's mistake (INVALID_ARGUMENT, one rate-limited log line) instead of an UNKNOWN status and a traceback.

The deserializer never raises: bytes that do not parse become an `Undecodable`, which the service's handlers
refuse. gRPC would otherwise fail the call inside its own machinery, before any handler (or the token check)
could answer it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.message import DecodeError, Message

from neurender.proto.neurender.v1 import render_pb2

log = logging.getLogger(__name__)

SERVICE = render_pb2.DESCRIPTOR.services_by_name["NeuralRenderer"]
LOG_EVERY_S = 10.0


class Undecodable:
    """A request whose bytes are not a valid message of the method's request type."""

    def __init__(self, type_name: str, size: int, error: str) -> None:
        self.type_name, self.size, self.error = type_name, size, error

    def describe(self) -> str:
        return f"the request ({self.size} bytes) is not a valid {self.type_name} protobuf message: {self.error}"


class _RateLimitedWarning:
    """One log line per LOG_EVERY_S seconds, saying how many like it were left out since."""

    def __init__(self) -> None:
        self._last = float("-inf")
        self._suppressed = 0

    def __call__(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last < LOG_EVERY_S:
            self._suppressed += 1
            return
        more = f" ({self._suppressed} more since the last such line)" if self._suppressed else ""
        log.warning(
            "%s%s", message, more, extra={"fields": {"event": "undecodable_request", "suppressed": self._suppressed}}
        )
        self._last, self._suppressed = now, 0


_warn_undecodable = _RateLimitedWarning()


def safe_deserializer(message_class: type[Message]) -> Callable[[bytes], Message | Undecodable]:
    type_name = message_class.DESCRIPTOR.full_name

    def deserialize(data: bytes) -> Message | Undecodable:
        try:
            return message_class.FromString(data)
        except DecodeError as err:
            undecodable = Undecodable(type_name, len(data), str(err).rsplit(": ", 1)[-1])
            _warn_undecodable(f"refused a call: {undecodable.describe()}")
            return undecodable

    return deserialize


def _refusing_undecodable(behaviour: Callable) -> Callable:
    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, Undecodable):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.describe())
        return await behaviour(request, context)

    return unary


def add_service(servicer: Any, server: grpc.aio.Server) -> None:
    """Register every NeuralRenderer method of `servicer` (streaming handlers check for Undecodable themselves)."""
    handlers = {}
    for method in SERVICE.methods:
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        behaviour = getattr(servicer, method.name)
        kwargs = dict(
            request_deserializer=safe_deserializer(request_class), response_serializer=response_class.SerializeToString
        )
        if method.client_streaming and method.server_streaming:
            handlers[method.name] = grpc.stream_stream_rpc_method_handler(behaviour, **kwargs)
        elif not method.client_streaming and not method.server_streaming:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(_refusing_undecodable(behaviour), **kwargs)
        else:
            raise NotImplementedError(f"{method.full_name}: no handler for this streaming shape")
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),))
