"""The channel's FlatBuffers encoder and decoder, driven by the generated bindings.

flatc's Python object API (`T.Pack` on a `flatbuffers.Builder`, `T.InitFromObj`
on the accessor classes) costs more per `consume()` than mediasoup's whole Node
layer: the pure-Python Builder makes about ten calls per scalar, and unpacking
goes through one accessor call (with its own vtable lookup) per field. Profiled
with ``bench.control_plane``, building the request was 41 % of ``consume()``'s
CPU and building + unpacking 74 % of ``create_webrtc_transport()``'s.

So the object-API classes stay the data model (everything above builds and
reads `...T` objects) but are encoded and decoded here, by one plan per class:
the field's slot, scalar type and default, learnt once from the bindings
themselves (each field's generated ``Add`` function is called on a recording
builder; the type comments of ``T.__init__`` and the ``Pack``/``_UnPack`` code
name the child classes, vector element types and union members). A message
is written front to back into one bytearray with ``struct.pack_into`` and
read with ``struct.unpack_from``; the layout is
ordinary FlatBuffers (aligned scalars, vtables before their tables, children
after their parents), so the worker reads it as it reads the Node layer's.

Import it as `media.fbs_codec`, which runs this module compiled with mypyc
(``scripts/build-codec``) when it is built from this very source: the code
must stay mypyc-compatible, and some of its type hints are there for mypyc
(`Final` constants and structs, the typed struct readers of the decoder).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
import struct
from collections.abc import Callable
from typing import Any, Final

_SCALAR_FORMATS = {
    "Bool": "?", "Uint8": "B", "Int8": "b", "Uint16": "H", "Int16": "h", "Uint32": "I", "Int32": "i",
    "Uint64": "Q", "Int64": "q", "Float32": "f", "Float64": "d",
}
"""flatbuffers.Builder's Prepend<Type> names -> struct formats (little-endian, standard sizes)."""

# Field kinds. (Final, here and below: mypyc then inlines the constants and keeps the
# structs in C globals instead of looking them up in the module's dict.)
SCALAR: Final = 0
STRING: Final = 1
TABLE: Final = 2
UNION: Final = 3
VEC_SCALAR: Final = 4
VEC_STRING: Final = 5
VEC_TABLE: Final = 6

_U32: Final = struct.Struct("<I")
_I32: Final = struct.Struct("<i")
_U16: Final = struct.Struct("<H")
_pack_u32: Final = _U32.pack_into
_Unpack1 = Callable[[bytes | bytearray, int], tuple[int]]
"""A one-integer struct's unpack_from; typed so that mypyc does the offset arithmetic on C integers."""
_unpack_u32: Final[_Unpack1] = _U32.unpack_from
_unpack_i32: Final[_Unpack1] = _I32.unpack_from
_unpack_u16: Final[_Unpack1] = _U16.unpack_from


class _Recorder:
    """Stands in for flatbuffers.Builder to learn what a generated function writes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any) -> None:
            self.calls.append((name, args))

        return record


_NEVER = object()
"""The `skip` of a field always written when set (offsets, optional scalars)."""


class Field:
    __slots__ = ("attr", "bit", "child", "default", "elem_size", "fmt", "kind", "pack_into", "size", "skip",
                 "slot", "union_type", "unpack_from")

    def __init__(self, attr: str, slot: int, kind: int) -> None:
        self.attr = attr
        self.slot = slot
        self.kind = kind
        self.fmt = ""
        self.size = 4
        """Bytes inline in the table."""
        self.elem_size = 0
        self.default: Any = None
        self.child: Any = None
        """TABLE/VEC_TABLE: the child's object-API class; UNION: {type number: class}."""
        self.union_type = ""
        """UNION: the attribute holding the member's type number."""
        self.skip: Any = _NEVER
        """A scalar equal to this is left out (the schema default, as flatbuffers.Builder does)."""
        self.pack_into: Any = None
        self.unpack_from: Any = None
        self.bit = 0
        """This field's bit in a `Shape`'s key (set by its Plan)."""

    def set_format(self, fmt: str) -> None:
        """The scalar's (or a VEC_SCALAR's element's) struct format."""
        self.fmt = fmt
        packer = struct.Struct("<" + fmt)
        self.elem_size = packer.size
        if self.kind == SCALAR:
            self.size = packer.size  # inline; an offset takes 4 bytes whatever it points to
        self.pack_into = packer.pack_into
        self.unpack_from = packer.unpack_from


