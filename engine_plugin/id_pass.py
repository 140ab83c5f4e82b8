"""The G-buffer's geometry pass in plain OpenGL 3.3: object index, view depth and backward motion in one draw.

Why not pyrender's SEG mode: it issues a few dozen Python OpenGL calls per mesh primitive, which made the
demo street (about 200 primitives) cost over 100 ms per frame on llvmpipe, most of it Python. Here all
static geometry is one vertex buffer drawn once, and each moving object is one draw with two matrices, so a
frame is a handful of calls. The output is still exact: integer object indices in an R32UI target (no
blending, no multisampling), view depth and motion in a float target.

Per fragment the shader writes (motion x, motion y, view depth, visible in frame t-1): each vertex is
carried through both frames' model and view matrices, and the interpolated previous-camera position is
projected with the same pinhole as the current frame. Interpolating that position across a triangle is
exact because it is an affine function of the object-local position, which the rasteriser interpolates
perspective-correctly. Background pixels are a full-screen triangle drawn first: directions at infinity,
moved by the camera rotation alone. Visibility compares the point's depth in frame t-1 with frame t-1's
depth target, kept as a texture from the previous draw.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

import numpy as np

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")  # before OpenGL is first imported

_VERTEX = """
#version 330 core
layout(location = 0) in vec3 position;
layout(location = 1) in uint object_index;
uniform int sky;  // 1: the full-screen sky triangle, given in clip space
uniform mat4 model;
uniform mat4 prev_model;
uniform mat4 view;
uniform mat4 prev_view;
uniform mat4 projection;
flat out uint v_index;
out vec3 v_prev;
out float v_depth;
void main() {
    v_index = object_index;
    if (sky == 1) {
        gl_Position = vec4(position.xy, 0.0, 1.0);
        v_prev = vec3(0.0);
        v_depth = 0.0;
        return;
    }
    vec4 p = view * model * vec4(position, 1.0);
    v_prev = (prev_view * prev_model * vec4(position, 1.0)).xyz;
    v_depth = -p.z;
    gl_Position = projection * p;
}
"""

_FRAGMENT = """
#version 330 core
flat in uint v_index;
in vec3 v_prev;
in float v_depth;
uniform int sky;
uniform int has_previous;
uniform vec4 intrinsics;  // fx, fy, cx, cy in pixels, rows top to bottom
uniform vec2 size;        // width, height
uniform mat3 sky_rotation;  // camera(t) -> camera(t-1) rotation, for directions at infinity
uniform float tolerance;
uniform sampler2D previous;  // the previous frame's geometry target: .z is its view depth (0 = background)
layout(location = 0) out uint out_index;
layout(location = 1) out vec4 out_geometry;  // motion x, motion y (px, rows down), view depth, visible before

float depth_at(ivec2 q) {
    return texelFetch(previous, clamp(q, ivec2(0), ivec2(size) - 1), 0).z;
}

// Was a point at `there` (pixels, rows down) and view depth z (0: at infinity) visible in frame t-1?
// Surfaces: z must match frame t-1's depth there, interpolated bilinearly in 1/depth (exact on planes, since
// 1/depth is affine in screen space on a plane); next to a depth edge the interpolation mixes the two
// surfaces and the test fails, which is what we want there. The sky: the nearest texel was background.
float visible(vec2 there, float z) {
    if (there.x < 0.0 || there.y < 0.0 || there.x >= size.x || there.y >= size.y) return 0.0;
    float gy = size.y - there.y;  // textures count rows bottom-up
    if (z == 0.0) return depth_at(ivec2(floor(there.x), floor(gy))) == 0.0 ? 1.0 : 0.0;
    vec2 f = vec2(there.x - 0.5, gy - 0.5);
    ivec2 q = ivec2(floor(f));
    vec2 w = f - vec2(q);
    vec4 d = vec4(depth_at(q), depth_at(q + ivec2(1, 0)), depth_at(q + ivec2(0, 1)), depth_at(q + ivec2(1, 1)));
    vec4 inv = vec4(greaterThan(d, vec4(0.0))) / max(d, vec4(1e-30));  // background: 1/inf = 0
    float i = mix(mix(inv.x, inv.y, w.x), mix(inv.z, inv.w, w.x), w.y);
    if (i <= 0.0) return 0.0;
    return abs(z - 1.0 / i) <= tolerance * z ? 1.0 : 0.0;
}

