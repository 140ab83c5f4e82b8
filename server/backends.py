"""Inference backends: run one batched generator step on numpy arrays.

Every backend takes the step graph's named inputs (batch first, wire dtypes) and returns
(rgb, next_prev_labels, next_prev_frames). ONNX Runtime is the default and imports neither torch nor
neurender.training. OpenVINO (openvino_backend.py, the [openvino] extra) and PyTorch eager (torch_backend.py)
are imported only when chosen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import onnx
from google.protobuf.message import DecodeError

from neurender.proto.bundle import Bundle
from neurender.server.cpu_graph import STACKED_LABELS, rewrite_for_cpu
from neurender.server.onehot_lookup import native_kernel_missing
from neurender.server.step_state import next_state, stacked_labels

log = logging.getLogger(__name__)

StepOutputs = tuple[np.ndarray, np.ndarray, np.ndarray]


class BackendError(RuntimeError):
    """A backend that cannot serve a bundle; the message says why."""


class Backend(Protocol):
    name: str
    input_names: tuple[str, ...]  # the step's inputs, in graph order

    def run(self, feeds: dict[str, np.ndarray]) -> StepOutputs: ...


def choose_providers(wanted: tuple[str, ...], available: list[str]) -> list[str]:
    """The configured providers this ONNX Runtime build has, best first; logs what it fell back from."""
    chosen = [p for p in wanted if p in available]
    if not chosen:
        raise BackendError(
            f"none of the configured providers {list(wanted)} is in this ONNX Runtime build, which has {available}"
        )
    missing = list(wanted[: wanted.index(chosen[0])])
    if missing:
        log.warning(
            "ONNX Runtime: falling back from %s to %s (not in this build, which has %s)",
            " and ".join(missing),
            chosen[0],
            ", ".join(available),
            extra={"fields": {"event": "provider_fallback", "missing": missing, "using": chosen[0]}},
        )
    return chosen


class CpuGraph:
    """The step graph rewritten for a CPU runtime (cpu_graph.py), and the native lookups that compute its
    one-hot convolutions from the raw class IDs (where the native kernel runs; else the graph keeps them)."""

    def __init__(self, onnx_path: Path) -> None:
        missing = native_kernel_missing()
        try:
            original = onnx.load(str(onnx_path))
            self.model, self.lookups = rewrite_for_cpu(original, lookups=missing is None)
        except DecodeError as err:
            raise BackendError(f"{onnx_path}: not a readable ONNX graph: {err}") from err
        except (onnx.checker.ValidationError, ValueError) as err:
            raise BackendError(f"{onnx_path}: the CPU rewrite of this graph failed: {err}") from err
        path = (
            f"{len(self.lookups)} native lookup(s)"
            if missing is None
            else f"dense ONNX convolutions (the native one-hot kernel is {missing})"
        )
        log.info(
            "CPU graph for %s: one-hot convolutions as %s, %d -> %d nodes",
            onnx_path,
            path,
            len(original.graph.node),
            len(self.model.graph.node),
            extra={"fields": {"event": "cpu_graph", "lookups": len(self.lookups), "native_kernel": missing is None}},
        )
        initializers = {i.name for i in original.graph.initializer}
        self.input_names = tuple(i.name for i in original.graph.input if i.name not in initializers)
        self.graph_inputs = tuple(i.name for i in self.model.graph.input if i.name in self.input_names)
        self.reads_stacked_labels = any(i.name == STACKED_LABELS for i in self.model.graph.input)

    def run(
        self, feeds: dict[str, np.ndarray], threads: int, infer: Callable[[dict[str, np.ndarray]], np.ndarray]
    ) -> StepOutputs:
        """One step: the lookups, `infer` (the runtime running the rewritten graph on its inputs, returning the
        frame), then the next state; the label history is stacked once for all three."""
        labels = self.stacked_labels(feeds)
        rgb = infer(self._graph_feeds(feeds, labels, threads))
        next_labels, next_frames = next_state(labels, feeds["prev_frames"], feeds["has_history"], rgb)
        return rgb, next_labels, next_frames

    def stacked_labels(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return stacked_labels(feeds[self.input_names[0]], feeds["prev_labels"], feeds["has_history"])

    def feeds(self, feeds: dict[str, np.ndarray], threads: int) -> dict[str, np.ndarray]:
        """The rewritten graph's inputs for these step inputs (to run or profile the graph on its own)."""
        return self._graph_feeds(feeds, self.stacked_labels(feeds), threads)

    def _graph_feeds(self, feeds: dict[str, np.ndarray], labels: np.ndarray, threads: int) -> dict[str, np.ndarray]:
        """The step inputs the graph still reads, the stacked label history if it reads that, and the lookups'
        outputs."""
        graph_feeds = {name: feeds[name] for name in self.graph_inputs}
        graph_feeds.update({lookup.feature_input: lookup(labels, threads) for lookup in self.lookups})
        if self.reads_stacked_labels:
            graph_feeds[STACKED_LABELS] = labels
        return graph_feeds


