"""Synchronous client for the neurender server: stateful render sessions over numpy arrays.

    from neurender.engine_plugin.sdk.client import RenderClient

    with RenderClient("127.0.0.1:50051", token=None) as client:
        with client.session("street", (256, 512)) as session:
            rgb = session.render(labels=class_ids)                 # uint8 [256, 512, 3]
            session.reset()                                        # camera cut
            futures = [session.submit(labels=f) for f in frames]   # pipelined (max_in_flight at once)
            images = [f.result().image for f in futures]

It runs the asyncio client (aio_client.py) on a private event-loop thread, so it can be used from any thread,
including an engine's or Blender's; every call blocks only its caller. Errors are the classes in
client_common.py: ServerError and its subclasses for refused calls, FrameRejected for a bad frame (the
session lives on), FrameDropped for a frame a DROP_STALE session skipped.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections import deque
from collections.abc import Coroutine, Iterable, Iterator
from typing import Any, TypeVar

import numpy as np

from neurender.engine_plugin.sdk.aio_client import AsyncRenderClient, AsyncSession
from neurender.engine_plugin.sdk.common import (  # noqa: F401  (re-exported: the SDK's public names)
    FrameDropped,
    FrameRejected,
    InvalidRequest,
    ModelNotFound,
    NeurenderError,
    RenderResult,
    ServerBusy,
    ServerError,
    ServerUnavailable,
    SessionClosed,
    SessionExpired,
    Unauthenticated,
)
from neurender.proto.neurender.v1 import model_pb2, render_pb2

T = TypeVar("T")


class RenderClient:
    """A connection to one server; see AsyncRenderClient for the arguments."""

    def __init__(self, target: str = "127.0.0.1:50051", **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="neurender-client", daemon=True)
        self._thread.start()
        self._client = AsyncRenderClient(target, **options)

    def _run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self._client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> RenderClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def list_models(self) -> list[render_pb2.ModelSummary]:
        return self._run(self._client.list_models())

    def get_model(self, name: str) -> model_pb2.ModelDescription:
        return self._run(self._client.get_model(name))

    def render_frame(self, model: str, size: tuple[int, int], **kwargs: Any) -> np.ndarray:
        """One stateless frame (no history); arguments as AsyncRenderClient.render_frame."""
        return self._run(self._client.render_frame(model, size, **kwargs))

    def session(self, model: str, size: tuple[int, int], **options: Any) -> Session:
        """A render session; open it with `with` or `.open()`. Options as AsyncRenderClient.session:
        encoding, jpeg_quality, style_seed, style_codes, label_remap, drop_stale, max_in_flight,
        reconnect_timeout_s."""
        return Session(self, self._client.session(model, size, **options))


class Session:
    def __init__(self, client: RenderClient, session: AsyncSession) -> None:
        self._client = client
        self._session = session

    @property
    def info(self) -> render_pb2.SessionInfo | None:
        """The session id and model description the server sent when the session opened."""
        return self._session.info

    @property
    def model(self) -> model_pb2.ModelDescription:
        return self._session.model

    @property
    def reconnects(self) -> int:
        """How often the session reopened its stream after the server went away."""
        return self._session.reconnects

    def open(self) -> Session:
        self._client._run(self._session.open())
        return self

    def __enter__(self) -> Session:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stream(self, frames: Iterable[tuple[T, dict[str, Any]]]) -> Iterator[tuple[T, RenderResult]]:
        """Pipelined rendering: (tag, frame inputs) in, (tag, RenderResult) out, in order. Up to max_in_flight
        frames travel at once, and the next frame is made (the iterable advanced) while earlier ones render."""
        pending: deque[tuple[T, concurrent.futures.Future[RenderResult]]] = deque()
        for tag, inputs in frames:
            pending.append((tag, self.submit(**inputs)))
            while pending and pending[0][1].done():
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()

    def render(self, *, reset: bool = False, **inputs: np.ndarray | None) -> np.ndarray:
        """Render one frame and wait for it: uint8 [H, W, 3]. Inputs by name: labels, instances, depth, motion,
        keypoints, pose_map, edges."""
        return self.submit(reset=reset, **inputs).result().image

    def submit(self, *, reset: bool = False, **inputs: np.ndarray | None) -> concurrent.futures.Future[RenderResult]:
        """Send one frame; returns a future of its RenderResult. Blocks while max_in_flight frames are unanswered."""
        future = self._client._run(self._session.submit(reset=reset, **inputs))
        return asyncio.run_coroutine_threadsafe(_await(future), self._client._loop)

    def reset(self) -> None:
        """Forget the history before the next frame (a camera cut)."""
        self._client._loop.call_soon_threadsafe(self._session.reset)  # ordered before any later submit

    def close(self) -> None:
        """End the session after the frames already sent are answered."""
        self._client._run(self._session.close())


async def _await(future: asyncio.Future) -> Any:
    return await future


__all__ = [
    "RenderClient",
    "Session",
    "RenderResult",
    "NeurenderError",
    "ServerError",
    "InvalidRequest",
    "ModelNotFound",
    "Unauthenticated",
    "ServerBusy",
    "ServerUnavailable",
    "SessionExpired",
    "FrameRejected",
    "FrameDropped",
    "SessionClosed",
]