void main() {
    out_index = v_index;
    vec2 here = vec2(gl_FragCoord.x, size.y - gl_FragCoord.y);
    vec3 p = v_prev;
    if (sky == 1) {
        p = sky_rotation * vec3((here.x - intrinsics.z) / intrinsics.x, -(here.y - intrinsics.w) / intrinsics.y, -1.0);
    }
    float z = -p.z;
    vec2 motion = vec2(0.0);
    float valid = 0.0;
    if (has_previous == 1 && z > 1e-6) {
        vec2 there = vec2(intrinsics.z + intrinsics.x * p.x / z, intrinsics.w - intrinsics.y * p.y / z);
        motion = there - here;
        valid = visible(there, sky == 1 ? 0.0 : z);
    }
    out_geometry = vec4(motion, v_depth, valid);
}
"""
VISIBILITY_TOLERANCE = 0.01  # relative depth difference still counted as the same surface


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


class Geometry:
    """Triangles uploaded once: a full-screen sky triangle, a static batch (world space) and one range per
    moving object (local space); every vertex carries its object's index."""

    SKY = np.array([[-1.0, -1.0, 0.0], [3.0, -1.0, 0.0], [-1.0, 3.0, 0.0]], np.float32)

    def __init__(self, static: list[tuple[int, np.ndarray]], dynamic: list[tuple[int, np.ndarray]]) -> None:
        """static: (object index, world-space triangle corners [N*3, 3]); dynamic: (object index, local corners)."""
        from OpenGL import GL

        parts = [(0, self.SKY), *static]
        self.static_count = sum(len(v) for _, v in static)
        offset = len(self.SKY) + self.static_count
        self.dynamic_ranges = []
        for index, corners in dynamic:
            self.dynamic_ranges.append((index, offset, len(corners)))
            parts.append((index, corners))
            offset += len(corners)
        positions = np.concatenate([c for _, c in parts]).astype(np.float32)
        indices = np.concatenate([np.full(len(c), i, np.uint32) for i, c in parts])
        self.vao = GL.glGenVertexArrays(1)
        GL.glBindVertexArray(self.vao)
        self.buffers = GL.glGenBuffers(2)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self.buffers[0])
        GL.glBufferData(GL.GL_ARRAY_BUFFER, positions.nbytes, positions, GL.GL_STATIC_DRAW)
        GL.glEnableVertexAttribArray(0)
        GL.glVertexAttribPointer(0, 3, GL.GL_FLOAT, GL.GL_FALSE, 0, ctypes.c_void_p(0))
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self.buffers[1])
        GL.glBufferData(GL.GL_ARRAY_BUFFER, indices.nbytes, indices, GL.GL_STATIC_DRAW)
        GL.glEnableVertexAttribArray(1)
        GL.glVertexAttribIPointer(1, 1, GL.GL_UNSIGNED_INT, 0, ctypes.c_void_p(0))
        GL.glBindVertexArray(0)

    def delete(self) -> None:
        from OpenGL import GL

        GL.glDeleteBuffers(2, self.buffers)
        GL.glDeleteVertexArrays(1, [self.vao])


