"""Three real replicas behind the real haproxy (deploy/haproxy/haproxy.cfg) on 127.0.0.1: sessions spread over
the replicas, and sessions whose replica is drained (SIGTERM) or killed (SIGKILL) mid-stream go on through the
same address with every frame equal to the uninterrupted run's, in order, none lost or duplicated."""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from neurender.bench.cluster import LoadBalancer, Replica
from neurender.engine_plugin.sdk.aio_client import AsyncRenderClient
from neurender.engine_plugin.sdk.client import RenderClient
from tests.server_support import DirectStep, label_sequence, running_server

pytestmark = pytest.mark.skipif(
    shutil.which("haproxy") is None and not Path("/usr/sbin/haproxy").exists(),
    reason="haproxy is not installed (apt-get install -y haproxy; .ci/run installs it)",
)

SIZE, FRAMES, SESSIONS = 32, 10, 4
REPLICA_SETTINGS = "workers: 1\nintra_op_threads: 1\nmax_wait_ms: 2\ndrain_timeout_s: 10\n"


@pytest.fixture(scope="module")
def cluster(tiny_models_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cluster")
    replicas = [Replica(tiny_models_dir, folder, f"replica{i + 1}", REPLICA_SETTINGS) for i in range(3)]
    balancer = None
    try:
        addresses = [replica.wait_listening() for replica in replicas]
        balancer = LoadBalancer(addresses, folder)
        yield replicas, balancer
    finally:
        if balancer is not None:
            balancer.stop()
        for replica in replicas:
            replica.stop(signal.SIGKILL, timeout=10)


@pytest.fixture(scope="module")
def expected(tiny_bundle_dir):
    """Each session's frames from an uninterrupted run: the step called directly, one history per session."""
    sequences = [label_sequence(FRAMES, SIZE, SIZE, seed=s) for s in range(SESSIONS)]
    frames = []
    for sequence in sequences:
        direct = DirectStep(tiny_bundle_dir, threads=1)
        frames.append([direct(labels) for labels in sequence])
    return sequences, frames


def serving(replicas: list[Replica], session_id: str) -> Replica:
    for replica in replicas:
        if any(e.get("event") == "session_opened" and e.get("session") == session_id for e in replica.events()):
            return replica
    raise AssertionError(f"no replica logged session {session_id}")


def wait_for(predicate, timeout: float, what: str) -> None:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def run_with_failure(cluster, expected, sig: int | None) -> tuple[list[list[np.ndarray]], list[int], Replica | None]:
    """SESSIONS sessions through the balancer, FRAMES frames each, two in flight; halfway through, `sig` goes to
    the replica serving session 0 while its frames are in flight. Returns the frames, each session's reconnects
    and the replica signalled."""
    replicas, balancer = cluster
    sequences, _ = expected

    async def run():
        async with AsyncRenderClient(balancer.address) as client:
            sessions = [
                client.session("tiny", (SIZE, SIZE), max_in_flight=2, reconnect_timeout_s=30) for _ in range(SESSIONS)
            ]
            for session in sessions:
                await session.open()
            victim = serving(replicas, sessions[0].info.session_id) if sig is not None else None
            futures: list[list[asyncio.Future]] = [[] for _ in sessions]
            for t in range(FRAMES):
                if t == FRAMES // 2 and victim is not None:
                    victim.process.send_signal(sig)
                for s, session in enumerate(sessions):
                    futures[s].append(await session.submit(labels=sequences[s][t]))
            images = [[(await f).image for f in fs] for fs in futures]
            for session in sessions:
                await session.close()
            return images, [s.reconnects for s in sessions], victim

    return asyncio.run(asyncio.wait_for(run(), timeout=60))


def assert_bit_identical(images, expected) -> None:
    _, frames = expected
    differing = [
        (s, t) for s in range(SESSIONS) for t in range(FRAMES) if not np.array_equal(images[s][t], frames[s][t])
    ]
    assert len(images) == SESSIONS and all(len(i) == FRAMES for i in images)
    assert not differing, f"(session, frame) differing from the uninterrupted run: {differing}"


def test_sessions_spread_over_the_replicas(cluster, expected):
    replicas, _ = cluster
    images, reconnects, _ = run_with_failure(cluster, expected, None)
    assert_bit_identical(images, expected)
    assert reconnects == [0] * SESSIONS
    served = [sum(e.get("event") == "session_opened" for e in r.events()) for r in replicas]
    assert all(count >= 1 for count in served), f"sessions per replica: {served}"


def test_a_replica_answering_not_serving_leaves_the_rotation(cluster, tiny_models_dir, tmp_path):
    replicas, _ = cluster
    from grpc_health.v1 import health_pb2

    with running_server(tiny_models_dir, max_wait_ms=0.0) as drained:
        balancer = LoadBalancer([drained.address, replicas[0].address], tmp_path)
        try:
            drained.call(drained.server.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING))
            wait_for(
                lambda: balancer.server_went_down(0), timeout=10, what="haproxy to take the NOT_SERVING replica out"
            )
            assert "Layer7" in balancer.log.read_text()  # the gRPC answer failed the check, not the connection
            with RenderClient(balancer.address) as client:
                sessions = [client.session("tiny", (SIZE, SIZE)).open() for _ in range(4)]
                assert not drained.server.service.streams, "a session went to the replica out of rotation"
                for session in sessions:
                    session.close()
        finally:
            balancer.stop()


def test_sigterm_mid_stream_the_sessions_continue_on_another_replica(cluster, expected):
    images, reconnects, victim = run_with_failure(cluster, expected, signal.SIGTERM)
    assert_bit_identical(images, expected)
    assert reconnects[0] >= 1
    assert victim.process.wait(timeout=30) == 0  # drained and exited cleanly
    wait_for(
        lambda: cluster[1].server_went_down(cluster[0].index(victim)),
        timeout=10,
        what="haproxy to take the replica out",
    )
    events = [e.get("event") for e in victim.events()]
    assert "drain" in events and "stopped" in events


def test_kill_mid_stream_the_sessions_continue_on_another_replica(cluster, expected):
    replicas, _ = cluster
    if sum(r.process.poll() is None for r in replicas) < 2:
        pytest.skip("needs two live replicas (the SIGTERM test runs first)")
    images, reconnects, victim = run_with_failure(cluster, expected, signal.SIGKILL)
    assert_bit_identical(images, expected)
    assert reconnects[0] >= 1
    assert victim.process.wait(timeout=30) == -signal.SIGKILL
    wait_for(
        lambda: cluster[1].server_went_down(cluster[0].index(victim)),
        timeout=10,
        what="haproxy to take the replica out",
    )
