"""The models a server serves: bundles read and validated from a folder, each with its loaded backend."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import numpy_helper

from neurender.common.errors import UserError
from neurender.proto.bundle import MODEL_JSON, REQUIRED_INPUT, Bundle, BundleError, read_bundle
from neurender.proto.neurender.v1 import model_pb2
from neurender.proto.tensors import NUMPY_DTYPES
from neurender.server.backends import Backend, BackendError, make_backend
from neurender.server.config import ServerConfig

log = logging.getLogger(__name__)

STATE_INPUTS = ("prev_labels", "prev_frames", "has_history")


class RegistryError(UserError, RuntimeError):
    """No model could be served from the folder; the message lists every bundle's problem."""


@dataclass(frozen=True)
class Model:
    """A served model: its description (what GetModel returns) and the backend that runs its step."""

    bundle: Bundle
    backend: Backend

    @property
    def name(self) -> str:
        return self.bundle.name

    @property
    def description(self) -> model_pb2.ModelDescription:
        return self.bundle.description

    @property
    def label_input(self) -> str:
        """labels, pose_map or edges."""
        return REQUIRED_INPUT[self.description.modality]

    @property
    def label_dtype(self) -> np.dtype:
        return NUMPY_DTYPES[self.bundle.input(self.label_input).dtype]

    @property
    def num_classes(self) -> int:
        return len(self.description.classes)

    @property
    def style_dim(self) -> int:
        return self.description.style.style_dim

    @property
    def optional_inputs(self) -> tuple[model_pb2.InputSpec, ...]:
        """The per-frame inputs beside the label input (instances, depth, motion), in description order."""
        return tuple(s for s in self.description.inputs if s.name != self.label_input)

    def label_frame_shape(self, height: int, width: int) -> tuple[int, ...]:
        return (height, width, 3) if self.label_input == "pose_map" else (height, width)

    def expected_graph_inputs(self) -> set[str]:
        names = {self.label_input, *STATE_INPUTS, *(s.name for s in self.optional_inputs)}
        if self.style_dim:
            names.add("style")
        return names


class ModelRegistry:
    def __init__(self, models: dict[str, Model]) -> None:
        self._models = dict(sorted(models.items()))

    def get(self, name: str) -> Model | None:
        return self._models.get(name)

    def names(self) -> list[str]:
        return list(self._models)

    def models(self) -> list[Model]:
        return list(self._models.values())


def bundle_folders(folder: Path) -> list[Path]:
    """The folder itself if it is a bundle, else its sub-folders that hold a model.json."""
    if (folder / MODEL_JSON).exists():
        return [folder]
    return sorted(p for p in folder.iterdir() if p.is_dir() and (p / MODEL_JSON).exists())


def load_registry(folder: str | Path, config: ServerConfig) -> ModelRegistry:
    """Read every bundle in `folder` and start its backend. A bad bundle is refused with a logged message
    naming what is wrong; the server starts if at least one model loads."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RegistryError(f"models folder {folder} does not exist or is not a folder")
    paths = bundle_folders(folder)
    if not paths:
        raise RegistryError(
            f"models folder {folder} holds no model bundle (a folder with {MODEL_JSON} and generator.onnx)"
        )
    models: dict[str, Model] = {}
    problems: list[str] = []
    threads = config.resolved_intra_op_threads()
    for path in paths:
        try:
            model = load_model(path, config, threads)
            if model.name in models:
                raise BundleError(
                    f"{path}: model name {model.name!r} is already served from {models[model.name].bundle.path}"
                )
        except (BundleError, BackendError) as err:
            problems.append(str(err))
            log.error("refused model bundle: %s", err, extra={"fields": {"event": "bundle_refused", "path": str(path)}})
            continue
        models[model.name] = model
        log.info(
            "loaded model %s from %s on %s",
            model.name,
            path,
            model.backend.name,
            extra={
                "fields": {
                    "event": "model_loaded",
                    "model": model.name,
                    "backend": model.backend.name,
                    "providers": list(getattr(model.backend, "providers", ())),
                    "intra_op_threads": threads,
                }
            },
        )
    if not models:
        raise RegistryError(f"no servable model in {folder}: " + " | ".join(problems))
    return ModelRegistry(models)


def non_finite_weight(onnx_path: Path) -> str | None:
    """The name of the first weight (initializer or constant) of the graph holding NaN or inf, or None."""
    try:
        graph = onnx.load(str(onnx_path)).graph
    except (DecodeError, OSError):
        return None  # the backend reports an unreadable graph
    tensors = [(t.name, t) for t in graph.initializer]
    tensors += [
        (node.output[0], a.t)
        for node in graph.node
        if node.op_type == "Constant"
        for a in node.attribute
        if a.name == "value"
    ]
    for name, tensor in tensors:
        values = numpy_helper.to_array(tensor)
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            return name
    return None


def load_model(path: Path, config: ServerConfig, threads: int) -> Model:
    """One bundle with its backend started; BundleError if its graph does not match its model.json."""
    bundle = read_bundle(path)
    bad = non_finite_weight(bundle.onnx_path)
    if bad:
        raise BundleError(
            f"{path}: weight {bad!r} of {bundle.onnx_path.name} holds NaN or inf; this model would render "
            "black frames: re-export it from a good checkpoint"
        )
    backend = make_backend(bundle, config.backend, config.providers, threads, config.workers)
    model = Model(bundle, backend)
    expected, actual = model.expected_graph_inputs(), set(backend.input_names)
    if expected != actual:
        raise BundleError(
            f"{path}: the generator's inputs {sorted(actual)} do not match {MODEL_JSON}, which implies {sorted(expected)}"
        )
    return model
