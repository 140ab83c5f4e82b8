from collections.abc import Iterable as _Iterable
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar

from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper

from neurender.proto.neurender.v1 import tensor_pb2 as _tensor_pb2

DESCRIPTOR: _descriptor.FileDescriptor

class Modality(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODALITY_UNSPECIFIED: _ClassVar[Modality]
    SEGMENTATION: _ClassVar[Modality]
    POSE: _ClassVar[Modality]
    EDGES: _ClassVar[Modality]

MODALITY_UNSPECIFIED: Modality
SEGMENTATION: Modality
POSE: Modality
EDGES: Modality

class ClassInfo(_message.Message):
    __slots__ = ("id", "name", "color")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    COLOR_FIELD_NUMBER: _ClassVar[int]
    id: int
    name: str
    color: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, id: int | None = ..., name: str | None = ..., color: _Iterable[int] | None = ...) -> None: ...

class InputSpec(_message.Message):
    __slots__ = ("name", "dtype", "shape", "required", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    dtype: _tensor_pb2.DType
    shape: _containers.RepeatedScalarFieldContainer[int]
    required: bool
    description: str
    def __init__(
        self,
        name: str | None = ...,
        dtype: _tensor_pb2.DType | str | None = ...,
        shape: _Iterable[int] | None = ...,
        required: bool | None = ...,
        description: str | None = ...,
    ) -> None: ...

class FrameSizeRule(_message.Message):
    __slots__ = ("min_height", "min_width", "max_height", "max_width", "multiple_of")
    MIN_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MIN_WIDTH_FIELD_NUMBER: _ClassVar[int]
    MAX_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MAX_WIDTH_FIELD_NUMBER: _ClassVar[int]
    MULTIPLE_OF_FIELD_NUMBER: _ClassVar[int]
    min_height: int
    min_width: int
    max_height: int
    max_width: int
    multiple_of: int
    def __init__(
        self,
        min_height: int | None = ...,
        min_width: int | None = ...,
        max_height: int | None = ...,
        max_width: int | None = ...,
        multiple_of: int | None = ...,
    ) -> None: ...

class StyleCluster(_message.Message):
    __slots__ = ("class_id", "centres", "n_clusters")
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    CENTRES_FIELD_NUMBER: _ClassVar[int]
    N_CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    class_id: int
    centres: _containers.RepeatedScalarFieldContainer[float]
    n_clusters: int
    def __init__(
        self, class_id: int | None = ..., centres: _Iterable[float] | None = ..., n_clusters: int | None = ...
    ) -> None: ...

class StyleTable(_message.Message):
    __slots__ = ("style_dim", "clusters")
    STYLE_DIM_FIELD_NUMBER: _ClassVar[int]
    CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    style_dim: int
    clusters: _containers.RepeatedCompositeFieldContainer[StyleCluster]
    def __init__(
        self, style_dim: int | None = ..., clusters: _Iterable[StyleCluster | _Mapping] | None = ...
    ) -> None: ...

class PoseConvention(_message.Message):
    __slots__ = ("skeleton", "face", "hands", "limb_width")
    SKELETON_FIELD_NUMBER: _ClassVar[int]
    FACE_FIELD_NUMBER: _ClassVar[int]
    HANDS_FIELD_NUMBER: _ClassVar[int]
    LIMB_WIDTH_FIELD_NUMBER: _ClassVar[int]
    skeleton: str
    face: bool
    hands: bool
    limb_width: int
    def __init__(
        self,
        skeleton: str | None = ...,
        face: bool | None = ...,
        hands: bool | None = ...,
        limb_width: int | None = ...,
    ) -> None: ...

class ModelDescription(_message.Message):
    __slots__ = (
        "schema_version",
        "name",
        "modality",
        "classes",
        "inputs",
        "frame_size",
        "history_length",
        "motion_vectors",
        "style",
        "colour_space",
        "provenance",
        "trained_height",
        "trained_width",
        "pose",
        "description",
        "max_depth",
    )
    class ProvenanceEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: str | None = ..., value: str | None = ...) -> None: ...

    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    FRAME_SIZE_FIELD_NUMBER: _ClassVar[int]
    HISTORY_LENGTH_FIELD_NUMBER: _ClassVar[int]
    MOTION_VECTORS_FIELD_NUMBER: _ClassVar[int]
    STYLE_FIELD_NUMBER: _ClassVar[int]
    COLOUR_SPACE_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    TRAINED_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TRAINED_WIDTH_FIELD_NUMBER: _ClassVar[int]
    POSE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    MAX_DEPTH_FIELD_NUMBER: _ClassVar[int]
    schema_version: int
    name: str
    modality: Modality
    classes: _containers.RepeatedCompositeFieldContainer[ClassInfo]
    inputs: _containers.RepeatedCompositeFieldContainer[InputSpec]
    frame_size: FrameSizeRule
    history_length: int
    motion_vectors: bool
    style: StyleTable
    colour_space: str
    provenance: _containers.ScalarMap[str, str]
    trained_height: int
    trained_width: int
    pose: PoseConvention
    description: str
    max_depth: float
    def __init__(
        self,
        schema_version: int | None = ...,
        name: str | None = ...,
        modality: Modality | str | None = ...,
        classes: _Iterable[ClassInfo | _Mapping] | None = ...,
        inputs: _Iterable[InputSpec | _Mapping] | None = ...,
        frame_size: FrameSizeRule | _Mapping | None = ...,
        history_length: int | None = ...,
        motion_vectors: bool | None = ...,
        style: StyleTable | _Mapping | None = ...,
        colour_space: str | None = ...,
        provenance: _Mapping[str, str] | None = ...,
        trained_height: int | None = ...,
        trained_width: int | None = ...,
        pose: PoseConvention | _Mapping | None = ...,
        description: str | None = ...,
        max_depth: float | None = ...,
    ) -> None: ...
