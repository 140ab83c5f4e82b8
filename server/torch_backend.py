"""PyTorch eager backend: the bundle's generator.pt run through training's GeneratorStep.

Imported only when `backend: torch` is configured, so a serving install without torch never needs it. Useful
to check an export against its source network and to serve models whose graph ONNX Runtime cannot run.
"""

from __future__ import annotations

import numpy as np
import torch

from neurender.proto.bundle import Bundle
from neurender.server.backends import BackendError, StepOutputs
from neurender.training.model.bundle_export import load_generator
from neurender.training.model.step import GeneratorStep, input_names, step_arguments


class TorchBackend:
    name = "torch"

    def __init__(self, bundle: Bundle, intra_op_threads: int) -> None:
        if bundle.torch_path is None:
            raise BackendError(f"{bundle.path}: the torch backend needs generator.pt, which this bundle lacks")
        torch.set_num_threads(intra_op_threads)
        generator = load_generator(bundle.torch_path)
        self.cfg = generator.cfg
        self.step = GeneratorStep(generator).eval()
        self.input_names = tuple(input_names(self.cfg))

    def run(self, feeds: dict[str, np.ndarray]) -> StepOutputs:
        with torch.inference_mode():
            named = {name: torch.from_numpy(np.ascontiguousarray(feeds[name])) for name in self.input_names}
            rgb, labels, frames = self.step(**step_arguments(self.cfg, named))
        return rgb.numpy(), labels.numpy(), frames.numpy()
