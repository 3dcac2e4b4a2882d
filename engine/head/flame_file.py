"""Reading FLAME-format model files without chumpy.

The official FLAME pickles (generic_model.pkl, flame2023.pkl, FLAME_NEUTRAL.pkl) hold chumpy
arrays and scipy sparse matrices, written by Python 2. chumpy does not import on Python 3.11, so a
restricted unpickler turns chumpy objects into numpy arrays and refuses any other class.
The .npz variant (FLAME2020/2023 npz, and our embedded demo head) is read with numpy.
"""

from __future__ import annotations

import functools
import io
import os
import pickle
import pickletools
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import UserError
from engine.io.npz import read_npz

REQUIRED_KEYS: tuple[str, ...] = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "kintree_table", "weights")
"""Arrays every FLAME-format model file must hold."""

MODEL_FILE_NAMES: tuple[str, ...] = (
    "FLAME_NEUTRAL.npz",
    "FLAME_NEUTRAL.pkl",
    "flame2023.pkl",
    "flame2023_no_jaw.pkl",
    "generic_model.pkl",
    "FLAME_MALE.pkl",
    "FLAME_FEMALE.pkl",
)
"""File names looked for, in order, when a folder is given."""


NUMPY_MODULES: frozenset[str] = frozenset({
    "numpy", "numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric", "numpy._core.numeric",
})
"""Modules whose array constructors a FLAME pickle may name (numpy 1 and 2 spellings)."""

MAX_PICKLE_BYTES = 1 << 30  # largest pickle read (FLAME 2023 is ~100 MB)
MAX_MEMO = 1 << 20  # largest memo index a pickle may use (FLAME's use a few dozen)
MAX_ARRAY_ELEMENTS = 1 << 28
"""Most elements one array of a model file may expand to (2 GiB of float64; FLAME's largest, shapedirs, has
5023 × 3 × 400 = 6 million)."""


class FlameFileError(UserError, ValueError):
    """A FLAME model file is missing, unreadable or malformed."""


class _ChumpyStandIn:
    """Takes the place of a chumpy object while unpickling; keeps its state."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def to_numpy(self) -> np.ndarray:
        state = self.state
        if isinstance(state, dict):
            for key in ("x", "a", "_x"):
                if key in state:
                    return np.asarray(_to_plain(state[key]))
        raise FlameFileError("a chumpy array in the model file has no data field ('x')")


class FlameUnpickler(pickle.Unpickler):
    """Allows numpy arrays, scipy sparse matrices and chumpy stand-ins; nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyStandIn
        if module in NUMPY_MODULES and name in {"ndarray", "dtype", "_reconstruct", "scalar", "_frombuffer"}:
            from numpy._core import multiarray, numeric

            found = getattr(multiarray, name, None) or getattr(numeric, name, None)
            if found is not None:
                return found
        if (module == "scipy.sparse" or module.startswith("scipy.sparse.")) and name in {"csc_matrix", "csr_matrix", "coo_matrix"}:
            return _sparse_stand_in(name)
        if module in {"copy_reg", "copyreg"} and name == "_reconstructor":
            import copyreg

            return copyreg._reconstructor  # type: ignore[attr-defined]
        if module == "_codecs" and name == "encode":  # bytes written by Python 3 under protocol 2
            import _codecs

            return _codecs.encode
        if module in {"__builtin__", "builtins"} and name in {"object", "set", "frozenset", "list", "tuple", "dict"}:
            import builtins

            return getattr(builtins, name)
        raise FlameFileError(f"model file refers to {module}.{name}, which a FLAME file should not contain")


_FlameUnpickler = FlameUnpickler  # old private name, kept for existing imports


@functools.cache
def _sparse_stand_in(name: str) -> type:
    """A scipy sparse matrix class that a pickle can restore from its state (as FLAME's files do) but not
    construct with arguments (which could ask for an enormous index array)."""
    import scipy.sparse

    def refuse(self: Any, *args: Any, **kwargs: Any) -> None:
        raise FlameFileError(f"the file constructs a {name} with arguments, which a FLAME file does not do")

    return type(name, (getattr(scipy.sparse, name),), {"__init__": refuse, "__module__": "scipy.sparse"})


def _to_plain(value: Any) -> Any:
    """numpy array (or the value itself) for chumpy stand-ins and sparse matrices; FlameFileError for a
    sparse matrix whose dense form would be larger than MAX_ARRAY_ELEMENTS."""
    if isinstance(value, _ChumpyStandIn):
        return value.to_numpy()
    if hasattr(value, "toarray") and "scipy.sparse" in type(value).__module__:
        try:
            rows, cols = (int(n) for n in value.shape)
        except (TypeError, ValueError, AttributeError):
            raise FlameFileError("a sparse matrix in the file has no valid shape") from None
        if rows < 0 or cols < 0 or rows * cols > MAX_ARRAY_ELEMENTS:
            raise FlameFileError(f"a sparse matrix in the file declares {rows} x {cols} entries, more than allowed")
        try:  # indices outside the shape would make toarray write outside its array
            value._check() if hasattr(value, "_check") else value.check_format(full_check=True)
        except Exception as exc:  # noqa: BLE001 - any inconsistency is a damaged file
            raise FlameFileError(f"a sparse matrix in the file is inconsistent ({exc})") from None
        return value.toarray()
    return value


