"""G-buffer frames streamed to a real server (127.0.0.1) through the client SDK; the Gymnasium wrapper on a real
(small) environment; batch rendering. Every neural frame is checked against the bundle's step run directly."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from neurender.engine_plugin.gbuffer.renderer import GBufferRenderer
from neurender.engine_plugin.gbuffer.scenes import STREET_CLASSES, street_scene
from neurender.engine_plugin.gbuffer.stream import stream_scene, write_results
from neurender.engine_plugin.gym.wrapper import NeuralObservation, render_label_sequences
from neurender.engine_plugin.sdk.client import RenderClient
from tests.server_support import DirectStep, label_sequence, running_server

SIZE = 32


@pytest.fixture(scope="module")
def server(tiny_models_dir):
    with running_server(tiny_models_dir) as running:
        yield running


def test_stream_scene_renders_every_frame_through_the_server(server, tiny_bundle_dir, tmp_path):
    scene = street_scene(seed=2, num_frames=4)
    direct = DirectStep(tiny_bundle_dir)
    with (
        RenderClient(server.address) as client,
        client.session("tiny", (SIZE, SIZE), max_in_flight=2) as session,
        GBufferRenderer(SIZE, SIZE) as renderer,
    ):
        results = list(stream_scene(session, renderer, scene))
    assert [f.index for f, _ in results] == [0, 1, 2, 3]
    for frame, rgb in results:
        assert rgb.shape == (SIZE, SIZE, 3) and rgb.dtype == np.uint8
        np.testing.assert_array_equal(rgb, direct(frame.classes))
    assert write_results(tmp_path / "out", results, STREET_CLASSES) == 4
    assert sorted(p.name for p in (tmp_path / "out" / "frames").iterdir()) == [f"{i:06d}.png" for i in range(4)]


class GridWorld(gym.Env):
    """A tiny maze whose observation is a label map: 8 x 8 cells of 4 x 4 pixels; floor 1, wall 2, goal 3,
    agent 4. Four actions move the agent; reaching the goal ends the episode."""

    observation_space = gym.spaces.Box(0, 11, (SIZE, SIZE), np.uint8)
    action_space = gym.spaces.Discrete(4)
    MOVES = ((0, 1), (0, -1), (1, 0), (-1, 0))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        cells = [(r, c) for r in range(1, 7) for c in range(1, 7)]
        picks = self.np_random.choice(len(cells), 2, replace=False)
        self.agent, self.goal = cells[picks[0]], cells[picks[1]]
        return self._observe(), {}

    def step(self, action: int):
        dr, dc = self.MOVES[int(action)]
        r, c = self.agent[0] + dr, self.agent[1] + dc
        if 1 <= r <= 6 and 1 <= c <= 6:
            self.agent = (r, c)
        done = self.agent == self.goal
        return self._observe(), float(done), done, False, {}

    def _observe(self) -> np.ndarray:
        grid = np.full((8, 8), 2, np.uint8)
        grid[1:7, 1:7] = 1
        grid[self.goal] = 3
        grid[self.agent] = 4
        return grid.repeat(4, axis=0).repeat(4, axis=1)


def test_gym_wrapper_renders_observations_and_resets_history_with_the_episode(server, tiny_bundle_dir):
    direct = DirectStep(tiny_bundle_dir)
    raw = GridWorld()
    with RenderClient(server.address) as client:
        env = NeuralObservation(GridWorld(), client, "tiny")
        assert env.observation_space.shape == (SIZE, SIZE, 3)
        for episode in range(2):
            obs, _ = env.reset(seed=episode)
            labels, _ = raw.reset(seed=episode)
            np.testing.assert_array_equal(obs, direct(labels, reset=True))
            for action in (0, 2, 1, 3, 0):
                obs, reward, terminated, truncated, _ = env.step(action)
                labels, *_ = raw.step(action)
                assert obs.dtype == np.uint8 and obs.shape == (SIZE, SIZE, 3)
                np.testing.assert_array_equal(obs, direct(labels))
                if terminated:
                    break
        env.close()


def test_gym_wrapper_refuses_a_non_label_observation(server):
    with RenderClient(server.address) as client, pytest.raises(ValueError, match="Box of class IDs"):
        NeuralObservation(gym.make("CartPole-v1"), client, "tiny")


def test_batch_mode_renders_many_sequences(server, tiny_bundle_dir):
    sequences = [label_sequence(n, SIZE, SIZE, seed=s) for s, n in ((0, 4), (1, 2), (2, 3))]
    with RenderClient(server.address) as client:
        rendered = render_label_sequences(client, "tiny", sequences, max_in_flight=2)
    for labels, frames in zip(sequences, rendered):
        direct = DirectStep(tiny_bundle_dir)
        assert len(frames) == len(labels)
        for label, frame in zip(labels, frames):
            np.testing.assert_array_equal(frame, direct(label))


def test_render_scene_command_streams_the_street_and_a_gltf(server, tmp_path):
    import trimesh

    from neurender.cli import main as cli_main
    from neurender.engine_plugin.gbuffer.scene import translation

    out = tmp_path / "street"
    assert (
        cli_main(
            [
                "render-scene",
                "--server",
                server.address,
                "--model",
                "tiny",
                "--out",
                str(out),
                "--size",
                f"{SIZE}x{SIZE}",
                "--frames",
                "2",
            ]
        )
        == 0
    )
    assert len(list((out / "frames").glob("*.png"))) == 2 and len(list((out / "labels").glob("*.png"))) == 2
    s = trimesh.Scene()
    s.add_geometry(trimesh.creation.box(extents=(6, 0.2, 6)), node_name="road")
    s.add_geometry(trimesh.creation.box(extents=(1, 1, 2)), node_name="car.001", transform=translation(0, 0.6, 0))
    glb = tmp_path / "scene.glb"
    glb.write_bytes(s.export(file_type="glb"))
    assert (
        cli_main(
            [
                "render-scene",
                "--server",
                server.address,
                "--model",
                "tiny",
                "--out",
                str(tmp_path / "g"),
                "--gltf",
                str(glb),
                "--size",
                f"{SIZE}x{SIZE}",
                "--frames",
                "2",
            ]
        )
        == 0
    )
    assert (
        cli_main(
            [
                "render-scene",
                "--server",
                server.address,
                "--model",
                "no-such-model",
                "--out",
                str(tmp_path / "x"),
                "--frames",
                "1",
            ]
        )
        == 2
    )
