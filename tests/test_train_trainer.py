"""The trainer: gradients reach every parameter, training sees what serving sees, training learns."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from neurender.tests.train_support import tiny_train_config, write_moving_shapes
from neurender.training.clips import encode_clip
from neurender.training.dataset import ClipDataset
from neurender.training.distributed import Dist
from neurender.training.model.encoding import float_to_frames
from neurender.training.model.generator import Vid2VidGenerator
from neurender.training.model.step import GeneratorStep
from neurender.training.run import train, training_data
from neurender.training.schedule import Phase
from neurender.training.trainer import Trainer

CPU = Dist(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)  # the machine is shared: one thread is the fastest and deterministic


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_moving_shapes(
        tmp_path_factory.mktemp("shapes"), sequences=2, frames=8, size=32, instances=True, depth=True
    )


def batch_of(trainer: Trainer, length: int, index: int = 0) -> dict[str, torch.Tensor]:
    clips = ClipDataset(trainer.dataset, length, trainer.cfg.data.crop, False, 0)
    return torch.utils.data.default_collate([clips[index]])


def gradient_names(trainer: Trainer, phase: Phase, real_frames: int = 2) -> set[str]:
    """Parameters of the generator side with a non-zero gradient after one frame's generator losses."""
    trainer._apply_phase(phase)
    trainer.d_image.requires_grad_(False)
    batch = batch_of(trainer, real_frames + 1)
    clip = encode_clip(
        trainer.model_cfg, batch, trainer.model_cfg.n_scales - phase.active_scales, True, 0.02, "instance", CPU.device
    )
    state = trainer._start_state(clip, real_frames)
    for p in trainer.synthesis.parameters():
        p.grad = None
    out = trainer._generate(clip, real_frames, state, phase)
    loss, terms = trainer._generator_losses(clip, real_frames, out, state, [], phase)
    assert {"gan", "feature_matching", "flow", "flow_warp", "output_warp", "mask"} <= set(terms)
    loss.backward()
    return {n for n, p in trainer.synthesis.named_parameters() if p.grad is not None and float(p.grad.abs().sum()) > 0}


def full_phase(active: int, frozen: int = 0) -> Phase:
    return Phase(epoch=0, clip_length=3, active_scales=active, frozen_scales=frozen, single_frame=False, lr_factor=1.0)


@pytest.mark.parametrize(
    "generator",
    [
        {},
        {"use_instances": True, "use_depth": True, "use_motion": True, "fg_classes": [1], "style_dim": 3},
    ],
    ids=["plain", "engine-inputs-fg-style"],
)
def test_gradients_reach_every_generator_parameter(shapes: Path, tmp_path: Path, generator: dict) -> None:
    cfg = tiny_train_config(
        shapes, tmp_path, generator={"preset": "tiny", "ngf": 8, "n_blocks": 2, "num_classes": 3, **generator}
    )
    trainer = Trainer(cfg, training_data(cfg), CPU)
    reached = gradient_names(trainer, full_phase(1))
    everything = {n for n, _ in trainer.synthesis.named_parameters()}
    assert reached == everything, f"no gradient: {sorted(everything - reached)}"
    if generator:
        assert any(n.startswith("encoder.") for n in reached) and any(".fg_" in n for n in reached)


def test_gradients_follow_the_coarse_to_fine_phases(shapes: Path, tmp_path: Path) -> None:
    cfg = tiny_train_config(
        shapes, tmp_path, generator={"preset": "tiny-2scale", "ngf": 8, "n_blocks": 2, "num_classes": 3}
    )
    trainer = Trainer(cfg, training_data(cfg), CPU)
    names = {n for n, _ in trainer.synthesis.named_parameters()}
    coarse = {n for n in names if n.startswith("generator.scales.0.")}
    fine = names - coarse
    assert gradient_names(trainer, full_phase(1)) == coarse  # the coarse scale alone, at half size
    assert gradient_names(trainer, full_phase(2, frozen=1)) == fine  # the fine scale with the coarse frozen
    # together: everything but the coarse scale's output heads, whose frame the fine scale replaces
    heads = {n for n in coarse if any(f".{h}." in n for h in ("image_head", "flow_head", "mask_head"))}
    assert gradient_names(trainer, full_phase(2)) == names - heads


