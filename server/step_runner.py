"""The one stateful step runner: a batch of sessions' frames through a model's backend, histories kept.

The server's batcher stacks its jobs through `stack_feeds` and `keep_state`; `SessionRunner` runs one session
the same way without the network, for evaluation and the tests. A frame given to `SessionRunner.step` goes
through the server's own frame decoding (dtype and shape checks, label remap, keypoint drawing, zeros for
missing optional passes), so what evaluation scores is exactly what a session of that server renders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from neurender.proto.neurender.v1 import render_pb2
from neurender.proto.tensors import to_tensor
from neurender.server.config import ServerConfig
from neurender.server.inputs import FIELDS, FrameError, decode_frame
from neurender.server.registry import ModelRegistry, load_model
from neurender.server.session import History, SessionSpec, resolve_open


@dataclass(frozen=True)
class Row:
    """One session's frame in a batched step."""

    inputs: dict[str, np.ndarray]  # the step's per-frame inputs, graph dtypes, no batch axis
    history: History
    reset: bool
    style: np.ndarray | None


def stack_feeds(input_names: Sequence[str], rows: Sequence[Row]) -> dict[str, np.ndarray]:
    """The step's batched inputs: row i is frame i with its own session's history."""
    feeds: dict[str, np.ndarray] = {}
    for name in input_names:
        if name == "has_history":
            feeds[name] = np.array([row.history.valid and not row.reset for row in rows], np.uint8)
        elif name == "prev_labels":
            feeds[name] = np.stack([row.history.prev_labels for row in rows])
        elif name == "prev_frames":
            feeds[name] = np.stack([row.history.prev_frames for row in rows])
        elif name == "style":
            feeds[name] = np.stack([row.style for row in rows])
        else:
            feeds[name] = np.stack([row.inputs[name] for row in rows])
    return feeds


def keep_state(history: History, next_labels: np.ndarray, next_frames: np.ndarray) -> None:
    """A session's history after its step (copies: the batch's arrays are shared by every row)."""
    history.prev_labels = next_labels.copy()
    history.prev_frames = next_frames.copy()
    history.valid = True


class SessionRunner:
    """runner = SessionRunner.open("bundles/street", 256, 256)
           rgb = runner.step(labels=class_ids)          # uint8 [H, W, 3], exactly what a session renders

    `open` accepts what a session's OpenSession carries (style seed and codes, label remap) and `threads` (0: the
    server's automatic share of the cores); a bad frame raises FrameError with the server's own message."""

    def __init__(self, spec: SessionSpec, max_people: int = ServerConfig.max_people) -> None:
        self.spec = spec
        self.max_people = max_people
        self.history = History.empty(spec)

    @classmethod
    def open(
        cls,
        bundle_dir: str | Path,
        height: int,
        width: int,
        *,
        backend: str = "onnxruntime",
        threads: int = 0,
        open_request: render_pb2.OpenSession | None = None,
    ) -> SessionRunner:
        config = replace(ServerConfig(), backend=backend, providers=("CPUExecutionProvider",), intra_op_threads=threads)
        model = load_model(Path(bundle_dir), config, config.resolved_intra_op_threads())
        request = render_pb2.OpenSession()
        if open_request is not None:
            request.CopyFrom(open_request)
        request.model, request.height, request.width = model.name, height, width
        return cls(resolve_open(ModelRegistry({model.name: model}), request, config), config.max_people)

    @property
    def model_name(self) -> str:
        return self.spec.model.name

    def reset(self) -> None:
        """The next frame starts a new shot (as a frame with `reset` does)."""
        self.history.valid = False

    def step(self, reset: bool = False, **arrays: np.ndarray | None) -> np.ndarray:
        """One frame: numpy arrays by FrameInputs field name (labels, instances, depth, motion, keypoints,
        pose_map, edges) -> uint8 RGB [H, W, 3]."""
        unknown = sorted(set(arrays) - set(FIELDS))
        if unknown:
            raise FrameError("INVALID_ARGUMENT", f"unknown frame input(s) {unknown}; expected some of {list(FIELDS)}")
        message = render_pb2.FrameInputs()
        for name, array in arrays.items():
            if array is not None:
                getattr(message, name).CopyFrom(to_tensor(np.asarray(array)))
        row = Row(decode_frame(self.spec, message, self.max_people), self.history, reset, self.spec.style)
        backend = self.spec.model.backend
        rgb, next_labels, next_frames = backend.run(stack_feeds(backend.input_names, [row]))
        keep_state(self.history, next_labels[0], next_frames[0])
        return rgb[0]
