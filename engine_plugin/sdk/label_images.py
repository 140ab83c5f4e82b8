"""Label images on disk -> a frame's inputs for a model: what `neurender render-video` sends.

A single-channel PNG (8 or 16 bit) holds class IDs (SEGMENTATION) or an edge map (EDGES). A colour PNG is a
pose map (POSE), or a label map painted in the model's class colours (SEGMENTATION), turned back into IDs.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from neurender.common.errors import UserError
from neurender.proto.neurender.v1 import model_pb2


class LabelImageError(UserError, ValueError):
    """An image that cannot be a frame for the model; the message names the file and what was expected."""


def read_label_image(path: Path, model: model_pb2.ModelDescription) -> dict[str, np.ndarray]:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise LabelImageError(f"{path}: not a readable image")
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    modality = model.modality
    if modality == model_pb2.POSE:
        if image.ndim != 3 or image.dtype != np.uint8:
            raise LabelImageError(
                f"{path}: a POSE model takes 8-bit colour pose maps, got {image.dtype} {list(image.shape)}"
            )
        return {"pose_map": cv2.cvtColor(image, cv2.COLOR_BGR2RGB)}
    if modality == model_pb2.EDGES:
        if image.ndim != 2 or image.dtype != np.uint8:
            raise LabelImageError(
                f"{path}: an EDGES model takes 8-bit single-channel edge maps, got {image.dtype} {list(image.shape)}"
            )
        return {"edges": image}
    if image.ndim == 2:
        return {"labels": image}
    return {"labels": _colours_to_ids(path, cv2.cvtColor(image, cv2.COLOR_BGR2RGB), model)}


def _colours_to_ids(path: Path, rgb: np.ndarray, model: model_pb2.ModelDescription) -> np.ndarray:
    if rgb.dtype != np.uint8:
        raise LabelImageError(f"{path}: colour label maps must be 8-bit, got {rgb.dtype}")
    packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    colours, inverse = np.unique(packed, return_inverse=True)
    table = {(c.color[0] << 16) | (c.color[1] << 8) | c.color[2]: c.id for c in model.classes}
    unknown = [int(c) for c in colours if int(c) not in table]
    if unknown:
        shown = ", ".join(f"({c >> 16}, {(c >> 8) & 255}, {c & 255})" for c in unknown[:5])
        raise LabelImageError(
            f"{path}: colours {shown} are not class colours of model {model.name}; "
            "expected class IDs (single channel) or the model's class colours (GetModel)"
        )
    ids = np.array([table[int(c)] for c in colours], np.uint16 if len(model.classes) > 256 else np.uint8)
    return ids[inverse.reshape(packed.shape)]
