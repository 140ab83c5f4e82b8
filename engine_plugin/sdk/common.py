"""What the sync and asyncio clients share: exceptions, results, numpy <-> message conversion, and the history
a session carries to a reopened stream."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

import grpc
import numpy as np

from neurender.common.errors import UserError
from neurender.proto.neurender.v1 import render_pb2
from neurender.proto.tensors import TensorError, frame_input_problem, from_tensor, to_tensor

ENCODINGS = {"raw": render_pb2.RAW, "png": render_pb2.PNG, "jpeg": render_pb2.JPEG}
LABEL_INPUTS = ("labels", "keypoints", "pose_map", "edges")  # what a session's history remembers of a frame
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


# -- errors ---------------------------------------------------------------------------------------------------


class NeurenderError(UserError):
    """Base of every error the client raises."""


class ServerError(NeurenderError):
    """The server ended a call with a gRPC status; `code` is the grpc.StatusCode, `details` its message."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class InvalidRequest(ServerError):
    """INVALID_ARGUMENT / FAILED_PRECONDITION: the session or call asked for something the model cannot do."""


class ModelNotFound(ServerError):
    """NOT_FOUND: the server does not serve that model."""


class Unauthenticated(ServerError):
    """UNAUTHENTICATED / PERMISSION_DENIED: missing or wrong bearer token."""


class ServerBusy(ServerError):
    """RESOURCE_EXHAUSTED: too many sessions, or a message over the size limit."""


class ServerUnavailable(ServerError):
    """UNAVAILABLE: the server is down, unreachable or shutting down (sessions reconnect by themselves)."""


class SessionExpired(ServerError):
    """ABORTED: the server closed an idle session (sessions reconnect by themselves)."""


_ERRORS: dict[grpc.StatusCode, type[ServerError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequest,
    grpc.StatusCode.FAILED_PRECONDITION: InvalidRequest,
    grpc.StatusCode.OUT_OF_RANGE: InvalidRequest,
    grpc.StatusCode.NOT_FOUND: ModelNotFound,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: Unauthenticated,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ServerBusy,
    grpc.StatusCode.UNAVAILABLE: ServerUnavailable,
    grpc.StatusCode.ABORTED: SessionExpired,
}
_RECONNECTABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.CANCELLED)
# What gRPC's transport reports (never the server) when a proxy cuts a stream because the replica behind it died.
_CUT_BY_PROXY = ("RST_STREAM", "Internal error from Core")


def reconnectable(error: ServerError) -> bool:
    """Whether a broken stream is worth reopening: the server went away, drained or expired the session
    (UNAVAILABLE, ABORTED), or a load balancer cut the stream (CANCELLED, or INTERNAL from the transport)."""
    if error.code in _RECONNECTABLE:
        return True
    return error.code == grpc.StatusCode.INTERNAL and any(mark in error.details for mark in _CUT_BY_PROXY)


def error_from_rpc(error: grpc.RpcError) -> ServerError:
    code, details = error.code(), error.details() or ""
    return _ERRORS.get(code, ServerError)(code, details)


