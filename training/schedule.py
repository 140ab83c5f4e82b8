"""The spatio-temporally progressive schedule, as a pure function of the training position.

Position is measured in epochs (fractional inside an epoch). With a wall-time budget the position is
elapsed / budget * epochs, so the same schedule stretches over whatever time is given.

- Warm-up: for `single_frame_epochs` every frame is generated as a first frame (no history): the image branch
  learns appearance before the flow branch has anything to warp.
- Temporal: the clip length starts at `clip_length` and doubles every `clip_double_every` epochs after the
  warm-up, up to `clip_length_max`.
- Spatial: scale s (0 = coarsest) joins at epoch s * coarse_epochs; for its first `fix_coarse_epochs` the
  coarser scales are frozen, then all active scales train together.
- Learning rate: constant, then linear decay to 0 over the last `decay_epochs` (default: the second half).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from neurender.training.train_config import ScheduleConfig


@dataclass(frozen=True)
class Phase:
    epoch: int
    clip_length: int
    active_scales: int  # the coarsest n scales run; the finest of them makes the frame the losses see
    frozen_scales: int  # the coarsest n of the active scales are frozen
    single_frame: bool  # warm-up: no history at all
    lr_factor: float

    @property
    def trainable_scales(self) -> range:
        return range(self.frozen_scales, self.active_scales)


def phase_at(schedule: ScheduleConfig, position: float, n_scales: int, temporal: bool, longest_clip: int) -> Phase:
    """The phase at `position` epochs; `longest_clip` caps the clip length at what the data can give."""
    epoch = int(math.floor(position))
    single_frame = temporal and position < schedule.single_frame_epochs
    if not temporal or single_frame:
        clip_length = 1
    else:
        doublings = int((position - schedule.single_frame_epochs) // max(schedule.clip_double_every, 1))
        clip_length = min(schedule.clip_length * 2**doublings, schedule.clip_length_max, longest_clip)
    if schedule.coarse_epochs > 0:
        joined = int(position // schedule.coarse_epochs)
        active = min(n_scales, 1 + joined)
        since_join = position - (active - 1) * schedule.coarse_epochs
        frozen = active - 1 if active > 1 and since_join < schedule.fix_coarse_epochs else 0
    else:
        active, frozen = n_scales, 0
    decay = schedule.epochs // 2 if schedule.decay_epochs is None else schedule.decay_epochs
    decay_start = schedule.epochs - decay
    if decay > 0 and position > decay_start:
        lr_factor = max(0.0, 1.0 - (position - decay_start) / decay)
    else:
        lr_factor = 1.0
    return Phase(epoch, clip_length, active, frozen, single_frame, lr_factor)