class Plan:
    """How one object-API class maps to its table."""

    __slots__ = ("cls", "fields", "layout", "shapes", "template")

    def __init__(self, cls: type, fields: list[Field]) -> None:
        self.cls = cls
        self.fields = fields
        self.layout = [f for f in fields if f.kind != SCALAR] + sorted(
            (f for f in fields if f.kind == SCALAR), key=lambda f: -f.size
        )
        """Inline order: offsets, then scalars widest first, so each lands aligned."""
        for i, field in enumerate(self.layout):
            field.bit = 1 << i
        self.shapes: dict[int, Shape] = {}
        """Which fields are present (their bits) -> their layout."""
        self.template = dict(vars(cls()))
        """The defaults an absent field reads as (flatc's T() holds the schema's)."""

    def shape(self, mask: int) -> Shape:
        found = self.shapes[mask] = Shape([field for field in self.layout if field.bit & mask])
        return found


def _resolve(dotted: str) -> Any:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


@functools.cache
def _union_members(creator: str) -> dict[int, type]:
    """`FBS.X.BodyCreator` -> {type number: member's object-API class}, from its source."""
    func = _resolve(creator)
    enum = _resolve(creator.removesuffix("Creator"))
    members: dict[int, type] = {}
    source = inspect.getsource(func)
    pattern = r"unionType == \w+\(\)\.(\w+):\s*(?:import [\w.]+\s*)?return ([\w.]+)\.InitFromBuf"
    for name, cls in re.findall(pattern, source):
        members[int(getattr(enum, name))] = _resolve(cls)
    return members


_plans: dict[type, Plan] = {}


def plan(cls: Any) -> Plan:
    """The plan of an object-API class (``FooT``), learnt once from its generated module."""
    found = _plans.get(cls)
    if found is None:
        found = _plans[cls] = _learn(cls)
    return found


def _learn(cls: Any) -> Plan:
    module = importlib.import_module(cls.__module__)
    name = cls.__name__.removesuffix("T")
    pack_source = inspect.getsource(cls.Pack)
    unpack_source = inspect.getsource(cls._UnPack)
    types = dict(re.findall(r"self\.(\w+) = .*# type: (.+)", inspect.getsource(cls.__init__)))
    fields = []
    for attr in vars(cls()):
        recorder = _Recorder()
        getattr(module, f"{name}Add{attr[0].upper()}{attr[1:]}")(recorder, 0)
        ((method, args),) = recorder.calls
        slot, hint = args[0], types[attr].strip()
        if method != "PrependUOffsetTRelativeSlot":
            if not method.startswith("Prepend") or not method.endswith("Slot"):
                raise TypeError(f"{cls.__name__}.{attr}: unsupported field ({method})")
            field = Field(attr, slot, SCALAR)
            field.set_format(_SCALAR_FORMATS[method[7:-4]])
            field.default = args[2]
            if args[2] is not None:
                field.skip = args[2]
        elif hint.startswith("Union["):
            m = re.search(rf"self\.{attr} = ([\w.]+)Creator\(self\.(\w+),", unpack_source)
            if m is None:
                raise TypeError(f"{cls.__name__}.{attr}: union without a creator")
            field = Field(attr, slot, UNION)
            field.child = _union_members(m.group(1) + "Creator")
            field.union_type = m.group(2)
        elif hint == "str":
            field = Field(attr, slot, STRING)
        elif hint == "List[str]":
            field = Field(attr, slot, VEC_STRING)
        elif m := re.fullmatch(r"List\[(FBS[\w.]+)\]", hint):
            field = Field(attr, slot, VEC_TABLE)
            field.child = _resolve(m.group(1))
        elif m := re.fullmatch(r"(?:Optional\[)?(FBS[\w.]+)\]?", hint):
            field = Field(attr, slot, TABLE)
            field.child = _resolve(m.group(1))
        elif m := re.search(rf"builder\.Prepend(\w+)\(self\.{attr}\[i\]\)", pack_source):
            field = Field(attr, slot, VEC_SCALAR)
            field.set_format(_SCALAR_FORMATS[m.group(1)])
        else:
            raise TypeError(f"{cls.__name__}.{attr}: unsupported field type {hint}")
        fields.append(field)
    return Plan(cls, fields)


