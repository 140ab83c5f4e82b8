"""The G-buffer's geometry passes in plain OpenGL 4: class and instance IDs, view depth, backward motion.

Why not pyrender's SEG mode: it issues a few dozen Python OpenGL calls per mesh primitive, which made the
demo street (about 200 primitives) cost over 100 ms per frame on llvmpipe, most of it Python. Here a frame
is three draw calls and five reads, and everything a software rasteriser would spend time on is cut down
without changing a pixel:

1. Surface pass: all geometry is uploaded once, in each object's local space (corners shared within an
   object merged); per-frame object transforms come from a small buffer texture indexed by the vertex's
   object index. One multi-draw per cull state draws every object in view, with the back faces of closed meshes
   culled wherever they cannot show (see IdPass._draw_lists). The cheapest fragment shader possible writes
   (object index, view depth) into an RG32UI target: exact integers, no blending, no multisampling.
2. Resolve pass: one full-screen triangle, run once per pixel. It looks up the pixel's class and instance
   IDs, rebuilds its 3D point from the view depth and the pixel's ray, carries it back to frame t-1's camera
   through its object's transform (background pixels are directions at infinity, moved by the camera
   rotation alone), projects it with the same pinhole and tests visibility against frame t-1's surface
   target. It writes each pass in its final type (uint16 IDs, float16 depth and motion, uint8 visibility),
   so the reads are plain copies and no numpy work follows.

Both passes draw with the projection's Y flipped, so target row 0 is the image's top row and the reads come
out top to bottom without a flip.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")  # before OpenGL is first imported

_SURFACE_VERTEX = """
#version 330 core
layout(location = 0) in vec3 position;
layout(location = 1) in uint object_index;
uniform samplerBuffer transforms;  // texels 6k..6k+2: the rows of camera(t)-from-local of object k
uniform mat4 projection;
flat out uint v_index;
out float v_depth;
void main() {
    int k = int(object_index);
    vec4 p = vec4(position, 1.0);
    vec3 c = vec3(dot(texelFetch(transforms, 6 * k), p), dot(texelFetch(transforms, 6 * k + 1), p),
                  dot(texelFetch(transforms, 6 * k + 2), p));
    v_index = object_index;
    v_depth = -c.z;
    gl_Position = projection * vec4(c, 1.0);
}
"""

_SURFACE_FRAGMENT = """
#version 330 core
flat in uint v_index;
in float v_depth;
layout(location = 0) out uvec2 out_surface;  // object index, view depth (float bits); (0, 0) is the background
void main() {
    out_surface = uvec2(v_index, floatBitsToUint(v_depth));
}
"""

_RESOLVE_VERTEX = """
#version 330 core
void main() {  // one triangle covering the viewport
    gl_Position = vec4(gl_VertexID == 1 ? 3.0 : -1.0, gl_VertexID == 2 ? 3.0 : -1.0, 0.0, 1.0);
}
"""

_RESOLVE_FRAGMENT = """
#version 400 core
uniform usampler2D surface;   // frame t's surface target, rows top to bottom
uniform usampler2D previous;  // frame t-1's
uniform samplerBuffer transforms;  // texels 6k+3..6k+5: the rows of camera(t-1)-from-camera(t) through object k
uniform usamplerBuffer labels;     // texel k: (class ID, instance ID) of object k
uniform int has_previous;
uniform vec4 intrinsics;  // fx, fy, cx, cy in pixels, rows top to bottom
uniform float tolerance;
uniform float motion_limit;
layout(location = 0) out uint out_class;
layout(location = 1) out uint out_instance;
layout(location = 2) out float out_depth;
layout(location = 3) out vec2 out_motion;  // pixels, (x, rows down)
layout(location = 4) out uint out_valid;

