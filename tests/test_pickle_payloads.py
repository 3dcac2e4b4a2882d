"""The FLAME unpickler runs nothing but array, sparse-matrix and chumpy stand-in constructors: pickles
whose REDUCE / INST would call os, subprocess, builtins (eval, exec, __import__, open), importlib, numpy's
or torch's loaders are refused with a FlameFileError naming the file and the callable, and never run."""

from __future__ import annotations

import copyreg
import pickle

import pytest

from engine.head.flame_file import FlameFileError, read_flame_arrays
from engine.head.flame_masks import read_flame_masks
from tests.pickle_payloads import PAYLOADS, SENTINEL, payload_pickle


@pytest.fixture(autouse=True)
def no_sentinel():
    SENTINEL.unlink(missing_ok=True)
    yield
    ran = SENTINEL.exists()
    SENTINEL.unlink(missing_ok=True)
    assert not ran, "a payload ran"


def test_the_payloads_do_run_under_the_plain_unpickler():
    """The test payloads are real: pickle.loads runs them (so their refusal below means something)."""
    pickle.loads(payload_pickle(PAYLOADS[0], protocol=2, in_dict=False))
    assert SENTINEL.exists()
    SENTINEL.unlink()


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
@pytest.mark.parametrize("payload", PAYLOADS, ids=[f"{m}.{n}" for m, n, _ in PAYLOADS])
def test_reduce_payloads_are_refused(tmp_path, payload, protocol):
    module, name, _ = payload
    for in_dict, reader, file in ((True, read_flame_arrays, "generic_model.pkl"),
                                  (False, read_flame_masks, "FLAME_masks.pkl")):
        path = tmp_path / file
        path.write_bytes(payload_pickle(payload, protocol, in_dict=in_dict))
        with pytest.raises(FlameFileError) as info:
            reader(path)
        assert str(info.value).startswith(f"{path}: ")
        assert f"{module}.{name}" in str(info.value)


@pytest.mark.parametrize("payload", PAYLOADS[:8], ids=[f"{m}.{n}" for m, n, _ in PAYLOADS[:8]])
def test_inst_payloads_are_refused(tmp_path, payload):
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(payload_pickle(payload, protocol=0, inst=True))
    with pytest.raises(FlameFileError, match="which a FLAME file should not contain"):
        read_flame_arrays(path)


def test_payload_hidden_in_a_chumpy_state_is_refused(tmp_path):
    """The payload sits inside the state of a chumpy object, where the real FLAME files keep their arrays."""
    call = payload_pickle(PAYLOADS[0], protocol=2, in_dict=False)[2:-1]
    stream = (b"\x80\x02}X\n\x00\x00\x00v_template" + b"ccopy_reg\n_reconstructor\ncchumpy.ch\nCh\nc__builtin__\nobject\nN\x87R"
              + b"}X\x01\x00\x00\x00x" + call + b"sb" + b"s.")
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(stream)
    with pytest.raises(FlameFileError, match="os.system"):
        read_flame_arrays(path)


def test_extension_registry_payload_is_refused(tmp_path):
    """EXT1 looks the callable up in copyreg's extension registry; it still goes through find_class."""
    copyreg.add_extension("os", "system", 0x7E)
    try:
        stream = b"\x80\x02\x82\x7e(X" + len(b"true").to_bytes(4, "little") + b"truetR."
        path = tmp_path / "generic_model.pkl"
        path.write_bytes(stream)
        with pytest.raises(FlameFileError, match="os.system"):
            read_flame_arrays(path)
    finally:
        copyreg.remove_extension("os", "system", 0x7E)
