from neurender.proto.neurender.v1 import tensor_pb2 as _tensor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

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
    def __init__(self, id: _Optional[int] = ..., name: _Optional[str] = ..., color: _Optional[_Iterable[int]] = ...) -> None: ...

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
    def __init__(self, name: _Optional[str] = ..., dtype: _Optional[_Union[_tensor_pb2.DType, str]] = ..., shape: _Optional[_Iterable[int]] = ..., required: _Optional[bool] = ..., description: _Optional[str] = ...) -> None: ...

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
    def __init__(self, min_height: _Optional[int] = ..., min_width: _Optional[int] = ..., max_height: _Optional[int] = ..., max_width: _Optional[int] = ..., multiple_of: _Optional[int] = ...) -> None: ...

class StyleCluster(_message.Message):
    __slots__ = ("class_id", "centres", "n_clusters")
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    CENTRES_FIELD_NUMBER: _ClassVar[int]
    N_CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    class_id: int
    centres: _containers.RepeatedScalarFieldContainer[float]
    n_clusters: int
    def __init__(self, class_id: _Optional[int] = ..., centres: _Optional[_Iterable[float]] = ..., n_clusters: _Optional[int] = ...) -> None: ...

class StyleTable(_message.Message):
    __slots__ = ("style_dim", "clusters")
    STYLE_DIM_FIELD_NUMBER: _ClassVar[int]
    CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    style_dim: int
    clusters: _containers.RepeatedCompositeFieldContainer[StyleCluster]
    def __init__(self, style_dim: _Optional[int] = ..., clusters: _Optional[_Iterable[_Union[StyleCluster, _Mapping]]] = ...) -> None: ...

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
    def __init__(self, skeleton: _Optional[str] = ..., face: _Optional[bool] = ..., hands: _Optional[bool] = ..., limb_width: _Optional[int] = ...) -> None: ...

class ModelDescription(_message.Message):
    __slots__ = ("schema_version", "name", "modality", "classes", "inputs", "frame_size", "history_length", "motion_vectors", "style", "colour_space", "provenance", "trained_height", "trained_width", "pose", "description", "max_depth")
    class ProvenanceEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
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
    def __init__(self, schema_version: _Optional[int] = ..., name: _Optional[str] = ..., modality: _Optional[_Union[Modality, str]] = ..., classes: _Optional[_Iterable[_Union[ClassInfo, _Mapping]]] = ..., inputs: _Optional[_Iterable[_Union[InputSpec, _Mapping]]] = ..., frame_size: _Optional[_Union[FrameSizeRule, _Mapping]] = ..., history_length: _Optional[int] = ..., motion_vectors: _Optional[bool] = ..., style: _Optional[_Union[StyleTable, _Mapping]] = ..., colour_space: _Optional[str] = ..., provenance: _Optional[_Mapping[str, str]] = ..., trained_height: _Optional[int] = ..., trained_width: _Optional[int] = ..., pose: _Optional[_Union[PoseConvention, _Mapping]] = ..., description: _Optional[str] = ..., max_depth: _Optional[float] = ...) -> None: ...