// Was a point at `there` (pixels) and view depth z (0: at infinity) visible in frame t-1?
// Surfaces: z must match frame t-1's depth there, interpolated bilinearly in 1/depth (exact on planes, since
// 1/depth is affine in screen space on a plane); next to a depth edge the interpolation mixes the two
// surfaces and the test fails, which is what we want there. The sky: the nearest texel was background.
bool visible(vec2 there, float z) {
    vec2 size = vec2(textureSize(previous, 0));
    if (there.x < 0.0 || there.y < 0.0 || there.x >= size.x || there.y >= size.y) return false;
    vec2 f = there - 0.5;
    vec2 q = floor(f);
    vec2 w = f - q;
    // The 2x2 texels around `there` in one fetch (edges clamped), gathered at their shared corner so the
    // footprint is q whatever the rounding: x = (q.x, q.y+1), y = (q.x+1, q.y+1), z = (q.x+1, q.y), w = q.
    vec4 d = uintBitsToFloat(textureGather(previous, (q + 1.0) / size, 1));
    if (z == 0.0) return (w.y < 0.5 ? (w.x < 0.5 ? d.w : d.z) : (w.x < 0.5 ? d.x : d.y)) == 0.0;  // the nearest
    vec4 inv = vec4(greaterThan(d, vec4(0.0))) / max(d, vec4(1e-30));  // background: 1/inf = 0
    float i = mix(mix(inv.w, inv.z, w.x), mix(inv.x, inv.y, w.x), w.y);
    return i > 0.0 && abs(z - 1.0 / i) <= tolerance * z;
}

// The float16 targets' conversion truncates on llvmpipe; rounding to the nearest float16 first (ties to even,
// overflow to infinity, as numpy's astype) makes the stored value the correctly rounded one.
float nearest_half(float x) {
    float a = abs(x);
    if (a >= 65520.0) return sign(x) * uintBitsToFloat(0x7f800000u);
    if (a < 6.103515625e-05) return roundEven(x * 16777216.0) / 16777216.0;  // float16 subnormals: steps of 2^-24
    uint b = floatBitsToUint(x);
    return uintBitsToFloat((b + 0xfffu + ((b >> 13) & 1u)) & ~0x1fffu);
}

