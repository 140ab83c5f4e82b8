from collections.abc import Iterable as _Iterable
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar

from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper

from neurender.proto.neurender.v1 import model_pb2 as _model_pb2
from neurender.proto.neurender.v1 import tensor_pb2 as _tensor_pb2

DESCRIPTOR: _descriptor.FileDescriptor

class ImageEncoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RAW: _ClassVar[ImageEncoding]
    PNG: _ClassVar[ImageEncoding]
    JPEG: _ClassVar[ImageEncoding]

class DropPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUEUE: _ClassVar[DropPolicy]
    DROP_STALE: _ClassVar[DropPolicy]

RAW: ImageEncoding
PNG: ImageEncoding
JPEG: ImageEncoding
QUEUE: DropPolicy
DROP_STALE: DropPolicy

class StyleCode(_message.Message):
    __slots__ = ("class_id", "code")
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    class_id: int
    code: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, class_id: int | None = ..., code: _Iterable[float] | None = ...) -> None: ...

class OpenSession(_message.Message):
    __slots__ = (
        "model",
        "height",
        "width",
        "encoding",
        "jpeg_quality",
        "style_seed",
        "style_codes",
        "label_remap",
        "drop_policy",
        "resume",
    )
    class LabelRemapEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: int | None = ..., value: int | None = ...) -> None: ...

    MODEL_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    JPEG_QUALITY_FIELD_NUMBER: _ClassVar[int]
    STYLE_SEED_FIELD_NUMBER: _ClassVar[int]
    STYLE_CODES_FIELD_NUMBER: _ClassVar[int]
    LABEL_REMAP_FIELD_NUMBER: _ClassVar[int]
    DROP_POLICY_FIELD_NUMBER: _ClassVar[int]
    RESUME_FIELD_NUMBER: _ClassVar[int]
    model: str
    height: int
    width: int
    encoding: ImageEncoding
    jpeg_quality: int
    style_seed: int
    style_codes: _containers.RepeatedCompositeFieldContainer[StyleCode]
    label_remap: _containers.ScalarMap[int, int]
    drop_policy: DropPolicy
    resume: SessionState
    def __init__(
        self,
        model: str | None = ...,
        height: int | None = ...,
        width: int | None = ...,
        encoding: ImageEncoding | str | None = ...,
        jpeg_quality: int | None = ...,
        style_seed: int | None = ...,
        style_codes: _Iterable[StyleCode | _Mapping] | None = ...,
        label_remap: _Mapping[int, int] | None = ...,
        drop_policy: DropPolicy | str | None = ...,
        resume: SessionState | _Mapping | None = ...,
    ) -> None: ...

class SessionState(_message.Message):
    __slots__ = ("labels", "frames")
    LABELS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.RepeatedCompositeFieldContainer[FrameInputs]
    frames: _containers.RepeatedCompositeFieldContainer[_tensor_pb2.Tensor]
    def __init__(
        self,
        labels: _Iterable[FrameInputs | _Mapping] | None = ...,
        frames: _Iterable[_tensor_pb2.Tensor | _Mapping] | None = ...,
    ) -> None: ...

class FrameInputs(_message.Message):
    __slots__ = ("labels", "instances", "depth", "motion", "keypoints", "pose_map", "edges")
    LABELS_FIELD_NUMBER: _ClassVar[int]
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    MOTION_FIELD_NUMBER: _ClassVar[int]
    KEYPOINTS_FIELD_NUMBER: _ClassVar[int]
    POSE_MAP_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    labels: _tensor_pb2.Tensor
    instances: _tensor_pb2.Tensor
    depth: _tensor_pb2.Tensor
    motion: _tensor_pb2.Tensor
    keypoints: _tensor_pb2.Tensor
    pose_map: _tensor_pb2.Tensor
    edges: _tensor_pb2.Tensor
    def __init__(
        self,
        labels: _tensor_pb2.Tensor | _Mapping | None = ...,
        instances: _tensor_pb2.Tensor | _Mapping | None = ...,
        depth: _tensor_pb2.Tensor | _Mapping | None = ...,
        motion: _tensor_pb2.Tensor | _Mapping | None = ...,
        keypoints: _tensor_pb2.Tensor | _Mapping | None = ...,
        pose_map: _tensor_pb2.Tensor | _Mapping | None = ...,
        edges: _tensor_pb2.Tensor | _Mapping | None = ...,
    ) -> None: ...

