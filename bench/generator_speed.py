"""Generator speed on this machine: parameters, GFLOPs per frame, ms per frame in PyTorch eager, in ONNX Runtime
on the portable bundle graph, and in the server's two CPU backends (the graph rewritten for the CPU, one-hot
convolutions as native table lookups, run by ONNX Runtime and by OpenVINO); achieved GFLOP/s, and this machine's
fp32 matmul GFLOP/s measured in the same run.

    python -m neurender.bench.generator_speed [--configs tiny tiny-2scale ...] [--sizes 128 256] [--threads 2]
                                             [--labels street|random]

Prints a table; nothing here is asserted. The whole step is timed (one-hot, pyramid, warp, uint8 I/O).
"dense GFLOP" is the network's convolution work as eager PyTorch does it (one-hot fed to dense convolutions);
"run GFLOP" is what the CPU backend actually executes (its convolutions, including the zero taps of its
space-to-depth heads, plus one addition per lookup tap). "best" is the faster CPU backend (by median): its
eager/best speed-up is the median of each round's own ratio, with its range, and its "% peak" is run GFLOP/s
over matmul. Times are medians over interleaved rounds. Without the openvino package its column says so.
Besides the named presets, `--configs reference-tiny` runs the configuration the speed goal's reference figures
were measured on (ngf 32, 6 residual blocks, 36 classes), and `--configs tiny-batchnorm` the tiny preset with batch
norm, the reference code's default, which the export folds into the convolutions (no instance norm to run).

Segmentation steps are fed what an engine sends (--labels street, the default): the built-in street scene
rendered by the G-buffer renderer at each size (class IDs with their history, instance IDs, depth, motion
vectors). The one-hot lookup adds up in advance the taps of a class over blocks of pixels all of that class, so
it costs about half as much on such maps as on per-pixel random labels (--labels random, its worst case). Pose
and edge steps cost the same whatever their maps show and are fed random ones. The "labels" column says which.

A second table splits each CPU backend's step by operator type (the runtime's own profile, plus the native
lookups and the numpy state bookkeeping): how fast its convolutions run on their own, and what the rest costs.
That bounds what the whole step can reach: with every other operator free, it would run at the convolutions' rate.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from neurender.bench.street_inputs import render_street, step_feed
from neurender.engine_plugin.gbuffer.renderer import RendererError
from neurender.server.backends import CpuGraph, OrtBackend
from neurender.server.openvino_backend import OpenVinoBackend, compile_for_cpu
from neurender.server.step_state import next_state
from neurender.training.model.config import PRESETS, GeneratorConfig
from neurender.training.model.generator import Vid2VidGenerator
from neurender.training.model.onnx_export import export_step_onnx
from neurender.training.model.step import GeneratorStep, example_inputs, input_names, step_arguments

# The named presets, plus two bench-only configurations:
# - reference-tiny, on which the speed goal's reference figures were measured: the 2018 reference generator at
#   ngf 32, 2 downsamples, 6 residual blocks, 36 classes, 2 history frames (58.5 dense GFLOP per 256x256 frame).
#   It is twice as wide as the `tiny` preset, so its convolutions run nearer the machine's matmul rate and its
#   memory-bound layers weigh less.
# - tiny-batchnorm, the `tiny` preset with the reference code's default norm for the sequential generator (batch
#   norm, which the export folds into the convolutions): what the step costs without instance norm, which no CPU
#   runtime fuses into a convolution.
CONFIGS = {
    **PRESETS,
    "reference-tiny": GeneratorConfig(ngf=32, n_downsample=2, n_blocks=6, n_scales=1, num_classes=36),
    "tiny-batchnorm": replace(PRESETS["tiny"], norm="batch"),
}
# Configs whose 256x256 step fits this machine's time; the paper's are listed with --configs.
DEFAULT_CONFIGS = ["tiny", "tiny-2scale", "tiny-engine", "tiny-pose", "tiny-edges"]


def matmul_gflops(threads: int, size: int = 1024, seconds: float = 2.0) -> float:
    """Sustained fp32 matmul rate: the machine's practical peak for convolution-like work."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        runs += 1
    return 2 * size**3 * runs / (time.perf_counter() - start) / 1e9


