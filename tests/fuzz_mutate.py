"""Mutations of valid files into hostile ones, driven by a random.Random (hypothesis' st.randoms() in the
tests, a seeded random.Random in bench/robustness.py), so both run the same generators.

Byte level: flips, truncation, junk, repeated chunks, digits made huge. Structure aware: JSON values of
the wrong type at any depth; npz arrays of the wrong dtype, shape or value (objects, NaN, 10^12 elements
declared); zip members renamed out of the folder, duplicated, dropped, declared 10 GB or decompressing
past what they declare.
"""

from __future__ import annotations

import copy
import io
import json
import random
import struct
import warnings
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np

Mutation = Callable[[bytes, random.Random], bytes]

HUGE = 10**12
JSON_VALUES: tuple[Any, ...] = (
    None, True, False, 0, -1, 2**70, 1e308, -1e-308, "", "x", "../../../../etc/passwd", "\x00", "é" * 300,
    [], [None], {}, {"a": None}, [[[[[[1]]]]]], list(range(50)), "NaN", 3.5, "1e999",
)


def deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


# ---- bytes ------------------------------------------------------------------------------------------------
def flip(data: bytes, rnd: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rnd.randint(1, 8)):
        if b:
            b[rnd.randrange(len(b))] = rnd.randrange(256)
    return bytes(b)


def truncate(data: bytes, rnd: random.Random) -> bytes:
    return data[: rnd.randrange(max(1, len(data)))]


def junk(data: bytes, rnd: random.Random) -> bytes:
    at = rnd.randrange(len(data) + 1)
    return data[:at] + rnd.randbytes(rnd.randint(1, 64)) + data[at:]


def repeat_chunk(data: bytes, rnd: random.Random) -> bytes:
    if not data:
        return data
    a = rnd.randrange(len(data))
    b = min(len(data), a + rnd.randint(1, 256))
    return data[:b] + data[a:b] * rnd.randint(1, 20) + data[b:]


def huge_digits(data: bytes, rnd: random.Random) -> bytes:
    """A run of ASCII digits (a count in a header, a size in JSON) made enormous."""
    runs = [(i, j) for i, j in _digit_runs(data)]
    if not runs:
        return flip(data, rnd)
    i, j = rnd.choice(runs)
    return data[:i] + rnd.choice([b"999999999999", b"18446744073709551616", b"0", b"-1"]) + data[j:]


def _digit_runs(data: bytes) -> list[tuple[int, int]]:
    out, i = [], 0
    while i < len(data) and len(out) < 200:
        if 48 <= data[i] <= 57:
            j = i
            while j < len(data) and 48 <= data[j] <= 57:
                j += 1
            out.append((i, j))
            i = j
        else:
            i += 1
    return out


def garbage(data: bytes, rnd: random.Random) -> bytes:
    return rnd.randbytes(rnd.randint(0, 512))


BYTE_MUTATIONS: tuple[Mutation, ...] = (flip, truncate, junk, repeat_chunk, huge_digits, garbage)


def mutate_bytes(data: bytes, rnd: random.Random) -> bytes:
    return rnd.choice(BYTE_MUTATIONS)(data, rnd)


# ---- JSON -------------------------------------------------------------------------------------------------
def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value[:8]):
            out += _paths(v, prefix + (i,))
    return out


def mutate_json_value(value: Any, rnd: random.Random) -> Any:
    """value with one node (anywhere) replaced by a value of another type, or a key removed."""
    paths = _paths(value)
    path = rnd.choice(paths)
    if not path:
        return copy.deepcopy(rnd.choice(JSON_VALUES))
    parent = value
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict) and rnd.random() < 0.2:
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(rnd.choice(JSON_VALUES))
    return value


def mutate_json(data: bytes, rnd: random.Random) -> bytes:
    """JSON text with a structural change (or, sometimes, a byte-level one, or nesting too deep to parse)."""
    roll = rnd.random()
    if roll < 0.15:
        return mutate_bytes(data, rnd)
    if roll < 0.2:
        return deep_json(rnd.choice([2000, 100_000])).encode()
    value = json.loads(data)
    for _ in range(rnd.randint(1, 3)):
        value = mutate_json_value(value, rnd)
    return json.dumps(value).encode()


