"""A tiny FLAME-format model built in memory for tests that need a head but not the demo head."""

from __future__ import annotations

import numpy as np


def tiny_flame_arrays(n_shape: int = 300, n_expr: int = 100, seed: int = 0) -> dict[str, np.ndarray]:
    """A 2-triangle-strip 'head' with 6 vertices, 5 joints, random blendshapes."""
    rng = np.random.default_rng(seed)
    v = np.array([[0, 0, 0], [0.1, 0, 0], [0, 0.1, 0], [0.1, 0.1, 0], [0, 0.2, 0.02], [0.1, 0.2, 0.02]], dtype=np.float64)
    f = np.array([[0, 1, 2], [1, 3, 2], [2, 3, 4], [3, 5, 4]], dtype=np.int64)
    shapedirs = np.zeros((6, 3, n_shape + n_expr))
    shapedirs[:, :, :4] = rng.normal(0, 0.01, (6, 3, 4))
    shapedirs[:, :, n_shape : n_shape + 3] = rng.normal(0, 0.01, (6, 3, 3))
    weights = np.zeros((6, 5))
    weights[:, 1] = 1.0
    weights[:2, 1], weights[:2, 2] = 0.0, 1.0
    j_reg = np.full((5, 6), 1 / 6)
    return {
        "v_template": v,
        "f": f,
        "shapedirs": shapedirs,
        "posedirs": np.zeros((6, 3, 36)),
        "J_regressor": j_reg,
        "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
        "weights": weights,
    }
