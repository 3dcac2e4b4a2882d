"""GLSL sources of the OpenGL splat renderer (engine/render/gl_splats.py).

One instanced quad per Gaussian, drawn as a 4-vertex triangle strip whose corners come from
gl_VertexID (no vertex buffer). Per-instance attributes, all in pixels of the image (OpenCV
convention, origin at the top-left corner of the top-left pixel):
  in_center  [2]  projected mean
  in_axis_u  [2]  half-extent vector along the major eigenvector of the 2D covariance
  in_axis_v  [2]  half-extent vector along the minor eigenvector
  in_extent  [1]  the half-extent in standard deviations (both axes share it)
  in_color   [4]  rgb and opacity
The quad's local coordinate `v_sigma` is the offset from the centre in standard deviations along
the two eigenvectors, so the Mahalanobis distance dᵀ Σ⁻¹ d is simply dot(v_sigma, v_sigma).
Image y maps to NDC y without a flip (v = 0 at NDC -1): framebuffer row 0 is the image's top
row, so a plain glReadPixels returns the image top-row-first. The framebuffer is larger than the
image by u_margin pixels on every side (window = image + margin): GL clips a point by its centre,
so points whose centre is off-image but whose square reaches into it must still be inside the
viewport.

Two primitives share the fragment maths: instanced quads aligned with the covariance eigenvectors
(tightest fill, ~2x the per-Gaussian overhead on llvmpipe) and axis-aligned point sprites (one
vertex per Gaussian, size ≤ 255 px).
"""

from __future__ import annotations

SPLAT_QUAD_VERTEX_SHADER = """
#version 330
uniform vec2 u_size;          // framebuffer size in pixels (width, height), margins included
uniform float u_margin;       // image offset inside the framebuffer in pixels
in vec2 in_center;
in vec2 in_axis_u;
in vec2 in_axis_v;
in float in_extent;
in vec4 in_color;
out vec2 v_sigma;
flat out vec4 v_color;
void main() {
    vec2 corner = vec2(float(gl_VertexID & 1), float(gl_VertexID >> 1)) * 2.0 - 1.0;
    vec2 pixel = in_center + corner.x * in_axis_u + corner.y * in_axis_v + u_margin;
    v_sigma = corner * in_extent;
    v_color = in_color;
    gl_Position = vec4(pixel / u_size * 2.0 - 1.0, 0.0, 1.0);
}
"""

SPLAT_POINT_VERTEX_SHADER = """
#version 330
uniform vec2 u_size;          // framebuffer size in pixels (width, height), margins included
uniform float u_margin;       // image offset inside the framebuffer in pixels
in vec2 in_center;
in vec2 in_axis_u;
in vec2 in_axis_v;
in float in_extent;
in vec4 in_color;
flat out vec2 v_center;       // window coordinates of the centre
flat out vec2 v_to_sigma_u;   // dot(d, v_to_sigma_u) = offset d in standard deviations along axis u
flat out vec2 v_to_sigma_v;
flat out float v_extent;
flat out vec4 v_color;
void main() {
    vec2 half_box = abs(in_axis_u) + abs(in_axis_v);
    v_center = in_center + u_margin;
    v_to_sigma_u = in_axis_u * (in_extent / max(dot(in_axis_u, in_axis_u), 1e-30));
    v_to_sigma_v = in_axis_v * (in_extent / max(dot(in_axis_v, in_axis_v), 1e-30));
    v_extent = in_extent;
    v_color = in_color;
    gl_PointSize = min(255.0, 2.0 * max(half_box.x, half_box.y));
    gl_Position = vec4(v_center / u_size * 2.0 - 1.0, 0.0, 1.0);
}
"""

_FRAGMENT_OUTPUT = """
    float alpha = min(u_alpha_max, v_color.a * exp(-0.5 * dot(sigma, sigma)));
    if (alpha < u_alpha_min) {
        discard;
    }
    f_color = vec4(v_color.rgb * alpha, alpha);  // premultiplied
}
"""

SPLAT_QUAD_FRAGMENT_SHADER = """
#version 330
uniform float u_alpha_min;    // fragments below this alpha are discarded (1/255)
uniform float u_alpha_max;    // alpha is capped here (0.99)
in vec2 v_sigma;
flat in vec4 v_color;
out vec4 f_color;
void main() {
    vec2 sigma = v_sigma;
""" + _FRAGMENT_OUTPUT

SPLAT_POINT_FRAGMENT_SHADER = """
#version 330
uniform float u_alpha_min;    // fragments below this alpha are discarded (1/255)
uniform float u_alpha_max;    // alpha is capped here (0.99)
flat in vec2 v_center;
flat in vec2 v_to_sigma_u;
flat in vec2 v_to_sigma_v;
flat in float v_extent;
flat in vec4 v_color;
out vec4 f_color;
void main() {
    vec2 d = gl_FragCoord.xy - v_center;  // gl_FragCoord is the pixel centre (u + 0.5, v + 0.5)
    vec2 sigma = vec2(dot(d, v_to_sigma_u), dot(d, v_to_sigma_v));
    if (max(abs(sigma.x), abs(sigma.y)) > v_extent) {
        discard;  // outside the eigen-aligned rectangle the quads cover: same footprint for both primitives
    }
""" + _FRAGMENT_OUTPUT
