"""Previews people look at: contact sheets (PNG grids). Used by the demo, evaluation and retargeting."""

from __future__ import annotations

import cv2
import numpy as np


def contact_sheet(rows: list[list[np.ndarray]], captions: list[list[str]] | None = None, gap: int = 2) -> np.ndarray:
    """Tiles uint8 [H, W, 3] laid out row by row (every tile the size of the first), each with an optional
    caption in its top-left corner; rows may be shorter than the longest. Returns one RGB image."""
    if not rows or not rows[0]:
        raise ValueError("contact_sheet needs at least one tile")
    h, w = rows[0][0].shape[:2]
    columns = max(len(r) for r in rows)
    sheet = np.full((len(rows) * (h + gap) - gap, columns * (w + gap) - gap, 3), 32, np.uint8)
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            if tile.shape[:2] != (h, w):
                raise ValueError(f"tile ({r}, {c}) is {tile.shape[0]}x{tile.shape[1]}, the sheet's tiles are {h}x{w}")
            tile = np.ascontiguousarray(tile if tile.ndim == 3 else np.repeat(tile[..., None], 3, axis=2))
            caption = captions[r][c] if captions and c < len(captions[r]) else ""
            if caption:
                tile = tile.copy()
                cv2.putText(tile, caption, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 2, cv2.LINE_AA)
                cv2.putText(tile, caption, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
            y, x = r * (h + gap), c * (w + gap)
            sheet[y:y + h, x:x + w] = tile
    return sheet
