"""A rendering session: what its OpenSession asked for (checked against the model) and the history it owns.

The history (previous label maps and generated frames) belongs to exactly one session. Only the inference
worker that runs the session's current frame touches it, and a session never has two frames in flight, so no
lock is needed and no batch can mix two sessions' histories.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

import grpc
import numpy as np

from neurender.proto.bundle import check_frame_size
from neurender.proto.neurender.v1 import model_pb2, render_pb2
from neurender.server.config import ServerConfig
from neurender.server.registry import Model, ModelRegistry

DEFAULT_JPEG_QUALITY = 90
MAX_LABEL_ID = 65535  # label_remap takes any source ID a UINT16 label map can hold
UNUSED_PREFIX = "unused_"  # how bundle_export names a generator's class IDs beyond its dataset's classes


class RequestError(Exception):
    """A request the server refuses: a gRPC status code and a message naming what was wrong and what was expected."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, eq=False)
class SessionSpec:
    """An accepted OpenSession, resolved against its model."""

    model: Model
    height: int
    width: int
    encoding: int  # render_pb2.ImageEncoding
    jpeg_quality: int
    drop_stale: bool
    label_lut: np.ndarray | None  # class id -> class id rendered (label_remap), int32, -1: refused
    style: np.ndarray | None  # float32 [num_classes, style_dim] when the model takes style

    @property
    def batch_key(self) -> tuple[str, int, int]:
        """Sessions with the same key can share one batched step."""
        return (self.model.name, self.height, self.width)


@dataclass(eq=False)
class History:
    """The state the step reads and returns: previous label maps and frames, and whether they are valid."""

    prev_labels: np.ndarray
    prev_frames: np.ndarray
    valid: bool = False

    def free(self) -> None:
        """Drop the arrays now, even if gRPC keeps the finished call (and so the session) around a while."""
        self.prev_labels = self.prev_frames = None
        self.valid = False

    @classmethod
    def empty(cls, spec: SessionSpec) -> History:
        model, length = spec.model, spec.model.description.history_length
        label_shape = model.label_frame_shape(spec.height, spec.width)
        return cls(
            prev_labels=np.zeros((length, *label_shape), model.label_dtype),
            prev_frames=np.zeros((length, spec.height, spec.width, 3), np.uint8),
        )


@dataclass(eq=False)
class Session:
    spec: SessionSpec
    history: History
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    dropped: int = 0
    frames: int = 0
    closed: bool = False
    last_activity: float = field(default_factory=time.monotonic)

    @classmethod
    def open(cls, spec: SessionSpec, history: History | None = None) -> Session:
        """A new session, fresh or continuing from a `history` carried over from another replica."""
        return cls(spec, history if history is not None else History.empty(spec))

    def touch(self) -> None:
        self.last_activity = time.monotonic()


def resolve_open(registry: ModelRegistry, request: render_pb2.OpenSession, config: ServerConfig) -> SessionSpec:
    """Check an OpenSession against the served models and the server's limits; raise RequestError if bad."""
    INVALID = grpc.StatusCode.INVALID_ARGUMENT
    if not request.model:
        raise RequestError(
            INVALID, f"open.model is empty; expected one of the served models: {', '.join(registry.names())}"
        )
    model = registry.get(request.model)
    if model is None:
        raise RequestError(
            grpc.StatusCode.NOT_FOUND,
            f"model {request.model!r} is not served here; served models: {', '.join(registry.names())}",
        )
    d = model.description
    height, width = request.height, request.width
    if not height or not width:
        raise RequestError(
            INVALID,
            f"open.height and open.width must be set, got {height}x{width}; model {model.name} "
            f"was trained at {d.trained_height}x{d.trained_width}",
        )
    problem = check_frame_size(d, height, width)
    if problem:
        raise RequestError(INVALID, f"model {model.name}: {problem}")
    if height * width > config.max_pixels:
        raise RequestError(
            INVALID,
            f"frame size {height}x{width} has {height * width} pixels, more than this server's "
            f"max_pixels {config.max_pixels}",
        )
    if request.encoding not in render_pb2.ImageEncoding.values():
        raise RequestError(INVALID, f"open.encoding is {request.encoding}, expected RAW (0), PNG (1) or JPEG (2)")
    if request.jpeg_quality > 100:
        raise RequestError(
            INVALID, f"open.jpeg_quality is {request.jpeg_quality}, expected 1-100 (0 = {DEFAULT_JPEG_QUALITY})"
        )
    if request.drop_policy not in render_pb2.DropPolicy.values():
        raise RequestError(INVALID, f"open.drop_policy is {request.drop_policy}, expected QUEUE (0) or DROP_STALE (1)")
    return SessionSpec(
        model=model,
        height=height,
        width=width,
        encoding=request.encoding,
        jpeg_quality=request.jpeg_quality or DEFAULT_JPEG_QUALITY,
        drop_stale=request.drop_policy == render_pb2.DROP_STALE,
        label_lut=_label_lut(model, request),
        style=_style(model, request),
    )