class OrtBackend:
    """A step graph on ONNX Runtime with the configured providers and thread budget.

    On the CPU provider, convolutions over one-hot class IDs run as table lookups in a native kernel
    (onehot_lookup.py, where it is built) and the session runs the rest of the graph; other providers run the
    graph as it is.
    """

    name = "onnxruntime"

    def __init__(self, onnx_path: Path, providers: tuple[str, ...], intra_op_threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Idle pool threads sleep instead of spinning: the cores are shared with the event loop, the encoders
        # and the other workers, and spinning measurably slowed a 2-core machine down.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.threads = intra_op_threads
        self.cpu_graph: CpuGraph | None = None
        candidates = choose_providers(providers, ort.get_available_providers())
        while True:
            try:
                self.session = self._session(ort, onnx_path, options, candidates)
                break
            except BackendError:
                raise
            except Exception as err:  # a provider in the build whose runtime libraries are missing
                if len(candidates) == 1:
                    raise BackendError(f"{onnx_path}: ONNX Runtime cannot load it with {candidates[0]}: {err}") from err
                log.warning(
                    "ONNX Runtime: %s failed to start (%s); falling back from it to %s",
                    candidates[0],
                    err,
                    candidates[1],
                    extra={
                        "fields": {"event": "provider_fallback", "missing": [candidates[0]], "using": candidates[1]}
                    },
                )
                candidates = candidates[1:]
        active = self.session.get_providers()
        if active[0] != candidates[0]:
            log.warning(
                "ONNX Runtime: falling back from %s to %s (the provider did not start)",
                candidates[0],
                active[0],
                extra={"fields": {"event": "provider_fallback", "missing": [candidates[0]], "using": active[0]}},
            )
        self.providers = tuple(active)
        self.input_names = (
            self.cpu_graph.input_names if self.cpu_graph else tuple(i.name for i in self.session.get_inputs())
        )

    def _session(self, ort, onnx_path: Path, options, candidates: list[str]):
        if candidates[0] != "CPUExecutionProvider":
            self.cpu_graph = None
            return ort.InferenceSession(str(onnx_path), options, providers=candidates)
        self.cpu_graph = CpuGraph(onnx_path)
        return ort.InferenceSession(self.cpu_graph.model.SerializeToString(), options, providers=candidates)

    def run(self, feeds: dict[str, np.ndarray]) -> StepOutputs:
        if self.cpu_graph:
            return self.cpu_graph.run(
                feeds, self.threads, lambda graph_feeds: self.session.run(["rgb"], graph_feeds)[0]
            )
        rgb, labels, frames = self.session.run(["rgb", "next_prev_labels", "next_prev_frames"], feeds)
        return rgb, labels, frames


def make_backend(
    bundle: Bundle, backend: str, providers: tuple[str, ...], intra_op_threads: int, workers: int = 1
) -> Backend:
    """The backend that runs `bundle`'s step for `workers` inference threads, each step on `intra_op_threads`."""
    if backend == "onnxruntime":
        return OrtBackend(bundle.onnx_path, providers, intra_op_threads)
    if backend == "openvino":
        from neurender.server.openvino_backend import OpenVinoBackend

        return OpenVinoBackend(bundle.onnx_path, intra_op_threads, streams=workers)
    if backend == "torch":
        from neurender.server.torch_backend import TorchBackend

        return TorchBackend(bundle, intra_op_threads)
    raise BackendError(f"backend {backend!r}: expected onnxruntime, openvino or torch")
