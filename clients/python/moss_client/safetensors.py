"""safetensors (the plaintext of inference requests and responses) for numpy arrays, with the
strict checks of ``src/common/safetensors.cc``: bounded header, exactly dtype/shape/data_offsets,
offsets tiling the data buffer, bool bytes 0 or 1."""
from __future__ import annotations

import json
import struct
from typing import Dict, Mapping

import numpy as np

from .errors import InvalidArgument

MAX_HEADER_BYTES = 100 << 20

_TO_NP = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I8": "i1", "I16": "<i2", "I32": "<i4",
          "I64": "<i8", "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "?"}
_FROM_NP = {np.dtype(v).str: k for k, v in _TO_NP.items()}


def encode(tensors: Mapping[str, np.ndarray]) -> bytes:
    """The safetensors bytes of ``tensors`` in mapping order, data 8-byte aligned."""
    header: Dict[str, object] = {}
    blobs = []
    offset = 0
    for name, arr in tensors.items():
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise InvalidArgument(f"invalid tensor name {name!r}")
        a = np.ascontiguousarray(arr)
        dt = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
        a = a.astype(dt, copy=False)
        code = _FROM_NP.get(np.dtype(dt).str)
        if code is None:
            raise InvalidArgument(f"tensor {name!r}: dtype {a.dtype} not supported by MOSS")
        data = a.tobytes()
        header[name] = {"dtype": code, "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((-len(text)) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def _header(data: bytes) -> dict:
    if len(data) < 8:
        raise InvalidArgument("safetensors: shorter than its header length")
    n = struct.unpack("<Q", data[:8])[0]
    if n > MAX_HEADER_BYTES or 8 + n > len(data):
        raise InvalidArgument("safetensors: header length out of bounds")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidArgument("safetensors: header is not JSON") from None
    if not isinstance(header, dict):
        raise InvalidArgument("safetensors: header is not an object")
    return header


def metadata(data: bytes) -> Dict[str, str]:
    """The ``__metadata__`` string map of a safetensors buffer ({} when absent)."""
    meta = _header(data).get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                             for k, v in meta.items()):
        raise InvalidArgument("safetensors: __metadata__ is not a map of strings")
    return meta


def decode(data: bytes) -> Dict[str, np.ndarray]:
    """The named arrays of a safetensors buffer (validated; InvalidArgument on any violation)."""
    header = _header(data)
    n = struct.unpack("<Q", data[:8])[0]
    buf = memoryview(data)[8 + n:]
    entries = []
    for name, v in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(v, dict) or set(v) != {"dtype", "shape", "data_offsets"}:
            raise InvalidArgument(f"safetensors: tensor {name!r} needs exactly dtype, shape, data_offsets")
        if v["dtype"] not in _TO_NP:
            raise InvalidArgument(f"safetensors: unsupported dtype {v['dtype']!r}")
        shape, offs = v["shape"], v["data_offsets"]
        if (not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape)
                or not isinstance(offs, list) or len(offs) != 2
                or not all(isinstance(o, int) for o in offs) or not 0 <= offs[0] <= offs[1]):
            raise InvalidArgument(f"safetensors: tensor {name!r}: bad shape or offsets")
        dt = np.dtype(_TO_NP[v["dtype"]])
        if offs[1] - offs[0] != int(np.prod(shape, dtype=np.int64)) * dt.itemsize:
            raise InvalidArgument(f"safetensors: tensor {name!r}: size does not match shape")
        entries.append((offs[0], offs[1], name, dt, shape))
    entries.sort(key=lambda e: (e[0], e[1]))
    pos = 0
    out: Dict[str, np.ndarray] = {}
    for begin, end, name, dt, shape in entries:
        if begin != pos or end > len(buf):
            raise InvalidArgument("safetensors: tensors do not tile the data buffer")
        a = np.frombuffer(buf[begin:end], dtype=dt).reshape(shape).copy()
        if dt == np.bool_ and not np.all(np.frombuffer(buf[begin:end], dtype=np.uint8) <= 1):
            raise InvalidArgument(f"safetensors: tensor {name!r}: bool byte other than 0 or 1")
        out[name] = a
        pos = end
    if pos != len(buf):
        raise InvalidArgument("safetensors: bytes after the last tensor")
    return out
