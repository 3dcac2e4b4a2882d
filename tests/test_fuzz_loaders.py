"""Every file loader fuzzed: hostile mutations of a valid seed file (hypothesis drives tests/fuzz_mutate.py)
and raw garbage are either read or refused with the project's own error naming the file, within a time
bound; declared sizes (a ply of 10^12 vertices, a zip member of 10 GB, an .npy header of 10^12 elements,
a PNG of 10^10 pixels, a pickle memo of 10^9 entries) are refused before anything that size is allocated."""

from __future__ import annotations

import io
import pickle
import random
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.data.vhap_format import DatasetError
from engine.head.flame_file import FlameFileError, read_flame_arrays
from engine.io.atomic import FileFormatError
from tests import fuzz_mutate as fm
from tests.fuzz_cases import CASES, TIME_BOUND_S, case, png_declaring, seed_folder

FUZZ = settings(max_examples=30, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
NAMES = [c.name for c in CASES]


def check(outcome) -> None:
    assert outcome.kind != "escaped", outcome.detail
    assert outcome.seconds < TIME_BOUND_S, f"took {outcome.seconds:.1f} s: {outcome.detail}"


@pytest.mark.parametrize("name", NAMES)
def test_seed_file_is_read(name):
    c = case(name)
    folder = seed_folder()
    outcome = c.run(folder, c.seed(folder))
    assert outcome.kind == "accepted", outcome.detail


@pytest.mark.parametrize("name", NAMES)
def test_mutated_files_are_read_or_refused_clearly(name):
    c = case(name)
    folder = seed_folder()
    seed = c.seed(folder)
    kinds = set()

    @FUZZ
    @given(rnd=st.randoms(use_true_random=False))
    def run(rnd: random.Random) -> None:
        outcome = c.run(folder, c.mutate(seed, rnd))
        kinds.add(outcome.kind)
        check(outcome)

    run()
    assert "refused" in kinds  # the mutations do reach the checks


@pytest.mark.parametrize("name", NAMES)
def test_garbage_is_refused_clearly(name):
    c = case(name)
    folder = seed_folder()

    @settings(FUZZ, max_examples=15)
    @given(data=st.binary(max_size=4096))
    def run(data: bytes) -> None:
        outcome = c.run(folder, data)
        assert outcome.kind != "accepted"
        check(outcome)

    run()


def peak_mb(fn) -> float:
    """Peak traced allocation (MB) while fn runs (numpy and Python allocations are traced)."""
    tracemalloc.start()
    try:
        fn()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak / 2**20


def refused_small(name: str, data: bytes, errors=(FileFormatError, DatasetError, FlameFileError)) -> str:
    c = case(name)
    folder = seed_folder()
    outcomes = []
    peak = peak_mb(lambda: outcomes.append(c.run(folder, data)))
    assert outcomes[0].kind == "refused", outcomes[0].detail
    assert peak < 64, f"{peak:.0f} MB allocated to refuse it"
    assert outcomes[0].seconds < TIME_BOUND_S
    return outcomes[0].detail


def test_ply_header_declaring_a_trillion_vertices_is_refused_without_allocating():
    c = case("ply_binary")
    seed = c.seed(seed_folder())
    data = seed.replace(b"element vertex 300", b"element vertex 1000000000000", 1)
    assert "declares 1000000000000 vertices" in refused_small("ply_binary", data)
    ascii_seed = case("ply_ascii").seed(seed_folder())
    data = ascii_seed.replace(b"element vertex 40", b"element vertex 1000000000000", 1)
    assert "truncated or damaged" in refused_small("ply_ascii", data)


def test_zip_member_declaring_ten_gigabytes_is_refused_before_reading():
    seed = case("flame_params_npz").seed(seed_folder())
    assert "GiB uncompressed" in refused_small("flame_params_npz", fm.declare_size(seed, "expr.npy", 10 * 2**30))
    project = case("project_dap").seed(seed_folder())
    bomb = fm.declare_size(project, "avatar/point_cloud.ply", 10 * 2**30)
    assert "GiB uncompressed" in refused_small("project_dap", bomb)


def test_npy_header_declaring_a_trillion_elements_is_refused():
    seed = case("dataset_npz").seed(seed_folder())
    detail = refused_small("dataset_npz", fm.npz_huge_header(seed, random.Random(0)))
    assert "declares shape [1000000000000, 3]" in detail


def test_zip_bomb_decompressing_past_its_declared_size_is_refused():
    members = fm._members(case("selection_npz").seed(seed_folder()))
    members["weights.npy"] = b"\x00" * (16 << 20)
    bomb = fm.declare_size(fm._zip(members, compress=True), "weights.npy", 1000)
    refused_small("selection_npz", bomb)


def test_project_member_escaping_the_folder_is_refused_and_nothing_is_written(tmp_path):
    project = case("project_dap").seed(seed_folder())
    members = fm._members(project)
    for evil in ("../../escaped.ply", "/tmp/abs.ply", "avatar/../../x.ply"):
        data = fm._zip({**members, evil: b"ply"})
        assert "points outside the archive's folder" in refused_small("project_dap", data)
    assert not (seed_folder().parent / "escaped.ply").exists()


def test_png_declaring_ten_billion_pixels_is_refused_before_decoding():
    assert "larger than the" in refused_small("dataset_image", png_declaring((100_000, 100_000)))
    assert "larger than the" in refused_small("label_map", png_declaring((9_000, 9_000)))


def test_json_nested_too_deeply_is_refused():
    assert "nested too deeply" in refused_small("dataset_json", fm.deep_json(100_000).encode())
    assert "nested too deeply" in refused_small("avatar_manifest", fm.deep_json(100_000).encode())


def test_pickle_memo_index_asking_for_gigabytes_is_refused():
    seed = case("flame_masks_pkl").seed(seed_folder())
    evil = seed[:2] + b"N" + b"r" + struct.pack("<I", 0x7FFF_FFF0) + b"0" + seed[2:]  # NONE, LONG_BINPUT, POP
    assert "memo index" in refused_small("flame_masks_pkl", evil)


def test_sparse_matrix_with_indices_outside_its_shape_is_refused(tmp_path):
    """A crafted csc_matrix whose indices point past its shape (toarray would write out of bounds)."""
    import scipy.sparse

    from tests.helpers_head import tiny_flame_arrays

    arrays = tiny_flame_arrays(n_shape=4, n_expr=4)
    bad = scipy.sparse.csc_matrix(arrays["J_regressor"])
    bad.indices[:] = 10**6
    (tmp_path / "generic_model.pkl").write_bytes(pickle.dumps({**arrays, "J_regressor": bad}, protocol=2))
    with pytest.raises(FlameFileError, match="generic_model.pkl: 'J_regressor': a sparse matrix in the file is inconsistent"):
        read_flame_arrays(tmp_path / "generic_model.pkl")


def test_sparse_matrix_constructed_with_a_huge_shape_is_refused(tmp_path):
    payload = (b"\x80\x02}X\x0b\x00\x00\x00J_regressorcscipy.sparse\ncsc_matrix\nJ\x00\xca\x9a;J\x00\xca\x9a;\x86\x85Rs.")
    (tmp_path / "generic_model.pkl").write_bytes(payload)  # csc_matrix((10**9, 10**9)): a 8 GB index array
    errors = []

    def read() -> None:
        try:
            read_flame_arrays(tmp_path / "generic_model.pkl")
        except FlameFileError as exc:
            errors.append(str(exc))

    assert peak_mb(read) < 64
    assert "generic_model.pkl: " in errors[0] and "constructs a csc_matrix with arguments" in errors[0]


def test_npz_with_object_arrays_is_refused_without_unpickling(tmp_path):
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(tmp_path / "flame_param.npz", "w") as zf:
        zf.writestr("expr.npy", buffer.getvalue())
    from engine.avatar.flame_npz import load_flame_params

    with pytest.raises(FileFormatError, match="flame_param.npz: array 'expr' holds object values"):
        load_flame_params(tmp_path / "flame_param.npz")


def test_manifest_naming_a_head_file_the_system_refuses_is_refused_clearly():
    """Found by bench/robustness.py: a head path too long for the file system escaped as OSError."""
    import json

    seed = json.loads(case("avatar_manifest").seed(seed_folder()))
    detail = refused_small("avatar_manifest", json.dumps({**seed, "head": "\u00e9" * 300}).encode())
    assert "avatar.json: its head model cannot be loaded" in detail
