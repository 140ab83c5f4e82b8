# SPDX-License-Identifier: GPL-3.0-or-later
"""The add-on's link to a neurender server: the project's client SDK, used only on one worker thread.

No bpy here. The main thread posts requests (list models, open a session, submit a frame, close); the worker
runs them through neurender.engine_plugin.sdk.client and puts an Event for each outcome on `events`, which the
main thread drains from a timer (runtime.py). So the network never blocks Blender's UI, and bpy is only ever
touched on the main thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

_LATER = object()  # a job whose outcome arrives later through a callback (a submitted frame)


@dataclass
class Event:
    """An outcome for the main thread. kind: models, opened, frame, dropped, closed or error; `tag` is what the
    request was posted with; for errors, `value` is the kind of request that failed and `error` the message."""

    kind: str
    tag: Any = None
    value: Any = None
    error: str = ""


@dataclass
class ModelInfo:
    name: str
    description: str
    classes: list[tuple[int, str]]
    input_names: set[str]
    segmentation: bool
    max_depth: float  # depth's normalisation range: what the background is sent as


def client_sdk() -> Any:
    """The project's client SDK module; raises ImportError with what to install if Blender's Python lacks it."""
    try:
        from neurender.engine_plugin.sdk import client
    except ImportError as err:
        raise ImportError(
            f"the neurender client library is not available in Blender's Python ({err}); install the extension "
            "zip built with its wheels (engine_plugin/blender/README.md), or pip-install neurender, grpcio and "
            "protobuf into Blender's Python"
        ) from None
    return client


def describe_error(error: BaseException, address: str) -> str:
    """A message for the artist: what happened and what to do about it."""
    sdk = client_sdk()
    if isinstance(error, sdk.ServerUnavailable):
        return (
            f"Cannot reach the neurender server at {address} ({error.details or 'unavailable'}). Start it with "
            "`neurender serve --models DIR`, or fix the address in the add-on preferences."
        )
    if isinstance(error, sdk.Unauthenticated):
        return f"The server at {address} refused the token ({error.details}). Set the right token in the add-on preferences."
    if isinstance(error, sdk.ModelNotFound):
        return f"The server at {address} does not serve that model ({error.details}). Refresh the model list."
    if isinstance(error, sdk.ServerBusy):
        return f"The server at {address} is busy ({error.details}). Try again later."
    if isinstance(error, sdk.ServerError):
        return f"The server at {address} refused: {error.details} ({error.code.name})."
    if isinstance(error, sdk.FrameRejected):
        return f"The server refused the frame: {error.message} ({error.code})."
    return f"{type(error).__name__}: {error}"


def model_info(description: Any) -> ModelInfo:
    from neurender.proto.neurender.v1 import model_pb2

    return ModelInfo(
        name=description.name,
        description=description.description,
        classes=[(c.id, c.name) for c in description.classes],
        input_names={i.name for i in description.inputs},
        segmentation=description.modality == model_pb2.SEGMENTATION,
        max_depth=description.max_depth or 100.0,  # as engine_plugin/gbuffer/stream.py
    )


class Connection:
    """One server (address, token) and at most one render session, owned by a worker thread."""

    def __init__(self, address: str, token: str) -> None:
        self.address = address
        self.token = token
        self.events: queue.Queue[Event] = queue.Queue()
        self._jobs: queue.Queue[tuple[str, Any, Callable[[], Any]] | None] = queue.Queue()
        self._client: Any = None  # worker thread only
        self._session: Any = None  # worker thread only
        self._thread = threading.Thread(target=self._work, name="neurender-addon", daemon=True)
        self._thread.start()

    # -- requests from the main thread -------------------------------------------------------------------------

    def list_models(self, tag: Any) -> None:
        """Event "models": list[ModelInfo] of everything the server serves."""
        self._jobs.put(("models", tag, self._list_models))

    def open_session(
        self, tag: Any, model: str, size: tuple[int, int], style_seed: int, drop_stale: bool, max_in_flight: int
    ) -> None:
        """Event "opened": the ModelInfo of the session's model. Closes any session still open first."""
        self._jobs.put(("opened", tag, lambda: self._open(model, size, style_seed, drop_stale, max_in_flight)))

    def submit(self, tag: Any, arrays: dict[str, np.ndarray], reset: bool) -> None:
        """Event "frame" (value: uint8 RGB [H, W, 3] top to bottom), "dropped" or "error", with this `tag`."""
        self._jobs.put(("frame", tag, lambda: self._submit(tag, arrays, reset)))

    def close_session(self, tag: Any) -> None:
        """Event "closed" once the frames already sent are answered."""
        self._jobs.put(("closed", tag, self._close_session))

    def shutdown(self, timeout: float = 5.0) -> None:
        self._jobs.put(None)
        self._thread.join(timeout)

    # -- the worker thread ---------------------------------------------------------------------------------------

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            kind, tag, run = job
            try:
                value = run()
            except Exception as err:  # every failure goes to the UI as a message
                self.events.put(Event("error", tag, kind, self._message(err)))
            else:
                if value is not _LATER:
                    self.events.put(Event(kind, tag, value))
        try:
            self._close_session()
        finally:
            if self._client is not None:
                self._client.close()

    def _message(self, error: BaseException) -> str:
        try:
            return describe_error(error, self.address)
        except ImportError as missing:
            return str(missing)

    def _sdk_client(self) -> Any:
        if self._client is None:
            self._client = client_sdk().RenderClient(self.address, token=self.token or None)
        return self._client

    def _list_models(self) -> list[ModelInfo]:
        client = self._sdk_client()
        return [model_info(client.get_model(summary.name)) for summary in client.list_models()]

    def _open(
        self, model: str, size: tuple[int, int], style_seed: int, drop_stale: bool, max_in_flight: int
    ) -> ModelInfo:
        self._close_session()
        session = self._sdk_client().session(
            model, size, encoding="raw", style_seed=style_seed, drop_stale=drop_stale, max_in_flight=max_in_flight
        )
        session.open()
        self._session = session
        return model_info(session.model)

    def _submit(self, tag: Any, arrays: dict[str, np.ndarray], reset: bool) -> object:
        if self._session is None:
            raise RuntimeError("no session is open; expected open_session() before submit()")
        future = self._session.submit(reset=reset, **arrays)
        future.add_done_callback(lambda done: self.events.put(self._outcome(tag, done)))
        return _LATER

    def _outcome(self, tag: Any, future: Any) -> Event:
        error = future.exception()
        if error is None:
            return Event("frame", tag, future.result().image)
        if isinstance(error, client_sdk().FrameDropped):
            return Event("dropped", tag)
        return Event("error", tag, "frame", self._message(error))

    def _close_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()