void main() {
    ivec2 pixel = ivec2(gl_FragCoord.xy);
    uvec2 s = texelFetch(surface, pixel, 0).xy;
    int k = int(s.x);
    float depth = uintBitsToFloat(s.y);
    uvec2 label = texelFetch(labels, k).xy;
    out_class = label.x;
    out_instance = label.y;
    out_depth = k == 0 ? uintBitsToFloat(0x7f800000u) : nearest_half(depth);  // +inf on the background
    vec2 motion = vec2(0.0);
    bool valid = false;
    if (has_previous == 1) {
        vec2 here = gl_FragCoord.xy;  // the pixel's centre
        vec3 ray = vec3((here.x - intrinsics.z) / intrinsics.x, -(here.y - intrinsics.w) / intrinsics.y, -1.0);
        vec4 p = k == 0 ? vec4(ray, 0.0) : vec4(ray * depth, 1.0);
        vec3 q = vec3(dot(texelFetch(transforms, 6 * k + 3), p), dot(texelFetch(transforms, 6 * k + 4), p),
                      dot(texelFetch(transforms, 6 * k + 5), p));
        float z = -q.z;
        if (z > 1e-6) {
            vec2 there = vec2(intrinsics.z + intrinsics.x * q.x / z, intrinsics.w - intrinsics.y * q.y / z);
            motion = clamp(there - here, -motion_limit, motion_limit);
            valid = visible(there, k == 0 ? 0.0 : z);
        }
    }
    out_motion = vec2(nearest_half(motion.x), nearest_half(motion.y));
    out_valid = valid ? 1u : 0u;
}
"""
VISIBILITY_TOLERANCE = 0.01  # relative depth difference still counted as the same surface
_UNITS = {"transforms": 0, "labels": 1, "surface": 2, "previous": 3}  # each sampler's texture unit

# The resolve pass's targets: (internal format, read format, read type, numpy dtype, channels).
_OUTPUTS = {
    "classes": ("GL_R16UI", "GL_RED_INTEGER", "GL_UNSIGNED_SHORT", np.uint16, 1),
    "instances": ("GL_R16UI", "GL_RED_INTEGER", "GL_UNSIGNED_SHORT", np.uint16, 1),
    "depth": ("GL_R16F", "GL_RED", "GL_HALF_FLOAT", np.float16, 1),
    "motion": ("GL_RG16F", "GL_RG", "GL_HALF_FLOAT", np.float16, 2),
    "motion_valid": ("GL_R8UI", "GL_RED_INTEGER", "GL_UNSIGNED_BYTE", np.uint8, 1),
}


def perspective(yfov: float, aspect: float, znear: float, zfar: float) -> np.ndarray:
    """The OpenGL projection matrix of a pinhole camera (the same one pyrender uses)."""
    f = 1.0 / np.tan(0.5 * yfov)
    m = np.zeros((4, 4))
    m[0, 0], m[1, 1] = f / aspect, f
    m[2, 2], m[2, 3] = (zfar + znear) / (znear - zfar), 2 * zfar * znear / (znear - zfar)
    m[3, 2] = -1.0
    return m


_context: Any = None
_context_users = 0


def acquire_context() -> Any:
    """The process's one headless OpenGL context (a pyrender Platform: EGL, or OSMesa), made current.

    One context for every renderer in the process, because EGL displays are per process: pyrender's
    platforms call eglTerminate when a context is deleted, which would break every other live context.
    Pair each call with release_context(); the context is deleted when the last user releases it."""
    global _context, _context_users
    if _context is None:
        name = os.environ.get("PYOPENGL_PLATFORM", "egl")
        if name == "egl":
            from pyrender.platforms.egl import EGLPlatform

            platform = EGLPlatform(1, 1)
        elif name == "osmesa":
            from pyrender.platforms.osmesa import OSMesaPlatform

            platform = OSMesaPlatform(1, 1)
        else:
            raise ValueError(f"PYOPENGL_PLATFORM={name}: expected egl or osmesa for headless rendering")
        platform.init_context()
        _context = platform
    _context_users += 1
    _context.make_current()
    return _context


def release_context() -> None:
    global _context, _context_users
    _context_users -= 1
    if _context_users == 0 and _context is not None:
        _context.delete_context()
        _context = None


def _surface_texture(width: int, height: int) -> int:
    """An RG32UI texture for a surface target: read by texel, edges clamped (for textureGather)."""
    from OpenGL import GL

    tex = GL.glGenTextures(1)
    GL.glBindTexture(GL.GL_TEXTURE_2D, tex)
    GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_RG32UI, width, height, 0, GL.GL_RG_INTEGER, GL.GL_UNSIGNED_INT, None)
    for name, value in (
        (GL.GL_TEXTURE_MIN_FILTER, GL.GL_NEAREST),
        (GL.GL_TEXTURE_MAG_FILTER, GL.GL_NEAREST),
        (GL.GL_TEXTURE_WRAP_S, GL.GL_CLAMP_TO_EDGE),
        (GL.GL_TEXTURE_WRAP_T, GL.GL_CLAMP_TO_EDGE),
    ):
        GL.glTexParameteri(GL.GL_TEXTURE_2D, name, value)
    GL.glBindTexture(GL.GL_TEXTURE_2D, 0)
    return tex


def _solid_meshes(positions: np.ndarray, faces: np.ndarray, face_mesh: np.ndarray, meshes: int) -> np.ndarray:
    """Which meshes are solids whose back faces may be culled (bool [meshes]): closed and consistently wound
    (within the mesh, every directed edge appears once and its reverse once), and every shell (set of faces
    joined through edges) encloses a positive volume, i.e. faces outwards.

    positions [V, 3]; faces [F, 3] indexing them; face_mesh [F]: the mesh of each face."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if not len(faces):
        return np.ones(meshes, bool)
    ids = np.unique(face_mesh[:, None] * len(positions) + faces, return_inverse=True)[1].reshape(-1, 3)  # per mesh
    count = int(ids.max()) + 1
    start, end = ids.reshape(-1), ids[:, [1, 2, 0]].reshape(-1)  # directed edges, three per face
    edge_face = np.repeat(np.arange(len(faces)), 3)
    key, reverse = start * count + end, end * count + start
    order = np.argsort(key)
    sorted_key = key[order]
    at = np.minimum(np.searchsorted(sorted_key, reverse), len(key) - 1)
    paired = sorted_key[at] == reverse
    repeated = np.zeros(len(key), bool)
    same = sorted_key[1:] == sorted_key[:-1]
    repeated[order[1:][same]] = repeated[order[:-1][same]] = True
    solid = np.bincount(face_mesh[edge_face[~paired | repeated]], minlength=meshes) == 0
    partner = edge_face[order[at]][paired]
    graph = coo_matrix((np.ones(len(partner)), (edge_face[paired], partner)), shape=(len(faces), len(faces)))
    shell = connected_components(graph, directed=False)[1]
    corners = positions[faces].astype(np.float64)
    volume = np.einsum("ij,ij->i", corners[:, 0], np.cross(corners[:, 1], corners[:, 2]))  # 6x signed volume
    inward = (np.bincount(shell, volume) <= 0)[shell]
    return solid & (np.bincount(face_mesh[inward], minlength=meshes) == 0)


