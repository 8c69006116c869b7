"""GGUF steps with the ``gguf`` package: block quantization and magnitude pruning.

A step reads a GGUF file, rewrites its tensors and writes a new file with every metadata
key copied (the file type updated).  Norms and other 1-D tensors stay F32, as llama.cpp's
own quantizer keeps them; matrices are quantized or pruned.  Pruning works on the float
values (a quantized input is dequantized, pruned and quantized again to its own type).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gguf
import numpy as np
from gguf import GGMLQuantizationType as QT

QUANT_TYPES: dict[str, QT] = {
    "q8_0": QT.Q8_0,
    "q4_0": QT.Q4_0,
    "q4_1": QT.Q4_1,
    "q5_0": QT.Q5_0,
    "q5_1": QT.Q5_1,
    "f16": QT.F16,
}
FILE_TYPES = {
    QT.Q8_0: gguf.LlamaFileType.MOSTLY_Q8_0,
    QT.Q4_0: gguf.LlamaFileType.MOSTLY_Q4_0,
    QT.Q4_1: gguf.LlamaFileType.MOSTLY_Q4_1,
    QT.Q5_0: gguf.LlamaFileType.MOSTLY_Q5_0,
    QT.Q5_1: gguf.LlamaFileType.MOSTLY_Q5_1,
    QT.F16: gguf.LlamaFileType.MOSTLY_F16,
}
_HEADER = ("GGUF.", "general.architecture", "general.file_type")

Transform = Callable[[str, np.ndarray, QT], tuple[np.ndarray, QT]]


def _floats(tensor: Any) -> np.ndarray:
    kind = QT(int(tensor.tensor_type))
    if kind == QT.F32:
        return np.array(tensor.data, dtype=np.float32)
    if kind == QT.F16:
        return np.array(tensor.data, dtype=np.float32)
    return np.asarray(gguf.quants.dequantize(tensor.data, kind), dtype=np.float32)


def _is_matrix(tensor: Any) -> bool:
    return len([d for d in tensor.shape if int(d) > 1]) >= 2


def _rewrite(src: Path, dst: Path, transform: Transform, file_type: int | None) -> None:
    reader = gguf.GGUFReader(src)
    arch = str(reader.fields["general.architecture"].contents())
    writer = gguf.GGUFWriter(dst, arch)
    for name, field in reader.fields.items():
        if name.startswith(_HEADER):
            continue
        types = list(field.types)
        value = field.contents()
        if types[0] == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(name, value, types[0], sub_type=types[-1])
        else:
            writer.add_key_value(name, value, types[0])
    old_type = reader.fields.get("general.file_type")
    writer.add_file_type(int(old_type.contents()) if file_type is None and old_type else
                         int(file_type or 0))  # fmt: skip
    for tensor in reader.tensors:
        kind = QT(int(tensor.tensor_type))
        if not _is_matrix(tensor):
            writer.add_tensor(tensor.name, np.array(tensor.data))
            continue
        values, out_type = transform(tensor.name, _floats(tensor), kind)
        if out_type == QT.F32:
            writer.add_tensor(tensor.name, values.astype(np.float32))
        elif out_type == QT.F16:
            writer.add_tensor(tensor.name, values.astype(np.float16))
        else:
            packed = gguf.quants.quantize(values.astype(np.float32), out_type)
            writer.add_tensor(tensor.name, packed, raw_dtype=out_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def quantize(src: Path, dst: Path, method: str) -> None:
    target = QUANT_TYPES[method]
    _rewrite(src, dst, lambda _n, values, _k: (values, target), int(FILE_TYPES[target]))


def prune(src: Path, dst: Path, sparsity: float) -> None:
    """Zero the smallest-magnitude share ``sparsity`` of every matrix."""

    def cut(_name: str, values: np.ndarray, kind: QT) -> tuple[np.ndarray, QT]:
        return magnitude_prune(values, sparsity), kind

    _rewrite(src, dst, cut, None)


def magnitude_prune(values: np.ndarray, sparsity: float) -> np.ndarray:
    flat = np.abs(values).ravel()
    count = round(sparsity * flat.size)
    if count == 0:
        return values
    out = values.copy().ravel()
    out[np.argpartition(flat, count - 1)[:count]] = 0.0
    return out.reshape(values.shape)


def measured_sparsity(path: Path) -> float:
    """The share of exact zeros in the matrices, as the engine will see them."""
    zeros = total = 0
    for tensor in gguf.GGUFReader(path).tensors:
        if _is_matrix(tensor):
            values = _floats(tensor)
            zeros += int(np.count_nonzero(values == 0.0))
            total += values.size
    return zeros / total if total else 0.0
