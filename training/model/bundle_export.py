"""Write a trained (or freshly initialised) generator as a model bundle the server loads."""

from __future__ import annotations

import io
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import torch

from neurender.proto.bundle import LABEL_INPUT, MODALITIES, SCHEMA_VERSION, Bundle, write_bundle
from neurender.proto.classes import ClassInfo, default_classes
from neurender.proto.neurender.v1 import model_pb2, tensor_pb2
from neurender.training.model.config import GeneratorConfig
from neurender.training.model.generator import Vid2VidGenerator
from neurender.training.model.onnx_export import export_step_onnx


@dataclass
class BundleInfo:
    """What the bundle says about the model beyond its network shape."""

    name: str
    classes: list[ClassInfo] = field(default_factory=list)
    trained_size: tuple[int, int] = (256, 256)  # (height, width)
    max_size: tuple[int, int] = (2048, 2048)
    description: str = ""
    provenance: dict[str, str] = field(default_factory=dict)
    style_clusters: dict[int, list[list[float]]] = field(default_factory=dict)  # class -> centres
    pose: model_pb2.PoseConvention | None = None  # pose models: how keypoints were drawn (None: BODY_25, 3 px limbs)


def describe(cfg: GeneratorConfig, info: BundleInfo, label_dtype: int) -> model_pb2.ModelDescription:
    d = model_pb2.ModelDescription(
        schema_version=SCHEMA_VERSION,
        name=info.name,
        modality=MODALITIES[cfg.modality],
        history_length=cfg.history,
        motion_vectors=cfg.use_motion,
        colour_space="sRGB",
        trained_height=info.trained_size[0],
        trained_width=info.trained_size[1],
        description=info.description,
        max_depth=cfg.max_depth if cfg.use_depth else 0.0,
    )
    for c in info.classes:
        d.classes.append(c.to_proto())
    label = LABEL_INPUT[cfg.modality]
    label_specs = {
        "labels": (label_dtype, [-1, -1], "class IDs"),
        "pose_map": (tensor_pb2.UINT8, [-1, -1, 3], "pose map drawn in the model's convention (or send keypoints)"),
        "edges": (tensor_pb2.UINT8, [-1, -1], "edge map, 0 or 255"),
    }
    dtype, shape, text = label_specs[label]
    d.inputs.add(name=label, dtype=dtype, shape=shape, required=True, description=text)
    if cfg.use_instances:
        d.inputs.add(
            name="instances", dtype=tensor_pb2.UINT16, shape=[-1, -1], required=False, description="instance IDs"
        )
    if cfg.use_depth:
        d.inputs.add(
            name="depth",
            dtype=tensor_pb2.FLOAT16,
            shape=[-1, -1],
            required=False,
            description="view depth, scene units",
        )
    if cfg.use_motion:
        d.inputs.add(
            name="motion",
            dtype=tensor_pb2.FLOAT16,
            shape=[-1, -1, 2],
            required=False,
            description="backward motion in pixels (x, y): p in t came from p + mv in t-1",
        )
    m = cfg.multiple_of
    d.frame_size.CopyFrom(
        model_pb2.FrameSizeRule(
            min_height=m * 2, min_width=m * 2, max_height=info.max_size[0], max_width=info.max_size[1], multiple_of=m
        )
    )
    d.style.style_dim = cfg.style_dim
    for class_id, centres in sorted(info.style_clusters.items()):
        d.style.clusters.add(class_id=class_id, n_clusters=len(centres), centres=[v for c in centres for v in c])
    if cfg.modality == "pose":
        default = model_pb2.PoseConvention(skeleton="body25", face=False, hands=False, limb_width=3)
        d.pose.CopyFrom(info.pose if info.pose is not None else default)
    d.provenance.update(
        {
            "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "torch": torch.__version__,
            "python": platform.python_version(),
            **info.provenance,
        }
    )
    return d


def torch_payload(generator: Vid2VidGenerator) -> bytes:
    """generator.pt: the config and weights the PyTorch backend rebuilds the network from."""
    buffer = io.BytesIO()
    torch.save({"generator_config": generator.cfg.to_dict(), "generator": generator.state_dict()}, buffer)
    return buffer.getvalue()


def load_generator(path: str | Path) -> Vid2VidGenerator:
    """Rebuild a generator from a bundle's generator.pt (or a file of the same form)."""
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    generator = Vid2VidGenerator(GeneratorConfig.from_dict(payload["generator_config"]))
    generator.load_state_dict(payload["generator"])
    return generator.eval()


def export_bundle(generator: Vid2VidGenerator, out: str | Path, info: BundleInfo, include_torch: bool = True) -> Bundle:
    """Export the step to ONNX and write the bundle folder; the generator is left unchanged."""
    cfg = generator.cfg
    if cfg.modality == "segmentation" and not info.classes:
        info.classes = default_classes(cfg.num_classes)
    if cfg.modality == "segmentation" and len(info.classes) != cfg.num_classes:
        raise ValueError(f"class table has {len(info.classes)} entries, the generator has {cfg.num_classes} classes")
    label_dtype = tensor_pb2.UINT8 if cfg.num_classes <= 256 or cfg.modality != "segmentation" else tensor_pb2.UINT16
    was_training = generator.training
    generator.eval()
    try:
        onnx_bytes = export_step_onnx(
            generator, label_dtype=torch.uint8 if label_dtype == tensor_pb2.UINT8 else torch.uint16
        )
        info.provenance.setdefault("parameters", str(generator.parameter_count()))
        info.provenance.setdefault("generator_config", repr(cfg.to_dict()))
        description = describe(cfg, info, label_dtype)
        payload = torch_payload(generator) if include_torch else None
    finally:
        generator.train(was_training)
    return write_bundle(Path(out), description, onnx_bytes, payload)
