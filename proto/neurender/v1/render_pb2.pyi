from neurender.proto.neurender.v1 import tensor_pb2 as _tensor_pb2
from neurender.proto.neurender.v1 import model_pb2 as _model_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

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
    def __init__(self, class_id: _Optional[int] = ..., code: _Optional[_Iterable[float]] = ...) -> None: ...

class OpenSession(_message.Message):
    __slots__ = ("model", "height", "width", "encoding", "jpeg_quality", "style_seed", "style_codes", "label_remap", "drop_policy", "resume")
    class LabelRemapEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
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
    def __init__(self, model: _Optional[str] = ..., height: _Optional[int] = ..., width: _Optional[int] = ..., encoding: _Optional[_Union[ImageEncoding, str]] = ..., jpeg_quality: _Optional[int] = ..., style_seed: _Optional[int] = ..., style_codes: _Optional[_Iterable[_Union[StyleCode, _Mapping]]] = ..., label_remap: _Optional[_Mapping[int, int]] = ..., drop_policy: _Optional[_Union[DropPolicy, str]] = ..., resume: _Optional[_Union[SessionState, _Mapping]] = ...) -> None: ...

class SessionState(_message.Message):
    __slots__ = ("labels", "frames")
    LABELS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.RepeatedCompositeFieldContainer[FrameInputs]
    frames: _containers.RepeatedCompositeFieldContainer[_tensor_pb2.Tensor]
    def __init__(self, labels: _Optional[_Iterable[_Union[FrameInputs, _Mapping]]] = ..., frames: _Optional[_Iterable[_Union[_tensor_pb2.Tensor, _Mapping]]] = ...) -> None: ...

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
    def __init__(self, labels: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., instances: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., depth: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., motion: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., keypoints: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., pose_map: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., edges: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("frame_id", "inputs", "reset")
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    frame_id: int
    inputs: FrameInputs
    reset: bool
    def __init__(self, frame_id: _Optional[int] = ..., inputs: _Optional[_Union[FrameInputs, _Mapping]] = ..., reset: _Optional[bool] = ...) -> None: ...

class RenderRequest(_message.Message):
    __slots__ = ("open", "frame", "end")
    OPEN_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    open: OpenSession
    frame: Frame
    end: EndSession
    def __init__(self, open: _Optional[_Union[OpenSession, _Mapping]] = ..., frame: _Optional[_Union[Frame, _Mapping]] = ..., end: _Optional[_Union[EndSession, _Mapping]] = ...) -> None: ...

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
    def __init__(self, queue_ms: _Optional[float] = ..., inference_ms: _Optional[float] = ..., encode_ms: _Optional[float] = ..., total_ms: _Optional[float] = ..., batch_size: _Optional[int] = ...) -> None: ...

class FrameError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

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
    def __init__(self, frame_id: _Optional[int] = ..., encoding: _Optional[_Union[ImageEncoding, str]] = ..., rgb: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., encoded: _Optional[bytes] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., dropped: _Optional[int] = ...) -> None: ...

class SessionInfo(_message.Message):
    __slots__ = ("session_id", "model")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    model: _model_pb2.ModelDescription
    def __init__(self, session_id: _Optional[str] = ..., model: _Optional[_Union[_model_pb2.ModelDescription, _Mapping]] = ...) -> None: ...

class RenderResponse(_message.Message):
    __slots__ = ("opened", "frame", "error")
    OPENED_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    opened: SessionInfo
    frame: RenderedFrame
    error: FrameRejected
    def __init__(self, opened: _Optional[_Union[SessionInfo, _Mapping]] = ..., frame: _Optional[_Union[RenderedFrame, _Mapping]] = ..., error: _Optional[_Union[FrameRejected, _Mapping]] = ...) -> None: ...

class FrameRejected(_message.Message):
    __slots__ = ("frame_id", "error")
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    frame_id: int
    error: FrameError
    def __init__(self, frame_id: _Optional[int] = ..., error: _Optional[_Union[FrameError, _Mapping]] = ...) -> None: ...

class RenderFrameRequest(_message.Message):
    __slots__ = ("session", "inputs")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    session: OpenSession
    inputs: FrameInputs
    def __init__(self, session: _Optional[_Union[OpenSession, _Mapping]] = ..., inputs: _Optional[_Union[FrameInputs, _Mapping]] = ...) -> None: ...

class RenderFrameResponse(_message.Message):
    __slots__ = ("frame",)
    FRAME_FIELD_NUMBER: _ClassVar[int]
    frame: RenderedFrame
    def __init__(self, frame: _Optional[_Union[RenderedFrame, _Mapping]] = ...) -> None: ...

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
    def __init__(self, name: _Optional[str] = ..., modality: _Optional[_Union[_model_pb2.Modality, str]] = ..., num_classes: _Optional[int] = ..., description: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelSummary]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelSummary, _Mapping]]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...