class Frame(_message.Message):
    __slots__ = ("frame_id", "inputs", "reset")
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    frame_id: int
    inputs: FrameInputs
    reset: bool
    def __init__(
        self, frame_id: int | None = ..., inputs: FrameInputs | _Mapping | None = ..., reset: bool | None = ...
    ) -> None: ...

class RenderRequest(_message.Message):
    __slots__ = ("open", "frame", "end")
    OPEN_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    open: OpenSession
    frame: Frame
    end: EndSession
    def __init__(
        self,
        open: OpenSession | _Mapping | None = ...,
        frame: Frame | _Mapping | None = ...,
        end: EndSession | _Mapping | None = ...,
    ) -> None: ...

class EndSession(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Timings(_message.Message):
    __slots__ = ("queue_ms", "inference_ms", "encode_ms", "total_ms", "batch_size")
    QUEUE_MS_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_MS_FIELD_NUMBER: _ClassVar[int]
    ENCODE_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    queue_ms: float
    inference_ms: float
    encode_ms: float
    total_ms: float
    batch_size: int
    def __init__(
        self,
        queue_ms: float | None = ...,
        inference_ms: float | None = ...,
        encode_ms: float | None = ...,
        total_ms: float | None = ...,
        batch_size: int | None = ...,
    ) -> None: ...

class FrameError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: str | None = ..., message: str | None = ...) -> None: ...

class RenderedFrame(_message.Message):
    __slots__ = ("frame_id", "encoding", "rgb", "encoded", "timings", "dropped")
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    RGB_FIELD_NUMBER: _ClassVar[int]
    ENCODED_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    frame_id: int
    encoding: ImageEncoding
    rgb: _tensor_pb2.Tensor
    encoded: bytes
    timings: Timings
    dropped: int
    def __init__(
        self,
        frame_id: int | None = ...,
        encoding: ImageEncoding | str | None = ...,
        rgb: _tensor_pb2.Tensor | _Mapping | None = ...,
        encoded: bytes | None = ...,
        timings: Timings | _Mapping | None = ...,
        dropped: int | None = ...,
    ) -> None: ...

class SessionInfo(_message.Message):
    __slots__ = ("session_id", "model")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    model: _model_pb2.ModelDescription
    def __init__(
        self, session_id: str | None = ..., model: _model_pb2.ModelDescription | _Mapping | None = ...
    ) -> None: ...

class RenderResponse(_message.Message):
    __slots__ = ("opened", "frame", "error")
    OPENED_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    opened: SessionInfo
    frame: RenderedFrame
    error: FrameRejected
    def __init__(
        self,
        opened: SessionInfo | _Mapping | None = ...,
        frame: RenderedFrame | _Mapping | None = ...,
        error: FrameRejected | _Mapping | None = ...,
    ) -> None: ...

class FrameRejected(_message.Message):
    __slots__ = ("frame_id", "error")
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    frame_id: int
    error: FrameError
    def __init__(self, frame_id: int | None = ..., error: FrameError | _Mapping | None = ...) -> None: ...

class RenderFrameRequest(_message.Message):
    __slots__ = ("session", "inputs")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    session: OpenSession
    inputs: FrameInputs
    def __init__(
        self, session: OpenSession | _Mapping | None = ..., inputs: FrameInputs | _Mapping | None = ...
    ) -> None: ...

class RenderFrameResponse(_message.Message):
    __slots__ = ("frame",)
    FRAME_FIELD_NUMBER: _ClassVar[int]
    frame: RenderedFrame
    def __init__(self, frame: RenderedFrame | _Mapping | None = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelSummary(_message.Message):
    __slots__ = ("name", "modality", "num_classes", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    NUM_CLASSES_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    modality: _model_pb2.Modality
    num_classes: int
    description: str
    def __init__(
        self,
        name: str | None = ...,
        modality: _model_pb2.Modality | str | None = ...,
        num_classes: int | None = ...,
        description: str | None = ...,
    ) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelSummary]
    def __init__(self, models: _Iterable[ModelSummary | _Mapping] | None = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: str | None = ...) -> None: ...
