"""The warping convention: backward flow in pixels, align_corners=True, border padding, float32."""

from __future__ import annotations

import pytest
import torch

from neurender.training.model.config import WARP_SAMPLING
from neurender.training.model.warp import warp


@pytest.mark.parametrize("sampling", WARP_SAMPLING)
def test_zero_flow_is_identity(sampling: str) -> None:
    image = torch.rand(2, 3, 17, 23)
    assert torch.allclose(warp(image, torch.zeros(2, 2, 17, 23), sampling), image, atol=1e-5)


@pytest.mark.parametrize("sampling", WARP_SAMPLING)
def test_integer_shift_moves_pixels_exactly(sampling: str) -> None:
    image = torch.rand(1, 3, 16, 20)
    flow = torch.zeros(1, 2, 16, 20)
    flow[:, 0] = 3.0  # p in t came from p + (3, -2) in t-1
    flow[:, 1] = -2.0
    out = warp(image, flow, sampling)
    assert torch.allclose(out[..., 2:, :-3], image[..., :-2, 3:], atol=1e-5)


def test_half_pixel_shift_interpolates_neighbours() -> None:
    image = torch.arange(10.0).view(1, 1, 1, 10).expand(1, 1, 4, 10).contiguous()
    flow = torch.zeros(1, 2, 4, 10)
    flow[:, 0] = 0.5
    out = warp(image, flow)
    assert torch.allclose(out[0, 0, :, :-1], image[0, 0, :, :-1] + 0.5, atol=1e-5)


@pytest.mark.parametrize("sampling", WARP_SAMPLING)
def test_border_padding_repeats_edge_pixels(sampling: str) -> None:
    image = torch.rand(1, 3, 8, 8)
    flow = torch.full((1, 2, 8, 8), -100.0)
    assert torch.allclose(warp(image, flow, sampling), image[..., :1, :1].expand_as(image), atol=1e-6)


def test_bicubic_keeps_texture_through_repeated_fractional_warps() -> None:
    """A frame moved by a third of a pixel 12 times: bilinear sampling smooths it at every step, bicubic
    keeps most of its detail. This is why a model warping its own output for many frames may choose it."""
    torch.manual_seed(0)
    image = torch.rand(1, 1, 48, 48)
    flow = torch.zeros(1, 2, 48, 48)
    flow[:, 0] = 1.0 / 3.0

    def detail_after_warps(sampling: str) -> float:
        out = image
        for _ in range(12):
            out = warp(out, flow, sampling)
        core = out[..., 8:-8, 8:-8]  # away from the border the shift drags in
        return float((core[..., 1:] - core[..., :-1]).abs().mean())

    original = float((image[..., 8:-8, 9:-8] - image[..., 8:-8, 8:-9]).abs().mean())
    bilinear, bicubic = detail_after_warps("bilinear"), detail_after_warps("bicubic")
    assert bilinear < 0.6 * original
    assert bicubic > 1.3 * bilinear


def test_computed_in_float32_for_half_inputs() -> None:
    image = torch.rand(1, 3, 8, 8).half()
    flow = torch.zeros(1, 2, 8, 8).half()
    flow[:, 0] = 1.0
    out = warp(image, flow)
    assert out.dtype == torch.float16
    assert torch.allclose(out[..., :-1].float(), image[..., 1:].float(), atol=1e-3)


def test_every_tensor_stays_on_the_inputs_device() -> None:
    """The grid's constants are made on the flow's device (meta stands in for a GPU here: mixing it with a CPU
    tensor raises, as CUDA would)."""
    warped = warp(torch.randn(1, 3, 8, 8, device="meta"), torch.randn(1, 2, 8, 8, device="meta"))
    assert warped.device.type == "meta" and warped.shape == (1, 3, 8, 8)