# --- encoding ----------------------------------------------------------------


def encode_size_prefixed(obj: Any) -> bytes:
    """An object-API table as one size-prefixed buffer (what `FinishSizePrefixed` makes)."""
    buf = bytearray(8)
    root = _table(buf, obj)
    struct.pack_into("<II", buf, 0, len(buf) - 4, root - 4)
    return bytes(buf)


def _pad_to(buf: bytearray, align: int, ahead: int = 0) -> None:
    """Zero-pad so that the byte `ahead` bytes past the end lands on a multiple of `align`."""
    rest = (len(buf) + ahead) % align
    if rest:
        buf.extend(bytes(align - rest))


class Shape:
    """The inline layout of one table for one set of present fields, worked out once.

    A message type's tables nearly always carry the same fields (every codec of a
    consume() has its mimeType, payloadType, clockRate...), so the vtable's bytes and
    one struct for the whole inline part (soffset, scalars, zeroed offset slots) are
    computed the first time a set of fields is seen and reused after, instead of being
    laid out field by field on every call.
    """

    __slots__ = ("align", "children", "inline", "scalars", "vtable")

    def __init__(self, fields: list[Field]) -> None:
        at = 4  # after the soffset to the vtable
        offsets = []
        for field in fields:
            if field.size == 8 and at & 7:
                at += 4
            offsets.append(at)
            at += field.size
        max_slot = max((field.slot for field in fields), default=-1)
        vtable = [0] * (max_slot + 3)
        vtable[0], vtable[1] = 2 * max_slot + 6, at
        for offset, field in zip(offsets, fields, strict=True):
            vtable[field.slot + 2] = offset
        self.vtable = struct.pack(f"<{len(vtable)}H", *vtable)
        self.align = 8 if any(field.size == 8 for field in fields) else 4
        fmt, end = "<I", 4
        for offset, field in zip(offsets, fields, strict=True):
            fmt += "x" * (offset - end) + (field.fmt if field.kind == SCALAR else "I")
            end = offset + field.size
        self.inline = struct.Struct(fmt)
        self.scalars = [field for field in fields if field.kind == SCALAR]
        self.children = [(offset, field) for offset, field in zip(offsets, fields, strict=True)
                         if field.kind != SCALAR]
        """(offset in the table, field) of each present offset field, in layout order."""


def _table(buf: bytearray, obj: Any) -> int:
    p = _plans.get(type(obj)) or plan(type(obj))
    values = obj.__dict__
    mask = 0
    inline = []  # the values of the present fields, in layout order; offsets as 0 until written
    children = []
    for field in p.layout:
        value = values[field.attr]
        if value is None or value == field.skip:
            continue
        mask |= field.bit
        if field.kind == SCALAR:
            inline.append(value)
        else:
            inline.append(0)
            children.append(value)
    shape = p.shapes.get(mask) or p.shape(mask)
    # The table starts right after its vtable, aligned for its widest scalar.
    rest = (len(buf) + len(shape.vtable)) % shape.align
    if rest:
        buf += bytes(shape.align - rest)
    buf += shape.vtable
    start = len(buf)
    try:
        buf += shape.inline.pack(len(shape.vtable), *inline)  # soffset: table - vtable
    except struct.error as error:
        raise _bad_scalar(obj, shape, values, error) from None
    # Indexed, not zip(..., strict=True): compiled, that is a generic call with a keyword
    # argument, which made this function a third slower.
    for i, (offset, field) in enumerate(shape.children):
        value = children[i]
        where = start + offset
        kind = field.kind
        if kind == TABLE or kind == UNION:
            at = _table(buf, value)
        elif kind == STRING:
            at = _string(buf, value)
        else:
            at = _vector(buf, field, value)
        _pack_u32(buf, where, at - where)
    return start


def _bad_scalar(obj: Any, shape: Shape, values: dict[str, Any], error: Exception) -> TypeError:
    """Which of a table's scalars the inline struct refused."""
    for field in shape.scalars:
        try:
            struct.pack("<" + field.fmt, values[field.attr])
        except struct.error as field_error:
            return _bad_value(obj, field, values[field.attr], field_error)
    return TypeError(f"invalid value in {type(obj).__name__.removesuffix('T')}: {error}")


