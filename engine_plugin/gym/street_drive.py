"""StreetDrive: a small procedural driving environment that renders its own class-ID label map, in the street
class table the bundled demo model was trained on (sky, terrain, road, sidewalk, building, car...), so a
neurender model can turn its observations into images with no adapter.

The car drives along a winding road at a steady speed; the action steers (0 left, 1 straight, 2 right). Reward:
1 per step on the road, -1 off it; the episode ends on hitting a parked or oncoming car, or after `max_steps`.
The camera is a pinhole 1.2 m above the road looking ahead; every pixel below the horizon is a point of the
ground plane (cars are drawn as boxes standing on it), so depth and backward motion are exact for the ground
and the cars' fronts.

`gbuffer=True` makes the observation a Dict with "labels", "depth" (float32 metres) and "motion" (float32 [H, W, 2],
backward, pixels: where each pixel was in the previous frame), the inputs engine-trained models take.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

SKY, TERRAIN, ROAD, SIDEWALK, BUILDING, CAR = 0, 1, 2, 3, 4, 7  # the street class table's IDs
CAMERA_HEIGHT = 1.2
ROAD_HALF = 3.5
SIDEWALK_OUTER = 5.5
BUILDING_X = 9.0
SPEED = 1.0  # metres per step
STEER = 0.35  # metres of lateral move per steering step
FAR = 60.0  # metres; the sky's depth
CAR_HALF = 0.9
CAR_LENGTH = 4.0


class StreetDrive(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, size: tuple[int, int] = (64, 64), max_steps: int = 200, gbuffer: bool = False) -> None:
        self.height, self.width = size
        self.max_steps = max_steps
        self.gbuffer = gbuffer
        labels = gym.spaces.Box(0, CAR, (self.height, self.width), np.uint8)
        if gbuffer:
            self.observation_space = gym.spaces.Dict(
                {
                    "labels": labels,
                    "depth": gym.spaces.Box(0.0, FAR, (self.height, self.width), np.float32),
                    "motion": gym.spaces.Box(-np.inf, np.inf, (self.height, self.width, 2), np.float32),
                }
            )
        else:
            self.observation_space = labels
        self.action_space = gym.spaces.Discrete(3)
        self.focal = 0.9 * self.width
        self.horizon = 0.4 * self.height
        rows = np.arange(self.height, dtype=np.float64) + 0.5
        below = rows > self.horizon + 0.5
        self.row_depth = np.where(below, CAMERA_HEIGHT * self.focal / np.maximum(rows - self.horizon, 1e-6), np.inf)
        self.columns = (np.arange(self.width, dtype=np.float64) + 0.5 - self.width / 2) / self.focal

    def _centre(self, z: np.ndarray | float) -> np.ndarray:
        """The road's centre line (lateral metres) at distance z along the track."""
        z = np.asarray(z, dtype=np.float64)
        return 3.0 * np.sin(z / 23.0 + self.phase) + 1.5 * np.sin(z / 9.0 + 2 * self.phase)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.phase = float(self.np_random.uniform(0, 2 * np.pi))
        self.z = 0.0
        self.x = float(self._centre(0.0))
        self.steps = 0
        # cars: (track distance, lateral offset from the centre line)
        n = 12
        self.cars = np.stack(
            [np.arange(1, n + 1) * 14.0 + self.np_random.uniform(-3, 3, n), self.np_random.choice([-1.8, 1.8, 4.1], n)],
            axis=1,
        )
        self._previous = None
        return self._observe(), {}

    def step(self, action: int):
        self._previous = (self.z, self.x)
        self.x += (int(action) - 1) * STEER
        self.z += SPEED
        self.steps += 1
        offset = self.x - float(self._centre(self.z))
        hit = bool(
            np.any(
                (np.abs(self.cars[:, 0] - self.z) < CAR_LENGTH / 2) & (np.abs(self.cars[:, 1] - offset) < 2 * CAR_HALF)
            )
        )
        reward = 1.0 if abs(offset) < ROAD_HALF else -1.0
        return self._observe(), reward, hit, self.steps >= self.max_steps, {"offset": offset}

    def _ground(self, z_cam: np.ndarray, x_cam: np.ndarray, z0: float, x0: float) -> np.ndarray:
        """Class IDs of ground points at camera depth z_cam and lateral camera offset x_cam, camera at (z0, x0)."""
        lateral = np.abs(x0 + x_cam - self._centre(z0 + z_cam))
        return np.select(
            [lateral < ROAD_HALF, lateral < SIDEWALK_OUTER, lateral < BUILDING_X], [ROAD, SIDEWALK, TERRAIN], BUILDING
        ).astype(np.uint8)

    def _observe(self):
        z = self.row_depth[:, None] * np.ones((1, self.width))
        x = z * self.columns[None, :]
        sky = ~np.isfinite(z)
        zf = np.where(sky, 1.0, z)
        labels = np.where(sky, SKY, self._ground(zf, np.where(sky, 0.0, x), self.z, self.x)).astype(np.uint8)
        depth = np.where(sky, FAR, np.minimum(zf, FAR))
        for car_z, car_lateral in self.cars[np.argsort(-self.cars[:, 0])]:  # far to near: near cars cover far ones
            ahead = car_z - CAR_LENGTH / 2 - self.z
            if not 0.5 < ahead < FAR:
                continue
            lateral = float(self._centre(car_z)) + car_lateral - self.x
            left = int(np.floor(self.width / 2 + (lateral - CAR_HALF) * self.focal / ahead))
            right = int(np.ceil(self.width / 2 + (lateral + CAR_HALF) * self.focal / ahead))
            bottom = int(np.ceil(self.horizon + CAMERA_HEIGHT * self.focal / ahead))
            top = int(np.floor(self.horizon + (CAMERA_HEIGHT - 1.5) * self.focal / ahead))
            rows, cols = (
                slice(max(top, 0), max(min(bottom, self.height), 0)),
                slice(max(left, 0), max(min(right, self.width), 0)),
            )
            labels[rows, cols] = CAR
            depth[rows, cols] = ahead
        if not self.gbuffer:
            return labels
        return {"labels": labels, "depth": depth.astype(np.float32), "motion": self._motion(depth, labels == SKY)}

    def _motion(self, depth: np.ndarray, sky: np.ndarray) -> np.ndarray:
        """Backward motion in pixels: where each ground pixel was one step ago (the camera moved forward and sideways)."""
        motion = np.zeros((self.height, self.width, 2), np.float32)
        if self._previous is None:
            return motion
        dz, dx = self.z - self._previous[0], self.x - self._previous[1]
        ys, xs = np.mgrid[0 : self.height, 0 : self.width].astype(np.float64) + 0.5
        lateral = depth * (xs - self.width / 2) / self.focal
        before = depth + dz
        px = self.width / 2 + (lateral + dx) * self.focal / before
        py = self.horizon + CAMERA_HEIGHT * self.focal / before
        motion[..., 0] = np.where(sky, 0.0, px - xs)
        motion[..., 1] = np.where(sky, 0.0, np.where(ys > self.horizon, py - ys, 0.0))
        return motion


def register_envs() -> None:
    """`gymnasium.make("neurender/StreetDrive-v0")` (class IDs) and "neurender/StreetDriveGBuffer-v0" (labels,
    depth, motion), after `import neurender.engine_plugin.gym`."""
    for name, kwargs in (("neurender/StreetDrive-v0", {}), ("neurender/StreetDriveGBuffer-v0", {"gbuffer": True})):
        if name not in gym.registry:
            gym.register(name, entry_point=StreetDrive, kwargs=kwargs, max_episode_steps=None)
