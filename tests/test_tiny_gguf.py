"""The tiny GGUF `bp init` ships: made by scripts/make_tiny_gguf.py, byte for byte."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gguf
import pytest
from support import tiny_gguf

pytestmark = pytest.mark.slow  # makes a GGUF model and runs llama.cpp on it

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "slmops_bp" / "data" / "tiny-lm-q4_0.gguf"


@pytest.fixture(scope="module")
def maker() -> Any:
    return tiny_gguf.maker()


def test_the_script_reproduces_the_shipped_gguf(
    maker: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert maker.tiny_gguf() == SHIPPED.read_bytes()
    monkeypatch.setattr(maker.sys, "argv", ["make_tiny_gguf.py", str(tmp_path)])
    maker.main()
    assert (tmp_path / SHIPPED.name).read_bytes() == SHIPPED.read_bytes()


def test_the_shipped_gguf_is_a_small_llama_model(maker: Any) -> None:
    reader = gguf.GGUFReader(SHIPPED)
    fields = reader.fields
    arch = fields["general.architecture"]
    assert bytes(arch.parts[arch.data[0]]).decode() == "llama"
    assert int(fields["llama.block_count"].parts[-1][0]) == maker.LAYERS
    tokens = fields["tokenizer.ggml.tokens"]
    assert 256 < len(tokens.data) < 512  # a small vocabulary with byte fallback
    names = {t.name for t in reader.tensors}
    assert "token_embd.weight" in names and f"blk.{maker.LAYERS - 1}.ffn_down.weight" in names
    quantized = {t.name for t in reader.tensors if t.tensor_type == gguf.GGMLQuantizationType.Q4_0}
    assert "blk.0.attn_q.weight" in quantized


def test_the_broken_variant_lacks_one_tensor(maker: Any, tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(maker.tiny_gguf(broken=True))
    names = {t.name for t in gguf.GGUFReader(broken).tensors}
    assert f"blk.{maker.LAYERS - 1}.ffn_down.weight" not in names
    assert len(names) == len({t.name for t in gguf.GGUFReader(SHIPPED).tensors}) - 1
