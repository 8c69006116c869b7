"""Generate the tiny ONNX "language models" that `bp init` ships (deterministic bytes).

Usage: python scripts/make_tiny_onnx.py OUTDIR
Each model maps token ids (int64 [batch, seq]) through an embedding and a projection to
logits (float [batch, seq, vocab]): real ONNX that onnxruntime loads and runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def tiny_lm(vocab: int, hidden: int, dtype: type = np.float32, seed: int = 7) -> bytes:
    rng = np.random.default_rng(seed)
    emb = numpy_helper.from_array(rng.standard_normal((vocab, hidden)).astype(np.float32), "emb")
    proj = numpy_helper.from_array(rng.standard_normal((hidden, vocab)).astype(np.float32), "proj")
    nodes = [
        helper.make_node("Gather", ["emb", "input_ids"], ["hidden"], axis=0),
        helper.make_node("MatMul", ["hidden", "proj"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_lm",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", vocab])],
        initializer=[emb, proj],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="slmops-bp"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    (out / "tiny-lm-fp32.onnx").write_bytes(tiny_lm(vocab=256, hidden=64))
    (out / "tiny-lm-small.onnx").write_bytes(tiny_lm(vocab=128, hidden=16, seed=11))


if __name__ == "__main__":
    main()
