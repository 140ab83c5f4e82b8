"""OpenVINO backend: the CPU-rewritten step graph (cpu_graph.py) compiled by OpenVINO's CPU plugin.

Imported only when `backend: openvino` is configured (the [openvino] extra). It runs the same rewritten graph and
native one-hot lookups as the ONNX Runtime CPU backend; OpenVINO's JIT convolutions (brgemm kernels for the
machine's vector width) partition the narrow layers of the tiny presets better over several threads. Measured
here on 2 threads at 256x256 it ran the tiny step 1.3-1.5x faster than ONNX Runtime
(docs/results/README.md, bench/generator_speed.py).

Inference precision is pinned to fp32: on CPUs with bf16 or AMX units OpenVINO would otherwise lower precision
by itself, and the session state (the previous generated frames) would drift from the bundle graph's.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from neurender.server.backends import BackendError, CpuGraph, StepOutputs


def compile_for_cpu(ov, cpu_graph: CpuGraph, threads: int, streams: int = 1, perf_count: bool = False):
    """The rewritten step graph compiled by OpenVINO's CPU plugin (`ov` is the imported openvino module), with
    `streams` executors of `threads` threads each: requests on different streams run at the same time, requests
    on one stream one after another."""
    core = ov.Core()
    return core.compile_model(
        core.read_model(cpu_graph.model.SerializeToString()),
        "CPU",
        {
            "NUM_STREAMS": streams,
            "INFERENCE_NUM_THREADS": streams * threads,
            "INFERENCE_PRECISION_HINT": "f32",
            # Several workers (and the event loop, the encoders) share the cores: pinning each compiled model's
            # threads would put every worker's threads on the same first cores.
            "ENABLE_CPU_PINNING": False,
            "PERF_COUNT": perf_count,
        },
    )


class OpenVinoBackend:
    name = "openvino"

    def __init__(self, onnx_path: Path, intra_op_threads: int, streams: int = 1) -> None:
        """`streams`: the server's inference workers, so that each worker's steps run beside the others'."""
        try:
            import openvino as ov
        except ImportError as err:
            raise BackendError(
                "backend openvino: the openvino package is not installed; "
                "install it with pip install 'neurender[openvino]'"
            ) from err
        self.threads = intra_op_threads
        self.cpu_graph = CpuGraph(onnx_path)
        try:
            compiled = compile_for_cpu(ov, self.cpu_graph, intra_op_threads, streams)
        except RuntimeError as err:
            raise BackendError(f"{onnx_path}: OpenVINO cannot compile it for the CPU: {err}") from err
        self.providers = ("openvino:CPU",)
        self.input_names = self.cpu_graph.input_names
        self._compiled = compiled
        self._rgb = compiled.output("rgb")
        # An infer request runs one step at a time and must not be shared between threads: each worker thread
        # gets its own, which keeps its compiled shapes between steps of the same size.
        self._requests = threading.local()

    def run(self, feeds: dict[str, np.ndarray]) -> StepOutputs:
        """Steps a batch one session at a time. OpenVINO picks its convolutions' blocking by batch size, so a
        batched session's frames would differ by a rounding level or two with the company it keeps, and the
        difference would ride on in its history; one at a time, a session's frames are the same whatever the
        server's load (on the CPU a batch costs about as much per frame as single steps anyway)."""
        return self.cpu_graph.run(feeds, self.threads, self._infer_each)

    def _infer_each(self, graph_feeds: dict[str, np.ndarray]) -> np.ndarray:
        batch = len(graph_feeds[self.cpu_graph.graph_inputs[0]])
        if batch == 1:
            return self._infer(graph_feeds)
        return np.concatenate(
            [self._infer({name: value[i : i + 1] for name, value in graph_feeds.items()}) for i in range(batch)]
        )

    def _infer(self, graph_feeds: dict[str, np.ndarray]) -> np.ndarray:
        request = getattr(self._requests, "request", None)
        if request is None:
            request = self._requests.request = self._compiled.create_infer_request()
        return request.infer(graph_feeds)[self._rgb]