def test_training_generation_matches_the_exported_step(shapes: Path, tmp_path: Path) -> None:
    """The trainer's sequential generation (quantised history, state update) is the served step's."""
    generator = {
        "preset": "tiny",
        "ngf": 8,
        "n_blocks": 2,
        "num_classes": 3,
        "use_instances": True,
        "use_depth": True,
        "use_motion": True,
    }
    cfg = tiny_train_config(shapes, tmp_path, generator=generator)
    trainer = Trainer(cfg, training_data(cfg), CPU)
    batch = batch_of(trainer, 5)
    ours = [float_to_frames(f) for f in trainer.generate(batch, use_ema=False)]
    step = GeneratorStep(trainer.synthesis.generator).eval()
    L = cfg.model.history
    labels = batch["labels"].to(torch.uint8)
    prev_labels = torch.zeros(1, L, *labels.shape[2:], dtype=torch.uint8)
    prev_frames = torch.zeros(1, L, *labels.shape[2:], 3, dtype=torch.uint8)
    with torch.no_grad():
        for t in range(5):
            rgb, prev_labels, prev_frames = step(
                labels[:, t],
                prev_labels,
                prev_frames,
                torch.tensor([int(t > 0)], dtype=torch.uint8),
                instances=batch["instances"][:, t].to(torch.int32),
                depth=batch["depth"][:, t].half(),
                motion=batch["motion"][:, t].half(),
            )
            diff = (rgb.int() - ours[t].int()).abs().max()
            assert int(diff) <= 1, f"frame {t}: the step differs from training by {int(diff)} levels"


def reconstruction_error(trainer: Trainer) -> float:
    batches = [batch_of(trainer, 4, i) for i in (0, 5)]
    return sum(
        float(
            torch.stack(trainer.generate(b, use_ema=False))
            .sub(b["image"].permute(1, 0, 4, 2, 3).float() / 127.5 - 1)
            .abs()
            .mean()
        )
        for b in batches
    )


def test_a_short_training_run_lowers_the_loss(shapes: Path, tmp_path: Path) -> None:
    cfg = tiny_train_config(
        shapes,
        tmp_path / "run",
        schedule={"epochs": 1, "iters_per_epoch": 16, "decay_epochs": 0, "clip_length": 3, "coarse_epochs": 0},
    )
    before_trainer = Trainer(cfg, training_data(cfg), CPU)
    before = reconstruction_error(before_trainer)
    trainer = train(cfg)
    after = reconstruction_error(trainer)
    assert after < 0.8 * before, f"L1 to the real frames {before:.3f} -> {after:.3f}"
    events = list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 1000  # scalars and the labels|output|real sheets


def test_generator_config_must_cover_the_dataset(shapes: Path, tmp_path: Path) -> None:
    cfg = tiny_train_config(shapes, tmp_path, generator={"preset": "tiny", "num_classes": 2})
    with pytest.raises(ValueError, match="class IDs up to 2, the generator only 2 classes"):
        training_data(cfg)
    cfg = tiny_train_config(shapes, tmp_path, generator={"preset": "tiny-edges"})
    with pytest.raises(ValueError, match="modality is segmentation, the generator's is edges"):
        training_data(cfg)


def test_per_frame_baseline_trains_with_the_same_code(shapes: Path, tmp_path: Path) -> None:
    cfg = tiny_train_config(
        shapes, tmp_path, baseline=True, schedule={"epochs": 1, "iters_per_epoch": 2, "decay_epochs": 0}
    )
    trainer = train(cfg)
    assert not trainer.model_cfg.use_flow and trainer.d_video is None
    assert not any("flow" in n or "frame_encoder" in n for n, _ in trainer.synthesis.named_parameters())
    assert trainer.position.g_steps == 2  # one update per iteration: clips of one frame
    assert isinstance(trainer.synthesis.generator, Vid2VidGenerator)


def test_optimiser_options_ttur_and_amp_only_on_cuda(shapes: Path, tmp_path: Path) -> None:
    cfg = tiny_train_config(shapes, tmp_path, optim={"lr": 1e-3, "ttur": True, "amp": True})
    trainer = Trainer(cfg, training_data(cfg), CPU)
    g, d = trainer.g_optimizer.param_groups[0], trainer.d_optimizer.param_groups[0]
    assert (g["lr"], d["lr"], g["betas"], d["betas"]) == (5e-4, 2e-3, (0.0, 0.9), (0.0, 0.9))
    assert trainer.amp is False  # mixed precision is for CUDA; never float16/bfloat16 autocast on a CPU
    plain = Trainer(tiny_train_config(shapes, tmp_path), training_data(cfg), CPU)
    assert plain.g_optimizer.param_groups[0]["betas"] == (0.5, 0.999)


def test_wall_time_budget_drives_the_schedule(shapes: Path, tmp_path: Path) -> None:
    budget = 3.0
    cfg = tiny_train_config(
        shapes,
        tmp_path,
        schedule={
            "minutes": budget / 60,
            "epochs": 4,
            "single_frame_epochs": 1,
            "clip_length": 3,
            "clip_length_max": 8,
        },
    )
    trainer = train(cfg)
    assert budget <= trainer.position.elapsed < budget + 2.0  # the last clip stops at a frame boundary
    assert trainer.position.epoch == 3  # epochs follow the clock: elapsed / budget * epochs
    assert trainer.phase().clip_length == 8 and trainer.phase().lr_factor == 0.0  # doubled up to the cap, decayed
