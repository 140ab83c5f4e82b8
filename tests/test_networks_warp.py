"""The warping convention: backward flow in pixels, align_corners=True, border padding, float32."""

from __future__ import annotations

import torch

from neurender.training.warp import warp


def test_zero_flow_is_identity() -> None:
    image = torch.rand(2, 3, 17, 23)
    assert torch.allclose(warp(image, torch.zeros(2, 2, 17, 23)), image, atol=1e-6)


def test_integer_shift_moves_pixels_exactly() -> None:
    image = torch.rand(1, 3, 16, 20)
    flow = torch.zeros(1, 2, 16, 20)
    flow[:, 0] = 3.0   # p in t came from p + (3, -2) in t-1
    flow[:, 1] = -2.0
    out = warp(image, flow)
    assert torch.allclose(out[..., 2:, :-3], image[..., :-2, 3:], atol=1e-5)


def test_half_pixel_shift_interpolates_neighbours() -> None:
    image = torch.arange(10.0).view(1, 1, 1, 10).expand(1, 1, 4, 10).contiguous()
    flow = torch.zeros(1, 2, 4, 10)
    flow[:, 0] = 0.5
    out = warp(image, flow)
    assert torch.allclose(out[0, 0, :, :-1], image[0, 0, :, :-1] + 0.5, atol=1e-5)


def test_border_padding_repeats_edge_pixels() -> None:
    image = torch.rand(1, 3, 8, 8)
    flow = torch.full((1, 2, 8, 8), -100.0)
    assert torch.allclose(warp(image, flow), image[..., :1, :1].expand_as(image), atol=1e-6)


def test_computed_in_float32_for_half_inputs() -> None:
    image = torch.rand(1, 3, 8, 8).half()
    flow = torch.zeros(1, 2, 8, 8).half()
    flow[:, 0] = 1.0
    out = warp(image, flow)
    assert out.dtype == torch.float16
    assert torch.allclose(out[..., :-1].float(), image[..., 1:].float(), atol=1e-3)
