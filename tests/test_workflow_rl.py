"""The RL researcher's workflow, walked as they would: make the registered example environment, wrap it with
a server address, vectorise it (sync, and async with forked workers after the parent used gRPC), pass depth and
motion through to a model that takes them. Every neural frame is checked against the model's step."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import neurender.engine_plugin.gym  # noqa: F401  (registers neurender/StreetDrive-v0)
from neurender.engine_plugin.gym.wrapper import NeuralObservation, NeuralVectorObservation
from neurender.engine_plugin.sdk.client import RenderClient
from tests.server_support import DirectStep, running_server

SIZE = (32, 32)


@pytest.fixture(scope="module")
def models(tiny_bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ "tiny" (labels only) beside "engine" (labels, depth and motion), served from one folder."""
    import shutil

    import torch

    from neurender.training.model.bundle_export import BundleInfo, export_bundle
    from neurender.training.model.config import PRESETS
    from neurender.training.model.generator import Vid2VidGenerator

    root = tmp_path_factory.mktemp("rl-models")
    shutil.copytree(tiny_bundle_dir, root / "tiny")
    torch.manual_seed(0)
    cfg = replace(PRESETS["tiny-engine"], ngf=8, n_blocks=1, use_instances=False)
    export_bundle(Vid2VidGenerator(cfg), root / "engine", BundleInfo(name="engine"), include_torch=False)
    return root


@pytest.fixture(scope="module")
def server(models: Path):
    with running_server(models) as running:
        yield running


def test_registered_env_wrapped_by_address(server, tiny_bundle_dir: Path) -> None:
    env = NeuralObservation(gym.make("neurender/StreetDrive-v0", size=SIZE), server.address, "tiny")
    raw = gym.make("neurender/StreetDrive-v0", size=SIZE)
    direct = DirectStep(tiny_bundle_dir)
    obs, _ = env.reset(seed=4)
    labels, _ = raw.reset(seed=4)
    assert set(np.unique(labels)) >= {0, 2}  # sky and road, in the street class table
    np.testing.assert_array_equal(obs, direct(labels, reset=True))
    for action in (0, 1, 2, 1):
        obs, *_ = env.step(action)
        labels, *_ = raw.step(action)
        np.testing.assert_array_equal(obs, direct(labels))
    env.close()


def test_vector_wrapper_renders_every_sub_env_and_cuts_history_on_autoreset(server, tiny_bundle_dir: Path) -> None:
    n = 3
    envs = gym.vector.SyncVectorEnv([lambda: gym.make("neurender/StreetDrive-v0", size=SIZE, max_steps=2)] * n)
    raws = [gym.make("neurender/StreetDrive-v0", size=SIZE, max_steps=2) for _ in range(n)]
    wrapped = NeuralVectorObservation(envs, server.address, "tiny")
    directs = [DirectStep(tiny_bundle_dir) for _ in range(n)]
    frames, _ = wrapped.reset(seed=[1, 2, 3])
    labels = [raw.reset(seed=s)[0] for raw, s in zip(raws, (1, 2, 3))]
    assert frames.shape == (n, *SIZE, 3)
    for i in range(n):
        np.testing.assert_array_equal(frames[i], directs[i](labels[i], reset=True))
    ended = [False] * n
    for _ in range(4):  # truncated after 2 steps: the next step returns each sub-env's first frame of a new episode
        frames, _, terminated, truncated, _ = wrapped.step(np.ones(n, int))
        for i in range(n):
            if ended[i]:
                labels[i] = raws[i].reset()[0]
                expected = directs[i](labels[i], reset=True)
                ended[i] = False
            else:
                labels[i], _, term, trunc, _ = raws[i].step(1)
                expected = directs[i](labels[i])
                ended[i] = term or trunc
            assert ended[i] == bool(terminated[i] or truncated[i])
            if not ended[i] and not (terminated[i] or truncated[i]):
                np.testing.assert_array_equal(frames[i], expected)
    wrapped.close()


def test_depth_and_motion_pass_through_to_a_model_that_takes_them(server) -> None:
    env = NeuralObservation(
        gym.make("neurender/StreetDriveGBuffer-v0", size=SIZE),
        server.address,
        "engine",
        label_key="labels",
        passthrough=("depth", "motion"),
    )
    raw = gym.make("neurender/StreetDriveGBuffer-v0", size=SIZE)
    with (
        RenderClient(server.address) as client,
        client.session("engine", SIZE) as session,
        client.session("engine", SIZE) as labels_only,
    ):
        obs, _ = env.reset(seed=0)
        o, _ = raw.reset(seed=0)
        for action in (None, 2, 2):
            if action is not None:
                obs, *_ = env.step(action)
                o, *_ = raw.step(action)
            expected = session.render(
                labels=o["labels"], depth=o["depth"].astype(np.float16), motion=o["motion"].astype(np.float16)
            )
            np.testing.assert_array_equal(obs, expected)
        assert np.abs(obs.astype(int) - labels_only.render(labels=o["labels"]).astype(int)).max() > 0
    env.close()
    with pytest.raises(ValueError, match=r"the observation has no \['normals'\]"):
        NeuralObservation(
            gym.make("neurender/StreetDriveGBuffer-v0", size=SIZE),
            server.address,
            "engine",
            label_key="labels",
            passthrough=("normals",),
        )


ASYNC_SCRIPT = """
import sys
from functools import partial

import gymnasium as gym
import numpy as np

from neurender.engine_plugin.gym.wrapper import make_env
from neurender.engine_plugin.sdk.client import RenderClient

address = sys.argv[1]
parent = RenderClient(address)  # the parent has used gRPC before the workers start
parent.list_models()
make = partial(make_env, "neurender/StreetDrive-v0", address, "tiny", {"size": (32, 32)})
envs = gym.vector.AsyncVectorEnv([make] * 2, context="fork")
try:
    envs.reset(seed=0)
except Exception as err:
    print("refused:", err, flush=True)
envs.close(terminate=True)

envs = gym.vector.AsyncVectorEnv([make] * 2, context="forkserver")
frames, _ = envs.reset(seed=0)
for _ in range(3):
    frames, *_ = envs.step(np.ones(2, int))
print("forkserver ok", frames.shape, flush=True)
envs.close()
parent.close()
"""


def test_async_vector_env_forked_after_the_parent_used_grpc(server) -> None:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(ASYNC_SCRIPT), server.address],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert "refused: this process was forked from one holding an open RenderClient" in result.stdout, result.stderr[
        -2000:
    ]
    assert "context='forkserver'" in result.stdout
    assert "forkserver ok (2, 32, 32, 3)" in result.stdout, result.stderr[-2000:]
    assert result.returncode == 0, result.stderr[-2000:]
