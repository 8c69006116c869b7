"""Generate the tiny LiteRT (TFLite) "language model" the tests run (deterministic bytes).

Usage: python scripts/make_tiny_tflite.py OUTDIR

Token ids (int32 [1, seq], seq dynamic) go through an embedding (GATHER) and a projection
(FULLY_CONNECTED, keeping the sequence axis) to logits (float32 [1, seq, vocab]): real
TFLite that the LiteRT interpreter loads and runs. Written with the TFLite schema that the
ai-edge-litert package ships (its flatbuffers object API), so no TensorFlow is needed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as tfl


def _tensor(name: str, shape: list[int], dtype: int, buffer: int, signature: list[int]) -> object:
    tensor = tfl.TensorT()
    tensor.name = name
    tensor.shape = shape
    tensor.shapeSignature = signature
    tensor.type = dtype
    tensor.buffer = buffer
    return tensor


def _buffer(data: bytes | None = None) -> object:
    buffer = tfl.BufferT()
    if data is not None:
        buffer.data = list(data)
    return buffer


def _opcode(code: int) -> object:
    opcode = tfl.OperatorCodeT()
    opcode.builtinCode = code
    opcode.deprecatedBuiltinCode = min(code, 127)
    opcode.version = 1
    return opcode


def tiny_tflite(vocab: int = 128, hidden: int = 32, seed: int = 3) -> bytes:
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((vocab, hidden)).astype(np.float32)
    proj = rng.standard_normal((vocab, hidden)).astype(np.float32)
    f32, i32 = tfl.TensorType.FLOAT32, tfl.TensorType.INT32
    model = tfl.ModelT()
    model.version = 3
    model.description = "slmops-bp tiny-lm"
    model.buffers = [_buffer(), _buffer(emb.tobytes()), _buffer(proj.tobytes())]
    model.operatorCodes = [
        _opcode(tfl.BuiltinOperator.GATHER),
        _opcode(tfl.BuiltinOperator.FULLY_CONNECTED),
    ]
    graph = tfl.SubGraphT()
    graph.name = "main"
    graph.tensors = [
        _tensor("input_ids", [1, 1], i32, 0, [1, -1]),
        _tensor("embedding", [vocab, hidden], f32, 1, [vocab, hidden]),
        _tensor("hidden", [1, 1, hidden], f32, 0, [1, -1, hidden]),
        _tensor("projection", [vocab, hidden], f32, 2, [vocab, hidden]),
        _tensor("logits", [1, 1, vocab], f32, 0, [1, -1, vocab]),
    ]
    gather = tfl.OperatorT()
    gather.opcodeIndex = 0
    gather.inputs, gather.outputs = [1, 0], [2]
    gather.builtinOptionsType = tfl.BuiltinOptions.GatherOptions
    gather.builtinOptions = tfl.GatherOptionsT()
    gather.builtinOptions.axis = 0
    dense = tfl.OperatorT()
    dense.opcodeIndex = 1
    dense.inputs, dense.outputs = [2, 3, -1], [4]
    dense.builtinOptionsType = tfl.BuiltinOptions.FullyConnectedOptions
    dense.builtinOptions = tfl.FullyConnectedOptionsT()
    dense.builtinOptions.keepNumDims = True
    graph.operators = [gather, dense]
    graph.inputs, graph.outputs = [0], [4]
    model.subgraphs = [graph]
    signature = tfl.SignatureDefT()
    signature.signatureKey = "serving_default"
    signature.subgraphIndex = 0
    signature.inputs = [_signature_tensor("input_ids", 0)]
    signature.outputs = [_signature_tensor("logits", 4)]
    model.signatureDefs = [signature]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _signature_tensor(name: str, index: int) -> object:
    entry = tfl.TensorMapT()
    entry.name = name
    entry.tensorIndex = index
    return entry


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    (out / "tiny-lm.tflite").write_bytes(tiny_tflite())


if __name__ == "__main__":
    main()
