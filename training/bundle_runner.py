"""Run a model bundle's step graph with ONNX Runtime, one frame at a time, carrying its state.

This is how evaluation sees a model: exactly the exported graph a server runs, fed the dataset's raw frames
as a client would send them (class IDs, instance IDs, float16 depth and motion, per-class style codes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurender.proto.bundle import Bundle, read_bundle
from neurender.proto.neurender.v1 import model_pb2, tensor_pb2

NUMPY_DTYPES = {
    tensor_pb2.UINT8: np.uint8, tensor_pb2.UINT16: np.uint16, tensor_pb2.FLOAT16: np.float16,
    tensor_pb2.FLOAT32: np.float32,
}


class BundleRunner:
    def __init__(self, path: str | Path, style_choice: int = 0, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.bundle: Bundle = read_bundle(path)
        d = self.bundle.description
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(self.bundle.onnx_path), options, providers=["CPUExecutionProvider"])
        self.graph_inputs = {i.name: i for i in self.session.get_inputs()}
        self.description = d
        self.history = d.history_length
        self.label_name = {model_pb2.SEGMENTATION: "labels", model_pb2.POSE: "pose_map", model_pb2.EDGES: "edges"}[d.modality]
        spec = next(i for i in d.inputs if i.name == self.label_name)
        self.label_dtype = NUMPY_DTYPES[spec.dtype]
        self.style = self._style_codes(style_choice) if d.style.style_dim else None
        self.reset()

    @property
    def multiple_of(self) -> int:
        return max(1, self.description.frame_size.multiple_of)

    def _style_codes(self, choice: int) -> np.ndarray:
        """[1, C, S]: every class takes cluster `choice` (or its last one); classes without clusters get 0."""
        d = self.description
        num_classes = max((c.id for c in d.classes), default=-1) + 1
        codes = np.zeros((1, num_classes, d.style.style_dim), np.float32)
        for cluster in d.style.clusters:
            centres = np.asarray(cluster.centres, np.float32).reshape(cluster.n_clusters, d.style.style_dim)
            codes[0, cluster.class_id] = centres[min(choice, cluster.n_clusters - 1)]
        return codes

    def reset(self) -> None:
        self.prev_labels: np.ndarray | None = None
        self.prev_frames: np.ndarray | None = None

    def step(self, label: np.ndarray, instances: np.ndarray | None = None, depth: np.ndarray | None = None,
             motion: np.ndarray | None = None) -> np.ndarray:
        """One frame: label [H, W] (or a pose map [H, W, 3]) and optional passes -> uint8 RGB [H, W, 3]."""
        h, w = label.shape[:2]
        label = label.astype(self.label_dtype)[None]
        first = self.prev_frames is None
        if first:
            self.prev_labels = np.zeros((1, self.history, *label.shape[1:]), self.label_dtype)
            self.prev_frames = np.zeros((1, self.history, h, w, 3), np.uint8)
        feeds = {
            self.label_name: label,
            "prev_labels": self.prev_labels,
            "prev_frames": self.prev_frames,
            "has_history": np.array([0 if first else 1], np.uint8),
        }
        optional = {"instances": (instances, np.uint16), "depth": (depth, np.float16), "motion": (motion, np.float16)}
        for name, (value, dtype) in optional.items():
            if name in self.graph_inputs:
                if value is None:
                    raise ValueError(f"the bundle needs {name!r} frames, the dataset has none")
                feeds[name] = np.asarray(value).astype(dtype)[None]
        if "style" in self.graph_inputs:
            feeds["style"] = self.style
        rgb, self.prev_labels, self.prev_frames = self.session.run(["rgb", "next_prev_labels", "next_prev_frames"], feeds)
        return rgb[0]
