"""Procedural textures and UV mapping for the demo scenes: seeded numpy images, no files.

Every texture is a small RGB uint8 image that tiles (the renderer's samplers repeat), made from value noise
and simple patterns so the shaded pass has detail the neural renderer must keep stable over time.
"""

from __future__ import annotations

import numpy as np
import trimesh
from PIL import Image


def value_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Tileable smooth noise in [0, 1], [size, size]: random values on a cells x cells lattice, bilinear."""
    lattice = rng.random((cells, cells))
    coords = np.arange(size) * cells / size
    i0 = np.floor(coords).astype(int)
    f = coords - i0
    f = f * f * (3 - 2 * f)
    i1 = (i0 + 1) % cells
    rows0 = lattice[i0][:, i0] * (1 - f)[None, :] + lattice[i0][:, i1] * f[None, :]
    rows1 = lattice[i1][:, i0] * (1 - f)[None, :] + lattice[i1][:, i1] * f[None, :]
    return rows0 * (1 - f)[:, None] + rows1 * f[:, None]


def fractal_noise(rng: np.random.Generator, size: int, octaves: int = 4, base_cells: int = 4) -> np.ndarray:
    """Sum of value-noise octaves, normalised to [0, 1]."""
    total = np.zeros((size, size))
    amplitude, weight = 1.0, 0.0
    for o in range(octaves):
        total += amplitude * value_noise(rng, size, base_cells * 2**o)
        weight += amplitude
        amplitude *= 0.5
    return total / weight


def tint(noise: np.ndarray, dark: tuple[int, int, int], light: tuple[int, int, int]) -> np.ndarray:
    """Map noise in [0, 1] to a colour ramp from `dark` to `light`: uint8 [H, W, 3]."""
    d, li = np.asarray(dark, float), np.asarray(light, float)
    return np.clip(d + noise[..., None] * (li - d), 0, 255).astype(np.uint8)


def asphalt(rng: np.random.Generator, size: int = 128) -> np.ndarray:
    """Road surface across the road's full width (u: left edge to right edge): grainy asphalt, solid edge
    lines and a dashed centre line (v repeats every few metres)."""
    image = tint(fractal_noise(rng, size, 4, 8), (45, 45, 48), (95, 95, 100))
    line = np.array([225, 225, 215], np.uint8)
    image[:, : size // 40 + 1] = line
    image[:, -(size // 40 + 1) :] = line
    centre = slice(size // 2 - size // 80 - 1, size // 2 + size // 80 + 1)
    image[: size // 2, centre] = line
    return image


def grass(rng: np.random.Generator, size: int = 128) -> np.ndarray:
    return tint(fractal_noise(rng, size, 5, 4), (50, 90, 30), (120, 160, 60))


def paving(rng: np.random.Generator, size: int = 128, tiles: int = 4) -> np.ndarray:
    """Square paving slabs with darker joints."""
    image = tint(fractal_noise(rng, size, 3, 8), (150, 145, 140), (200, 195, 185))
    step = size // tiles
    image[::step] = (90, 88, 85)
    image[:, ::step] = (90, 88, 85)
    return image


def facade(rng: np.random.Generator, size: int = 128) -> np.ndarray:
    """A wall with a 2 x 2 grid of windows (frames, glass); wall colour drawn from the seed."""
    wall_dark = rng.integers(80, 170, 3)
    wall = tint(fractal_noise(rng, size, 3, 8), tuple(wall_dark), tuple(np.minimum(wall_dark + 50, 255)))
    cell = size // 2
    for wy in range(2):
        for wx in range(2):
            y0, x0 = wy * cell + cell // 4, wx * cell + cell // 4
            wall[y0 - 2 : y0 + cell // 2 + 2, x0 - 2 : x0 + cell // 2 + 2] = (225, 225, 220)
            glass = tint(fractal_noise(rng, cell // 2, 2, 2), (30, 45, 70), (90, 120, 150))
            wall[y0 : y0 + cell // 2, x0 : x0 + cell // 2] = glass
    return wall


def foliage(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    return tint(fractal_noise(rng, size, 4, 4), (25, 70, 20), (90, 150, 50))


def bark(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    stripes = value_noise(rng, size, 16)[:, :1].repeat(size, axis=1).T * 0.6 + fractal_noise(rng, size, 3, 4) * 0.4
    return tint(stripes, (55, 40, 25), (115, 85, 55))


def paint(rng: np.random.Generator, colour: tuple[int, int, int], size: int = 32, grain: float = 0.15) -> np.ndarray:
    """A mostly flat colour with a little grain (car paint, clothes, skin)."""
    c = np.asarray(colour, float)
    return tint(fractal_noise(rng, size, 2, 4), tuple(c * (1 - grain)), tuple(np.minimum(c * (1 + grain), 255)))


def material(texture: np.ndarray, roughness: float = 0.85) -> trimesh.visual.material.PBRMaterial:
    """A matte PBR material with `texture` as base colour. Share one material between meshes that use the
    same texture: the shaded pass merges meshes by material."""
    return trimesh.visual.material.PBRMaterial(
        baseColorTexture=Image.fromarray(texture), metallicFactor=0.0, roughnessFactor=roughness
    )


def box_uv(
    mesh: trimesh.Trimesh,
    surface: trimesh.visual.material.PBRMaterial,
    metres_per_tile: tuple[float, float] = (1.0, 1.0),
    offset: tuple[float, float] = (0.0, 0.0),
    smooth: bool = False,
) -> trimesh.Trimesh:
    """A copy of `mesh` with box-projected UVs (each face maps from the plane its normal faces most) and the
    material `surface`. UVs come from local coordinates, so the texture sticks to a moving object."""
    m = mesh.copy()
    m.unmerge_vertices()
    normals = np.repeat(np.abs(m.face_normals), 3, axis=0)[np.argsort(m.faces.ravel())]
    axis = normals.argmax(axis=1)
    v = m.vertices
    uv = np.where((axis == 0)[:, None], v[:, [2, 1]], np.where((axis == 1)[:, None], v[:, [0, 2]], v[:, [0, 1]]))
    uv = (uv + np.asarray(offset)) / np.asarray(metres_per_tile)
    m.visual = trimesh.visual.TextureVisuals(uv=uv, material=surface)
    m.metadata["smooth"] = smooth
    return m


__all__ = [
    "asphalt",
    "bark",
    "box_uv",
    "material",
    "facade",
    "foliage",
    "fractal_noise",
    "grass",
    "paint",
    "paving",
    "value_noise",
]