# ---- npz --------------------------------------------------------------------------------------------------
def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def read_arrays(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _bad_array(value: np.ndarray, rnd: random.Random) -> np.ndarray:
    kind = rnd.randrange(9)
    if kind == 0:
        return value.astype(str)
    if kind == 1:
        return np.array([{"x": 1}, None], dtype=object)
    if kind == 2:
        return value.reshape(-1)[: rnd.randint(0, max(1, value.size))]
    if kind == 3:
        return value.reshape(*value.shape, 1) if value.ndim < 5 else value[None]
    if kind == 4:
        bad = value.astype(np.float64) if value.dtype.kind in "biuf" else np.zeros(value.shape)
        if bad.size:
            bad.reshape(-1)[rnd.randrange(bad.size)] = rnd.choice([np.nan, np.inf, -np.inf, 1e300])
        return bad
    if kind == 5:
        return np.zeros(value.shape, dtype=rnd.choice([np.complex64, np.bool_, np.int8, np.uint64]))
    if kind == 6:
        return np.zeros((), dtype=np.float32)
    if kind == 7:
        return np.zeros(value.shape + (0,), dtype=np.float32)
    return np.full(value.shape, rnd.choice([-1, 2**40, 0]), dtype=np.int64)


def mutate_arrays(arrays: dict[str, np.ndarray], rnd: random.Random) -> dict[str, np.ndarray]:
    out = dict(arrays)
    key = rnd.choice(sorted(out)) if out else "x"
    roll = rnd.random()
    if roll < 0.15 and out:
        del out[key]
    elif roll < 0.25:
        out[f"extra_{rnd.randrange(100)}"] = np.zeros(3)
    else:
        out[key] = _bad_array(np.asarray(out.get(key, np.zeros(3))), rnd)
    return out


def npz_huge_header(data: bytes, rnd: random.Random) -> bytes:
    """An npz whose member's .npy header declares 10^12 elements (the body stays small)."""
    members = _members(data)
    if not members:
        return garbage(data, rnd)
    name = rnd.choice(sorted(members))
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({HUGE}, 3), }}".encode()
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    members[name] = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\x00" * 64
    return _zip(members)


def mutate_npz(data: bytes, rnd: random.Random) -> bytes:
    """An npz with wrong arrays, a lying header, a hostile zip structure, or damaged bytes."""
    roll = rnd.random()
    if roll < 0.45:
        arrays = read_arrays(data)
        for _ in range(rnd.randint(1, 2)):
            arrays = mutate_arrays(arrays, rnd)
        try:
            return npz_bytes(arrays)
        except ValueError:  # arrays np.savez itself cannot write
            return npz_bytes({})
    if roll < 0.55:
        return npz_huge_header(data, rnd)
    if roll < 0.8:
        return mutate_zip(data, rnd)
    return mutate_bytes(data, rnd)


# ---- zip --------------------------------------------------------------------------------------------------
def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _zip(members: dict[str, bytes] | list[tuple[str, bytes]], compress: bool = False) -> bytes:
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", method) as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are one of the mutations
        for name, content in (members.items() if isinstance(members, dict) else members):
            zf.writestr(zipfile.ZipInfo(name), content, compress_type=method)
    return buffer.getvalue()


def declare_size(data: bytes, member: str, size: int) -> bytes:
    """The zip with member's uncompressed size in the central directory changed to size (ZIP64 extra field
    past 4 GB): what a zip bomb or a damaged archive declares."""
    cd = data.rfind(b"PK\x05\x06")
    eocd = bytearray(data[cd:])
    cd_start = struct.unpack("<I", eocd[16:20])[0]
    entries, pos, out = bytearray(), cd_start, bytearray(data[:cd_start])
    while data[pos:pos + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack("<HHH", data[pos + 28:pos + 34])
        end = pos + 46 + name_len + extra_len + comment_len
        entry = bytearray(data[pos:end])
        if data[pos + 46:pos + 46 + name_len].decode("utf-8", "replace") == member:
            if size >= 0xFFFFFFFF:
                entry[24:28] = struct.pack("<I", 0xFFFFFFFF)
                at = 46 + name_len
                entry[at:at] = struct.pack("<HHQ", 1, 8, size)
                entry[30:32] = struct.pack("<H", extra_len + 12)
            else:
                entry[24:28] = struct.pack("<I", size)
        entries += entry
        pos = end
    eocd[12:16] = struct.pack("<I", len(entries))
    return bytes(out + entries + eocd)


def mutate_zip(data: bytes, rnd: random.Random, inner: Callable[[str, bytes, random.Random], bytes] | None = None) -> bytes:
    """A zip with one hostile change; inner(name, content, rnd) mutates a member's content."""
    members = list(_members(data).items())
    if not members:
        return garbage(data, rnd)
    i = rnd.randrange(len(members))
    name, content = members[i]
    kind = rnd.randrange(8)
    if kind == 0:
        members[i] = (rnd.choice(["../escaped.npy", "/tmp/abs.npy", "a/../../b.npy", "..\\win.npy", "C:/x.npy"]), content)
    elif kind == 1:
        members.append((name, content))
    elif kind == 2:
        del members[i]
    elif kind == 3:
        return declare_size(_zip(members), name, rnd.choice([10 * 2**30, 2**40, 5 * 2**30]))
    elif kind == 4:  # a bomb: decompresses far past what it declares
        bomb = b"\x00" * (4 << 20)
        members[i] = (name, bomb)
        return declare_size(_zip(members, compress=True), name, rnd.randint(0, 2000))
    elif kind == 5 and inner is not None:
        members[i] = (name, inner(name, content, rnd))
    elif kind == 6:
        members[i] = (name, mutate_bytes(content, rnd))
    else:
        members = [(n, c) for n, c in members] + [(f"junk{rnd.randrange(9)}", rnd.randbytes(100))]
    try:
        return _zip(members)
    except (ValueError, struct.error):
        return garbage(data, rnd)