class IdPass:
    """Renders (object index uint32 [H,W], geometry float32 [H,W,4]) for given matrices; rows top to bottom.

    geometry channels: backward motion x, y (px), view depth (0 where nothing was drawn), 1.0 where the point
    was visible in the previous frame. Index 0 is the background. The previous frame is whatever the last
    render() drew (its geometry target stays as a texture): pass has_previous=True only when that was the
    frame t-1 of the same scene; the caller keeps track."""

    def __init__(self, height: int, width: int) -> None:
        from OpenGL import GL
        from OpenGL.GL import shaders

        self.height, self.width = height, width
        self.platform = acquire_context()
        self.program = shaders.compileProgram(
            shaders.compileShader(_VERTEX, GL.GL_VERTEX_SHADER), shaders.compileShader(_FRAGMENT, GL.GL_FRAGMENT_SHADER)
        )
        names = ("sky", "has_previous", "model", "prev_model", "view", "prev_view", "projection", "intrinsics",
                 "size", "sky_rotation", "tolerance", "previous")
        self.uniforms = {n: GL.glGetUniformLocation(self.program, n) for n in names}
        self.fbo = GL.glGenFramebuffers(1)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.fbo)
        self.renderbuffers = GL.glGenRenderbuffers(2)
        for rb, fmt, attachment in zip(self.renderbuffers, (GL.GL_R32UI, GL.GL_DEPTH_COMPONENT32F),
                                       (GL.GL_COLOR_ATTACHMENT0, GL.GL_DEPTH_ATTACHMENT)):
            GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, rb)
            GL.glRenderbufferStorage(GL.GL_RENDERBUFFER, fmt, width, height)
            GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, attachment, GL.GL_RENDERBUFFER, rb)
        self.textures = list(GL.glGenTextures(2))  # geometry targets: [0] is drawn into, [1] holds the previous frame
        for tex in self.textures:
            GL.glBindTexture(GL.GL_TEXTURE_2D, tex)
            GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_RGBA32F, width, height, 0, GL.GL_RGBA, GL.GL_FLOAT, None)
            GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MIN_FILTER, GL.GL_NEAREST)
            GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MAG_FILTER, GL.GL_NEAREST)
        GL.glBindTexture(GL.GL_TEXTURE_2D, 0)
        GL.glFramebufferTexture2D(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT1, GL.GL_TEXTURE_2D, self.textures[0], 0)
        status = GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER)
        if status != GL.GL_FRAMEBUFFER_COMPLETE:
            raise RuntimeError(f"the G-buffer framebuffer is incomplete (status {status:#x})")
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
        self.geometry: Geometry | None = None

    def upload(self, static: list[tuple[int, np.ndarray]], dynamic: list[tuple[int, np.ndarray]]) -> None:
        self.platform.make_current()
        if self.geometry is not None:
            self.geometry.delete()
        self.geometry = Geometry(static, dynamic)

    def render(self, projection: np.ndarray, intrinsics: tuple[float, float, float, float], view: np.ndarray,
               prev_view: np.ndarray, models: dict[int, tuple[np.ndarray, np.ndarray]], has_previous: bool,
               read: bool = True) -> tuple[np.ndarray, np.ndarray] | None:
        """models: object index -> (model matrix at t, at t-1) for every dynamic object. read=False draws
        without reading back (to prime the previous-frame target)."""
        from OpenGL import GL

        if self.geometry is None:
            raise RuntimeError("upload() the geometry first")
        self.platform.make_current()
        self.textures.reverse()  # last frame's target becomes `previous`
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.fbo)
        GL.glFramebufferTexture2D(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT1, GL.GL_TEXTURE_2D, self.textures[0], 0)
        GL.glDrawBuffers(2, [GL.GL_COLOR_ATTACHMENT0, GL.GL_COLOR_ATTACHMENT1])
        GL.glActiveTexture(GL.GL_TEXTURE0)
        GL.glBindTexture(GL.GL_TEXTURE_2D, self.textures[1])
        GL.glViewport(0, 0, self.width, self.height)
        GL.glDisable(GL.GL_MULTISAMPLE)
        GL.glDisable(GL.GL_BLEND)
        GL.glDisable(GL.GL_CULL_FACE)
        GL.glClearBufferfv(GL.GL_DEPTH, 0, np.ones(1, np.float32))
        GL.glUseProgram(self.program)
        u = self.uniforms

        def matrix(name: str, m: np.ndarray) -> None:
            GL.glUniformMatrix4fv(u[name], 1, GL.GL_TRUE, np.ascontiguousarray(m, dtype=np.float32))

        matrix("projection", projection)
        matrix("view", view)
        matrix("prev_view", prev_view)
        rotation = (prev_view @ np.linalg.inv(view))[:3, :3]
        GL.glUniformMatrix3fv(u["sky_rotation"], 1, GL.GL_TRUE, np.ascontiguousarray(rotation, dtype=np.float32))
        GL.glUniform4f(u["intrinsics"], *intrinsics)
        GL.glUniform2f(u["size"], float(self.width), float(self.height))
        GL.glUniform1f(u["tolerance"], VISIBILITY_TOLERANCE)
        GL.glUniform1i(u["previous"], 0)
        GL.glUniform1i(u["has_previous"], int(has_previous))
        GL.glBindVertexArray(self.geometry.vao)
        # The sky first, everywhere, without touching the depth buffer; then the objects over it.
        GL.glDisable(GL.GL_DEPTH_TEST)
        GL.glUniform1i(u["sky"], 1)
        GL.glDrawArrays(GL.GL_TRIANGLES, 0, len(Geometry.SKY))
        GL.glUniform1i(u["sky"], 0)
        GL.glEnable(GL.GL_DEPTH_TEST)
        GL.glDepthFunc(GL.GL_LESS)
        identity = np.eye(4)
        matrix("model", identity)
        matrix("prev_model", identity)
        if self.geometry.static_count:
            GL.glDrawArrays(GL.GL_TRIANGLES, len(Geometry.SKY), self.geometry.static_count)
        for index, first, count in self.geometry.dynamic_ranges:
            now, before = models[index]
            matrix("model", now)
            matrix("prev_model", before)
            GL.glDrawArrays(GL.GL_TRIANGLES, first, count)
        GL.glBindVertexArray(0)
        GL.glUseProgram(0)
        GL.glBindTexture(GL.GL_TEXTURE_2D, 0)
        result = None
        if read:
            GL.glReadBuffer(GL.GL_COLOR_ATTACHMENT0)
            index_raw = GL.glReadPixels(0, 0, self.width, self.height, GL.GL_RED_INTEGER, GL.GL_UNSIGNED_INT)
            GL.glReadBuffer(GL.GL_COLOR_ATTACHMENT1)
            geometry_raw = GL.glReadPixels(0, 0, self.width, self.height, GL.GL_RGBA, GL.GL_FLOAT)
            index = np.frombuffer(index_raw, np.uint32).reshape(self.height, self.width)[::-1]
            geometry = np.frombuffer(geometry_raw, np.float32).reshape(self.height, self.width, 4)[::-1]
            result = index, geometry
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
        return result

    def delete(self) -> None:
        from OpenGL import GL

        if self.platform is None:
            return
        self.platform.make_current()
        if self.geometry is not None:
            self.geometry.delete()
        GL.glDeleteFramebuffers(1, [self.fbo])
        GL.glDeleteRenderbuffers(2, self.renderbuffers)
        GL.glDeleteTextures(2, self.textures)
        GL.glDeleteProgram(self.program)
        self.platform = None
        release_context()


__all__ = ["IdPass", "acquire_context", "perspective", "release_context"]
