"""The numbers of the 3DGS / gsplat rasterization rule, shared by every backend (torch reference, numba
training kernels, numba viewer kernels, OpenGL, gsplat).

Projection: the 2D covariance gets LOWPASS_EPS px² on its diagonal; a Gaussian's screen radius is
RADIUS_SIGMAS standard deviations. Compositing, front to back in depth order: alpha = min(ALPHA_MAX,
o·exp(−σ)), alphas below ALPHA_MIN are skipped, and a pixel stops before the Gaussian that would take its
transmittance to T_MIN or below. The CPU kernels work on TILE × TILE pixel tiles and widen the analytic
ellipse of a Gaussian (σ ≤ ln(255·o)) by SPAN_MARGIN px so that the per-pixel alpha test stays the rule.
"""

from __future__ import annotations

LOWPASS_EPS = 0.3  # pixels², added to the 2D covariance diagonal (3DGS / gsplat dilation)
RADIUS_SIGMAS = 3.33  # screen radius in standard deviations (gsplat's conservative bound)
ALPHA_MIN = 1.0 / 255.0  # alphas below this are skipped
ALPHA_MAX = 0.99  # alphas are clamped to this
T_MIN = 1e-4  # a pixel stops when its transmittance would fall to this or below
SPAN_MARGIN = 1e-6  # pixels: a Gaussian's ellipse widened a hair (the per-pixel alpha test stays exact)
TILE = 16  # tile side in pixels (the unit of parallel work; gsplat's tile size too)
