"""DynamicAvatars engine: everything that computes. Imports no Qt and nothing from app/ or widgets/.

One deliberate import-time effect: OpenMP threads should sleep, not spin, when idle. PyTorch and the
numba rasterizer each run an OpenMP pool; with the default (spinning) wait policy, each pool's idle
threads starve the other's on a small CPU — measured on 2 cores under load: 1061 ms per posed 512²
frame spinning against 75 ms sleeping. The variable must be set before torch loads its OpenMP
runtime, so it is set here, as a default the user's environment can override.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