def count_gflops(step: GeneratorStep, inputs: dict[str, torch.Tensor]) -> float:
    """Convolution FLOPs of one step (2 per multiply-add); element-wise work is not counted."""
    macs = 0

    def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(module, nn.ConvTranspose2d):
            macs += (
                args[0].numel() * module.out_channels * module.kernel_size[0] * module.kernel_size[1] // module.groups
            )
        else:
            macs += out.numel() * module.in_channels * module.kernel_size[0] * module.kernel_size[1] // module.groups

    handles = [m.register_forward_hook(hook) for m in step.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    with torch.inference_mode():
        step(**step_arguments(step.cfg, inputs))
    for h in handles:
        h.remove()
    return 2 * macs / 1e9


def executed_gflops(onnx_path: Path, feed: dict[str, np.ndarray]) -> tuple[float, float]:
    """(convolution GFLOP, lookup GFLOP) the CPU backends' rewritten graph executes on this input.

    The shapes come from running that graph once with every convolution's input and output exposed."""
    cpu_graph = CpuGraph(onnx_path)
    model, lookups = cpu_graph.model, cpu_graph.lookups
    convs = [n for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    exposed = sorted({n.input[0] for n in convs} | {n.output[0] for n in convs})
    model.graph.output.extend(onnx.ValueInfoProto(name=name) for name in exposed)
    feeds = cpu_graph.feeds(feed, threads=1)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    shapes = dict(zip(exposed, (v.shape for v in session.run(exposed, feeds))))
    weights = {i.name: list(i.dims) for i in model.graph.initializer}
    macs = 0
    for node in convs:
        w = weights[node.input[1]]
        if node.op_type == "Conv":  # weight [out, in, kh, kw]
            macs += int(np.prod(shapes[node.output[0]])) * w[1] * w[2] * w[3]
        else:  # ConvTranspose, weight [in, out, kh, kw]
            macs += int(np.prod(shapes[node.input[0]])) * w[1] * w[2] * w[3]
    pixels = feed["labels"].size if lookups else 0  # [batch, height, width] class IDs
    adds = sum(pixels * lookup.frames * lookup.kernel**2 * lookup.channels for lookup in lookups)
    return 2 * macs / 1e9, adds / 1e9


# Convolution kernels by name: ONNX Runtime's, then OpenVINO's.
CONV_OPS = {"Conv", "FusedConv", "NchwcConv", "ConvTranspose", "Convolution", "ConvolutionBackpropData"}


def beside_graph_ms(cpu_graph: CpuGraph, feed: dict[str, np.ndarray], threads: int) -> dict[str, float]:
    """The work a CPU backend does beside its graph, timed on its own: the native one-hot lookups (for graphs
    with one) and the session-state bookkeeping."""
    rgb = np.zeros(feed["prev_frames"][:, 0].shape, np.uint8)
    labels = cpu_graph.stacked_labels(feed)

    def state() -> None:  # stacking the history, which the lookups then share, and shifting it
        next_state(cpu_graph.stacked_labels(feed), feed["prev_frames"], feed["has_history"], rgb)

    timed = {"state bookkeeping": time_call(state) * 1e3}
    if cpu_graph.lookups:
        timed["native one-hot lookup"] = (
            time_call(lambda: [lookup(labels, threads) for lookup in cpu_graph.lookups]) * 1e3
        )
    return timed


def backend_breakdown(
    onnx_path: Path, feed: dict[str, np.ndarray], threads: int, scratch: str, runs: int = 10
) -> dict[str, float]:
    """Milliseconds per step by operator type in the ONNX Runtime backend: its profile of the rewritten graph
    (kernel times, so the sum is a little under the wall time) plus the native lookups."""
    cpu_graph = CpuGraph(onnx_path)
    feeds = cpu_graph.feeds(feed, threads)
    session = ort_session(cpu_graph.model.SerializeToString(), threads, profile_prefix=str(Path(scratch) / "profile"))
    warm_up = 3
    for _ in range(warm_up + runs):
        session.run(None, feeds)
    profile = Path(session.end_profiling())
    events = json.loads(profile.read_text())
    run_starts = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e["name"] == "model_run")
    timed_from = run_starts[warm_up]
    per_op: dict[str, float] = collections.defaultdict(float)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time") and event["ts"] >= timed_from:
            per_op[event["args"]["op_name"]] += event["dur"] / 1e3 / runs
    profile.unlink()
    return {**per_op, **beside_graph_ms(cpu_graph, feed, threads)}


def openvino_breakdown(onnx_path: Path, feed: dict[str, np.ndarray], threads: int, runs: int = 10) -> dict[str, float]:
    """Milliseconds per step by operator type in the OpenVINO backend: its own performance counters (after its
    graph fusions, so a fused norm or activation counts with the operator it joined) plus the native lookups."""
    import openvino as ov

    cpu_graph = CpuGraph(onnx_path)
    request = compile_for_cpu(ov, cpu_graph, threads, perf_count=True).create_infer_request()
    feeds = cpu_graph.feeds(feed, threads)
    for _ in range(3):
        request.infer(feeds)
    per_op: dict[str, float] = collections.defaultdict(float)
    for _ in range(runs):
        request.infer(feeds)
        for counter in request.profiling_info:
            per_op[counter.node_type] += counter.real_time.total_seconds() * 1e3 / runs
    return {**per_op, **beside_graph_ms(cpu_graph, feed, threads)}


def print_breakdown(
    backend: str, name: str, size: int, per_op: dict[str, float], conv_gflop: float, peak: float
) -> None:
    conv_ms = sum(ms for op, ms in per_op.items() if op in CONV_OPS)
    total = sum(per_op.values())
    rate = conv_gflop / conv_ms * 1e3
    others = sorted(((ms, op) for op, ms in per_op.items() if op not in CONV_OPS), reverse=True)
    shown = ", ".join(f"{op} {ms:.1f}" for ms, op in others[:6])
    print(
        f"{backend:<12}{name:<14}{size:>4}x{size:<4}{total:>9.1f}{conv_ms:>9.1f}{100 * conv_ms / total:>7.0f}%{rate:>11.1f}{100 * rate / peak:>7.0f}%"
        f"{total - conv_ms:>9.1f}   {shown}"
    )


def time_call(fn, min_runs: int = 3, min_seconds: float = 1.0) -> float:
    """Median seconds per call after a warm-up."""
    fn()
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_seconds:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def ort_session(onnx_bytes: bytes, threads: int, profile_prefix: str | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


def cpu_backend(name: str, onnx_path: Path, threads: int) -> OrtBackend | OpenVinoBackend | None:
    """A live backend holds threads that compete for the cores: one exists only while it is timed."""
    if name == "onnxruntime":
        return OrtBackend(onnx_path, ("CPUExecutionProvider",), threads)
    return OpenVinoBackend(onnx_path, threads) if importlib.util.find_spec("openvino") else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, choices=sorted(CONFIGS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[128, 256])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; medians over them are printed")
    parser.add_argument(
        "--labels",
        choices=["street", "random"],
        default="street",
        help="segmentation steps' inputs: the rendered street scene (default) or per-pixel random class IDs",
    )
    args = parser.parse_args(argv)
    if args.threads < 1 or args.rounds < 1:
        parser.error(f"--threads {args.threads} --rounds {args.rounds}: both must be at least 1")
    for name in args.configs:
        multiple = CONFIGS[name].multiple_of  # and at least two of them, the smallest frame a bundle accepts
        bad = [size for size in args.sizes if size < 2 * multiple or size % multiple]
        if bad:
            parser.error(
                f"--sizes {' '.join(map(str, bad))}: {name}'s frame sides must be multiples of {multiple}, "
                f"at least {2 * multiple}"
            )
    street_frames = {}
    if args.labels == "street" and any(CONFIGS[name].modality == "segmentation" for name in args.configs):
        history = max(CONFIGS[name].history for name in args.configs)
        try:
            street_frames = {size: render_street(size, size, history + 1) for size in args.sizes}
        except RendererError as err:
            parser.error(f"--labels street needs the G-buffer renderer: {err} (or run with --labels random)")

    torch.set_num_threads(args.threads)
    print(
        f"fp32 matmul, {args.threads} threads: {matmul_gflops(args.threads):.1f} GFLOP/s at the start; every row's"
        " % peak is against the matmul rate measured in its own rounds (the column 'matmul')\n"
    )
    header = (
        f"{'config':<14}{'size':>9}{'params':>9}{'dense GFLOP':>12}{'run GFLOP':>10}{'eager ms':>9}{'ORT ms':>8}"
        f"{'ORT backend':>12}{'OpenVINO':>9}{'best':>9}{'eager/best':>11}{'(range)':>12}{'GFLOP/s':>8}{'% peak':>7}{'matmul':>7}{'fps':>6}"
        f"{'labels':>8}"
    )
    print(header)
    print("-" * len(header))
    breakdowns: list[tuple[str, int, float, dict[str, np.ndarray]]] = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.configs:
            cfg = CONFIGS[name]
            torch.manual_seed(0)
            generator = Vid2VidGenerator(cfg).eval()
            step = GeneratorStep(generator)
            onnx_bytes = export_step_onnx(generator)
            onnx_path = Path(scratch) / f"{name}.onnx"
            onnx_path.write_bytes(onnx_bytes)
            params = generator.parameter_count()
            for size in args.sizes:
                if cfg.modality == "segmentation" and street_frames:
                    labels, feed = "street", step_feed(cfg, street_frames[size])
                    inputs = {n: torch.from_numpy(v) for n, v in feed.items()}
                else:
                    labels, inputs = "random", example_inputs(cfg, batch=1, height=size, width=size)
                    feed = {n: inputs[n].numpy() for n in input_names(cfg)}
                dense = count_gflops(step, inputs)
                conv_gflop, lookup_gflop = executed_gflops(onnx_path, feed)
                executed = conv_gflop + lookup_gflop
                breakdowns.append((name, size, conv_gflop, feed))
                eager_runs, plain_runs, peaks = [], [], []
                backend_runs: dict[str, list[float]] = {"onnxruntime": [], "openvino": []}
                # Interleaved rounds: a shared machine's speed drifts by tens of percent within a minute, so each
                # round times all three back to back and the speed-up is the median of the rounds' own ratios.
                for _ in range(args.rounds):
                    peaks.append(matmul_gflops(args.threads, seconds=0.5))
                    with torch.inference_mode():
                        eager_runs.append(time_call(lambda: step(**step_arguments(cfg, inputs))))
                    # A live ORT session's threads compete for the cores: one exists only while it is timed.
                    session = ort_session(onnx_bytes, args.threads)
                    plain_runs.append(time_call(lambda s=session: s.run(None, feed)))
                    del session
                    for backend_name, runs in backend_runs.items():
                        backend = cpu_backend(backend_name, onnx_path, args.threads)
                        if backend is not None:
                            runs.append(time_call(lambda b=backend: b.run(feed)))
                        del backend
                eager, plain = float(np.median(eager_runs)), float(np.median(plain_runs))
                medians = {b: float(np.median(runs)) for b, runs in backend_runs.items() if runs}
                best = min(medians, key=medians.get)
                ratios = np.array(eager_runs) / np.array(backend_runs[best])
                spread = f"{ratios.min():.2f}-{ratios.max():.2f}"
                rate, peak = executed / medians[best], float(np.median(peaks))
                openvino = f"{medians['openvino'] * 1e3:.1f}" if "openvino" in medians else "absent"
                print(
                    f"{name:<14}{size:>4}x{size:<4}{params / 1e6:>8.2f}M{dense:>12.2f}{executed:>10.2f}{eager * 1e3:>9.1f}"
                    f"{plain * 1e3:>8.1f}{medians['onnxruntime'] * 1e3:>12.1f}{openvino:>9}{best[:8]:>9}"
                    f"{np.median(ratios):>10.2f}x{spread:>12}{rate:>8.1f}{100 * rate / peak:>6.0f}%{peak:>7.0f}{1 / medians[best]:>6.1f}"
                    f"{labels:>8}"
                )
        print(
            "\nThe CPU backends' step by operator type (ms per step; convolutions alone vs matmul; the rest, largest first)"
        )
        header = f"{'backend':<12}{'config':<14}{'size':>9}{'total ms':>9}{'conv ms':>9}{'share':>8}{'conv GF/s':>11}{'% peak':>8}{'rest ms':>9}   rest by operator (ms)"
        print(header)
        print("-" * len(header))
        for name, size, conv_gflop, feed in breakdowns:
            onnx_path = Path(scratch) / f"{name}.onnx"
            per_op = backend_breakdown(onnx_path, feed, args.threads, scratch)
            print_breakdown("onnxruntime", name, size, per_op, conv_gflop, matmul_gflops(args.threads, seconds=0.5))
            if importlib.util.find_spec("openvino"):
                per_op = openvino_breakdown(onnx_path, feed, args.threads)
                print_breakdown("openvino", name, size, per_op, conv_gflop, matmul_gflops(args.threads, seconds=0.5))


if __name__ == "__main__":
    main()