def _runs(starts: np.ndarray, selected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(element counts int32, byte offsets) of the ranges covering the selected objects, where object k's
    elements are [starts[k], starts[k+1]); consecutive selected objects are merged into one range."""
    edges = np.flatnonzero(np.diff(np.concatenate([[False], selected, [False]])))  # run starts and ends alternate
    first, end = starts[edges[0::2]], starts[edges[1::2]]
    keep = end > first
    return (end - first)[keep].astype(np.int32), (4 * first[keep]).astype(np.intp)  # 4 bytes per uint32 element


def _check_framebuffer(what: str) -> None:
    from OpenGL import GL

    status = GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER)
    if status != GL.GL_FRAMEBUFFER_COMPLETE:
        raise RuntimeError(f"the G-buffer's {what} framebuffer is incomplete (status {status:#x})")


class Geometry:
    """Every object's triangles, uploaded once in its local space: one vertex buffer (positions and the
    object index of each vertex; corners shared within an object merged) and one index buffer; the table of
    each object index's (class ID, instance ID); and each object's local bounding box. Object index 0 is the
    background (no vertices).

    The index buffer holds first every object's closed meshes (solids: watertight, consistently wound,
    outward facing), object after object, then every object's other triangles, object after object, so
    that any run of consecutive objects is one range of each kind (see IdPass._draw_lists)."""

    def __init__(self, objects: list[list[tuple[np.ndarray, np.ndarray]]], labels: np.ndarray) -> None:
        """objects: per object, its meshes as (vertices [V, 3], triangles [F, 3] indexing them);
        labels: [objects, 2] uint16 (class ID, instance ID)."""
        from OpenGL import GL

        limit = int(GL.glGetIntegerv(GL.GL_MAX_TEXTURE_BUFFER_SIZE)) // 6 - 1  # six transform texels per object index
        if len(objects) > limit:
            raise ValueError(f"{len(objects)} objects: the G-buffer renderer draws at most {limit}")
        meshes = [
            (k, np.asarray(v, np.float32).reshape(-1, 3), np.asarray(f, np.int64).reshape(-1, 3))
            for k, object_meshes in enumerate(objects, start=1)
            for v, f in object_meshes
        ]
        mesh_object = np.array([k for k, _, _ in meshes], np.int64)
        vertex_counts = np.array([len(v) for _, v, _ in meshes], np.int64)
        face_mesh = np.repeat(np.arange(len(meshes)), [len(f) for _, _, f in meshes])
        vertices = np.concatenate([v for _, v, _ in meshes] or [np.zeros((0, 3), np.float32)]) + np.float32(
            0.0
        )  # -0 -> +0
        faces = np.concatenate(
            [f + start for (_, _, f), start in zip(meshes, np.cumsum(vertex_counts) - vertex_counts)]
            or [np.zeros((0, 3), np.int64)]
        )
        # Merge corners shared within an object: (object index, x, y, z) as one 16-byte key per vertex.
        vertex_object = np.repeat(mesh_object, vertex_counts)
        keys = np.empty((len(vertices), 4), np.uint32)
        keys[:, 0], keys[:, 1:] = vertex_object, vertices.view(np.uint32)
        _, first, inverse = np.unique(
            keys.view(np.dtype((np.void, 16))).reshape(-1), return_index=True, return_inverse=True
        )
        positions, vertex_object, faces = vertices[first], vertex_object[first], inverse.reshape(-1)[faces]
        solid_face = _solid_meshes(positions, faces, face_mesh, len(meshes))[face_mesh]
        face_object = mesh_object[face_mesh]
        # Element ranges: object k's solids are [solid_starts[k-1], solid_starts[k]), its other triangles
        # [other_starts[k-1], other_starts[k]).
        self.solid_starts = np.concatenate(
            [[0], np.cumsum(3 * np.bincount(face_object[solid_face], minlength=len(objects) + 1)[1:])]
        )
        self.other_starts = self.solid_starts[-1] + np.concatenate(
            [[0], np.cumsum(3 * np.bincount(face_object[~solid_face], minlength=len(objects) + 1)[1:])]
        )
        elements = np.concatenate([faces[solid_face], faces[~solid_face]]).reshape(-1)
        # Each object's local bounding box.
        self.box_centres = np.zeros((len(objects), 3, 1))
        self.box_halves = np.zeros((len(objects), 3, 1))
        order = np.argsort(vertex_object, kind="stable")
        present, starts = np.unique(vertex_object[order], return_index=True)
        if len(present):
            lo, hi = np.minimum.reduceat(positions[order], starts), np.maximum.reduceat(positions[order], starts)
            self.box_centres[present - 1, :, 0], self.box_halves[present - 1, :, 0] = (lo + hi) / 2, (hi - lo) / 2
        self.objects = len(objects) + 1
        self.vao = GL.glGenVertexArrays(1)
        GL.glBindVertexArray(self.vao)
        self.buffers = GL.glGenBuffers(5)  # positions, object indices, elements, transforms, labels

        def fill(target: int, buffer: int, data: np.ndarray, dtype: type) -> None:
            data = np.ascontiguousarray(data, dtype=dtype)
            GL.glBindBuffer(target, buffer)
            GL.glBufferData(target, max(data.nbytes, 4), data if data.size else None, GL.GL_STATIC_DRAW)

        fill(GL.GL_ARRAY_BUFFER, self.buffers[0], positions, np.float32)
        GL.glEnableVertexAttribArray(0)
        GL.glVertexAttribPointer(0, 3, GL.GL_FLOAT, GL.GL_FALSE, 0, ctypes.c_void_p(0))
        fill(GL.GL_ARRAY_BUFFER, self.buffers[1], vertex_object, np.uint32)
        GL.glEnableVertexAttribArray(1)
        GL.glVertexAttribIPointer(1, 1, GL.GL_UNSIGNED_INT, 0, ctypes.c_void_p(0))
        fill(GL.GL_ELEMENT_ARRAY_BUFFER, self.buffers[2], elements, np.uint32)
        GL.glBindVertexArray(0)
        table = np.zeros((self.objects, 2), np.uint16)
        table[1:] = labels
        fill(GL.GL_TEXTURE_BUFFER, self.buffers[3], np.zeros((self.objects, 6, 4)), np.float32)  # set per frame
        fill(GL.GL_TEXTURE_BUFFER, self.buffers[4], table, np.uint16)
        self.transform_buffer = self.buffers[3]
        self.transforms, self.labels = GL.glGenTextures(2)
        for texture, internal, buffer in (
            (self.transforms, GL.GL_RGBA32F, self.buffers[3]),
            (self.labels, GL.GL_RG16UI, self.buffers[4]),
        ):
            GL.glBindTexture(GL.GL_TEXTURE_BUFFER, texture)
            GL.glTexBuffer(GL.GL_TEXTURE_BUFFER, internal, buffer)
        GL.glBindTexture(GL.GL_TEXTURE_BUFFER, 0)
        GL.glBindBuffer(GL.GL_TEXTURE_BUFFER, 0)

    def delete(self) -> None:
        from OpenGL import GL

        GL.glDeleteTextures(2, [self.transforms, self.labels])
        GL.glDeleteBuffers(5, self.buffers)
        GL.glDeleteVertexArrays(1, [self.vao])


@dataclass
class IdPassOutput:
    """One frame's passes, rows top to bottom; see gbuffer.GBufferFrame for their meaning."""

    classes: np.ndarray  # uint16 [H, W]
    instances: np.ndarray  # uint16 [H, W]
    depth: np.ndarray  # float16 [H, W], +inf on the background
    motion: np.ndarray  # float16 [H, W, 2]
    motion_valid: np.ndarray  # bool [H, W]


