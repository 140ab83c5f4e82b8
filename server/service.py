"""The NeuralRenderer gRPC service: Render streams (one stateful session each), RenderFrame, ListModels, GetModel.

Everything here runs on the event loop and only queues and answers; inference runs on the batcher's worker
threads, and decoding, checking and encoding frames on a small thread pool, so that no frame's CPU work stalls
other sessions or health checks. Frames are admitted against the memory budget (admission.py) before they
are queued.

A Render stream has two halves. The reader takes frames off the stream, checks them (a bad frame is answered
in-band with FrameRejected) and hands them to the batcher; a QUEUE session may have `queue_per_session`
frames waiting, in flight or unsent, after which the reader stops reading and gRPC flow control pushes back on
the client. The writer (the handler itself) answers frames strictly in the order they were accepted. After
EndSession the reader reads on until the client half-closes, answering any further frame with an error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc

from neurender.proto.neurender.v1 import model_pb2, render_pb2, render_pb2_grpc
from neurender.server.admission import PixelBudget, budget_pixels
from neurender.server.batcher import Batcher, Job, Outcome
from neurender.server.config import ServerConfig
from neurender.server.encode import encode_frame
from neurender.server.inputs import FrameError, decode_frame
from neurender.server.metrics import Metrics
from neurender.server.registry import ModelRegistry
from neurender.server.resume import resumed_history
from neurender.server.session import RequestError, Session, SessionSpec, resolve_open
from neurender.server.wire import Undecodable

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Pending:
    """A frame accepted into a stream, answered when `future` resolves: an Outcome from the batcher, a ready
    RenderResponse (an in-band rejection), or None (dropped by DROP_STALE)."""

    future: asyncio.Future
    holds_slot: bool  # and the frame's share of the memory budget
    frame_id: int


@dataclass(frozen=True)
class _Close:
    """Ends the writer after the frames before it are answered: OK if code is None, else with that status."""

    code: grpc.StatusCode | None = None
    message: str = ""


@dataclass(eq=False)
class _Stream:
    session: Session
    slots: asyncio.Semaphore
    peer: str
    outgoing: asyncio.Queue = field(default_factory=asyncio.Queue)
    pending_jobs: dict[Job, _Pending] = field(default_factory=dict)
    reader: asyncio.Task | None = None
    unanswered: int = 0
    unsent: deque[int] = field(default_factory=deque)  # ids of the accepted frames not answered yet, in order
    held_pixels: int = 0  # this stream's share of the memory budget
    last_frame_id: int | None = None
    ended: bool = False  # EndSession received
    closing: bool = False

    def close(self, code: grpc.StatusCode | None, message: str) -> None:
        """Stop reading and end the stream once the frames already accepted are answered."""
        if self.closing:
            return
        self.closing = True
        if self.reader is not None and self.reader is not asyncio.current_task():
            self.reader.cancel()
        self.outgoing.put_nowait(_Close(code, message))


class RendererService(render_pb2_grpc.NeuralRendererServicer):
    def __init__(self, registry: ModelRegistry, config: ServerConfig, batcher: Batcher, metrics: Metrics) -> None:
        self.registry = registry
        self.config = config
        self.batcher = batcher
        self.metrics = metrics
        self.streams: dict[str, _Stream] = {}
        self.unary_calls = 0  # RenderFrame calls in progress; they count against max_sessions
        self.budget = PixelBudget(budget_pixels(config))
        self.draining = False
        self.undelivered: dict[str, list[int]] = {}  # session id -> frames accepted but never answered (drain)
        self._frames = ThreadPoolExecutor(config.frame_threads, thread_name_prefix="neurender-frames")

    def shutdown(self) -> None:
        self._frames.shutdown(wait=True)

    # -- unary calls -------------------------------------------------------------------------------------

    async def ListModels(
        self, request: render_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> render_pb2.ListModelsResponse:
        return render_pb2.ListModelsResponse(
            models=[
                render_pb2.ModelSummary(
                    name=m.name,
                    modality=m.description.modality,
                    num_classes=m.num_classes,
                    description=m.description.description,
                )
                for m in self.registry.models()
            ]
        )

    async def GetModel(
        self, request: render_pb2.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> model_pb2.ModelDescription:
        model = self.registry.get(request.name)
        if model is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"model {request.name!r} is not served here; served models: {', '.join(self.registry.names())}",
            )
        return model.description

    async def RenderFrame(
        self, request: render_pb2.RenderFrameRequest, context: grpc.aio.ServicerContext
    ) -> render_pb2.RenderFrameResponse:
        if self.draining:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, "server is shutting down; send the frame to another replica"
            )
        try:
            if request.session.HasField("resume"):
                raise RequestError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "RenderFrame renders one frame without history; send session.resume on a Render stream",
                )
            spec = resolve_open(self.registry, request.session, self.config)
            self._check_capacity(spec)
        except RequestError as err:
            await context.abort(err.code, err.message)
        self.unary_calls += 1
        try:
            return await self._render_one(spec, request.inputs, context)
        finally:
            self.unary_calls -= 1

    async def _render_one(
        self, spec: SessionSpec, inputs: render_pb2.FrameInputs, context: grpc.aio.ServicerContext
    ) -> render_pb2.RenderFrameResponse:
        try:
            decoded = await self._decode(spec, inputs)
        except FrameError as err:
            self.metrics.frames.labels(spec.model.name, "rejected").inc()
            await context.abort(grpc.StatusCode[err.code], err.message)
        session = Session.open(spec)
        pixels = spec.height * spec.width
        await self.budget.acquire(pixels)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        job = Job(
            session,
            0,
            decoded,
            reset=True,
            on_done=lambda outcome: loop.call_soon_threadsafe(_resolve, future, outcome),
        )
        self.batcher.register(session)
        self.batcher.submit(job)
        try:
            response = await self._answer(session, await future)
        finally:
            session.closed = True
            self.batcher.unregister(session)
            self.budget.release(pixels)
        if response.WhichOneof("kind") == "error":
            await context.abort(grpc.StatusCode.INTERNAL, response.error.error.message)
        return render_pb2.RenderFrameResponse(frame=response.frame)

    # -- Render streams ------------------------------------------------------------------------------------

    async def Render(
        self, request_iterator: AsyncIterator[render_pb2.RenderRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[render_pb2.RenderResponse]:
        requests = request_iterator.__aiter__()
        stream = await self._open(requests, context)
        session = stream.session
        try:
            yield render_pb2.RenderResponse(
                opened=render_pb2.SessionInfo(session_id=session.id, model=session.spec.model.description)
            )
            stream.reader = asyncio.create_task(self._read(requests, stream))
            while True:
                item = await stream.outgoing.get()
                if isinstance(item, _Close):
                    if item.code is not None:
                        await context.abort(item.code, item.message)
                    return
                result = await item.future
                try:
                    if result is not None:
                        response = await self._answer(session, result)
                        yield response
                finally:
                    stream.unanswered -= 1
                    stream.unsent.popleft()
                    if item.holds_slot:
                        self._release(stream)
                session.touch()
        finally:
            self._forget(stream)

    async def _open(
        self, requests: AsyncIterator[render_pb2.RenderRequest], context: grpc.aio.ServicerContext
    ) -> _Stream:
        try:
            first = await requests.__anext__()
        except StopAsyncIteration:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "the stream ended before its OpenSession message")
        if isinstance(first, Undecodable):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, first.describe())
        kind = first.WhichOneof("kind")
        if kind != "open":
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"the first message of a Render stream must be 'open' (OpenSession), got {kind or 'an empty message'!r}",
            )
        if self.draining:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                "server is shutting down and accepts no new sessions; connect to another replica",
            )
        try:
            spec = resolve_open(self.registry, first.open, self.config)
            self._check_capacity(spec)
            history = await asyncio.get_running_loop().run_in_executor(
                self._frames, resumed_history, spec, first.open.resume, self.config.max_people
            )
        except RequestError as err:
            await context.abort(err.code, err.message)
        session = Session.open(spec, history)
        stream = _Stream(session, asyncio.Semaphore(self.config.queue_per_session), context.peer())
        self.streams[session.id] = stream
        self.batcher.register(session)
        self.metrics.sessions.labels(spec.model.name).inc()
        self.metrics.sessions_opened.labels(spec.model.name).inc()
        log.info(
            "session %s opened: %s %dx%d",
            session.id,
            spec.model.name,
            spec.height,
            spec.width,
            extra={
                "fields": {
                    "event": "session_opened",
                    "session": session.id,
                    "model": spec.model.name,
                    "height": spec.height,
                    "width": spec.width,
                    "peer": stream.peer,
                    "encoding": render_pb2.ImageEncoding.Name(spec.encoding),
                    "drop_stale": spec.drop_stale,
                    "resumed_frames": len(first.open.resume.labels),
                }
            },
        )
        return stream

    def _check_capacity(self, spec: SessionSpec) -> None:
        """Raise RequestError if the server has no room for another session or call, or never for its frames."""
        if len(self.streams) + self.unary_calls >= self.config.max_sessions:
            raise RequestError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"server is at its limit of {self.config.max_sessions} open sessions and RenderFrame calls "
                "(max_sessions); try again later",
            )
        problem = self.budget.too_large(spec.height * spec.width)
        if problem:
            raise RequestError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{spec.height}x{spec.width}: {problem}")

    def _forget(self, stream: _Stream) -> None:
        session = stream.session
        if stream.reader is not None:
            stream.reader.cancel()
        session.closed = True
        if stream.unsent and self.draining:
            self.undelivered[session.id] = list(stream.unsent)
        self.budget.release(stream.held_pixels)
        stream.held_pixels = 0
        if self.streams.pop(session.id, None) is not None:
            self.batcher.unregister(session)
            self.metrics.sessions.labels(session.spec.model.name).dec()
            log.info(
                "session %s closed after %d frames (%d dropped)",
                session.id,
                session.frames,
                session.dropped,
                extra={
                    "fields": {
                        "event": "session_closed",
                        "session": session.id,
                        "model": session.spec.model.name,
                        "frames": session.frames,
                        "dropped": session.dropped,
                    }
                },
            )

    async def _read(self, requests: AsyncIterator[render_pb2.RenderRequest], stream: _Stream) -> None:
        try:
            async for request in requests:
                if isinstance(request, Undecodable):
                    stream.close(grpc.StatusCode.INVALID_ARGUMENT, request.describe())
                    return
                kind = request.WhichOneof("kind")
                if kind == "frame" and stream.ended:
                    self._reject(
                        stream,
                        request.frame.frame_id,
                        "FAILED_PRECONDITION",
                        "arrived after EndSession and was not rendered; send frames before 'end', or open a new session",
                    )
                elif kind == "frame":
                    await self._accept(stream, request.frame)
                elif kind == "end":
                    stream.ended = True  # the stream ends when the client half-closes it
                elif kind == "open":
                    stream.close(
                        grpc.StatusCode.FAILED_PRECONDITION,
                        "this stream's session is already open; send one OpenSession per stream, then frames",
                    )
                    return
                else:
                    stream.close(grpc.StatusCode.INVALID_ARGUMENT, "empty RenderRequest; expected 'frame' or 'end'")
                    return
            stream.close(None, "")
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the transport failed (e.g. a message over max_message_bytes)
            log.warning(
                "session %s: reading the stream failed: %s",
                stream.session.id,
                err,
                extra={"fields": {"event": "read_failed", "session": stream.session.id}},
            )
            stream.close(grpc.StatusCode.INTERNAL, f"reading the stream failed: {err}")

    async def _decode(self, spec: SessionSpec, inputs: render_pb2.FrameInputs) -> dict:
        return await asyncio.get_running_loop().run_in_executor(
            self._frames, decode_frame, spec, inputs, self.config.max_people
        )

    def _reject(self, stream: _Stream, frame_id: int, code: str, message: str) -> None:
        self.metrics.frames.labels(stream.session.spec.model.name, "rejected").inc()
        rejection = render_pb2.RenderResponse(
            error=render_pb2.FrameRejected(
                frame_id=frame_id, error=render_pb2.FrameError(code=code, message=f"frame {frame_id}: {message}")
            )
        )
        self._enqueue(stream, _Pending(_done(rejection), holds_slot=False, frame_id=frame_id))

    async def _admit(self, stream: _Stream) -> None:
        """Take a slot of the session's queue and the frame's share of the memory budget (waiting for both)."""
        await stream.slots.acquire()
        pixels = stream.session.spec.height * stream.session.spec.width
        try:
            await self.budget.acquire(pixels)
        except BaseException:
            stream.slots.release()
            raise
        stream.held_pixels += pixels

    def _release(self, stream: _Stream) -> None:
        stream.slots.release()
        pixels = stream.session.spec.height * stream.session.spec.width
        stream.held_pixels -= pixels
        self.budget.release(pixels)

    async def _accept(self, stream: _Stream, frame: render_pb2.Frame) -> None:
        session = stream.session
        session.touch()
        received = time.perf_counter()
        try:
            inputs = await self._decode(session.spec, frame.inputs)
        except FrameError as err:
            self._reject(stream, frame.frame_id, err.code, err.message)
            return
        loop = asyncio.get_running_loop()
        pending = _Pending(loop.create_future(), holds_slot=True, frame_id=frame.frame_id)
        job = Job(
            session,
            frame.frame_id,
            inputs,
            frame.reset,
            received=received,
            on_done=lambda outcome: loop.call_soon_threadsafe(_resolve, pending.future, outcome),
        )
        if session.spec.drop_stale:
            needs_slot = not stream.slots.locked()
            if needs_slot:
                await self._admit(stream)
            accepted, replaced = self.batcher.submit(job, replace_only=not needs_slot)
            if not accepted:  # no free slot and nothing waiting to replace: the newest frame goes
                self._count_drop(session)
                return
            if replaced is not None:  # the new frame takes over the replaced frame's slot
                if needs_slot:
                    self._release(stream)
                dropped = stream.pending_jobs.pop(replaced)
                dropped.holds_slot = False
                dropped.future.set_result(None)
                self._count_drop(session)
        else:
            await self._admit(stream)
            self.batcher.submit(job)
        stream.pending_jobs[job] = pending
        stream.last_frame_id = frame.frame_id
        self._enqueue(stream, pending)

    def _enqueue(self, stream: _Stream, pending: _Pending) -> None:
        stream.unanswered += 1
        stream.unsent.append(pending.frame_id)
        stream.outgoing.put_nowait(pending)
        pending.future.add_done_callback(lambda _: self._settled(stream, pending))

    def _settled(self, stream: _Stream, pending: _Pending) -> None:
        for job, entry in list(stream.pending_jobs.items()):
            if entry is pending:
                del stream.pending_jobs[job]

    def _count_drop(self, session: Session) -> None:
        session.dropped += 1
        self.metrics.frames.labels(session.spec.model.name, "dropped").inc()

    async def _answer(self, session: Session, result: Outcome | render_pb2.RenderResponse) -> render_pb2.RenderResponse:
        """The response for a finished frame: the encoded image and its timings, or an in-band error."""
        if isinstance(result, render_pb2.RenderResponse):
            return result
        job, model = result.job, session.spec.model.name
        if result.error is not None:
            self.metrics.frames.labels(model, "failed").inc()
            return render_pb2.RenderResponse(
                error=render_pb2.FrameRejected(
                    frame_id=job.frame_id,
                    error=render_pb2.FrameError(code="INTERNAL", message=f"frame {job.frame_id}: {result.error}"),
                )
            )
        frame = render_pb2.RenderedFrame(frame_id=job.frame_id)
        encode_start = time.perf_counter()
        spec = session.spec
        await asyncio.get_running_loop().run_in_executor(
            self._frames, encode_frame, result.rgb, spec.encoding, spec.jpeg_quality, frame
        )
        done = time.perf_counter()
        queue_s, encode_s, total_s = result.started - job.received, done - encode_start, done - job.received
        frame.timings.CopyFrom(
            render_pb2.Timings(
                queue_ms=queue_s * 1e3,
                inference_ms=result.inference_s * 1e3,
                encode_ms=encode_s * 1e3,
                total_ms=total_s * 1e3,
                batch_size=result.batch_size,
            )
        )
        frame.dropped = session.dropped
        session.frames += 1
        self.metrics.frames.labels(model, "rendered").inc()
        for stage, seconds in (("queue", queue_s), ("encode", encode_s), ("total", total_s)):
            self.metrics.latency.labels(model, stage).observe(seconds)
        return render_pb2.RenderResponse(frame=frame)

    # -- server lifecycle ------------------------------------------------------------------------------------

    def expire_idle(self, now: float) -> None:
        """Close sessions that have had no frame for idle_timeout_s and have nothing left to answer."""
        for stream in list(self.streams.values()):
            idle = now - stream.session.last_activity
            if idle > self.config.idle_timeout_s and stream.unanswered == 0:
                log.info(
                    "session %s expired after %.1f s idle",
                    stream.session.id,
                    idle,
                    extra={
                        "fields": {"event": "session_expired", "session": stream.session.id, "idle_s": round(idle, 3)}
                    },
                )
                stream.close(
                    grpc.StatusCode.ABORTED,
                    f"session {stream.session.id} expired after {idle:.1f} s without frames (idle_timeout_s "
                    f"{self.config.idle_timeout_s:g}); its history is gone here: open a new session (with open.resume to continue it)",
                )

    def begin_drain(self) -> None:
        """Refuse new sessions, stop reading frames, and end each stream once its accepted frames are answered."""
        self.draining = True
        for stream in list(self.streams.values()):
            last = "no frame" if stream.last_frame_id is None else f"frame {stream.last_frame_id}"
            stream.close(
                grpc.StatusCode.UNAVAILABLE,
                f"server is shutting down: frames after {last} were not rendered; reopen the session on "
                "another replica (with its state in open.resume to continue it) and resend them",
            )

    def undelivered_frames(self) -> dict[str, list[int]]:
        """Session id -> ids of frames accepted while draining and never answered (streams gone or still open)."""
        still_open = {sid: list(stream.unsent) for sid, stream in self.streams.items() if stream.unsent}
        return {**self.undelivered, **still_open}

    def idle(self) -> bool:
        return not self.streams and self.batcher.pending() == 0


def _done(value: object) -> asyncio.Future:
    future = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future


def _resolve(future: asyncio.Future, value: object) -> None:
    if not future.done():
        future.set_result(value)
