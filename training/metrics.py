"""Video quality metrics on uint8 RGB frames [H, W, 3].

- PSNR, SSIM (Gaussian window 11, sigma 1.5, per channel, averaged): per-frame fidelity to the ground truth.
- E_warp (Lai et al. 2018): how much each frame differs from the previous one moved along the ground-truth
  backward flow, over non-occluded pixels only; colours in [0, 1], mean squared difference per channel.
  The non-occlusion mask comes from forward-backward consistency (Sundaram et al. 2010) between that
  backward flow and the forward flow that OpenCV DIS measures on the ground truth, and from the dataset's
  flow_valid where it has one.
- tOF (TecoGAN): mean over pixels of the L1 distance between the optical flow of consecutive output frames and
  that of consecutive ground-truth frames (DIS flow, pixels).
- Sharpness: mean gradient magnitude (central differences on luma) of the output over the ground truth's.
  E_warp alone rewards blur and frozen frames; read it only next to PSNR and sharpness.
"""

from __future__ import annotations

import cv2
import numpy as np


def psnr(output: np.ndarray, target: np.ndarray) -> float:
    mse = np.mean((output.astype(np.float64) - target.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


def ssim(output: np.ndarray, target: np.ndarray) -> float:
    x, y = output.astype(np.float64), target.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda a: cv2.GaussianBlur(a, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    value = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(value.mean())


def luma(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def gradient_magnitude(image: np.ndarray) -> float:
    g = luma(image).astype(np.float64)
    gy, gx = np.gradient(g)
    return float(np.mean(np.hypot(gx, gy)))


_DIS = None


def optical_flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """DIS flow f with source(p) ~ target(p + f(p)), float32 [H, W, 2] pixels (x, y)."""
    global _DIS
    if _DIS is None:
        _DIS = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return _DIS.calc(luma(source), luma(target), None)


def warp_image(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample `image` at p + flow(p) (bilinear, border replicated): the project's backward-warp convention."""
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(image, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def non_occluded(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """bool [H, W]: pixels of frame t whose backward flow to t-1 lands inside the frame and comes back by the
    forward flow t-1 -> t (|b + f(p + b)|^2 < 0.01 (|b|^2 + |f|^2) + 0.5)."""
    h, w = backward.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    qx, qy = xs + backward[..., 0], ys + backward[..., 1]
    inside = (qx >= 0) & (qx <= w - 1) & (qy >= 0) & (qy <= h - 1)
    f = cv2.remap(forward, qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    total = backward + f
    lhs = (total**2).sum(-1)
    rhs = 0.01 * ((backward**2).sum(-1) + (f**2).sum(-1)) + 0.5
    return inside & (lhs < rhs)


def warp_error(current: np.ndarray, previous: np.ndarray, backward: np.ndarray, mask: np.ndarray) -> float:
    """Mean squared difference (colours in [0, 1]) between frame t and frame t-1 warped onto it, where mask."""
    warped = warp_image(previous, backward).astype(np.float64) / 255.0
    diff = (current.astype(np.float64) / 255.0 - warped) ** 2
    n = mask.sum()
    return float((diff * mask[..., None]).sum() / (3.0 * n)) if n else 0.0


def sequence_metrics(
    outputs: list[np.ndarray],
    targets: list[np.ndarray],
    backward: list[np.ndarray | None],
    valid: list[np.ndarray | None],
) -> dict[str, float]:
    """Metrics of one sequence. backward[t]: ground-truth flow t -> t-1 (None: measure it with DIS on the
    ground truth); valid[t]: the dataset's flow_valid or None."""
    n = len(outputs)
    out = {
        "psnr": float(np.mean([psnr(o, t) for o, t in zip(outputs, targets)])),
        "ssim": float(np.mean([ssim(o, t) for o, t in zip(outputs, targets)])),
        "sharpness_output": float(np.mean([gradient_magnitude(o) for o in outputs])),
        "sharpness_real": float(np.mean([gradient_magnitude(t) for t in targets])),
    }
    e_out, e_real, tof = [], [], []
    for t in range(1, n):
        b = backward[t] if backward[t] is not None else optical_flow(targets[t], targets[t - 1])
        b = b.astype(np.float32)
        mask = non_occluded(b, optical_flow(targets[t - 1], targets[t]))
        if valid[t] is not None:
            mask &= valid[t].astype(bool)
        e_out.append(warp_error(outputs[t], outputs[t - 1], b, mask))
        e_real.append(warp_error(targets[t], targets[t - 1], b, mask))
        flow_out = optical_flow(outputs[t], outputs[t - 1])
        flow_real = optical_flow(targets[t], targets[t - 1])
        tof.append(float(np.abs(flow_out - flow_real).sum(-1).mean()))
    out["e_warp"] = float(np.mean(e_out)) if e_out else 0.0
    out["e_warp_real"] = float(np.mean(e_real)) if e_real else 0.0
    out["tof"] = float(np.mean(tof)) if tof else 0.0
    out["sharpness_ratio"] = out["sharpness_output"] / max(out["sharpness_real"], 1e-12)
    return out
