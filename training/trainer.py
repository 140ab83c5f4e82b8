"""The vid2vid trainer: sequential generation with detached history, per-frame D and G updates.

For every clip of a batch the generator makes frame after frame exactly as the exported step does (the state
carries the last L label encodings and the last L outputs, quantised to uint8 as on the wire, detached);
after each frame the generator is updated on its losses, then the discriminators on the detached frame
(vid2vid's G-then-D order, imaginaire's per-frame updates: no back-propagation through history).

A clip starts either with no history (a first frame, as a session starts) or, with probability
`schedule.real_start_prob`, from real previous frames: what teaches the flow branch to warp early on.
The per-frame baseline is the same loop with clips of one frame and every temporal part off.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from neurender.common.media import contact_sheet
from neurender.training.checkpoint import (
    CHECKPOINT_NAME,
    load_checkpoint,
    non_finite_tensor,
    restore_rng_state,
    rng_state,
    save_atomic,
    seed_everything,
)
from neurender.training.clips import EncodedClip, encode_clip
from neurender.training.dataset import ClipDataset, VideoDataset, pose_convention, pose_convention_dict
from neurender.training.discriminators import Features
from neurender.training.distributed import Dist, mean_scalar
from neurender.training.losses import (
    GANLoss,
    compose_flows,
    feature_matching,
    flow_loss,
    flow_warp_loss,
    mask_loss,
    output_warp_loss,
)
from neurender.training.model.encoding import quantise
from neurender.training.model.generator import GeneratorInputs, ScaleOutput
from neurender.training.models import EMA, build_image_discriminator, build_synthesis, build_video_discriminator
from neurender.training.perceptual import perceptual_loss
from neurender.training.sampler import micro_batch_indices
from neurender.training.schedule import Phase, phase_at
from neurender.training.summaries import label_image, palette, to_uint8
from neurender.training.train_config import TrainConfig

log = logging.getLogger(__name__)


class TrainingDiverged(ValueError):
    """Losses or weights went NaN or infinite; nothing of the diverged state was saved."""


@dataclass
class Position:
    """Where training is: what resume restores besides the weights."""

    epoch: int = 0
    epoch_iteration: int = 0  # iterations done in this epoch (the data position)
    iteration: int = 0  # iterations done in total
    g_steps: int = 0  # generator updates (one per frame, or per accumulated frame)
    elapsed: float = 0.0  # seconds of training, for wall-time budgets

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class FrameState:
    """One micro-batch's generation state: the step's history, as training floats at the active scale."""

    labels: torch.Tensor  # [B, L, Cl, h, w]
    frames: torch.Tensor  # [B, L, 3, h, w], quantised
    has_history: torch.Tensor  # [B]
    generated: dict[int, torch.Tensor] = field(default_factory=dict)  # t -> quantised frame (output, or real start)


def split_features(features: Features, parts: int) -> list[Features]:
    """Features of a batch made of `parts` equal chunks -> the features of each chunk."""
    return [[[f.chunk(parts)[i] for f in scale] for scale in features] for i in range(parts)]


class Trainer:
    def __init__(self, cfg: TrainConfig, dataset: VideoDataset, dist: Dist) -> None:
        self.cfg = cfg
        self.dataset = dataset
        self.dist = dist
        self.device = dist.device
        self.model_cfg = cfg.model
        seed_everything(cfg.seed)
        self.synthesis = build_synthesis(cfg).to(self.device)
        self.d_image = build_image_discriminator(cfg).to(self.device)
        self.d_video = build_video_discriminator(cfg)
        if self.d_video is not None:
            self.d_video = self.d_video.to(self.device)
        o = cfg.optim
        g_lr, d_lr, betas = (o.lr / 2, o.lr * 2, (0.0, 0.9)) if o.ttur else (o.lr, o.lr, (o.beta1, o.beta2))
        self.base_lr = {"g": g_lr, "d": d_lr}
        self.g_optimizer = torch.optim.Adam(self.synthesis.parameters(), lr=g_lr, betas=betas)
        d_params = list(self.d_image.parameters()) + (
            list(self.d_video.parameters()) if self.d_video is not None else []
        )
        self.d_optimizer = torch.optim.Adam(d_params, lr=d_lr, betas=betas)
        self.ema = EMA(self.synthesis, o.ema_decay) if o.ema_decay > 0 else None
        self.amp = o.amp and self.device.type == "cuda"  # never on CPU (bf16 there is ~400x slower)
        self.g_scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.d_scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.gan = GANLoss(cfg.loss.gan_mode)
        self.vgg = perceptual_loss(cfg.loss.vgg_weights) if cfg.loss.vgg > 0 else None
        if self.vgg is not None:
            self.vgg = self.vgg.to(self.device)
        self.position = Position()
        self._saved_at: dict | None = None  # the position of the last checkpoint written
        self.mode_rng = np.random.default_rng([cfg.seed, 7])  # shared by all ranks: how each clip starts
        self.longest = max(len(s) for s in dataset.sequences)
        self.colours = palette([(c.id, c.color) for c in dataset.meta.classes], self.model_cfg.num_classes)
        self.pose_convention = pose_convention(dataset.meta) if self.model_cfg.modality == "pose" else None
        self._phase_key: tuple[int, int] | None = None
        self._logged_phase: tuple | None = None
        self._ddp: dict[str, Any] = {}
        self.writer = None
        self.out_dir = Path(cfg.log.dir)
        self.last_losses: dict[str, float] = {}
        self._last_sheet: list[list[np.ndarray]] = []
        self._epoch_iters: dict[int, int] = {}

    # ---- schedule ----

    def _progress_epochs(self) -> float:
        s = self.cfg.schedule
        if s.minutes:
            return min(self.position.elapsed / (s.minutes * 60.0), 1.0) * s.epochs
        return self.position.epoch + self.position.epoch_iteration / self._iters_in_epoch(self.position.epoch)

    def phase(self) -> Phase:
        return phase_at(
            self.cfg.schedule, self._progress_epochs(), self.model_cfg.n_scales, self.cfg.temporal, self.longest
        )

    def _clip_dataset(self, epoch: int) -> ClipDataset:
        length = phase_at(
            self.cfg.schedule, float(epoch), self.model_cfg.n_scales, self.cfg.temporal, self.longest
        ).clip_length
        clips = ClipDataset(self.dataset, length, self.cfg.data.crop, self.cfg.data.flip, self.cfg.seed)
        clips.set_epoch(epoch)
        return clips

    def _iters_in_epoch(self, epoch: int) -> int:
        s = self.cfg.schedule
        if s.iters_per_epoch:
            return s.iters_per_epoch
        if epoch not in self._epoch_iters:
            per_iteration = self.cfg.data.batch_size * self.cfg.optim.accumulate * self.dist.world_size
            self._epoch_iters[epoch] = max(1, math.ceil(len(self._clip_dataset(epoch)) / per_iteration))
        return self._epoch_iters[epoch]

    def _done(self) -> bool:
        s = self.cfg.schedule
        if s.max_steps and self.position.iteration >= s.max_steps:
            return True
        if s.minutes:
            return self.position.elapsed >= s.minutes * 60.0
        return self.position.epoch >= s.epochs

    def _apply_phase(self, phase: Phase) -> None:
        """Freeze what the phase freezes and (re)wrap the trainable modules for DDP when that changes."""
        if (phase.active_scales, phase.frozen_scales, phase.clip_length, phase.single_frame) != self._logged_phase:
            if self._logged_phase is not None:
                self.write_samples(f"phase end at epoch {phase.epoch}")
            self._logged_phase = (phase.active_scales, phase.frozen_scales, phase.clip_length, phase.single_frame)
            log.info(
                "epoch %d: %d active scale(s), %d frozen; clip length %d%s",
                phase.epoch,
                phase.active_scales,
                phase.frozen_scales,
                phase.clip_length,
                ", single-frame warm-up" if phase.single_frame else "",
            )
        key = (phase.active_scales, phase.frozen_scales)
        if key == self._phase_key:
            return
        self._phase_key = key
        for level, scale in enumerate(self.synthesis.generator.scales):
            scale.requires_grad_(level in phase.trainable_scales)
        if self.dist.enabled:
            self._ddp = {"g": DDP(self.synthesis), "di": DDP(self.d_image)}
            if self.d_video is not None:
                self._ddp["dv"] = DDP(self.d_video, find_unused_parameters=True)
        else:
            self._ddp = {"g": self.synthesis, "di": self.d_image, "dv": self.d_video}

    def _set_lr(self, phase: Phase) -> None:
        for group, name in ((self.g_optimizer, "g"), (self.d_optimizer, "d")):
            for g in group.param_groups:
                g["lr"] = self.base_lr[name] * phase.lr_factor

    # ---- one frame ----

    @staticmethod
    def _inputs(clip: EncodedClip, t: int, state: FrameState) -> GeneratorInputs:
        """The step's inputs for frame t: on a first frame the previous labels are the current ones."""
        current = clip.labels[:, t : t + 1]
        history = state.has_history.view(-1, 1, 1, 1, 1) > 0
        prev_labels = torch.where(history, state.labels, current.expand_as(state.labels))
        return GeneratorInputs(
            labels=torch.cat((prev_labels, current), dim=1),
            prev_frames=state.frames,
            has_history=state.has_history,
            extras=clip.extras[:, t] if clip.extras is not None else None,
            motion=clip.motion[:, t] if clip.motion is not None else None,
        )

    def _generate(self, clip: EncodedClip, t: int, state: FrameState, phase: Phase) -> ScaleOutput:
        regions = clip.regions[:, t] if clip.regions is not None else None
        outputs = self._ddp["g"](self._inputs(clip, t, state), clip.images[:, t], regions, phase.active_scales)
        return outputs[-1]

    @staticmethod
    def _advance(state: FrameState, clip: EncodedClip, t: int, output: torch.Tensor) -> FrameState:
        """The step's state update: on a first frame the history is filled with the current frame."""
        frame = quantise(output.detach().float())
        history = state.has_history.view(-1, 1, 1, 1, 1) > 0
        labels = torch.where(history, state.labels, clip.labels[:, t : t + 1].expand_as(state.labels))
        frames = torch.where(history, state.frames, frame.unsqueeze(1).expand_as(state.frames))
        state.generated[t] = frame
        return FrameState(
            labels=torch.cat((labels[:, 1:], clip.labels[:, t : t + 1]), dim=1),
            frames=torch.cat((frames[:, 1:], frame.unsqueeze(1)), dim=1),
            has_history=torch.ones_like(state.has_history),
            generated=state.generated,
        )

    def _start_state(self, clip: EncodedClip, real_frames: int) -> FrameState:
        """The state of a session that has seen `real_frames` real frames (0: a fresh session)."""
        b, _, cl, h, w = clip.labels.shape
        L = self.model_cfg.history
        if real_frames == 0:
            return FrameState(
                clip.labels.new_zeros(b, L, cl, h, w), clip.images.new_zeros(b, L, 3, h, w), clip.images.new_zeros(b)
            )
        idx = [max(0, real_frames - L + i) for i in range(L)]
        # the real frames count as the clip's past for the video discriminator too (as in vid2vid)
        past = {i: quantise(clip.images[:, i]) for i in range(real_frames)}
        return FrameState(clip.labels[:, idx], quantise(clip.images[:, idx]), clip.images.new_ones(b), past)

    def _video_windows(self, clip: EncodedClip, t: int) -> list[tuple[int, list[int], torch.Tensor]]:
        """(temporal scale, frame indices, real flows [B, K-1, 2, h, w]) for every D_V stride that fits at t."""
        if self.d_video is None or clip.flow is None:
            return []
        k = self.d_video.frames
        out = []
        for s in range(len(self.d_video.nets)):
            stride = self.d_video.stride(s)
            indices = [t - (k - 1 - i) * stride for i in range(k)]
            if indices[0] < 0:
                continue
            flows = []
            for a, b in zip(indices[:-1], indices[1:]):
                f = clip.flow[:, b]
                for j in range(1, b - a):
                    f = compose_flows(f, clip.flow[:, b - j])
                flows.append(f)
            out.append((s, indices, torch.stack(flows, dim=1)))
        return out

    def _generator_losses(
        self,
        clip: EncodedClip,
        t: int,
        out: ScaleOutput,
        state: FrameState,
        windows: list[tuple[int, list[int], torch.Tensor]],
        phase: Phase,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        lc = self.cfg.loss
        real = clip.images[:, t]
        cond = clip.condition[:, t]
        has_history = bool(state.has_history[0] > 0)
        with_raw = out.mask is not None and has_history
        d_image = self.d_image  # not DDP-wrapped: only G's gradients are wanted (D is frozen here)
        with torch.no_grad():
            real_features = d_image(cond, real)
        fakes = torch.cat((out.image, out.hallucinated)) if with_raw else out.image
        fake_features = split_features(
            d_image(torch.cat((cond,) * (2 if with_raw else 1)), fakes), 2 if with_raw else 1
        )
        terms: dict[str, torch.Tensor] = {}
        terms["gan"] = lc.gan * sum(self.gan.generator(f) for f in fake_features)
        terms["feature_matching"] = lc.feature_matching * sum(feature_matching(f, real_features) for f in fake_features)
        if self.vgg is not None:
            terms["vgg"] = lc.vgg * (
                self.vgg(out.image, real) + (self.vgg(out.hallucinated, real) if with_raw else 0.0)
            )
        if lc.l1:
            terms["l1"] = lc.l1 * torch.abs(out.image - real).mean()
        if out.flow is not None and has_history and clip.flow is not None:
            flow_gt, conf = clip.flow[:, t], clip.confidence[:, t]
            terms["flow"] = lc.flow / 2 ** (phase.active_scales - 1) * flow_loss(out.flow, flow_gt, conf)
            terms["flow_warp"] = lc.flow_warp * flow_warp_loss(out.flow, real, clip.images[:, t - 1], conf)
            terms["output_warp"] = lc.output_warp * output_warp_loss(out.image, state.frames[:, -1], flow_gt, conf)
            terms["mask"] = lc.mask * mask_loss(out.mask, conf)
        if windows:
            fake_clips = [
                (torch.stack([state.generated[i] for i in idx[:-1]] + [out.image], dim=1), flows, s)
                for s, idx, flows in windows
            ]
            with torch.no_grad():
                real_t = self.d_video([(clip.images[:, idx], flows, s) for s, idx, flows in windows])
            fake_t = self.d_video(fake_clips)
            for (s, _, _), fake_s, real_s in zip(windows, fake_t, real_t):
                terms[f"temporal_gan_{s}"] = lc.temporal_gan * self.gan.generator(fake_s)
                terms[f"temporal_feature_matching_{s}"] = lc.temporal_feature_matching * feature_matching(
                    fake_s, real_s
                )
        total = sum(terms.values())
        return total, {k: float(v.detach()) for k, v in terms.items()}

    def _discriminator_loss(
        self,
        clip: EncodedClip,
        t: int,
        fake: torch.Tensor,
        raw: torch.Tensor | None,
        windows: list[tuple[int, list[int], torch.Tensor]],
        state: FrameState,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        real = clip.images[:, t]
        cond = clip.condition[:, t]
        images = [real, fake] + ([raw] if raw is not None else [])
        features = split_features(self._ddp["di"](torch.cat((cond,) * len(images)), torch.cat(images)), len(images))
        terms = {"d_image": sum(self.gan.discriminator(features[0], f) for f in features[1:])}
        if windows:
            both = []
            for s, indices, flows in windows:
                fake_clip = torch.stack([state.generated[i] if i != t else fake for i in indices], dim=1)
                both.append((torch.cat((clip.images[:, indices], fake_clip)), torch.cat((flows, flows)), s))
            terms["d_video"] = sum(self.gan.discriminator(*split_features(f, 2)) for f in self._ddp["dv"](both))
        total = sum(terms.values())
        return total, {k: float(v.detach()) for k, v in terms.items()}

    @torch.no_grad()
    def generate(self, batch: dict[str, torch.Tensor], real_start: int = 0, use_ema: bool = True) -> list[torch.Tensor]:
        """The frames [B, 3, H, W] the generator makes for a ClipDataset batch at full resolution, in eval
        mode, from a fresh session (real_start=0) or after `real_start` real frames."""
        synthesis = self.ema.module if use_ema and self.ema is not None else self.synthesis
        was_training = synthesis.training
        synthesis.eval()
        clip = encode_clip(
            self.model_cfg,
            batch,
            0,
            False,
            self.cfg.loss.confidence_threshold,
            self.cfg.encoder.pool,
            self.device,
            self.pose_convention,
        )
        state = self._start_state(clip, real_start)
        frames = []
        for t in range(real_start, clip.length):
            inputs = self._inputs(clip, t, state)
            regions = clip.regions[:, t] if clip.regions is not None else None
            image = synthesis(inputs, clip.images[:, t], regions)[-1].image
            frames.append(image)
            state = self._advance(state, clip, t, image)
        synthesis.train(was_training)
        return frames

    # ---- one iteration: a batch of clips, frame by frame ----

    def _autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast("cuda", dtype=torch.float16) if self.amp else contextlib.nullcontext()

    def _sync_context(self, name: str, last: bool) -> contextlib.AbstractContextManager:
        module = self._ddp.get(name)
        return module.no_sync() if isinstance(module, DDP) and not last else contextlib.nullcontext()

    def train_iteration(
        self, batches: list[dict[str, torch.Tensor]], phase: Phase, deadline: float | None = None
    ) -> dict[str, float]:
        """One batch of clips, frame by frame; with a `deadline` (time.perf_counter) the clip ends at the first
        frame boundary past it, so a wall-time budget is kept to about one frame's time."""
        cfg = self.cfg
        levels_down = self.model_cfg.n_scales - phase.active_scales
        clips = [
            encode_clip(
                self.model_cfg,
                b,
                levels_down,
                cfg.temporal and not phase.single_frame,
                cfg.loss.confidence_threshold,
                cfg.encoder.pool,
                self.device,
                self.pose_convention,
            )
            for b in batches
        ]
        length = clips[0].length
        real_start = 0
        if (
            cfg.temporal
            and not phase.single_frame
            and length > 1
            and self.mode_rng.random() < cfg.schedule.real_start_prob
        ):
            real_start = min(self.model_cfg.history, length - 1)
        states = [self._start_state(c, real_start) for c in clips]
        sums: dict[str, float] = {}
        frames = 0
        k = len(clips)
        sheet_rows: list[list[np.ndarray]] = []
        for t in range(real_start, length):
            if deadline is not None and frames and time.perf_counter() >= deadline:
                break
            self.d_image.requires_grad_(False)
            if self.d_video is not None:
                self.d_video.requires_grad_(False)
            saved = []
            for m, (clip, state) in enumerate(zip(clips, states)):
                windows = self._video_windows(clip, t) if not phase.single_frame else []
                with self._sync_context("g", m == k - 1):
                    with self._autocast():
                        out = self._generate(clip, t, state, phase)
                        loss, terms = self._generator_losses(clip, t, out, state, windows, phase)
                    self.g_scaler.scale(loss / k).backward()
                raw = out.hallucinated.detach() if (out.mask is not None and bool(state.has_history[0] > 0)) else None
                saved.append((out.image.detach(), raw, windows))
                for name, v in terms.items():
                    sums[name] = sums.get(name, 0.0) + v / k
                sums["g_total"] = sums.get("g_total", 0.0) + float(loss.detach()) / k
            self._step(self.g_optimizer, self.g_scaler, self.synthesis)
            self.position.g_steps += 1
            if self.ema is not None:
                self.ema.update(self.synthesis, track=self.position.g_steps > cfg.optim.ema_start)
            # discriminators on the detached frames
            self.d_image.requires_grad_(True)
            if self.d_video is not None:
                self.d_video.requires_grad_(True)
            for m, (clip, state, (fake, raw, windows)) in enumerate(zip(clips, states, saved)):
                with self._sync_context("di", m == k - 1), self._sync_context("dv", m == k - 1):
                    with self._autocast():
                        d_loss, d_terms = self._discriminator_loss(clip, t, fake, raw, windows, state)
                    self.d_scaler.scale(d_loss / k).backward()
                for name, v in d_terms.items():
                    sums[name] = sums.get(name, 0.0) + v / k
            self._step(self.d_optimizer, self.d_scaler, None)
            for m, (clip, (fake, _, _)) in enumerate(zip(clips, saved)):
                states[m] = self._advance(states[m], clip, t, fake)
            if self.dist.is_main and len(sheet_rows) < 8:
                c = clips[0]
                sheet_rows.append(
                    [
                        label_image(self.model_cfg, c.labels[0, t], self.colours),
                        to_uint8(saved[0][0][0]),
                        to_uint8(c.images[0, t]),
                    ]
                )
            frames += 1
        self._last_sheet = sheet_rows
        return {name: v / frames for name, v in sums.items()}

    def _step(
        self, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, module: torch.nn.Module | None
    ) -> None:
        clip = self.cfg.optim.grad_clip
        if clip and module is not None:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_([p for p in module.parameters() if p.grad is not None], clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

    # ---- the run ----

    def _batches(self, clips: ClipDataset, start_iteration: int) -> Iterator[list[dict[str, torch.Tensor]]]:
        """This rank's micro-batches for each iteration of the epoch from `start_iteration` on (one DataLoader
        per epoch; its workers, if any, read ahead)."""
        cfg = self.cfg

        def groups() -> Iterator[list[int]]:
            iteration = start_iteration
            while True:
                yield from micro_batch_indices(
                    cfg.seed,
                    clips.epoch,
                    iteration,
                    len(clips),
                    cfg.data.batch_size,
                    cfg.optim.accumulate,
                    self.dist.rank,
                    self.dist.world_size,
                )
                iteration += 1

        loader = iter(
            torch.utils.data.DataLoader(
                clips, batch_sampler=groups(), num_workers=cfg.data.workers, collate_fn=torch.utils.data.default_collate
            )
        )
        while True:
            yield [next(loader) for _ in range(cfg.optim.accumulate)]

    def fit(self) -> None:
        from tqdm.contrib.logging import logging_redirect_tqdm

        # log lines (phase changes, samples) go above the progress line instead of into it
        with logging_redirect_tqdm() if self.cfg.log.progress and self.dist.is_main else contextlib.nullcontext():
            self._fit()

    def _fit(self) -> None:
        cfg = self.cfg
        if self.dist.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.out_dir / "tensorboard"))
        progress = self._progress_bar()
        try:
            while not self._done():
                epoch = self.position.epoch
                clips = self._clip_dataset(epoch)
                n_iters = self._iters_in_epoch(epoch)
                batches = self._batches(clips, self.position.epoch_iteration)
                while not self._done():
                    if not cfg.schedule.minutes and self.position.epoch_iteration >= n_iters:
                        break
                    phase = self.phase()
                    if cfg.schedule.minutes and phase.epoch != epoch:
                        break
                    self._apply_phase(phase)
                    self._set_lr(phase)
                    started = time.perf_counter()
                    # cut the last clip short at the budget; not under DDP, where ranks must agree frame by frame
                    budgeted = cfg.schedule.minutes and not self.dist.enabled
                    deadline = started + cfg.schedule.minutes * 60.0 - self.position.elapsed if budgeted else None
                    losses = self.train_iteration(next(batches), phase, deadline)
                    # every rank must agree on the clock, or they would disagree on the phase
                    self.position.elapsed += mean_scalar(self.dist, time.perf_counter() - started)
                    self.position.iteration += 1
                    self.position.epoch_iteration += 1
                    self._check_finite(losses)
                    self._log(losses, phase)
                    self._update_progress(progress, phase, losses)
                    if self.position.iteration % cfg.log.checkpoint_every == 0:
                        self.save()
                else:
                    break
                self.position.epoch += 1
                self.position.epoch_iteration = 0
                self.save()
            self.save()
            self.write_samples("end of run")
        finally:
            if progress is not None:
                progress.close()
            if self.writer is not None:
                self.writer.close()

    def _progress_bar(self) -> Any:
        if not (self.cfg.log.progress and self.dist.is_main):
            return None
        from tqdm import tqdm

        s = self.cfg.schedule
        bar_format = "{desc}: {percentage:3.0f}%|{bar:12}| ETA {remaining} of the budget ({elapsed} in){postfix}"
        if s.minutes:
            return tqdm(
                total=round(s.minutes * 60),
                initial=round(self.position.elapsed),
                desc=self.cfg.name,
                bar_format=bar_format,
            )
        total = sum(self._iters_in_epoch(e) for e in range(s.epochs))
        if s.max_steps:
            total = min(total, s.max_steps)
        return tqdm(total=total, initial=self.position.iteration, desc=self.cfg.name, bar_format=bar_format)

    def progress_line(self, phase: Phase, losses: dict[str, float]) -> str:
        """What the progress bar shows after an iteration: where in the schedule, and the losses."""
        s = self.cfg.schedule
        parts = [
            f"it {self.position.iteration}" + (f"/{s.max_steps}" if s.max_steps else ""),
            f"epoch {phase.epoch + 1}/{s.epochs}",
            "warm-up (single frames)" if phase.single_frame else f"clip {phase.clip_length}",
            f"scale {phase.active_scales}/{self.model_cfg.n_scales}"
            + (f" ({phase.frozen_scales} frozen)" if phase.frozen_scales else ""),
            f"g {losses.get('g_total', 0):.3f} d {losses.get('d_image', 0):.3f}",
        ]
        return " | ".join(parts)

    def _update_progress(self, progress: Any, phase: Phase, losses: dict[str, float]) -> None:
        if progress is None:
            return
        progress.set_postfix_str(self.progress_line(phase, losses), refresh=False)  # shown by the update below
        if self.cfg.schedule.minutes:
            progress.update(max(0, round(self.position.elapsed) - progress.n))
        else:
            progress.update(1)

    def write_samples(self, why: str) -> Path | None:
        """The last iteration's labels | output | real rows as OUT/samples/iter_NNNNNN.png (and in TensorBoard)."""
        if not (self.dist.is_main and self._last_sheet):
            return None
        it = self.position.iteration
        captions = [["labels", "output", "real"]]
        sheet = contact_sheet(self._last_sheet, captions)
        path = self.out_dir / "samples" / f"iter_{it:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        import cv2

        cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        if self.writer is not None:
            self.writer.add_image("samples: labels|output|real", sheet, it, dataformats="HWC")
        log.info("samples (%s, iteration %d): %s", why, it, path)
        return path

    def _log(self, losses: dict[str, float], phase: Phase) -> None:
        self.last_losses = losses
        if self.writer is None:
            return
        it = self.position.iteration
        if it % self.cfg.log.scalars_every == 0:
            for name, value in losses.items():
                self.writer.add_scalar(f"loss/{name}", value, it)
            self.writer.add_scalar("schedule/clip_length", phase.clip_length, it)
            self.writer.add_scalar("schedule/active_scales", phase.active_scales, it)
            self.writer.add_scalar("schedule/lr_factor", phase.lr_factor, it)
        if it % self.cfg.log.images_every == 0 and self._last_sheet:
            self.writer.add_image("labels|output|real", contact_sheet(self._last_sheet), it, dataformats="HWC")

    # ---- checkpoints ----

    def state_dict(self) -> dict[str, Any]:
        return {
            "config": self.cfg.to_dict(),
            "position": self.position.to_dict(),
            "synthesis": self.synthesis.state_dict(),
            "ema": self.ema.module.state_dict() if self.ema is not None else None,
            "d_image": self.d_image.state_dict(),
            "d_video": self.d_video.state_dict() if self.d_video is not None else None,
            "g_optimizer": self.g_optimizer.state_dict(),
            "d_optimizer": self.d_optimizer.state_dict(),
            "g_scaler": self.g_scaler.state_dict(),
            "d_scaler": self.d_scaler.state_dict(),
            "rng": rng_state(),
            "mode_rng": self.mode_rng.bit_generator.state,
            "classes": [(c.id, c.name, list(c.color)) for c in self.dataset.meta.classes],
            "dataset_root": str(self.dataset.root),
            "data_size": list(self.dataset.meta.size),
            "pose_convention": pose_convention_dict(self.pose_convention) if self.pose_convention else None,
        }

    def _check_finite(self, losses: dict[str, float]) -> None:
        bad = sorted(name for name, value in losses.items() if not math.isfinite(value))
        if bad:
            self._diverged(f"loss(es) {', '.join(bad)} are not finite")

    def _diverged(self, what: str) -> None:
        saved = self.out_dir / CHECKPOINT_NAME
        last = f"the last checkpoint, {saved}, is from before it" if saved.exists() else "no checkpoint was written"
        raise TrainingDiverged(
            f"training diverged at iteration {self.position.iteration}: {what}; stopped without saving "
            f"({last}); lower optim.lr or check the data, then resume"
        )

    def save(self) -> None:
        """Checkpoint, unless nothing was trained since the last one (which would push a good older generation out)."""
        if self.dist.is_main and self.position.to_dict() != self._saved_at:
            self._saved_at = self.position.to_dict()
            state = self.state_dict()
            bad = non_finite_tensor(state)
            if bad:
                self._diverged(f"tensor {bad} holds NaN or inf")
            save_atomic(state, self.out_dir / CHECKPOINT_NAME)

    def load(self, path: str | Path) -> None:
        state = load_checkpoint(path)
        self.synthesis.load_state_dict(state["synthesis"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.module.load_state_dict(state["ema"])
        self.d_image.load_state_dict(state["d_image"])
        if self.d_video is not None:
            self.d_video.load_state_dict(state["d_video"])
        self.g_optimizer.load_state_dict(state["g_optimizer"])
        self.d_optimizer.load_state_dict(state["d_optimizer"])
        self.g_scaler.load_state_dict(state["g_scaler"])
        self.d_scaler.load_state_dict(state["d_scaler"])
        self.position = Position(**state["position"])
        restore_rng_state(state["rng"])
        self.mode_rng.bit_generator.state = state["mode_rng"]
        log.info("resumed from %s at epoch %d, iteration %d", path, self.position.epoch, self.position.iteration)
