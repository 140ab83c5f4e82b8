"""Discriminators, losses, the VGG19 perceptual loss and the feature encoder's region pooling."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from neurender.training.discriminators import ImageDiscriminator, VideoDiscriminator
from neurender.training.losses import (
    GANLoss,
    compose_flows,
    feature_matching,
    flow_confidence,
    flow_warp_loss,
    mask_loss,
    masked_l1,
    output_warp_loss,
)
from neurender.training.model.feature_encoder import FeatureEncoder, region_average
from neurender.training.model.warp import warp
from neurender.training.perceptual import OFF_MESSAGE, VGGLoss, load_vgg19_features, perceptual_loss, vgg19_features


def test_image_discriminator_scales_and_features() -> None:
    d = ImageDiscriminator(condition_channels=5, ndf=8, n_layers=3, num_scales=3)
    features = d(torch.randn(2, 5, 64, 64), torch.randn(2, 3, 64, 64))
    assert len(features) == 3
    for scale, per_scale in enumerate(features):
        assert len(per_scale) == 3 + 2  # first conv, n_layers convs, prediction
        assert per_scale[-1].shape[:2] == (2, 1)
        assert [f.shape[1] for f in per_scale[:-1]] == [8, 16, 32, 64]
    # each scale sees the input pooled once more: its patch map is smaller
    assert features[0][-1].shape[-1] > features[1][-1].shape[-1] > features[2][-1].shape[-1]
    with pytest.raises(ValueError, match="condition has 4 channels, expected 5"):
        d(torch.randn(1, 4, 32, 32), torch.randn(1, 3, 32, 32))


def test_video_discriminator_strides_and_inputs() -> None:
    d = VideoDiscriminator(frames=3, temporal_scales=2, ndf=8, n_layers=2, num_scales=2)
    assert [d.stride(s) for s in range(2)] == [1, 3]
    assert [d.span(s) for s in range(2)] == [3, 7]
    first = d.nets[0].nets[0].layers[0][0]
    assert first.in_channels == 3 * 3 + 2 * 2  # K frames and K-1 flows
    out = d(
        [
            (torch.randn(2, 3, 3, 32, 32), torch.randn(2, 2, 2, 32, 32), 1),
            (torch.randn(2, 3, 3, 32, 32), torch.randn(2, 2, 2, 32, 32), 0),
        ]
    )
    assert len(out) == 2  # one set of features per clip
    features = out[0]
    assert len(features) == 2 and features[0][-1].shape[:2] == (2, 1)
    with pytest.raises(ValueError, match="got 2 frames and 2 flows, expected 3 and 2"):
        d([(torch.randn(1, 2, 3, 32, 32), torch.randn(1, 2, 2, 32, 32), 0)])


def test_video_discriminator_is_conditioned_on_flow() -> None:
    torch.manual_seed(0)
    d = VideoDiscriminator(frames=2, temporal_scales=1, ndf=8, n_layers=2, num_scales=1)
    frames = torch.randn(1, 2, 3, 32, 32)
    a = d([(frames, torch.zeros(1, 1, 2, 32, 32), 0)])[0][0][-1]
    b = d([(frames, torch.full((1, 1, 2, 32, 32), 5.0), 0)])[0][0][-1]
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("mode", ["lsgan", "hinge"])
def test_gan_losses_order_real_above_fake(mode: str) -> None:
    gan = GANLoss(mode)
    real = [[torch.full((2, 1, 4, 4), 1.0)]]
    fake = [[torch.full((2, 1, 4, 4), -1.0)]]
    assert float(gan.discriminator(real, fake)) < float(gan.discriminator(fake, real))
    assert float(gan.generator(real)) < float(gan.generator(fake))
    if mode == "lsgan":
        assert float(gan.discriminator([[torch.ones(1, 1, 2, 2)]], [[torch.zeros(1, 1, 2, 2)]])) == 0.0
    with pytest.raises(ValueError, match="expected one of"):
        GANLoss("wasserstein")


def test_feature_matching_weights_and_detach() -> None:
    real = [[torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 2, 2), torch.zeros(1, 1, 1, 1)]]
    fake = [[torch.ones(1, 2, 4, 4, requires_grad=True), torch.ones(1, 2, 2, 2), torch.full((1, 1, 1, 1), 9.0)]]
    loss = feature_matching(fake, real)
    # two hidden layers each weighted 4 / 2, the prediction layer is left out
    assert float(loss.detach()) == pytest.approx(4.0)
    loss.backward()
    assert fake[0][0].grad is not None


def test_masked_l1_averages_over_every_element() -> None:
    x = torch.ones(1, 1, 2, 2)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    assert float(masked_l1(x, torch.zeros_like(x), mask)) == pytest.approx(0.25)


def shifted(image: torch.Tensor, dx: int) -> torch.Tensor:
    """image moved right by dx pixels (the left border repeated)."""
    return torch.cat((image[..., :1].expand(*image.shape[:-1], dx), image[..., :-dx]), dim=-1)


def test_flow_losses_vanish_for_the_true_flow() -> None:
    torch.manual_seed(0)
    previous = torch.rand(1, 3, 16, 16) * 2 - 1
    current = shifted(previous, 2)
    true_flow = torch.zeros(1, 2, 16, 16)
    true_flow[:, 0] = -2.0  # p in t came from p - 2 in t-1
    conf = flow_confidence(current, previous, true_flow, 0.02)
    assert conf[..., 2:].min() == 1.0  # all but the uncovered border columns
    assert float(flow_warp_loss(true_flow, current, previous, conf)) == pytest.approx(0.0, abs=1e-6)
    assert float(flow_warp_loss(torch.zeros_like(true_flow), current, previous, conf)) > 0.05
    assert float(output_warp_loss(current, previous, true_flow, conf)) == pytest.approx(0.0, abs=1e-6)
    wrong = flow_confidence(current, previous, torch.zeros_like(true_flow), 0.02)
    assert wrong.mean() < conf.mean()
    assert float(mask_loss(1.0 - conf, conf)) == 0.0  # warp where reliable, hallucinate elsewhere


def test_compose_flows_chains_two_shifts() -> None:
    image = torch.rand(1, 3, 16, 16)
    one = torch.zeros(1, 2, 16, 16)
    one[:, 0] = -1.0
    two = compose_flows(one, one)
    assert torch.allclose(two[..., 3:], torch.full_like(two[..., 3:], -2.0) * torch.tensor([1.0, 0.0]).view(1, 2, 1, 1))
    assert torch.allclose(warp(image, two)[..., 3:], shifted(image, 2)[..., 3:], atol=1e-5)


def test_vgg_loss_only_with_a_weights_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert perceptual_loss(None) is None
    assert OFF_MESSAGE in caplog.text and "Nothing is downloaded" in caplog.text

    torch.manual_seed(0)
    net = vgg19_features()
    state = {f"features.{k}": v for k, v in net.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # a full torchvision state_dict also loads
    path = tmp_path / "vgg19.pt"
    torch.save(state, path)
    loss = perceptual_loss(str(path))
    assert isinstance(loss, VGGLoss)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert float(loss(x, x)) == 0.0
    fake = (torch.rand(1, 3, 32, 32) * 2 - 1).requires_grad_()
    value = loss(fake, x)
    value.backward()
    assert float(value.detach()) > 0 and fake.grad is not None
    assert all(p.grad is None for p in loss.parameters())


def test_vgg_weights_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_vgg19_features(tmp_path / "missing.pt")
    state = vgg19_features().state_dict()
    del state["28.weight"]
    torch.save(state, tmp_path / "partial.pt")
    with pytest.raises(ValueError, match=r"missing keys \['28.weight'\]"):
        load_vgg19_features(tmp_path / "partial.pt")
    state = vgg19_features().state_dict()
    state["0.weight"] = torch.zeros(64, 1, 3, 3)
    torch.save(state, tmp_path / "shape.pt")
    with pytest.raises(ValueError, match=r"0.weight has shape \(64, 1, 3, 3\), expected \(64, 3, 3, 3\)"):
        load_vgg19_features(tmp_path / "shape.pt")


def test_region_average_pools_per_region_and_image() -> None:
    features = torch.arange(2 * 1 * 2 * 2, dtype=torch.float32).view(2, 1, 2, 2)
    regions = torch.tensor([[[0, 0], [1, 1]], [[5, 5], [5, 5]]])
    pooled = region_average(features, regions)
    assert pooled[0, 0].tolist() == [[0.5, 0.5], [2.5, 2.5]]
    assert pooled[1, 0].tolist() == [[5.5, 5.5], [5.5, 5.5]]


def test_feature_encoder_output_is_constant_per_region_and_trainable() -> None:
    torch.manual_seed(0)
    encoder = FeatureEncoder(style_dim=3, nef=8, n_downsample=2)
    regions = torch.zeros(1, 16, 16, dtype=torch.long)
    regions[:, :, 8:] = 4
    out = encoder(torch.rand(1, 3, 16, 16), regions)
    assert out.shape == (1, 3, 16, 16)
    left, right = out[..., :8], out[..., 8:]
    assert torch.allclose(left, left[..., :1, :1].expand_as(left)) and torch.allclose(
        right, right[..., :1, :1].expand_as(right)
    )
    out.sum().backward()
    assert all(p.grad is not None for p in encoder.parameters())
    with pytest.raises(ValueError, match="multiples of 4"):
        encoder(torch.rand(1, 3, 18, 16), torch.zeros(1, 18, 16, dtype=torch.long))
