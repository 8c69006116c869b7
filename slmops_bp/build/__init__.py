"""``bp build``: variants made from a model's reference artifact, measured, and written back.

- :mod:`.recipe` — what a recipe means (methods per format, chains, digests); light, used by
  ``bp validate``;
- :mod:`.onnx_ops` / :mod:`.gguf_ops` — the quantizers and the pruner per format;
- :mod:`.evaluate` — the engine probe: load + one inference (memory, latency) and outputs
  on the eval set, run in a subprocess;
- :mod:`.store` — the content-addressed store (``.bp/store/sha256/<hex>/<file>``) and its index;
- :mod:`.writeback` — measured fields into the Model document (ruamel.yaml round trip);
- :mod:`.runner` — which variants to (re)build, in parallel, with a progress bar.
"""
