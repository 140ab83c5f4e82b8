"""Neural frames for reinforcement learning: a Gymnasium observation wrapper and a batch renderer.

`NeuralObservation(env, client, model)` turns an environment's semantic observation (a class-ID map, or a
dict holding one) into the model's RGB frame. Each wrapped environment owns one render session, so the
generator's history follows the episode; `reset()` resets the session (a camera cut), so an episode's first
frame never borrows the previous episode's history.

`render_label_sequences(client, model, sequences)` renders many label sequences as fast as the backend
allows: one session per sequence, all submitted concurrently and pipelined, so the server batches them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from neurender.engine_plugin.sdk.client import RenderClient, Session


class NeuralObservation(gym.ObservationWrapper):
    """Replaces the observation (class IDs uint8/uint16 [H, W], or `obs[label_key]`) by the neural frame
    uint8 [H, W, 3]. The session opens on the first reset and closes with the environment."""

    def __init__(self, env: gym.Env, client: RenderClient, model: str, label_key: str | None = None,
                 **session_options: Any) -> None:
        super().__init__(env)
        space = env.observation_space[label_key] if label_key is not None else env.observation_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 2 or space.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"the observation{f'[{label_key!r}]' if label_key else ''} must be a Box of class IDs "
                             f"(uint8 or uint16, [H, W]); got {space}")
        self.size = (int(space.shape[0]), int(space.shape[1]))
        self.label_key = label_key
        self.observation_space = gym.spaces.Box(0, 255, (*self.size, 3), np.uint8)
        self._client, self._model, self._options = client, model, session_options
        self._session: Session | None = None
        self._reset_next = False

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        if self._session is None:
            self._session = self._client.session(self._model, self.size, **self._options).open()
        else:
            self._reset_next = True
        return super().reset(**kwargs)

    def observation(self, observation: Any) -> np.ndarray:
        if self._session is None:
            raise gym.error.ResetNeeded("call reset() before step(): the render session opens on reset")
        labels = observation[self.label_key] if self.label_key is not None else observation
        reset, self._reset_next = self._reset_next, False
        return self._session.render(labels=np.ascontiguousarray(labels), reset=reset)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
        super().close()


def render_label_sequences(client: RenderClient, model: str, sequences: Sequence[Sequence[np.ndarray]],
                           **session_options: Any) -> list[list[np.ndarray]]:
    """Neural frames for each label sequence (each a list of class-ID maps of one size), rendered through
    concurrent sessions so the server can batch them. Sequences may differ in length and size."""
    sessions = [client.session(model, tuple(seq[0].shape[:2]), **session_options).open() for seq in sequences]
    try:
        futures: list[list] = [[] for _ in sequences]
        for t in range(max((len(s) for s in sequences), default=0)):
            for i, seq in enumerate(sequences):
                if t < len(seq):
                    futures[i].append(sessions[i].submit(labels=np.ascontiguousarray(seq[t])))
        return [[f.result().image for f in fs] for fs in futures]
    finally:
        for session in sessions:
            session.close()


__all__ = ["NeuralObservation", "render_label_sequences"]