def plain_arrays(raw: Any, file: Path) -> dict[str, np.ndarray]:
    """{key: numpy array} of an unpickled model dictionary (chumpy and sparse values made dense; text and
    entries that are not arrays skipped); FlameFileError naming file for a required entry that is not an
    array of numbers, or for any value that cannot be made an array."""
    if not isinstance(raw, dict):
        raise FlameFileError(f"{file}: expected a dictionary of arrays, found {type(raw).__name__}")
    out = {}
    for key, value in raw.items():
        if isinstance(value, (str, bytes)):
            continue
        try:
            array = np.asarray(_to_plain(value))
        except FlameFileError as exc:
            raise FlameFileError(f"{file}: {key!r}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - whatever a crafted value raises is a malformed file
            raise FlameFileError(f"{file}: {key!r} is not an array ({type(exc).__name__}: {exc})") from None
        kinds = "biuf" if key in REQUIRED_KEYS else "biufUS"
        if array.dtype.kind not in kinds and key not in REQUIRED_KEYS:
            continue  # extra entries we do not use (None, flags)
        if array.dtype.kind not in kinds or array.size > MAX_ARRAY_ELEMENTS:
            raise FlameFileError(f"{file}: {key!r} is not an array of numbers ({array.dtype}, {array.size} values)")
        out[str(key)] = array
    return out


def _check_opcodes(data: bytes) -> None:
    """Walk the pickle's opcodes without running them: refuses malformed streams and memo indices that
    would make the unpickler allocate a huge memo table (a 30-byte file can ask for gigabytes)."""
    for opcode, arg, _ in pickletools.genops(io.BytesIO(data)):
        if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET") and int(arg) > MAX_MEMO:
            raise FlameFileError(f"the pickle's memo index {int(arg)} is far beyond any FLAME file's")
        if opcode.name == "STOP":
            return


def read_restricted_pickle(path: Path, what: str) -> Any:
    """The object in a FLAME-family pickle (Python 2 or 3), read by FlameUnpickler.

    Raises FlameFileError naming the file and the problem (`what` names the kind of file).
    """
    try:
        if os.path.getsize(path) > MAX_PICKLE_BYTES:
            raise FlameFileError(f"larger than the {MAX_PICKLE_BYTES >> 20} MiB a FLAME file can be")
        with open(path, "rb") as fh:
            data = fh.read()
        _check_opcodes(data)
        return FlameUnpickler(io.BytesIO(data), encoding="latin1").load()
    except FlameFileError as exc:
        raise FlameFileError(f"{path}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any parse failure becomes one clear message
        raise FlameFileError(f"{path}: cannot read {what} ({type(exc).__name__}: {exc})") from None


def find_model_file(path: str | os.PathLike) -> Path:
    """The model file itself, or the first known model file inside a folder."""
    p = Path(path)
    if p.is_dir():
        for name in MODEL_FILE_NAMES:
            if (p / name).is_file():
                return p / name
        raise FlameFileError(f"{p}: no FLAME model file in this folder (looked for {', '.join(MODEL_FILE_NAMES)})")
    if not p.is_file():
        raise FlameFileError(f"{p}: FLAME model file not found")
    return p


def read_flame_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All arrays of a FLAME-format model (.pkl or .npz, or a folder holding one), as numpy.

    Raises FlameFileError naming the file and the problem.
    """
    file = find_model_file(path)
    if file.suffix == ".npz":
        raw: Any = read_npz(file, lambda problem: FlameFileError(f"{file}: cannot read FLAME model ({problem})"))
    else:
        raw = read_restricted_pickle(file, "FLAME model")
    arrays = plain_arrays(raw, file)
    missing = [k for k in REQUIRED_KEYS if k not in arrays]
    if missing:
        raise FlameFileError(f"{file}: missing arrays {', '.join(missing)}")
    _check_shapes(file, arrays)
    return arrays


def _check_shapes(file: Path, a: dict[str, np.ndarray]) -> None:
    v = a["v_template"]
    if v.ndim != 2 or v.shape[1] != 3:
        raise FlameFileError(f"{file}: v_template must be [V, 3], got {v.shape}")
    n = v.shape[0]
    expect = {
        "f": (None, 3),
        "shapedirs": (n, 3, None),
        "posedirs": (n, 3, None),
        "J_regressor": (None, n),
        "weights": (n, None),
        "kintree_table": (2, None),
    }
    for key, shape in expect.items():
        got = a[key].shape
        if len(got) != len(shape) or any(s is not None and s != g for s, g in zip(shape, got)):
            want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
            raise FlameFileError(f"{file}: {key} must be {want}, got {list(got)}")
    joints = a["J_regressor"].shape[0]
    if a["weights"].shape[1] != joints or a["kintree_table"].shape[1] != joints:
        raise FlameFileError(f"{file}: J_regressor, weights and kintree_table disagree on the joint count")
    if a["f"].size and (a["f"].min() < 0 or a["f"].max() >= n):
        raise FlameFileError(f"{file}: face indices outside 0..{n - 1}")
    for key in ("v_template", "shapedirs", "posedirs", "weights"):
        if not np.isfinite(a[key]).all():
            raise FlameFileError(f"{file}: {key} holds NaN or infinite values")