class FrameRejected(NeurenderError):
    """The server refused one frame (in-band); the session lives on. `code` is a gRPC status name."""

    def __init__(self, frame_id: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.frame_id = frame_id
        self.code = code
        self.message = message


class FrameInputError(NeurenderError, ValueError):
    """A frame input the server would refuse (unknown name or dtype), caught before sending."""


class FrameDropped(NeurenderError):
    """A DROP_STALE session's frame that the server skipped because a newer one arrived."""

    def __init__(self, frame_id: int) -> None:
        super().__init__(f"frame {frame_id} was dropped: a newer frame replaced it (DROP_STALE)")
        self.frame_id = frame_id


class SessionClosed(NeurenderError):
    """The session was closed, or its stream ended, before this frame was answered."""


# -- results ----------------------------------------------------------------------------------------------------


@dataclass
class RenderResult:
    frame_id: int
    image: np.ndarray  # uint8 [H, W, 3] sRGB, rows top to bottom
    timings: render_pb2.Timings  # server side: queue, inference, encode, total (ms) and batch size
    dropped: int  # frames of this session the server has dropped so far
    latency_ms: float  # client side: frame sent to result decoded
    encoded: bytes | None = field(default=None, repr=False)  # the PNG/JPEG bytes when the session asked for them


def decode_image(frame: render_pb2.RenderedFrame) -> np.ndarray:
    """The RGB image of a RenderedFrame, whatever its encoding."""
    if frame.encoding == render_pb2.RAW:
        return from_tensor(frame.rgb, "rgb").copy()
    import cv2  # only PNG/JPEG need it: RAW-only clients (the Blender add-on) run without OpenCV

    bgr = cv2.imdecode(np.frombuffer(frame.encoded, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise NeurenderError(
            f"frame {frame.frame_id}: the server's {render_pb2.ImageEncoding.Name(frame.encoding)} bytes do not decode"
        )
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class FrameHistory:
    """What a reopened stream needs to continue a session exactly (OpenSession.resume): the label inputs of the
    last answered frames since the last reset, at most the model's history length, and the frames the server
    generated from them. It mirrors the server's history: a frame counts once answered, a reset (or, in a
    DROP_STALE session, a reset carried over from a dropped frame) clears what came before."""

    def __init__(self) -> None:
        self._entries: deque[tuple[render_pb2.FrameInputs, render_pb2.Tensor]] = deque()
        self._cut = False

    def keep(self, length: int) -> None:
        """Keep the last `length` frames (the model's history length)."""
        if self._entries.maxlen != length:
            self._entries = deque(self._entries, maxlen=length)

    def dropped(self, sent: render_pb2.Frame) -> None:
        """A frame the server dropped: its reset passes to the frame that replaced it."""
        self._cut = self._cut or sent.reset

    def add(self, sent: render_pb2.Frame, rendered: render_pb2.RenderedFrame, image: np.ndarray) -> None:
        """A frame the server answered with `rendered` (decoded to `image`)."""
        if sent.reset or self._cut:
            self._entries.clear()
        self._cut = False
        labels = render_pb2.FrameInputs()
        for name in LABEL_INPUTS:
            if sent.inputs.HasField(name):
                getattr(labels, name).CopyFrom(getattr(sent.inputs, name))
        self._entries.append((labels, rendered.rgb if rendered.encoding == render_pb2.RAW else to_tensor(image)))

    def write(self, state: render_pb2.SessionState) -> None:
        for labels, frame in self._entries:
            state.labels.append(labels)
            state.frames.append(frame)

    def __len__(self) -> int:
        return len(self._entries)


# -- requests ------------------------------------------------------------------------------------------------------


def open_message(
    model: str,
    size: tuple[int, int],
    encoding: str = "raw",
    jpeg_quality: int = 0,
    style_seed: int = 0,
    style_codes: Mapping[int, np.ndarray] | None = None,
    label_remap: Mapping[int, int] | None = None,
    drop_stale: bool = False,
) -> render_pb2.OpenSession:
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding {encoding!r}: expected one of {', '.join(ENCODINGS)}")
    height, width = size
    message = render_pb2.OpenSession(
        model=model,
        height=height,
        width=width,
        encoding=ENCODINGS[encoding],
        jpeg_quality=jpeg_quality,
        style_seed=style_seed,
        drop_policy=render_pb2.DROP_STALE if drop_stale else render_pb2.QUEUE,
    )
    for class_id, code in (style_codes or {}).items():
        message.style_codes.add(class_id=int(class_id), code=np.asarray(code, np.float32).ravel().tolist())
    for source, target in (label_remap or {}).items():
        message.label_remap[int(source)] = int(target)
    return message


def frame_inputs(arrays: Mapping[str, np.ndarray | None]) -> render_pb2.FrameInputs:
    """FrameInputs from named numpy arrays (None entries are left out)."""
    inputs = render_pb2.FrameInputs()
    for name, array in arrays.items():
        if array is None:
            continue
        problem = frame_input_problem(name, np.asarray(array).dtype)
        if problem:
            raise FrameInputError(problem)
        try:
            getattr(inputs, name).CopyFrom(to_tensor(array))
        except TensorError as err:
            raise ValueError(f"{name}: {err}") from None
    return inputs


def channel_options(max_message_bytes: int) -> list[tuple[str, int]]:
    return [("grpc.max_receive_message_length", max_message_bytes), ("grpc.max_send_message_length", max_message_bytes)]


def auth_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()
