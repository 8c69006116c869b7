"""Generate the tiny GGUF language model that `bp init` ships (deterministic bytes).

Usage: python scripts/make_tiny_gguf.py OUTDIR

A llama-architecture model with random weights (fixed seed), 2 layers, 64-wide embeddings,
4 attention heads and a small SentencePiece-style vocabulary (3 special tokens, 256 byte
tokens, the letters and a few pieces): real GGUF that llama.cpp loads and generates from.
Matrices are quantized to Q4_0 (the format edge fleets run), norms stay F32.
`tiny_gguf(broken=True)` leaves out one tensor: a file llama.cpp refuses to load.
"""

from __future__ import annotations

import string
import sys
import tempfile
from pathlib import Path

import gguf
import numpy as np

EMBD = 64
HEADS = 4
HEADS_KV = 2
FF = 128
LAYERS = 2
CONTEXT = 512
PIECES = ["▁OK", "▁Reply", "▁with", "OK", "▁", ".", ",", "!", "?"]


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    """(tokens, scores, types) of a llama (SentencePiece) vocabulary with byte fallback."""
    tokens = ["<unk>", "<s>", "</s>"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    words = PIECES + list(string.ascii_letters) + ["▁" + c for c in string.ascii_lowercase]
    tokens += words
    types += [gguf.TokenType.NORMAL] * len(words)
    scores = [0.0] * (3 + 256) + [-float(i) for i in range(len(words))]
    return tokens, scores, [int(t) for t in types]


def _q4(data: np.ndarray) -> np.ndarray:
    return gguf.quants.quantize(data.astype(np.float32), gguf.GGMLQuantizationType.Q4_0)


def tiny_gguf(seed: int = 5, broken: bool = False, f32: bool = False) -> bytes:
    """The bytes of the tiny model (``broken``: without ``blk.1.ffn_down.weight``).

    ``f32``: every tensor in F32, the reference ``bp build`` quantizes its variants from.
    """
    rng = np.random.default_rng(seed)
    tokens, scores, types = vocabulary()
    vocab = len(tokens)
    kv = EMBD // HEADS * HEADS_KV

    def matrix(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) * 0.2).astype(np.float32)

    tensors: list[tuple[str, np.ndarray, bool]] = [
        ("token_embd.weight", matrix(vocab, EMBD), True),
        ("output_norm.weight", np.ones(EMBD, dtype=np.float32), False),
        ("output.weight", matrix(vocab, EMBD), True),
    ]
    for i in range(LAYERS):
        tensors += [
            (f"blk.{i}.attn_norm.weight", np.ones(EMBD, dtype=np.float32), False),
            (f"blk.{i}.attn_q.weight", matrix(EMBD, EMBD), True),
            (f"blk.{i}.attn_k.weight", matrix(kv, EMBD), True),
            (f"blk.{i}.attn_v.weight", matrix(kv, EMBD), True),
            (f"blk.{i}.attn_output.weight", matrix(EMBD, EMBD), True),
            (f"blk.{i}.ffn_norm.weight", np.ones(EMBD, dtype=np.float32), False),
            (f"blk.{i}.ffn_gate.weight", matrix(FF, EMBD), True),
            (f"blk.{i}.ffn_up.weight", matrix(FF, EMBD), True),
            (f"blk.{i}.ffn_down.weight", matrix(EMBD, FF), True),
        ]
    if broken:
        tensors = [t for t in tensors if t[0] != f"blk.{LAYERS - 1}.ffn_down.weight"]

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.gguf"
        writer = gguf.GGUFWriter(path, "llama")
        writer.add_name("tiny-lm")
        writer.add_context_length(CONTEXT)
        writer.add_embedding_length(EMBD)
        writer.add_block_count(LAYERS)
        writer.add_feed_forward_length(FF)
        writer.add_head_count(HEADS)
        writer.add_head_count_kv(HEADS_KV)
        writer.add_rope_dimension_count(EMBD // HEADS)
        writer.add_layer_norm_rms_eps(1e-5)
        writer.add_vocab_size(vocab)
        writer.add_file_type(
            gguf.LlamaFileType.ALL_F32 if f32 else gguf.LlamaFileType.MOSTLY_Q4_0
        )
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        writer.add_tokenizer_model("llama")
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        writer.add_unk_token_id(0)
        writer.add_bos_token_id(1)
        writer.add_eos_token_id(2)
        writer.add_add_bos_token(True)
        writer.add_add_eos_token(False)
        for name, data, quantize in tensors:
            if quantize and not f32:
                writer.add_tensor(name, _q4(data), raw_dtype=gguf.GGMLQuantizationType.Q4_0)
            else:
                writer.add_tensor(name, data)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return path.read_bytes()


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    (out / "tiny-lm-q4_0.gguf").write_bytes(tiny_gguf())
    (out / "tiny-llama-f32.gguf").write_bytes(tiny_gguf(f32=True))


if __name__ == "__main__":
    main()
