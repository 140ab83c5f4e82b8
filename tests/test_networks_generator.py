"""The sequential generator: shapes per config, gradients, first-frame behaviour, history handling."""

from __future__ import annotations

import pytest
import torch

from neurender.training.model.config import PRESETS, GeneratorConfig, per_frame_baseline
from neurender.training.model.encoding import frames_to_float
from neurender.training.model.generator import Vid2VidGenerator
from neurender.training.model.step import GeneratorStep, example_inputs, step_arguments

# Every named config that is small enough to build and run here; the paper's configs are checked by shape
# of their parameters only (a 2048x1024 forward pass does not fit this machine's time budget).
RUNNABLE = ["tiny", "tiny-2scale", "tiny-engine", "tiny-pose", "tiny-edges"]
EVERYTHING = GeneratorConfig(
    ngf=16,
    n_blocks=2,
    n_scales=3,
    num_classes=7,
    use_instances=True,
    use_depth=True,
    use_motion=True,
    style_dim=3,
    fg_classes=(2,),
)


def run_step(cfg: GeneratorConfig, generator: Vid2VidGenerator, inputs: dict) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        return GeneratorStep(generator.eval())(**step_arguments(cfg, inputs))


@pytest.mark.parametrize("name", RUNNABLE)
def test_step_shapes_and_dtypes(name: str) -> None:
    cfg = PRESETS[name]
    inputs = example_inputs(cfg, batch=2, height=32, width=48)
    rgb, next_labels, next_frames = run_step(cfg, Vid2VidGenerator(cfg), inputs)
    assert rgb.shape == (2, 32, 48, 3) and rgb.dtype == torch.uint8
    assert next_labels.shape == inputs["prev_labels"].shape and next_labels.dtype == inputs["prev_labels"].dtype
    assert next_frames.shape == (2, cfg.history, 32, 48, 3) and next_frames.dtype == torch.uint8


@pytest.mark.parametrize("name", ["paper-street", "paper-face", "paper-pose"])
def test_paper_configs_build(name: str) -> None:
    cfg = PRESETS[name]
    with torch.device("meta"):  # the layer shapes, without allocating or initialising paper-size weights
        generator = Vid2VidGenerator(cfg)
    assert len(generator.scales) == cfg.n_scales
    first = generator.scales[0].label_encoder[0][1]
    assert first.out_channels == cfg.ngf
    assert first.in_channels == cfg.label_channels * (cfg.history + 1) + cfg.extra_channels
    # Finer scales are local enhancers at half the width of the next coarser one.
    for level, scale in enumerate(generator.scales):
        assert scale.label_encoder[0][1].out_channels == cfg.ngf // 2**level


def test_scale_outputs_double_in_resolution() -> None:
    cfg = EVERYTHING
    inputs = example_inputs(cfg, batch=1, height=64, width=64)
    generator = Vid2VidGenerator(cfg).eval()
    step = GeneratorStep(generator)
    captured = []
    generator.register_forward_hook(lambda module, args, out: captured.append(out))
    with torch.no_grad():
        step(**step_arguments(cfg, inputs))
    sizes = [tuple(o.image.shape[-2:]) for o in captured[0]]
    assert sizes == [(16, 16), (32, 32), (64, 64)]
    flows = [o.flow for o in captured[0]]
    assert all(f is not None and f.shape[1] == 2 for f in flows)


