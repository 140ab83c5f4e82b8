"""Generator speed on this machine: parameters, GFLOPs per frame, ms per frame in PyTorch eager and in ONNX
Runtime (CPU), achieved GFLOP/s, and this machine's fp32 matmul GFLOP/s measured in the same run.

    python -m neurender.bench.generator_speed [--configs tiny tiny-2scale ...] [--sizes 128 256] [--threads 2]

Prints a table; nothing here is asserted. The whole step is timed (one-hot, pyramid, warp, uint8 I/O).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from neurender.training.config import PRESETS
from neurender.training.generator import Vid2VidGenerator
from neurender.training.onnx_export import export_step_onnx
from neurender.training.step import GeneratorStep, example_inputs, input_names, step_arguments

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
            macs += args[0].numel() * module.out_channels * module.kernel_size[0] * module.kernel_size[1] // module.groups
        else:
            macs += out.numel() * module.in_channels * module.kernel_size[0] * module.kernel_size[1] // module.groups

    handles = [m.register_forward_hook(hook) for m in step.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    with torch.inference_mode():
        step(**step_arguments(step.cfg, inputs))
    for h in handles:
        h.remove()
    return 2 * macs / 1e9


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


def ort_session(onnx_bytes: bytes, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, choices=sorted(PRESETS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[128, 256])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best median of each is kept")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    peak = matmul_gflops(args.threads)
    print(f"fp32 matmul, {args.threads} threads: {peak:.1f} GFLOP/s (this run)\n")
    header = f"{'config':<14}{'size':>9}{'params':>10}{'GFLOP':>8}{'eager ms':>10}{'ORT ms':>9}{'ORT/eager':>10}{'ORT GFLOP/s':>12}{'% peak':>8}{'fps':>7}"
    print(header)
    print("-" * len(header))
    for name in args.configs:
        cfg = PRESETS[name]
        torch.manual_seed(0)
        generator = Vid2VidGenerator(cfg).eval()
        step = GeneratorStep(generator)
        onnx_bytes = export_step_onnx(generator)
        params = generator.parameter_count()
        for size in args.sizes:
            inputs = example_inputs(cfg, batch=1, height=size, width=size)
            gflop = count_gflops(step, inputs)
            feed = {n: inputs[n].numpy() for n in input_names(cfg)}
            eager = onnx_time = float("inf")
            for _ in range(args.rounds):  # interleaved rounds: a busy moment of a shared machine hits both alike
                with torch.inference_mode():
                    eager = min(eager, time_call(lambda: step(**step_arguments(cfg, inputs))))
                # A live ORT session's idle threads spin on the cores: it exists only while ORT is timed.
                session = ort_session(onnx_bytes, args.threads)
                onnx_time = min(onnx_time, time_call(lambda: session.run(None, feed)))
                del session
            rate = gflop / onnx_time
            print(f"{name:<14}{size:>4}x{size:<4}{params / 1e6:>9.2f}M{gflop:>8.2f}{eager * 1e3:>10.1f}{onnx_time * 1e3:>9.1f}"
                  f"{eager / onnx_time:>9.2f}x{rate:>12.1f}{100 * rate / peak:>7.0f}%{1 / onnx_time:>7.1f}")


if __name__ == "__main__":
    main()
