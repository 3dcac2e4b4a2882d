"""FLAME model files: official chumpy pickles without chumpy, npz, and clear errors."""

from __future__ import annotations

import pickle
import sys
import types

import numpy as np
import pytest
import torch

from engine.head.flame_file import FlameFileError, read_flame_arrays
from engine.head.model import HeadModel
from engine.head.params import FlameParams
from tests.helpers_head import tiny_flame_arrays
from tests.helpers_head import write_chumpy_pickle as _write_chumpy_pickle


def test_chumpy_pickle_reads_without_chumpy(tmp_path):
    arrays = tiny_flame_arrays()
    _write_chumpy_pickle(tmp_path / "generic_model.pkl", arrays)
    assert "chumpy" not in sys.modules
    got = read_flame_arrays(tmp_path)  # a folder: finds generic_model.pkl
    for key, value in arrays.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)


def test_npz_and_pickle_give_the_same_head(tmp_path):
    arrays = tiny_flame_arrays()
    _write_chumpy_pickle(tmp_path / "generic_model.pkl", arrays)
    np.savez(tmp_path / "FLAME_NEUTRAL.npz", **arrays)
    a = HeadModel(read_flame_arrays(tmp_path / "generic_model.pkl"), "a", "a")
    b = HeadModel(read_flame_arrays(tmp_path / "FLAME_NEUTRAL.npz"), "b", "b")
    p = FlameParams.neutral(2)
    p = p.with_values(shape=torch.randn(300) * 0.5, expr=torch.randn(2, 100), jaw_pose=torch.tensor([[0.2, 0, 0], [0.1, 0, 0]]))
    torch.testing.assert_close(a(p), b(p))
    assert a(p).shape == (2, 6, 3)


def test_pickle_with_foreign_class_is_refused(tmp_path):
    path = tmp_path / "evil.pkl"
    with open(path, "wb") as fh:
        pickle.dump({"v_template": np.zeros((3, 3)), "x": types.SimpleNamespace(a=1)}, fh)
    with pytest.raises(FlameFileError, match="evil.pkl.*types.SimpleNamespace"):
        read_flame_arrays(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.pop("weights"), "missing arrays weights"),
        (lambda a: a.__setitem__("shapedirs", np.zeros((5, 3, 10))), r"shapedirs must be \[6, 3, \*\]"),
        (lambda a: a.__setitem__("f", np.array([[0, 1, 99]])), "face indices outside"),
        (lambda a: a["v_template"].__setitem__((0, 0), np.nan), "v_template holds NaN"),
    ],
)
def test_malformed_model_names_file_and_problem(tmp_path, change, message):
    arrays = tiny_flame_arrays()
    change(arrays)
    np.savez(tmp_path / "FLAME_NEUTRAL.npz", **arrays)
    with pytest.raises(FlameFileError, match=f"FLAME_NEUTRAL.npz: .*{message}"):
        read_flame_arrays(tmp_path)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FlameFileError, match="no FLAME model file in this folder"):
        read_flame_arrays(tmp_path)
    (tmp_path / "generic_model.pkl").write_bytes(b"\x80\x02garbage")
    with pytest.raises(FlameFileError, match="generic_model.pkl: cannot read FLAME model"):
        read_flame_arrays(tmp_path)


def test_extra_coefficients_dropped_with_warning():
    head = HeadModel(tiny_flame_arrays(n_shape=300, n_expr=50), "t", "t")
    p = FlameParams.neutral(1, 300, 100)
    quiet = head.fit_params(p)
    assert quiet.expr.shape == (1, 50)
    loud = p.with_values(expr=torch.cat([torch.zeros(1, 50), torch.ones(1, 50)], dim=1))
    with pytest.warns(UserWarning, match="expr has 100 coefficients.*takes 50"):
        assert head.fit_params(loud).expr.shape == (1, 50)