@pytest.mark.parametrize(
    "cfg",
    [PRESETS["tiny-2scale"], EVERYTHING, per_frame_baseline(PRESETS["tiny"])],
    ids=["2scale", "everything", "per-frame"],
)
def test_gradients_reach_every_parameter(cfg: GeneratorConfig) -> None:
    torch.manual_seed(0)
    generator = Vid2VidGenerator(cfg).train()
    raw = example_inputs(cfg, batch=2, height=32, width=32)
    step = GeneratorStep(generator)
    # Differentiate through the float composite: reuse the step's encoding, then the generator itself.
    from neurender.training.model.encoding import motion_to_flow
    from neurender.training.model.generator import GeneratorInputs
    from neurender.training.model.step import encode_labels, extra_channels, style_map_from_codes

    labels = (
        torch.cat((raw["prev_labels"].long(), raw[next(iter(raw))].long().unsqueeze(1)), dim=1)
        if cfg.modality == "segmentation"
        else None
    )
    encoded = encode_labels(cfg, labels)
    flow = motion_to_flow(raw["motion"]) if cfg.use_motion else None
    style = style_map_from_codes(encoded[:, -1], raw["style"]) if cfg.style_dim else None
    extras = extra_channels(cfg, encoded[:, -1], raw.get("instances"), raw.get("depth"), flow, style)
    outputs = generator(GeneratorInputs(encoded, frames_to_float(raw["prev_frames"]), torch.ones(2), extras, flow))
    loss = sum(o.image.mean() + o.hallucinated.mean() for o in outputs)
    loss = loss + sum(o.flow.abs().mean() + o.mask.mean() for o in outputs if o.flow is not None)
    loss.backward()
    missing = [n for n, p in generator.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing, f"no gradient reaches {missing}"
    assert step.cfg is cfg


def test_first_frame_ignores_history_and_fills_state() -> None:
    cfg = PRESETS["tiny"]
    generator = Vid2VidGenerator(cfg)
    a = example_inputs(cfg, batch=1, height=32, width=32, seed=1)
    b = dict(
        a,
        prev_labels=torch.randint_like(a["prev_labels"], 0, cfg.num_classes),
        prev_frames=torch.randint_like(a["prev_frames"], 0, 255),
    )
    a["has_history"][:] = 0
    b["has_history"][:] = 0
    rgb_a, labels_a, frames_a = run_step(cfg, generator, a)
    rgb_b, labels_b, frames_b = run_step(cfg, generator, b)
    assert torch.equal(rgb_a, rgb_b), "a first frame must not depend on stale state"
    assert torch.equal(labels_a, labels_b) and torch.equal(frames_a, frames_b)
    # The state after a first frame is the frame and its labels, repeated L times.
    assert torch.equal(frames_a, rgb_a.unsqueeze(1).expand_as(frames_a))
    assert torch.equal(labels_a, a["labels"].unsqueeze(1).expand_as(labels_a))


def test_history_changes_the_output() -> None:
    cfg = PRESETS["tiny"]
    torch.manual_seed(3)
    generator = Vid2VidGenerator(cfg)
    a = example_inputs(cfg, batch=1, height=32, width=32, seed=2)
    b = dict(a, prev_frames=torch.randint_like(a["prev_frames"], 0, 255))
    rgb_a, _, _ = run_step(cfg, generator, a)
    rgb_b, _, _ = run_step(cfg, generator, b)
    assert not torch.equal(rgb_a, rgb_b), "with history the output must depend on the previous frames"


def test_state_rolls_oldest_out() -> None:
    cfg = PRESETS["tiny"]
    inputs = example_inputs(cfg, batch=1, height=32, width=32, seed=4)
    rgb, next_labels, next_frames = run_step(cfg, Vid2VidGenerator(cfg), inputs)
    assert torch.equal(next_labels[:, :-1], inputs["prev_labels"][:, 1:])
    assert torch.equal(next_labels[:, -1], inputs["labels"])
    assert torch.equal(next_frames[:, :-1], inputs["prev_frames"][:, 1:])
    assert torch.equal(next_frames[:, -1], rgb)


def test_batch_rows_are_independent() -> None:
    """Batching sessions must never mix their state: row i of a batch equals that row run alone.

    Eager torch may pick other convolution blockings per batch size, so a rounding boundary can move one
    level on a rare pixel; mixing state would change whole regions. (ONNX Runtime is exact: see the export tests.)
    """
    cfg = PRESETS["tiny-engine"]
    generator = Vid2VidGenerator(cfg)
    inputs = example_inputs(cfg, batch=3, height=32, width=32, seed=5)
    inputs["has_history"][1] = 0
    batched = run_step(cfg, generator, inputs)
    for i in range(3):
        alone = run_step(cfg, generator, {k: v[i : i + 1] for k, v in inputs.items()})
        for x, y in zip(batched, alone):
            diff = (x[i : i + 1].int() - y.int()).abs()
            assert diff.max() <= 1 and (diff > 0).float().mean() < 1e-3


def test_config_errors_name_the_option() -> None:
    with pytest.raises(ValueError, match="n_scales"):
        GeneratorConfig(n_scales=4)
    with pytest.raises(ValueError, match="fg_classes"):
        GeneratorConfig(num_classes=5, fg_classes=(9,))
    with pytest.raises(ValueError, match="warp_sampling 'nearest': expected one of bilinear, bicubic"):
        GeneratorConfig(warp_sampling="nearest")
    with pytest.raises(ValueError, match=r"generator: unknown option\(s\) \[.ngff.\]"):
        GeneratorConfig.from_dict({"ngf": 8, "ngff": 3})


def test_training_can_start_the_mask_from_warping() -> None:
    """initial_mask sets where M starts: the mask heads' bias, so fresh weights give M close to it everywhere."""
    from neurender.training.models import build_synthesis
    from neurender.training.train_config import TrainConfig

    torch.manual_seed(0)
    generator = build_synthesis(TrainConfig(generator=PRESETS["tiny-2scale"], initial_mask=0.1)).generator
    for scale in generator.scales:
        features = torch.randn(2, scale.mask_head[-1].in_channels, 16, 16)
        assert abs(torch.sigmoid(scale.mask_head(features)).mean().item() - 0.1) < 0.02
    with pytest.raises(ValueError, match="initial_mask 1.0: expected strictly between 0 and 1"):
        TrainConfig(initial_mask=1.0)