class IdPass:
    """Renders the geometry passes of uploaded objects for given per-object transforms.

    The previous frame is whatever the last render() drew (its surface target is kept): pass
    has_previous=True only when that was frame t-1 of the same objects; the caller keeps track."""

    def __init__(self, height: int, width: int) -> None:
        from OpenGL import GL
        from OpenGL.GL import shaders

        self.height, self.width = height, width
        self.platform = acquire_context()

        def program(vertex: str, fragment: str, names: tuple[str, ...]) -> tuple[Any, dict[str, int]]:
            """Linked, with each sampler given its texture unit (_UNITS) for good, then validated."""
            p = shaders.compileProgram(
                shaders.compileShader(vertex, GL.GL_VERTEX_SHADER),
                shaders.compileShader(fragment, GL.GL_FRAGMENT_SHADER),
                validate=False,
            )
            GL.glUseProgram(p)
            for name, unit in _UNITS.items():
                GL.glUniform1i(GL.glGetUniformLocation(p, name), unit)  # -1 (absent) is ignored
            GL.glUseProgram(0)
            p.check_validate()
            return p, {n: GL.glGetUniformLocation(p, n) for n in names}

        self.surface_program, self.surface_uniforms = program(_SURFACE_VERTEX, _SURFACE_FRAGMENT, ("projection",))
        self.resolve_program, self.resolve_uniforms = program(
            _RESOLVE_VERTEX, _RESOLVE_FRAGMENT, ("has_previous", "intrinsics", "tolerance", "motion_limit")
        )
        self.empty_vao = GL.glGenVertexArrays(1)  # the resolve triangle has no vertex attributes
        # Surface targets: [0] is drawn into, [1] holds the previous frame; each has its framebuffer.
        self.depth_buffer = GL.glGenRenderbuffers(1)
        GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, self.depth_buffer)
        GL.glRenderbufferStorage(GL.GL_RENDERBUFFER, GL.GL_DEPTH_COMPONENT32F, width, height)
        self.surfaces = [_surface_texture(width, height) for _ in range(2)]
        self.surface_fbos = list(GL.glGenFramebuffers(2))
        for fbo, tex in zip(self.surface_fbos, self.surfaces):
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, fbo)
            GL.glFramebufferTexture2D(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_TEXTURE_2D, tex, 0)
            GL.glFramebufferRenderbuffer(
                GL.GL_FRAMEBUFFER, GL.GL_DEPTH_ATTACHMENT, GL.GL_RENDERBUFFER, self.depth_buffer
            )
            _check_framebuffer("surface")
        self.resolve_fbo = GL.glGenFramebuffers(1)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.resolve_fbo)
        self.outputs = list(GL.glGenRenderbuffers(len(_OUTPUTS)))
        for i, (rb, (internal, *_)) in enumerate(zip(self.outputs, _OUTPUTS.values())):
            GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, rb)
            GL.glRenderbufferStorage(GL.GL_RENDERBUFFER, getattr(GL, internal), width, height)
            GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0 + i, GL.GL_RENDERBUFFER, rb)
        _check_framebuffer("resolve")
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
        self.geometry: Geometry | None = None

    def upload(self, objects: list[list[tuple[np.ndarray, np.ndarray]]], labels: np.ndarray) -> None:
        """objects: per object, its meshes as (local vertices [V, 3], triangles [F, 3]); labels: per object
        (class ID, instance ID). Object k of the list gets object index k + 1."""
        self.platform.make_current()
        if self.geometry is not None:
            self.geometry.delete()
        self.geometry = Geometry(objects, labels)

    def render(
        self,
        projection: np.ndarray,
        intrinsics: tuple[float, float, float, float],
        camera_from_local: np.ndarray,
        previous_from_current: np.ndarray,
        has_previous: bool,
        motion_limit: float,
        read: bool = True,
    ) -> IdPassOutput | None:
        """camera_from_local: [objects + 1, 4, 4], row k the view-from-local transform of object k at frame t
        (row 0, the background, is unused); previous_from_current: [objects + 1, 4, 4], row k carries a point
        of object k from frame t's camera space to frame t-1's (row 0: the camera's own motion). Motion is
        clipped to +-motion_limit pixels. read=False draws the surface pass only (to prime the previous frame)."""
        from OpenGL import GL
        from OpenGL.raw.GL.VERSION.GL_1_4 import glMultiDrawElements

        g = self.geometry
        if g is None:
            raise RuntimeError("upload() the geometry first")
        self.platform.make_current()
        rows = np.ascontiguousarray(
            np.concatenate([camera_from_local[:, :3], previous_from_current[:, :3]], axis=1), np.float32
        )
        GL.glBindBuffer(GL.GL_TEXTURE_BUFFER, g.transform_buffer)
        GL.glBufferSubData(GL.GL_TEXTURE_BUFFER, 0, rows.nbytes, rows)
        GL.glBindBuffer(GL.GL_TEXTURE_BUFFER, 0)
        for name, texture in (("transforms", g.transforms), ("labels", g.labels)):
            GL.glActiveTexture(GL.GL_TEXTURE0 + _UNITS[name])
            GL.glBindTexture(GL.GL_TEXTURE_BUFFER, texture)
        self.surfaces.reverse()  # last frame's target becomes `previous`
        self.surface_fbos.reverse()
        GL.glViewport(0, 0, self.width, self.height)
        GL.glDisable(GL.GL_MULTISAMPLE)
        GL.glDisable(GL.GL_BLEND)
        GL.glDisable(GL.GL_CULL_FACE)
        GL.glDepthMask(GL.GL_TRUE)

        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.surface_fbos[0])
        GL.glDrawBuffers(1, [GL.GL_COLOR_ATTACHMENT0])
        GL.glClearBufferuiv(GL.GL_COLOR, 0, np.zeros(4, np.uint32))
        GL.glClearBufferfv(GL.GL_DEPTH, 0, np.ones(1, np.float32))
        GL.glEnable(GL.GL_DEPTH_TEST)
        GL.glDepthFunc(GL.GL_LESS)
        GL.glUseProgram(self.surface_program)
        flip = np.diag([1.0, -1.0, 1.0, 1.0])  # target row 0 = the image's top row
        GL.glUniformMatrix4fv(
            self.surface_uniforms["projection"], 1, GL.GL_TRUE, np.ascontiguousarray(flip @ projection, np.float32)
        )
        GL.glBindVertexArray(g.vao)
        # Solids the camera is well outside of are drawn with back faces culled (half their triangles),
        # everything else double-sided. The projection's Y flip turns counter-clockwise front faces clockwise.
        GL.glFrontFace(GL.GL_CW)
        for cull, (counts, offsets) in self._draw_lists(camera_from_local[1:], projection).items():
            (GL.glEnable if cull else GL.glDisable)(GL.GL_CULL_FACE)
            if len(counts):
                pointers = offsets.ctypes.data_as(ctypes.POINTER(ctypes.c_void_p))  # byte offsets into the elements
                glMultiDrawElements(GL.GL_TRIANGLES, counts, GL.GL_UNSIGNED_INT, pointers, len(counts))
        GL.glDisable(GL.GL_CULL_FACE)
        GL.glFrontFace(GL.GL_CCW)
        result = None
        if read:
            GL.glDisable(GL.GL_DEPTH_TEST)
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.resolve_fbo)
            GL.glDrawBuffers(len(_OUTPUTS), [GL.GL_COLOR_ATTACHMENT0 + i for i in range(len(_OUTPUTS))])
            GL.glUseProgram(self.resolve_program)
            u = self.resolve_uniforms
            for name, texture in (("surface", self.surfaces[0]), ("previous", self.surfaces[1])):
                GL.glActiveTexture(GL.GL_TEXTURE0 + _UNITS[name])
                GL.glBindTexture(GL.GL_TEXTURE_2D, texture)
            GL.glUniform1i(u["has_previous"], int(has_previous))
            GL.glUniform4f(u["intrinsics"], *intrinsics)
            GL.glUniform1f(u["tolerance"], VISIBILITY_TOLERANCE)
            GL.glUniform1f(u["motion_limit"], motion_limit)
            GL.glBindVertexArray(self.empty_vao)
            GL.glDrawArrays(GL.GL_TRIANGLES, 0, 3)
            result = self._read()
        for name, target in (
            ("previous", GL.GL_TEXTURE_2D),
            ("surface", GL.GL_TEXTURE_2D),
            ("labels", GL.GL_TEXTURE_BUFFER),
            ("transforms", GL.GL_TEXTURE_BUFFER),
        ):
            GL.glActiveTexture(GL.GL_TEXTURE0 + _UNITS[name])
            GL.glBindTexture(target, 0)
        GL.glBindVertexArray(0)
        GL.glUseProgram(0)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
        return result

    def _draw_lists(
        self, camera_from_local: np.ndarray, projection: np.ndarray
    ) -> dict[bool, tuple[np.ndarray, np.ndarray]]:
        """(element counts, byte offsets) of the ranges to draw with back faces culled (True) and
        double-sided (False). Both shortcuts leave the image unchanged:

        - An object is skipped when its bounding box, taken to camera space (the box around the transformed
          box), lies wholly beyond one of the view frustum's planes.
        - A solid's back faces are culled when the camera and the part of the view in front of the near plane
          lie outside it: every view ray then enters the solid through a front face before it can meet a back
          face. That part of the view lies within the near-plane corners' distance of the camera, so a solid
          qualifies when its box is farther than that from the camera, and its transform does not mirror it
          (which would swap its front and back faces)."""
        g = self.geometry
        rotation = camera_from_local[:, :3, :3]
        centres = (rotation @ g.box_centres + camera_from_local[:, :3, 3:])[:, :, 0]  # [objects, 3], camera space
        halves = (np.abs(rotation) @ g.box_halves)[:, :, 0]
        # The frustum's planes a.x + d >= 0 (inside) from the projection's rows; a box is wholly outside one
        # when even its corner furthest along a stays below -d.
        planes = np.concatenate([projection[3] + projection[:3], projection[3] - projection[:3]])  # [6, 4]
        reach = centres @ planes[:, :3].T + halves @ np.abs(planes[:, :3]).T + planes[:, 3]
        in_view = (reach >= 0).all(axis=1)
        znear = projection[2, 3] / (projection[2, 2] - 1.0)
        near_corner = znear * np.sqrt(1.0 + 1.0 / projection[0, 0] ** 2 + 1.0 / projection[1, 1] ** 2)
        gap = np.maximum(np.abs(centres) - halves, 0.0)  # the camera is at the origin
        cull = in_view & (np.linalg.norm(gap, axis=1) > near_corner) & (np.linalg.det(rotation) > 0)
        culled, double = (
            _runs(g.solid_starts, cull),
            [_runs(g.solid_starts, in_view & ~cull), _runs(g.other_starts, in_view)],
        )
        return {True: culled, False: (np.concatenate([c for c, _ in double]), np.concatenate([o for _, o in double]))}

    def _read(self) -> IdPassOutput:
        """Each resolve target straight into a new array of its final type (no conversion, no flip)."""
        from OpenGL import GL
        from OpenGL.raw.GL.VERSION.GL_1_0 import glReadPixels

        GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
        arrays = {}
        for i, (name, (_, fmt, kind, dtype, channels)) in enumerate(_OUTPUTS.items()):
            array = np.empty((self.height, self.width, channels) if channels > 1 else (self.height, self.width), dtype)
            GL.glReadBuffer(GL.GL_COLOR_ATTACHMENT0 + i)
            glReadPixels(
                0,
                0,
                self.width,
                self.height,
                getattr(GL, fmt),
                getattr(GL, kind),
                array.ctypes.data_as(ctypes.c_void_p),
            )
            arrays[name] = array
        arrays["motion_valid"] = arrays["motion_valid"].view(bool)
        return IdPassOutput(**arrays)

    def delete(self) -> None:
        from OpenGL import GL

        if self.platform is None:
            return
        self.platform.make_current()
        if self.geometry is not None:
            self.geometry.delete()
        GL.glDeleteFramebuffers(3, [*self.surface_fbos, self.resolve_fbo])
        GL.glDeleteRenderbuffers(1 + len(self.outputs), [self.depth_buffer, *self.outputs])
        GL.glDeleteTextures(2, self.surfaces)
        GL.glDeleteVertexArrays(1, [self.empty_vao])
        GL.glDeleteProgram(self.surface_program)
        GL.glDeleteProgram(self.resolve_program)
        self.platform = None
        release_context()


__all__ = ["IdPass", "IdPassOutput", "acquire_context", "perspective", "release_context"]
