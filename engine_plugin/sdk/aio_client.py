"""asyncio client for the neurender server: stateful render sessions over numpy arrays.

    async with AsyncRenderClient("127.0.0.1:50051") as client:
        async with client.session("street", (256, 512)) as session:
            rgb = await session.render(labels=class_ids)            # uint8 [256, 512, 3]

            futures = [await session.submit(labels=f) for f in frames]  # pipelined, <= max_in_flight at once
            images = [(await f).image for f in futures]

A session is one Render stream: every frame depends on the frames before it. If the stream breaks because the
server went away, drained or closed an idle session (UNAVAILABLE, ABORTED), the session reopens itself through the
same address (behind a load balancer: on another replica) with its history (SessionState: the label inputs it sent
and the frames it received since the last reset, at most the model's history length), resends the frames not yet
answered and goes on as if nothing happened. It backs off exponentially and gives up after `reconnect_timeout_s`.
The sync client (client.py) wraps this one.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import TypeVar

import grpc
import numpy as np

from neurender.engine_plugin.sdk.common import (
    DEFAULT_MAX_MESSAGE_BYTES,
    FrameDropped,
    FrameHistory,
    FrameRejected,
    RenderResult,
    ServerError,
    ServerUnavailable,
    SessionClosed,
    auth_metadata,
    channel_options,
    decode_image,
    error_from_rpc,
    frame_inputs,
    open_message,
    reconnectable,
)
from neurender.proto.neurender.v1 import model_pb2, render_pb2, render_pb2_grpc

_Part = TypeVar("_Part")


def _opened(part: _Part | None) -> _Part:
    """A part the session makes when it opens; the methods that use it run only on an open session."""
    assert part is not None, "the session is not open"
    return part


class AsyncRenderClient:
    """A connection to one server. `token`: bearer token; TLS when `tls` or `root_certificates` is given
    (client_certificate = (PEM chain, PEM key) for servers that require one)."""

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        token: str | None = None,
        tls: bool = False,
        root_certificates: bytes | None = None,
        client_certificate: tuple[bytes, bytes] | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.target = target
        self.metadata = auth_metadata(token)
        self._secure = tls or root_certificates is not None
        self._credentials = (root_certificates, client_certificate)
        self._options = channel_options(max_message_bytes)
        self._channel: grpc.aio.Channel | None = None
        self._stub: render_pb2_grpc.NeuralRendererStub | None = None
        self.sessions: set[AsyncSession] = set()  # open sessions, closed with the client

    @property
    def stub(self) -> render_pb2_grpc.NeuralRendererStub:
        """The gRPC stub (the channel is made on first use, on the running event loop)."""
        if self._stub is None:
            if self._secure:
                roots, client = self._credentials
                credentials = grpc.ssl_channel_credentials(
                    root_certificates=roots,
                    private_key=client[1] if client else None,
                    certificate_chain=client[0] if client else None,
                )
                self._channel = grpc.aio.secure_channel(self.target, credentials, options=self._options)
            else:
                self._channel = grpc.aio.insecure_channel(self.target, options=self._options)
            self._stub = render_pb2_grpc.NeuralRendererStub(self._channel)
        return self._stub

    async def close(self) -> None:
        """Close the open sessions (their sent frames are answered first), then the channel."""
        for session in list(self.sessions):
            await session.close()
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None

    async def __aenter__(self) -> AsyncRenderClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def list_models(self) -> list[render_pb2.ModelSummary]:
        try:
            return list((await self.stub.ListModels(render_pb2.ListModelsRequest(), metadata=self.metadata)).models)
        except grpc.RpcError as err:
            raise error_from_rpc(err) from None

    async def get_model(self, name: str) -> model_pb2.ModelDescription:
        try:
            return await self.stub.GetModel(render_pb2.GetModelRequest(name=name), metadata=self.metadata)
        except grpc.RpcError as err:
            raise error_from_rpc(err) from None

    async def render_frame(
        self,
        model: str,
        size: tuple[int, int],
        *,
        encoding: str = "raw",
        jpeg_quality: int = 0,
        style_seed: int = 0,
        style_codes: Mapping[int, np.ndarray] | None = None,
        label_remap: Mapping[int, int] | None = None,
        **inputs: np.ndarray | None,
    ) -> np.ndarray:
        """One stateless frame (no history): uint8 [H, W, 3]."""
        request = render_pb2.RenderFrameRequest(
            session=open_message(model, size, encoding, jpeg_quality, style_seed, style_codes, label_remap),
            inputs=frame_inputs(inputs),
        )
        try:
            response = await self.stub.RenderFrame(request, metadata=self.metadata)
        except grpc.RpcError as err:
            raise error_from_rpc(err) from None
        return decode_image(response.frame)

    def session(
        self,
        model: str,
        size: tuple[int, int],
        *,
        encoding: str = "raw",
        jpeg_quality: int = 0,
        style_seed: int = 0,
        style_codes: Mapping[int, np.ndarray] | None = None,
        label_remap: Mapping[int, int] | None = None,
        drop_stale: bool = False,
        max_in_flight: int = 1,
        reconnect_timeout_s: float = 30.0,
    ) -> AsyncSession:
        """A render session on `model` for frames of `size` = (height, width); open it with `async with` or
        `await session.open()`. encoding: raw, png or jpeg (how frames travel back; results are always
        decoded to arrays). style_seed / style_codes {class: code}: the look, for models with style.
        label_remap {class: class}: render one class as another. drop_stale: the server keeps only the newest
        waiting frame (interactive viewports; skipped frames fail with FrameDropped). max_in_flight: frames
        submitted but not answered at once. reconnect_timeout_s: how long to keep trying to reopen a broken stream
        (backing off from 50 ms to 2 s between tries); 0 turns reconnecting off."""
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight is {max_in_flight}, expected at least 1")
        if reconnect_timeout_s < 0:
            raise ValueError(f"reconnect_timeout_s is {reconnect_timeout_s}, expected 0 (off) or more seconds")
        message = open_message(model, size, encoding, jpeg_quality, style_seed, style_codes, label_remap, drop_stale)
        return AsyncSession(self, message, max_in_flight, reconnect_timeout_s)


class AsyncSession:
    def __init__(
        self,
        client: AsyncRenderClient,
        open_request: render_pb2.OpenSession,
        max_in_flight: int,
        reconnect_timeout_s: float,
    ) -> None:
        self.client = client
        self.open_request = open_request
        self.info: render_pb2.SessionInfo | None = None  # session id and the model description, once open
        self.reconnects = 0
        self._max_in_flight = max_in_flight
        self._reconnect_timeout_s = reconnect_timeout_s
        self._history = FrameHistory()  # what a reopened stream needs to continue this session
        self._slots: asyncio.Semaphore | None = None
        self._lock: asyncio.Lock | None = None
        self._pending: OrderedDict[int, tuple[render_pb2.RenderRequest, asyncio.Future, float]] = OrderedDict()
        self._call: grpc.aio.StreamStreamCall | None = None
        self._outbox: asyncio.Queue | None = None  # requests of the current call; None ends its request stream
        self._reader: asyncio.Task | None = None
        self._recovery: asyncio.Task | None = None
        self._broken: ServerError | None = None  # the stream broke; reopen before the next frame
        self._failed: Exception | None = None  # the session is unusable
        self._next_id = 0
        self._reset_next = False
        self._closed = False

    @property
    def model(self) -> model_pb2.ModelDescription:
        if self.info is None:
            raise SessionClosed("the session is not open yet")
        return self.info.model

    async def __aenter__(self) -> AsyncSession:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Open the stream; raises ServerError (ModelNotFound, InvalidRequest, ...) if the server refuses."""
        self._slots = asyncio.Semaphore(self._max_in_flight)
        self._lock = asyncio.Lock()
        async with self._lock:
            await self._connect()
        self.client.sessions.add(self)

    def reset(self) -> None:
        """Forget the history before the next frame (a camera cut)."""
        self._reset_next = True

    async def render(self, *, reset: bool = False, **inputs: np.ndarray | None) -> np.ndarray:
        """Render one frame and wait for it: uint8 [H, W, 3]. Inputs by name: labels, instances, depth, motion,
        keypoints, pose_map, edges (numpy arrays in the dtypes the model describes)."""
        return (await (await self.submit(reset=reset, **inputs))).image

    async def submit(self, *, reset: bool = False, **inputs: np.ndarray | None) -> asyncio.Future:
        """Send one frame without waiting for it; returns a future of its RenderResult (or of FrameRejected,
        FrameDropped, ServerError). Waits while max_in_flight frames are unanswered."""
        if self._closed:
            raise SessionClosed("the session is closed")
        if self._failed is not None:
            raise self._failed
        if self._slots is None:
            raise SessionClosed("the session is not open: use `async with` or `await session.open()`")
        request = render_pb2.RenderRequest(frame=render_pb2.Frame(inputs=frame_inputs(inputs)))
        await self._slots.acquire()
        future = asyncio.get_running_loop().create_future()
        future.add_done_callback(self._release)
        try:
            async with _opened(self._lock):  # frames go out in frame_id order, never between a reconnect's resends
                if self._broken is not None:
                    await self._reopen(self._broken)
                if self._failed is not None:
                    raise self._failed
                request.frame.frame_id = self._next_id
                request.frame.reset = reset or self._reset_next
                self._next_id += 1
                self._reset_next = False
                self._pending[request.frame.frame_id] = (request, future, time.perf_counter())
                _opened(self._outbox).put_nowait(request)  # if the stream broke, the frame is resent after reconnecting
        except BaseException:
            if not future.done():
                future.cancel()
            raise
        return future

    def _release(self, future: asyncio.Future) -> None:
        _opened(self._slots).release()
        if not future.cancelled():
            future.exception()  # marks it seen: a frame nobody awaits (a dropped one, say) is not logged as an error

    async def close(self) -> None:
        """End the session: the server answers the frames already sent, then the stream closes."""
        if self._closed or self._slots is None:
            self._closed = True
            return
        self._closed = True
        self.client.sessions.discard(self)
        async with _opened(self._lock):  # after any reconnect in progress
            call, reader = self._call, self._reader
            if call is not None and self._broken is None and self._failed is None:
                _opened(self._outbox).put_nowait(render_pb2.RenderRequest(end=render_pb2.EndSession()))
                _opened(self._outbox).put_nowait(None)
        if reader is not None:
            try:
                await reader
            except asyncio.CancelledError:
                pass
        if call is not None:
            call.cancel()
        self._fail_pending(SessionClosed("the session was closed before this frame was answered"))

    # -- the stream -------------------------------------------------------------------------------------------

    async def _connect(self, timeout: float | None = None) -> None:
        """Open a stream carrying the session's history and resend the unanswered frames. Caller holds the lock."""
        # Requests go through a queue that gRPC drains itself: writes never block or fail here, and a call the
        # server ends at once (UNAUTHENTICATED, ...) reports its real status on read().
        outbox: asyncio.Queue = asyncio.Queue()
        request = render_pb2.RenderRequest(open=self.open_request)
        self._history.write(request.open.resume)
        outbox.put_nowait(request)
        call = self.client.stub.Render(_requests(outbox), metadata=self.client.metadata)
        try:
            response = await asyncio.wait_for(call.read(), timeout)
        except grpc.RpcError as err:
            outbox.put_nowait(None)
            raise error_from_rpc(err) from None
        except TimeoutError:
            outbox.put_nowait(None)
            call.cancel()
            raise ServerUnavailable(
                grpc.StatusCode.UNAVAILABLE, f"the server did not answer the session's open within {timeout:.1f} s"
            ) from None
        if response is grpc.aio.EOF or response.WhichOneof("kind") != "opened":
            outbox.put_nowait(None)
            call.cancel()
            raise SessionClosed(f"the server ended the stream without opening the session ({response!r})")
        self.info = response.opened
        self._history.keep(self.info.model.history_length)
        self._call, self._outbox, self._broken = call, outbox, None
        resend = [request for request, _, _ in self._pending.values()]
        self._reader = asyncio.create_task(self._read(call, outbox))
        for request in resend:
            outbox.put_nowait(request)

    async def _read(self, call: grpc.aio.StreamStreamCall, outbox: asyncio.Queue) -> None:
        try:
            await self._read_responses(call)
        finally:
            outbox.put_nowait(None)  # lets the call's request generator finish

    async def _read_responses(self, call: grpc.aio.StreamStreamCall) -> None:
        try:
            while True:
                response = await call.read()
                if response is grpc.aio.EOF:
                    break
                self._dispatch(response)
        except grpc.RpcError as err:
            error = error_from_rpc(err)
            if self._closed:
                self._fail_pending(SessionClosed("the session was closed before this frame was answered"))
            elif self._reconnect_timeout_s and reconnectable(error):
                self._broken = error
                if self._pending:  # frames are waiting for answers: reconnect now, not on the next submit
                    self._recovery = asyncio.get_running_loop().create_task(self._recover(call, error))
            else:
                self._failed = error
                self._fail_pending(error)
            return
        drop_stale = self.open_request.drop_policy == render_pb2.DROP_STALE
        for frame_id in list(self._pending):
            self._settle(
                frame_id,
                FrameDropped(frame_id)
                if drop_stale
                else SessionClosed(f"the stream ended before frame {frame_id} was answered"),
            )

    async def _recover(self, broken: grpc.aio.StreamStreamCall, error: ServerError) -> None:
        async with _opened(self._lock):
            if self._call is broken and self._failed is None and not self._closed:
                await self._reopen(error)

    async def _reopen(self, error: ServerError) -> None:
        """Reconnect with exponential backoff until reconnect_timeout_s has passed, or fail the session. Caller
        holds the lock."""
        started, delay, attempts = time.monotonic(), 0.05, 0
        last: ServerError = error
        while (remaining := self._reconnect_timeout_s - (time.monotonic() - started)) > 0:
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 2.0)
            attempts += 1
            try:
                await self._connect(timeout=max(self._reconnect_timeout_s - (time.monotonic() - started), 0.1))
                self.reconnects += 1
                return
            except ServerError as err:
                last = err
                if not reconnectable(err):
                    break
        else:
            last = type(last)(
                last.code,
                f"gave up reconnecting after {time.monotonic() - started:.1f} s and {attempts} "
                f"attempt(s) (reconnect_timeout_s {self._reconnect_timeout_s:g}); last error: {last.details}",
            )
        self._broken = None
        self._failed = last
        self._fail_pending(last)

    def _dispatch(self, response: render_pb2.RenderResponse) -> None:
        kind = response.WhichOneof("kind")
        if kind == "frame":
            frame = response.frame
            self._drop_before(frame.frame_id)
            entry = self._pending.get(frame.frame_id)
            if entry is None:
                return
            image = decode_image(frame)
            self._history.add(entry[0].frame, frame, image)
            self._settle(
                frame.frame_id,
                RenderResult(
                    frame_id=frame.frame_id,
                    image=image,
                    timings=frame.timings,
                    dropped=frame.dropped,
                    latency_ms=(time.perf_counter() - entry[2]) * 1e3,
                    encoded=frame.encoded if frame.encoding != render_pb2.RAW else None,
                ),
            )
        elif kind == "error":
            rejected = response.error
            self._drop_before(rejected.frame_id)
            self._settle(
                rejected.frame_id, FrameRejected(rejected.frame_id, rejected.error.code, rejected.error.message)
            )

    def _drop_before(self, frame_id: int) -> None:
        """Frames are answered in order, so unanswered frames sent before `frame_id` were dropped."""
        for earlier in list(self._pending):
            if earlier >= frame_id:
                break
            self._history.dropped(self._pending[earlier][0].frame)
            self._settle(earlier, FrameDropped(earlier))

    def _settle(self, frame_id: int, outcome: RenderResult | Exception) -> None:
        entry = self._pending.pop(frame_id, None)
        if entry is None or entry[1].done():
            return
        if isinstance(outcome, Exception):
            entry[1].set_exception(outcome)
        else:
            entry[1].set_result(outcome)

    def _fail_pending(self, error: Exception) -> None:
        for frame_id in list(self._pending):
            self._settle(frame_id, error)


async def _requests(outbox: asyncio.Queue):
    while (request := await outbox.get()) is not None:
        yield request
