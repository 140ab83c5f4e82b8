"""Environment steps per second of the example RL environment with neural observations, against the raw env.

    python -m neurender.bench.gym_vector [--envs 1 4 8] [--steps 60] [--size 64x64] [--model neurender/models/demo]

Starts `neurender serve` with the model in its own process on 127.0.0.1, then for each number of environments
steps `neurender/StreetDrive-v0` (random actions) for --steps vector steps in five ways:

    raw sync     SyncVectorEnv of the plain environment (class-ID observations, no rendering)
    raw async    AsyncVectorEnv of the plain environment (forkserver workers)
    sync         SyncVectorEnv + NeuralVectorObservation: all sub-envs' frames as one batch of sessions
    async        AsyncVectorEnv of NeuralObservation workers (make_env, forkserver), each with its own session
    async batch  AsyncVectorEnv of the plain environment + NeuralVectorObservation in the parent

and prints env-steps/s (vector steps x envs / seconds) as a markdown table. Nothing is asserted; the machine
may be shared, so the figures are what this run measured.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import gymnasium as gym

from neurender.common.args import parse_size
from neurender.engine_plugin.gym.wrapper import NeuralVectorObservation, make_env
from neurender.engine_plugin.sdk.client import RenderClient
from neurender.proto.bundle import read_bundle

ENV_ID = "neurender/StreetDrive-v0"
DEMO = Path(__file__).resolve().parents[1] / "neurender" / "models" / "demo"


def start_server(model: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
    process = subprocess.Popen(
        [sys.executable, "-m", "neurender.cli", "serve", "--models", str(model), "--address", address, "--no-metrics"],
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with RenderClient(address) as client:
                client.list_models()
            return process, address
        except Exception:  # not listening yet
            if process.poll() is not None:
                raise SystemExit(f"the server exited with {process.returncode}") from None
            time.sleep(0.5)
    process.terminate()
    raise SystemExit("the server did not answer within 120 s")


def steps_per_second(envs: gym.vector.VectorEnv, steps: int, seed: int = 0) -> float:
    envs.reset(seed=seed)
    envs.action_space.seed(seed)
    envs.step(envs.action_space.sample())  # warm-up: sessions open, first frames through
    start = time.perf_counter()
    for _ in range(steps):
        envs.step(envs.action_space.sample())
    rate = steps * envs.num_envs / (time.perf_counter() - start)
    envs.close()
    return rate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--steps", type=int, default=60, help="vector steps timed per configuration (default 60)")
    parser.add_argument("--size", type=parse_size, default=(64, 64), help="observation HEIGHTxWIDTH (default 64x64)")
    parser.add_argument("--model", type=Path, default=DEMO, help="model bundle (default: the bundled demo model)")
    args = parser.parse_args(argv)
    model = read_bundle(args.model).description.name
    env_kwargs = {"size": args.size}
    raw = partial(gym.make, ENV_ID, **env_kwargs)
    process, address = start_server(args.model)
    neural = partial(make_env, ENV_ID, address, model, env_kwargs)
    rows = []
    try:
        for n in args.envs:
            rates = {
                "raw sync": steps_per_second(gym.vector.SyncVectorEnv([raw] * n), args.steps),
                "raw async": steps_per_second(gym.vector.AsyncVectorEnv([raw] * n, context="forkserver"), args.steps),
                "sync": steps_per_second(
                    NeuralVectorObservation(gym.vector.SyncVectorEnv([raw] * n), address, model), args.steps
                ),
                "async": steps_per_second(gym.vector.AsyncVectorEnv([neural] * n, context="forkserver"), args.steps),
                "async batch": steps_per_second(
                    NeuralVectorObservation(gym.vector.AsyncVectorEnv([raw] * n, context="forkserver"), address, model),
                    args.steps,
                ),
            }
            rows.append((n, rates))
            print(n, {k: round(v, 1) for k, v in rates.items()}, flush=True)
    finally:
        process.terminate()
        process.wait(timeout=60)
    names = list(rows[0][1])
    print(f"\nenv-steps/s, {ENV_ID} at {args.size[0]}x{args.size[1]}, model {model}, {args.steps} vector steps each\n")
    print("| envs | " + " | ".join(names) + " |")
    print("|---:|" + "---:|" * len(names))
    for n, rates in rows:
        print(f"| {n} | " + " | ".join(f"{rates[k]:.1f}" for k in names) + " |")


if __name__ == "__main__":
    main()
