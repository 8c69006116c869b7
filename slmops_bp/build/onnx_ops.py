"""ONNX steps with onnx / onnxruntime: int8 quantization (dynamic, static), fp16, pruning."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def quantize(src: Path, dst: Path, method: str, calibration: Sequence[Sequence[int]]) -> None:
    logging.getLogger().setLevel(logging.ERROR)  # the quantizer's advice goes to the root logger
    if method == "int8-dynamic":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    elif method == "int8-static":
        from onnxruntime.quantization import (
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )

        quantize_static(
            str(src),
            str(dst),
            _Calibration(src, calibration),
            quant_format=QuantFormat.QOperator,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    elif method == "fp16":
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = onnx.load(str(src))
        onnx.save(convert_float_to_float16(model, keep_io_types=True), str(dst))
    else:  # the recipe check refuses it first
        raise ValueError(f"unknown ONNX quantization method {method!r}")


class _Calibration:
    """The eval set's token sequences as calibration batches (onnxruntime's reader protocol)."""

    def __init__(self, model: Path, sequences: Sequence[Sequence[int]]) -> None:
        import onnxruntime as ort

        session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        self.inputs = session.get_inputs()
        self.batches: Iterator[dict[str, np.ndarray]] = iter(
            [feeds(self.inputs, seq) for seq in sequences]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.batches, None)

    def rewind(self) -> None:  # pragma: no cover - the reader is read once
        pass


def feeds(inputs: Sequence[Any], tokens: Sequence[int]) -> dict[str, np.ndarray]:
    """Token ids into the first integer input; every other input as the health check fills it."""
    out: dict[str, np.ndarray] = {}
    placed = False
    for inp in inputs:
        if not placed and "int" in inp.type:
            dtype = np.int64 if "int64" in inp.type else np.int32
            out[inp.name] = np.array([list(tokens)], dtype=dtype)
            placed = True
            continue
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in (inp.shape or [])]
        if "int" in inp.type:
            out[inp.name] = np.zeros(shape, dtype=np.int64 if "int64" in inp.type else np.int32)
        else:
            out[inp.name] = np.zeros(
                shape, dtype=np.float16 if "float16" in inp.type else np.float32
            )
    if not placed:
        raise ValueError("the model has no integer input to feed the eval set's token ids to")
    return out


def prune(src: Path, dst: Path, sparsity: float) -> None:
    """Zero the smallest-magnitude share ``sparsity`` of every float weight matrix."""
    import onnx
    from onnx import numpy_helper

    from slmops_bp.build.gguf_ops import magnitude_prune

    model = onnx.load(str(src))
    for init in model.graph.initializer:
        values = numpy_helper.to_array(init)
        if values.ndim >= 2 and np.issubdtype(values.dtype, np.floating):
            init.CopyFrom(numpy_helper.from_array(magnitude_prune(values, sparsity), init.name))
    onnx.save(model, str(dst))


def measured_sparsity(path: Path) -> float:
    """Share of zero weights in the weight matrices (a quantized one: equal to its zero point)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    arrays = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    zeros = total = 0
    for name, values in arrays.items():
        if values.ndim < 2:
            continue
        if np.issubdtype(values.dtype, np.floating):
            zeros += int(np.count_nonzero(values == 0))
        elif name.endswith("_quantized"):
            point = arrays.get(name[: -len("_quantized")] + "_zero_point")
            zero = point if point is not None else np.zeros((), dtype=values.dtype)
            zeros += int(np.count_nonzero(values == zero))
        else:
            continue
        total += values.size
    return zeros / total if total else 0.0
