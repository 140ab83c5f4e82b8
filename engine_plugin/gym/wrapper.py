"""Neural frames for reinforcement learning: Gymnasium wrappers for one environment and for vector environments,
and a batch renderer.

`NeuralObservation(env, server, model)` turns an environment's semantic observation (a class-ID map, or a dict
holding one and optionally depth and motion) into the model's RGB frame. Each wrapped environment owns one render
session, so the generator's history follows the episode; `reset()` resets the session (a camera cut), so an
episode's first frame never borrows the previous episode's history.

`NeuralVectorObservation(vector_env, server, model)` does the same for every sub-environment of a vector
environment, rendering all of a step's frames as one batch of concurrent sessions (the server batches them).

Processes: give `server` as an address ("127.0.0.1:50051") and each process connects on its first reset, so
`AsyncVectorEnv` workers each open their own connection. gRPC does not survive fork: a worker forked from a
process holding an open RenderClient would crash inside gRPC (and its parent wait for it forever), so the
wrapper refuses there with a message instead. `make_env` is a picklable factory for workers started with
context="forkserver" or "spawn", which work whatever the parent has open:

    AsyncVectorEnv([partial(make_env, "neurender/StreetDrive-v0", "127.0.0.1:50051", "demo")] * 8, context="forkserver")

`render_label_sequences(client, model, sequences)` renders many label sequences as fast as the backend
allows: one session per sequence, all submitted concurrently and pipelined, so the server batches them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from neurender.common.errors import UserError
from neurender.engine_plugin.sdk.client import RenderClient, Session
from neurender.proto.tensors import NUMPY_DTYPES


class ForkedClientError(UserError, RuntimeError):
    """A RenderClient used in a process forked from the one that opened it."""


_client_open_at_fork = False  # in a forked child: whether its parent held an open RenderClient when it forked
_client_open_now = False


def _before_fork() -> None:
    global _client_open_now
    _client_open_now = any(t.name == "neurender-client" and t.is_alive() for t in threading.enumerate())


def _after_fork_in_child() -> None:
    global _client_open_at_fork
    _client_open_at_fork = _client_open_at_fork or _client_open_now


os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)

FORK_ADVICE = (
    "start the workers with context='forkserver' or 'spawn' (AsyncVectorEnv(..., context='forkserver'), "
    "env functions from neurender.engine_plugin.gym.wrapper.make_env), or open the parent's RenderClient "
    "after the vector environment is made"
)


class Connection:
    """A RenderClient for this process: the one given (checked to belong to this process), or one opened from an
    address on first use and again in every forked child."""

    def __init__(self, server: str | RenderClient) -> None:
        self._given = server if isinstance(server, RenderClient) else None
        self._address = server if isinstance(server, str) else None
        if self._given is None and self._address is None:
            raise TypeError(f"server must be an address 'HOST:PORT' or a RenderClient, got {type(server).__name__}")
        self._client: RenderClient | None = None
        self._pid: int | None = None

    def client(self) -> RenderClient:
        if _client_open_at_fork:
            raise ForkedClientError(
                "this process was forked from one holding an open RenderClient, and gRPC does "
                f"not survive fork (the worker would crash inside gRPC): {FORK_ADVICE}"
            )
        if self._given is not None:
            if not self._given._thread.is_alive():  # its event-loop thread did not survive a fork
                raise ForkedClientError(
                    "this RenderClient was opened in another process (the wrapper runs in a forked worker, e.g. of "
                    "AsyncVectorEnv); gRPC connections do not survive fork: give the wrapper the server's address "
                    "instead, e.g. NeuralObservation(env, '127.0.0.1:50051', model), so each process connects itself, "
                    f"and {FORK_ADVICE}"
                )
            return self._given
        if self._client is None or self._pid != os.getpid():
            self._client, self._pid = RenderClient(self._address), os.getpid()  # a parent's client is left alone
        return self._client

    def close(self) -> None:
        if self._client is not None and self._pid == os.getpid():
            self._client.close()
        self._client = None


def _observation_spaces(space: gym.Space, label_key: str | None, passthrough: Sequence[str]) -> tuple[int, int]:
    labels = space[label_key] if label_key is not None else space
    if not isinstance(labels, gym.spaces.Box) or len(labels.shape) != 2 or labels.dtype not in (np.uint8, np.uint16):
        raise ValueError(
            f"the observation{f'[{label_key!r}]' if label_key else ''} must be a Box of class IDs "
            f"(uint8 or uint16, [H, W]); got {labels}"
        )
    if passthrough and label_key is None:
        raise ValueError(f"passing {list(passthrough)} through needs a dict observation: give label_key too")
    missing = [k for k in passthrough if k not in space.spaces]
    if missing:
        raise ValueError(f"the observation has no {missing}; it has {list(space.spaces)}")
    return int(labels.shape[0]), int(labels.shape[1])


def _frame_inputs(observation: Any, label_key: str | None, sent: Mapping[str, np.dtype]) -> dict[str, np.ndarray]:
    if label_key is None:
        return {"labels": np.ascontiguousarray(observation)}
    inputs = {"labels": np.ascontiguousarray(observation[label_key])}
    for name, dtype in sent.items():
        inputs[name] = np.ascontiguousarray(np.asarray(observation[name]), dtype=dtype)
    return inputs


def _check_model_inputs(session: Session, passthrough: Sequence[str]) -> dict[str, np.dtype]:
    """The passthrough inputs the model takes, with the dtypes it takes them in; a required input the observation
    does not carry is refused."""
    specs = {spec.name: spec for spec in session.model.inputs}
    missing = [name for name, spec in specs.items() if spec.required and name != "labels" and name not in passthrough]
    if missing:
        raise ValueError(
            f"model {session.model.name!r} needs input(s) {missing}: pass them through with "
            f"passthrough={tuple(missing)} from a dict observation"
        )
    return {name: NUMPY_DTYPES[specs[name].dtype] for name in passthrough if name in specs}


class NeuralObservation(gym.ObservationWrapper):
    """Replaces the observation (class IDs uint8/uint16 [H, W], or `obs[label_key]`) by the neural frame
    uint8 [H, W, 3]. `passthrough` names dict entries sent along when the model takes them ("depth" float [H, W],
    "motion" float [H, W, 2] backward pixels, "instances"). The session opens on the first reset and closes
    with the environment."""

    def __init__(
        self,
        env: gym.Env,
        server: str | RenderClient,
        model: str,
        label_key: str | None = None,
        passthrough: Sequence[str] = (),
        **session_options: Any,
    ) -> None:
        super().__init__(env)
        self.size = _observation_spaces(env.observation_space, label_key, passthrough)
        self.label_key, self.passthrough = label_key, tuple(passthrough)
        self.observation_space = gym.spaces.Box(0, 255, (*self.size, 3), np.uint8)
        self._connection = Connection(server)
        self._model, self._options = model, session_options
        self._session: Session | None = None
        self._sent: dict[str, np.dtype] = {}
        self._reset_next = False

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        if self._session is None:
            self._session = self._connection.client().session(self._model, self.size, **self._options).open()
            self._sent = _check_model_inputs(self._session, self.passthrough)
        else:
            self._reset_next = True
        return super().reset(**kwargs)

    def observation(self, observation: Any) -> np.ndarray:
        if self._session is None:
            raise gym.error.ResetNeeded("call reset() before step(): the render session opens on reset")
        inputs = _frame_inputs(observation, self.label_key, self._sent)
        reset, self._reset_next = self._reset_next, False
        return self._session.render(reset=reset, **inputs)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
        self._connection.close()
        super().close()


class SessionBatch:
    """One session per sub-environment; a batch of frames is submitted to all of them before any result is
    awaited, so the server steps them together."""

    def __init__(
        self, client: RenderClient, model: str, count: int, size: tuple[int, int], **session_options: Any
    ) -> None:
        self.sessions = []
        try:
            for _ in range(count):
                self.sessions.append(client.session(model, size, **session_options).open())
        except BaseException:
            self.close()
            raise

    def render(self, inputs: Sequence[Mapping[str, np.ndarray]], reset: Sequence[bool]) -> np.ndarray:
        futures = [s.submit(reset=bool(r), **i) for s, i, r in zip(self.sessions, inputs, reset)]
        return np.stack([f.result().image for f in futures])

    def close(self) -> None:
        for session in self.sessions:
            session.close()
        self.sessions = []


class NeuralVectorObservation(gym.vector.VectorObservationWrapper):
    """NeuralObservation for a vector environment (sync or async): observations [N, H, W] class IDs (or a dict of
    batches) become [N, H, W, 3] neural frames, all N rendered as one batch of sessions in this process. A
    sub-environment's session history is cut whenever that sub-environment resets (either autoreset mode)."""

    def __init__(
        self,
        env: gym.vector.VectorEnv,
        server: str | RenderClient,
        model: str,
        label_key: str | None = None,
        passthrough: Sequence[str] = (),
        **session_options: Any,
    ) -> None:
        super().__init__(env)
        self.size = _observation_spaces(env.single_observation_space, label_key, passthrough)
        self.label_key, self.passthrough = label_key, tuple(passthrough)
        self.single_observation_space = gym.spaces.Box(0, 255, (*self.size, 3), np.uint8)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, env.num_envs)
        self._connection = Connection(server)
        self._model, self._options = model, session_options
        self._batch: SessionBatch | None = None
        self._sent: dict[str, np.dtype] = {}
        mode = env.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
        self._same_step = mode == gym.vector.AutoresetMode.SAME_STEP
        self._resetting = np.ones(env.num_envs, bool)

    def reset(self, **kwargs: Any):
        if self._batch is None:
            self._batch = SessionBatch(
                self._connection.client(), self._model, self.num_envs, self.size, **self._options
            )
            self._sent = _check_model_inputs(self._batch.sessions[0], self.passthrough)
        mask = (kwargs.get("options") or {}).get("reset_mask")
        self._resetting = np.ones(self.num_envs, bool) if mask is None else np.asarray(mask, bool)
        observations, infos = self.env.reset(**kwargs)
        frames = self._render(observations)
        self._resetting = np.zeros(self.num_envs, bool)
        return frames, infos

    def step(self, actions):
        observations, rewards, terminations, truncations, infos = self.env.step(actions)
        ended = np.logical_or(terminations, truncations)
        if self._same_step:  # the observation of an ended sub-environment is already its next episode's first
            self._resetting = ended
        frames = self._render(observations)
        if not self._same_step:  # next step, the ended sub-environments return their reset observation
            self._resetting = ended
        return frames, rewards, terminations, truncations, infos

    def _render(self, observations: Any) -> np.ndarray:
        if self._batch is None:
            raise gym.error.ResetNeeded("call reset() before step(): the render sessions open on reset")
        inputs = [_frame_inputs(self._item(observations, i), self.label_key, self._sent) for i in range(self.num_envs)]
        return self._batch.render(inputs, self._resetting)

    def _item(self, observations: Any, index: int) -> Any:
        if self.label_key is None:
            return observations[index]
        return {key: observations[key][index] for key in (self.label_key, *self._sent)}

    def close(self, **kwargs: Any) -> None:
        if self._batch is not None:
            self._batch.close()
            self._batch = None
        self._connection.close()
        super().close(**kwargs)


def make_env(
    env_id: str, server: str, model: str, env_kwargs: Mapping[str, Any] | None = None, **wrapper_options: Any
) -> NeuralObservation:
    """gymnasium.make(env_id, **env_kwargs) wrapped in NeuralObservation; picklable through functools.partial, for
    AsyncVectorEnv workers started with context="forkserver" or "spawn"."""
    return NeuralObservation(gym.make(env_id, **(env_kwargs or {})), server, model, **wrapper_options)


def render_label_sequences(
    client: RenderClient, model: str, sequences: Sequence[Sequence[np.ndarray]], **session_options: Any
) -> list[list[np.ndarray]]:
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


__all__ = [
    "ForkedClientError",
    "NeuralObservation",
    "make_env",
    "NeuralVectorObservation",
    "SessionBatch",
    "render_label_sequences",
]
