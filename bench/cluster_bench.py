"""Scale-out benchmark: replicas behind haproxy (deploy/haproxy/haproxy.cfg) on this machine.

    python -m neurender.bench.cluster_bench [--models DIR --model NAME] [--size 128] [--sessions 16] [--seconds 12]

Prints
  - total frames/s of --sessions sessions (one frame in flight each) through haproxy with 1, 2 and 3 replicas,
    each replica's inference threads, and the ratio to the same sessions on one server without haproxy (one
    worker with every core, as a lone replica runs; and one single-thread worker per core, the layout the
    replicas add up to); the replicas share this machine's cores, so more replicas cannot add compute here;
  - the latency haproxy adds per frame: one session, one frame at a time, through haproxy and direct to the
    same replica (medians);
  - failover: sessions streaming through haproxy to 2 replicas while the replica serving session 0 gets SIGTERM
    or SIGKILL; frames compared with the uninterrupted run, frames that differ, and the time from the signal to
    the next frame each moved session receives (the slowest).
Without --models it exports the tiny preset with random weights (needs the [train] extra). Needs haproxy.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np

from neurender.bench.cluster import LoadBalancer, Replica
from neurender.bench.serve import export_tiny, label_frames
from neurender.engine_plugin.sdk.aio_client import AsyncRenderClient
from neurender.proto.bundle import REQUIRED_INPUT, read_bundle
from neurender.proto.tensors import NUMPY_DTYPES

_NAMES = itertools.count()


@contextmanager
def replicas_running(models: Path, folder: Path, count: int, threads: int, workers: int = 1):
    settings = f"workers: {workers}\nintra_op_threads: {threads}\n"
    started = [Replica(models, folder, f"replica-{next(_NAMES)}", settings) for _ in range(count)]
    try:
        for replica in started:
            replica.wait_listening()
        yield started
    finally:
        for replica in started:
            replica.stop(signal.SIGKILL, timeout=10)


async def throughput(address: str, model: str, frames: list[dict], size: int, sessions: int, seconds: float) -> float:
    """Frames/s of `sessions` sessions, each with one frame in flight, for `seconds`."""
    async with AsyncRenderClient(address) as client:
        opened = [client.session(model, (size, size)) for _ in range(sessions)]
        for session in opened:
            await session.open()
        await asyncio.gather(*(s.render(**frames[0]) for s in opened))  # warm up
        done = 0
        start = time.perf_counter()

        async def drive(session, offset: int) -> None:
            nonlocal done
            t = 0
            while time.perf_counter() - start < seconds:
                await session.render(**frames[(t + offset) % len(frames)])
                done += 1
                t += 1

        await asyncio.gather(*(drive(s, i) for i, s in enumerate(opened)))
        elapsed = time.perf_counter() - start
        await asyncio.gather(*(s.close() for s in opened))
    return done / elapsed


async def latency(address: str, model: str, frames: list[dict], size: int, count: int) -> float:
    """Median client-side latency (ms) of one session sending one frame at a time."""
    async with AsyncRenderClient(address) as client, client.session(model, (size, size)) as session:
        await session.render(**frames[0])
        samples = []
        for t in range(count):
            samples.append((await (await session.submit(**frames[t % len(frames)]))).latency_ms)
    return statistics.median(samples)


async def failover(
    balancer: LoadBalancer,
    replicas: list[Replica],
    model: str,
    frames: list[dict],
    size: int,
    sessions: int,
    count: int,
    sig: int | None,
) -> tuple[list[list[np.ndarray]], float | None]:
    """`sessions` sessions of `count` frames through the balancer; halfway, `sig` to the replica serving session 0.
    Returns the frames and the slowest time (s) from the signal to the next frame of a session that moved."""
    async with AsyncRenderClient(balancer.address) as client:
        opened = [client.session(model, (size, size), reconnect_timeout_s=60) for _ in range(sessions)]
        for session in opened:
            await session.open()
        victim = next(
            (r for r in replicas if any(e.get("session") == opened[0].info.session_id for e in r.events())), None
        )
        images: list[list[np.ndarray]] = [[] for _ in opened]
        signalled: float | None = None
        recovered: dict[int, float] = {}

        async def drive(s: int, session) -> None:
            for t in range(count):
                if s == 0 and t == count // 2 and sig is not None:
                    nonlocal signalled
                    victim.process.send_signal(sig)
                    signalled = time.perf_counter()
                reconnects = session.reconnects
                images[s].append((await session.render(**frames[t % len(frames)])).copy())
                if session.reconnects > reconnects and s not in recovered:
                    recovered[s] = time.perf_counter()

        await asyncio.gather(*(drive(s, session) for s, session in enumerate(opened)))
        for session in opened:
            await session.close()
    recover = max(recovered.values()) - signalled if recovered and signalled is not None else None
    return images, recover


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, help="a folder of bundles (default: export the tiny preset)")
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=12.0, help="measuring time per setup, split into --rounds")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        models = args.models
        if models is None:
            models = folder / "models"
            export_tiny(models / "tiny")
        bundle = read_bundle(models / args.model if (models / args.model).is_dir() else models)
        frames = label_frames(_Described(bundle), args.size)
        print(
            f"model {args.model}, {args.size}x{args.size}, {args.sessions} sessions, {cores} cores, "
            f"load average before {os.getloadavg()[0]:.2f}\n"
        )

        with ExitStack() as stack:

            def balanced(replicas: list[Replica], name: str) -> str:
                (folder / name).mkdir()
                balancer = LoadBalancer([r.address for r in replicas], folder / name)
                stack.callback(balancer.stop)
                return balancer.address

            one = stack.enter_context(replicas_running(models, folder, 1, cores))
            spread = stack.enter_context(replicas_running(models, folder, 1, 1, workers=cores))
            two = stack.enter_context(replicas_running(models, folder, 2, max(1, cores // 2)))
            three = stack.enter_context(replicas_running(models, folder, 3, max(1, cores // 3)))
            setups = [  # name, replicas, threads per replica, address
                (f"1 server, 1 worker x {cores} threads, no proxy", 1, str(cores), one[0].address),
                (f"1 server, {cores} workers x 1 thread, no proxy", 1, f"{cores} x 1", spread[0].address),
                ("haproxy, 1 replica (the first server)", 1, str(cores), balanced(one, "lb1")),
                ("haproxy, 2 replicas", 2, str(max(1, cores // 2)), balanced(two, "lb2")),
                ("haproxy, 3 replicas", 3, str(max(1, cores // 3)), balanced(three, "lb3")),
            ]
            targets = [address for *_, address in setups]
            fps = [0.0] * len(setups)
            latencies = {"direct": [], "haproxy": []}
            for _ in range(args.rounds):  # interleaved, so a change in the machine's load touches every setup alike
                for i, address in enumerate(targets):
                    fps[i] += (
                        asyncio.run(
                            throughput(
                                address, args.model, frames, args.size, args.sessions, args.seconds / args.rounds
                            )
                        )
                        / args.rounds
                    )
                for path, address in (("direct", targets[0]), ("haproxy", targets[2])):
                    latencies[path].append(asyncio.run(latency(address, args.model, frames, args.size, 50)))
        print("| setup | replicas | threads per replica | frames/s | ratio to one direct server |")
        print("| --- | --- | --- | --- | --- |")
        for (name, count, threads, _), rate in zip(setups, fps):
            print(f"| {name} | {count} | {threads} | {rate:.1f} | {rate / fps[0]:.2f} |")
        direct_ms, proxied_ms = (statistics.median(latencies[p]) for p in ("direct", "haproxy"))
        print(
            f"\nlatency per frame, one session, one frame at a time (median of {args.rounds} rounds of 50): direct "
            f"{direct_ms:.2f} ms, through haproxy to the same server {proxied_ms:.2f} ms (the proxy adds {proxied_ms - direct_ms:.2f} ms)\n"
        )

        sessions, count = 4, 40
        print(
            f"failover: {sessions} sessions x {count} frames through haproxy to 2 replicas, the signal at frame {count // 2}"
        )
        print("| case | frames compared | differing frames | time to recover (signal to next frame) |")
        print("| --- | --- | --- | --- |")
        with replicas_running(models, folder, 2, max(1, cores // 2)) as replicas:
            balancer = LoadBalancer([r.address for r in replicas], folder)
            try:
                reference, _ = asyncio.run(
                    failover(balancer, replicas, args.model, frames, args.size, sessions, count, None)
                )
            finally:
                balancer.stop()
        for name, sig in (("SIGTERM (drain)", signal.SIGTERM), ("SIGKILL", signal.SIGKILL)):
            with replicas_running(models, folder, 2, max(1, cores // 2)) as replicas:
                balancer = LoadBalancer([r.address for r in replicas], folder)
                try:
                    images, recover = asyncio.run(
                        failover(balancer, replicas, args.model, frames, args.size, sessions, count, sig)
                    )
                finally:
                    balancer.stop()
            compared = sum(len(i) for i in images)
            differing = sum(not np.array_equal(a, b) for got, ref in zip(images, reference) for a, b in zip(got, ref))
            recovered = f"{recover * 1e3:.0f} ms" if recover is not None else "no session moved"
            print(f"| {name} | {compared} | {differing} | {recovered} |")
        print(f"\nload average after: {os.getloadavg()[0]:.2f} (1 min)")
    return 0


class _Described:
    """What label_frames reads of a served model, from its bundle."""

    def __init__(self, bundle) -> None:
        self.label_input = REQUIRED_INPUT[bundle.description.modality]
        self.label_dtype = NUMPY_DTYPES[bundle.input(self.label_input).dtype]
        self.num_classes = len(bundle.description.classes)


if __name__ == "__main__":
    sys.exit(main())
