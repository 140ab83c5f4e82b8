"""Optional bearer-token check for the NeuralRenderer service (health and reflection stay open for probes).

Clients send metadata `authorization: Bearer <token>`; the token is compared in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

import grpc

PROTECTED_PREFIX = "/neurender.v1.NeuralRenderer/"


def check_authorization(metadata: tuple, token: str) -> str | None:
    """None if the metadata carries the right bearer token, else what was wrong and what was expected."""
    values = [v for k, v in metadata if k == "authorization"]
    if not values:
        return "missing 'authorization' metadata; expected 'authorization: Bearer <token>'"
    scheme, _, presented = values[0].partition(" ")
    if scheme.lower() != "bearer" or not presented:
        return "'authorization' metadata is not 'Bearer <token>'"
    if not hmac.compare_digest(presented.strip().encode(), token.encode()):
        return "the bearer token is wrong"
    return None


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or not details.method.startswith(PROTECTED_PREFIX):
            return handler
        problem = check_authorization(tuple(details.invocation_metadata or ()), self._token)
        if problem is None:
            return handler
        return _refusing(handler, problem)


def _refusing(handler: grpc.RpcMethodHandler, problem: str) -> grpc.RpcMethodHandler:
    """A handler that fails the call with UNAUTHENTICATED, parsing no request. A single request is not even read
    (the refusing handler takes it as a stream it never reads), so large payloads cost no memory."""

    async def refuse(_requests, context: grpc.aio.ServicerContext):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, problem)

    async def refuse_streaming(requests, context: grpc.aio.ServicerContext):
        if handler.request_streaming:
            # Take the client's first message before failing the call: a grpc.aio client still writing it
            # when the call ends would report INTERNAL instead of this status.
            async for _ in requests:
                break
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, problem)
        yield  # never reached; makes this an async generator, as streaming-response handlers must be

    kwargs = dict(request_deserializer=None, response_serializer=handler.response_serializer)
    if handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse_streaming, **kwargs)
    return grpc.stream_unary_rpc_method_handler(refuse, **kwargs)
