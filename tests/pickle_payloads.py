"""Hostile pickles: a REDUCE (or INST) that calls os / subprocess / builtins / eval and friends, written
opcode by opcode for protocols 0, 2, 4 and 5, alone or as a value inside the model dictionary.

Every payload touches SENTINEL when it runs, so a test can prove none ran.
"""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

SENTINEL = Path(tempfile.gettempdir()) / "dynamicavatars-pickle-payload-ran"
_TOUCH = f"touch {SENTINEL}"
_PY = f"open({str(SENTINEL)!r}, 'w').close()"

PAYLOADS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("os", "system", (_TOUCH,)),
    ("posix", "system", (_TOUCH,)),
    ("nt", "system", (_TOUCH,)),
    ("subprocess", "Popen", (_TOUCH,)),
    ("subprocess", "check_output", (_TOUCH,)),
    ("subprocess", "getoutput", (_TOUCH,)),
    ("builtins", "eval", (_PY,)),
    ("builtins", "exec", (_PY,)),
    ("__builtin__", "eval", (_PY,)),
    ("builtins", "__import__", ("os",)),
    ("builtins", "getattr", ("os", "system")),
    ("builtins", "open", (str(SENTINEL), "w")),
    ("builtins", "compile", (_PY, "x", "exec")),
    ("importlib", "import_module", ("os",)),
    ("numpy.testing._private.utils", "runstring", (_PY,)),
    ("numpy", "load", (str(SENTINEL),)),
    ("numpy.lib.npyio", "load", (str(SENTINEL),)),
    ("numpy_evil", "ndarray", ()),
    ("scipy.sparse", "load_npz", (str(SENTINEL),)),
    ("shutil", "rmtree", (str(SENTINEL.parent / "nothing-here"),)),
    ("pickle", "loads", ("x",)),
    ("pty", "spawn", ("true",)),
    ("code", "InteractiveInterpreter", ()),
    ("torch", "load", (str(SENTINEL),)),
)
"""(module, callable, string arguments) of every payload."""


def _text(value: str, protocol: int) -> bytes:
    raw = value.encode("utf-8")
    if protocol == 0:
        return b"V" + value.encode("raw_unicode_escape") + b"\n"
    if protocol >= 4 and len(raw) < 256:
        return b"\x8c" + bytes([len(raw)]) + raw  # SHORT_BINUNICODE
    return b"X" + struct.pack("<I", len(raw)) + raw  # BINUNICODE


def _call(module: str, name: str, args: tuple[str, ...], protocol: int, inst: bool = False) -> bytes:
    """Opcodes leaving module.name(*args) on the stack."""
    arguments = b"(" + b"".join(_text(a, protocol) for a in args)  # MARK, args
    if inst:  # INST: MARK args INST module\nname\n
        return arguments + b"i" + module.encode() + b"\n" + name.encode() + b"\n"
    if protocol >= 4:
        target = _text(module, protocol) + _text(name, protocol) + b"\x93"  # STACK_GLOBAL
    else:
        target = b"c" + module.encode() + b"\n" + name.encode() + b"\n"  # GLOBAL
    return target + arguments + b"t" + b"R"  # TUPLE, REDUCE


def payload_pickle(payload: tuple[str, str, tuple[str, ...]], protocol: int, in_dict: bool = True,
                   inst: bool = False) -> bytes:
    """A pickle whose loading would call the payload; in_dict puts it under 'v_template' of a dictionary."""
    module, name, args = payload
    head = b"" if protocol == 0 else b"\x80" + bytes([protocol])
    call = _call(module, name, args, protocol, inst)
    if not in_dict:
        return head + call + b"."
    return head + b"}" + _text("v_template", protocol) + call + b"s" + b"."  # EMPTY_DICT key value SETITEM