def _vector(buf: bytearray, field: Field, value: Any) -> int:
    kind = field.kind
    count = len(value)
    if kind == VEC_SCALAR:
        _pad_to(buf, max(4, field.elem_size), 4)
        start = len(buf)
        try:
            buf += struct.pack(f"<I{count}{field.fmt}", count, *value)
        except struct.error as error:
            raise _bad_value(None, field, value, error) from None
        return start
    buf += bytes(-len(buf) % 4)  # align the count
    start = len(buf)
    buf += _U32.pack(count)
    buf += bytes(4 * count)
    for i, item in enumerate(value):
        where = start + 4 + 4 * i
        at = _string(buf, item) if kind == VEC_STRING else _table(buf, item)  # compiled: direct C calls
        _pack_u32(buf, where, at - where)
    return start


def _bad_value(obj: Any, field: Field, value: Any, error: Exception) -> TypeError:
    """What flatbuffers.Builder raised too: TypeError, so the caller hears of its bad argument."""
    where = f"{type(obj).__name__.removesuffix('T')}." if obj is not None else ""
    return TypeError(f"invalid value for {where}{field.attr}: {value!r} ({error})")


def _string(buf: bytearray, value: object) -> int:
    if isinstance(value, str):
        data = value.encode()
    elif isinstance(value, bytes):
        data = value
    else:
        raise TypeError(f"a string field got {value!r}")
    buf += bytes(-len(buf) % 4)  # align the length
    start = len(buf)
    buf += _U32.pack(len(data))
    buf += data
    buf.append(0)
    return start


# --- decoding ----------------------------------------------------------------


def decode(cls: Any, buf: bytes | bytearray, offset: int = 0) -> Any:
    """The object-API value of the root table of type `cls` in `buf` (not size-prefixed)."""
    (root,) = _unpack_u32(buf, offset)
    return _read_table(cls, buf, offset + root)


def _read_table(cls: Any, buf: bytes | bytearray, start: int) -> Any:
    p = _plans.get(cls) or plan(cls)
    obj = cls.__new__(cls)
    values = obj.__dict__
    values.update(p.template)
    vtable = start - _unpack_i32(buf, start)[0]
    slots = _vtable_reader(_unpack_u16(buf, vtable)[0] // 2)(buf, vtable)  # (size, table size, offset...)
    known = len(slots) - 2
    for field in p.fields:
        if field.slot >= known:
            continue
        at = slots[field.slot + 2]
        if not at:
            continue
        where = start + at
        kind = field.kind
        if kind == SCALAR:
            values[field.attr] = field.unpack_from(buf, where)[0]
            continue
        target = where + _unpack_u32(buf, where)[0]
        if kind == STRING:
            values[field.attr] = _read_string(buf, target)
        elif kind == TABLE:
            values[field.attr] = _read_table(field.child, buf, target)
        elif kind == UNION:
            member = field.child.get(values[field.union_type])
            values[field.attr] = _read_table(member, buf, target) if member is not None else None
        else:
            (count,) = _unpack_u32(buf, target)
            first = target + 4
            if kind == VEC_SCALAR:
                values[field.attr] = list(struct.unpack_from(f"<{count}{field.fmt}", buf, first))
            elif kind == VEC_STRING:
                values[field.attr] = [
                    _read_string(buf, first + 4 * i + _unpack_u32(buf, first + 4 * i)[0]) for i in range(count)
                ]
            else:
                child = field.child
                values[field.attr] = [
                    _read_table(child, buf, first + 4 * i + _unpack_u32(buf, first + 4 * i)[0])
                    for i in range(count)
                ]
    return obj


@functools.cache
def _vtable_reader(entries: int) -> Callable[[bytes | bytearray, int], tuple[int, ...]]:
    """One unpack for a whole vtable of `entries` uint16s (not one per field)."""
    return struct.Struct(f"<{entries}H").unpack_from


def _read_string(buf: bytes | bytearray, target: int) -> bytes:
    (length,) = _unpack_u32(buf, target)
    return bytes(buf[target + 4 : target + 4 + length])