def trained_classes(model: Model) -> list[int]:
    """Class IDs the model learnt: every class of its table except the `unused_*` padding of its generator's IDs."""
    return [c.id for c in model.description.classes if not c.name.startswith(UNUSED_PREFIX)]


def _label_lut(model: Model, request: render_pb2.OpenSession) -> np.ndarray | None:
    """Class ID (any a uint16 holds) -> class rendered, int32, -1 for IDs that may not be rendered: outside the
    model's classes or a class it never trained on, unless label_remap maps them onto one it did."""
    if model.description.modality != model_pb2.SEGMENTATION:
        if request.label_remap:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"open.label_remap needs a SEGMENTATION model; {model.name} is {model_pb2.Modality.Name(model.description.modality)}",
            )
        return None
    n, trained = model.num_classes, trained_classes(model)
    usable = set(trained)
    too_large = sorted(a for a in request.label_remap if a > MAX_LABEL_ID)
    if too_large:
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"open.label_remap source IDs {too_large[:8]} are larger "
            f"than {MAX_LABEL_ID}, the largest a UINT16 label holds",
        )
    bad = sorted((a, b) for a, b in request.label_remap.items() if b not in usable)
    if bad:
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"open.label_remap entries {bad[:8]} map onto classes model {model.name} was not trained on; "
            f"expected targets among its classes 0..{n - 1} except unused ones: {_ranges(trained)}",
        )
    lut = np.full(max(n, max(request.label_remap, default=0) + 1), -1, np.int32)
    lut[trained] = trained
    for source, target in request.label_remap.items():
        lut[source] = target
    return lut


def _ranges(ids: list[int]) -> str:
    """[0, 1, 2, 5] -> "0-2, 5"."""
    runs: list[list[int]] = []
    for i in sorted(ids):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _style(model: Model, request: render_pb2.OpenSession) -> np.ndarray | None:
    """Per-class style codes: one cluster centre per class picked by the seed, overridden by explicit codes."""
    dim, n = model.style_dim, model.num_classes
    if not dim:
        if request.style_codes:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"open.style_codes given, but model {model.name} takes no style (style_dim 0)",
            )
        return None
    style = np.zeros((n, dim), np.float32)
    rng = np.random.default_rng(request.style_seed)
    for cluster in model.description.style.clusters:
        if cluster.n_clusters:
            pick = int(rng.integers(cluster.n_clusters))
            style[cluster.class_id] = np.asarray(cluster.centres[pick * dim : (pick + 1) * dim], np.float32)
    seen: set[int] = set()
    for code in request.style_codes:
        if code.class_id >= n:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT, f"open.style_codes: class_id {code.class_id} is outside 0..{n - 1}"
            )
        if code.class_id in seen:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT, f"open.style_codes: class_id {code.class_id} is given twice"
            )
        if len(code.code) != dim:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"open.style_codes[class {code.class_id}] has {len(code.code)} values, expected style_dim {dim}",
            )
        values = np.asarray(code.code, np.float32)
        if not np.isfinite(values).all():
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT, f"open.style_codes[class {code.class_id}] has non-finite values"
            )
        seen.add(code.class_id)
        style[code.class_id] = values
    return style
