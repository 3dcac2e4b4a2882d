"""A tiny FLAME-format model built in memory for tests that need a head but not the demo head."""

from __future__ import annotations

import copyreg
import pickle
import sys
import types

import numpy as np
import scipy.sparse


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


def write_chumpy_pickle(path, arrays: dict[str, np.ndarray]) -> None:
    """Write a pickle shaped like the official FLAME file: chumpy Ch objects and a sparse J_regressor."""
    fake = types.ModuleType("chumpy.ch")

    class Ch:  # stands in for chumpy.ch.Ch while pickling only
        def __init__(self, x: np.ndarray) -> None:
            self.x = x

        def __reduce_ex__(self, protocol):
            return (copyreg._reconstructor, (Ch, object, None), {"x": self.x, "_dirty_vars": set()})

    Ch.__module__ = "chumpy.ch"
    Ch.__qualname__ = "Ch"
    fake.Ch = Ch
    sys.modules["chumpy"] = types.ModuleType("chumpy")
    sys.modules["chumpy.ch"] = fake
    try:
        data = dict(arrays)
        for key in ("v_template", "shapedirs", "weights"):
            data[key] = Ch(arrays[key])
        data["J_regressor"] = scipy.sparse.csc_matrix(arrays["J_regressor"])
        data["bs_style"] = "lbs"
        with open(path, "wb") as fh:
            pickle.dump(data, fh, protocol=2)
    finally:
        del sys.modules["chumpy.ch"], sys.modules["chumpy"]
