"""The choice of SPEC §3: candidates, their order, runtimes, accelerators, pools, co-residency."""

from __future__ import annotations

import re
from typing import Any

import pytest

from slmops_bp.coresidency import choose, fit_problems
from slmops_bp.model import (
    DeploymentSpec,
    DeviceClassSpec,
    ModelSpec,
    PrivacyPolicySpec,
    RuntimeSpec,
)
from slmops_bp.policy import delivery, egress_allows, source_allowed
from slmops_bp.selection import (
    Candidate,
    Rejection,
    Request,
    pick_runtime,
    shared_accelerator,
    static_candidates,
)

SHA = "ab" * 32
NUMBER = re.compile(r"\d")

RUNTIMES = {
    "llama-cpp": RuntimeSpec.model_validate(
        {
            "engine": "llama-cpp",
            "version": "b1",
            "formats": ["gguf"],
            "accelerators": ["cpu", "cuda"],
        }
    ),
    "onnxruntime": RuntimeSpec.model_validate(
        {
            "engine": "onnxruntime",
            "version": "1.20.1",
            "formats": ["onnx"],
            "accelerators": ["cpu", "openvino", "cuda"],
        }
    ),
    "ollama": RuntimeSpec.model_validate(
        {
            "engine": "ollama",
            "version": "0.5.7",
            "formats": ["gguf"],
            "accelerators": ["cpu", "cuda"],
            "telemetry": "on",
        }
    ),
}


def variant(name: str, memory: str, *, fmt: str = "gguf", size: str = "1GB", **extra: Any) -> Any:
    uri = extra.pop("uri", f"https://models.example.com/m/{name}.{fmt}")
    return {
        "name": name,
        "format": fmt,
        "precision": "q4_k_m",
        "artifact": {"uri": uri, "sha256": SHA, "size": size},
        "memory": memory,
        **extra,
    }


def model(*variants: Any) -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "version": "1.0.0",
            "task": "text-generation",
            "license": "mit",
            "variants": list(variants),
        }
    )


def device(memory: str = "8GiB", **extra: Any) -> DeviceClassSpec:
    data = {"arch": "x86_64", "memory": memory, "storage": "64GiB"}
    data["runtimes"] = extra.pop("runtimes", ["llama-cpp", "onnxruntime"])
    return DeviceClassSpec.model_validate({**data, **extra})


def policy(**extra: Any) -> PrivacyPolicySpec:
    return PrivacyPolicySpec.model_validate({"residency": "device", **extra})


def request(
    name: str, mspec: ModelSpec, pspec: PrivacyPolicySpec | None = None, **spec: Any
) -> Request:
    dspec = DeploymentSpec.model_validate(
        {"model": "m", "deviceClasses": ["c"], "privacy": "p", **spec}
    )
    return Request(name, dspec.priority, dspec, mspec, pspec or policy())


def names(candidates: list[Candidate]) -> list[str]:
    return [c.variant for c in candidates]


# ---------------------------------------------------------------- ordering


def test_prefer_quality_orders_by_quality_then_memory_then_name() -> None:
    m = model(
        variant("c-low", "1GiB", quality=0.8),
        variant("b-tie", "2GiB", quality=0.9),
        variant("a-tie", "2GiB", quality=0.9),
        variant("small-tie", "1GiB", quality=0.9),
        variant("full", "4GiB"),  # no quality: counts as 1.0
    )
    candidates, rejected = static_candidates(request("d", m), device(), RUNTIMES)
    assert not rejected
    assert names(candidates) == ["full", "small-tie", "a-tie", "b-tie", "c-low"]


def test_prefer_size_orders_by_memory_then_quality_then_name() -> None:
    m = model(
        variant("big", "4GiB", quality=1.0),
        variant("b-small", "1GiB", quality=0.9),
        variant("a-small", "1GiB", quality=0.9),
        variant("good-small", "1GiB", quality=0.95),
    )
    req = request("d", m, variants={"prefer": "size"})
    candidates, _ = static_candidates(req, device(), RUNTIMES)
    assert names(candidates) == ["good-small", "a-small", "b-small", "big"]


def test_allow_list_filters_and_says_so() -> None:
    m = model(variant("q4", "1GiB"), variant("q8", "2GiB"))
    req = request("d", m, variants={"allow": ["q4"]})
    candidates, rejected = static_candidates(req, device(), RUNTIMES)
    assert names(candidates) == ["q4"]
    assert rejected[0].variant == "q8"
    assert "variants.allow [q4]" in rejected[0].reason


# ---------------------------------------------------------------- runtime and accelerator


def test_runtime_is_the_first_of_the_class_that_serves_the_format() -> None:
    v = model(variant("q4", "1GiB")).variants[0]
    cls = device(runtimes=["onnxruntime", "llama-cpp"])
    assert pick_runtime(v, cls, RUNTIMES, policy(telemetry="aggregate")) == ("llama-cpp", "cpu")
    # ollama (telemetry on) comes first and is allowed unless the policy says none
    cls = device(runtimes=["ollama", "llama-cpp"])
    assert pick_runtime(v, cls, RUNTIMES, policy(telemetry="aggregate")) == ("ollama", "cpu")
    assert pick_runtime(v, cls, RUNTIMES, policy(telemetry="none")) == ("llama-cpp", "cpu")


def test_accelerator_is_the_first_of_the_class_both_list() -> None:
    cls = device(accelerators=[{"type": "openvino"}, {"type": "cuda"}], runtimes=["onnxruntime"])
    both = model(variant("v", "1GiB", fmt="onnx", accelerators=["cpu", "cuda", "openvino"]))
    assert shared_accelerator(cls, RUNTIMES["onnxruntime"], both.variants[0]) == "openvino"
    cuda = model(variant("v", "1GiB", fmt="onnx", accelerators=["cuda", "cpu"]))
    assert shared_accelerator(cls, RUNTIMES["onnxruntime"], cuda.variants[0]) == "cuda"
    cpu = model(variant("v", "1GiB", fmt="onnx"))
    assert shared_accelerator(cls, RUNTIMES["onnxruntime"], cpu.variants[0]) == "cpu"
    npu = model(variant("v", "1GiB", fmt="onnx", accelerators=["npu"]))
    assert shared_accelerator(cls, RUNTIMES["onnxruntime"], npu.variants[0]) is None


def test_no_runtime_reasons_name_formats_and_accelerators() -> None:
    m = model(
        variant("tfl", "1GiB", fmt="tflite"),
        variant("npu-only", "1GiB", accelerators=["npu"]),
    )
    _, rejected = static_candidates(request("d", m), device(), RUNTIMES)
    reasons = {r.variant: r.reason for r in rejected}
    assert "no runtime of the class serves format tflite" in reasons["tfl"]
    assert "llama-cpp (gguf), onnxruntime (onnx)" in reasons["tfl"]
    assert "runs on [npu]" in reasons["npu-only"] and "class has [cpu]" in reasons["npu-only"]


def test_telemetry_on_is_filtered_under_telemetry_none() -> None:
    m = model(variant("q4", "1GiB"))
    cls = device(runtimes=["ollama"])
    candidates, rejected = static_candidates(
        request("d", m, policy(telemetry="none")), cls, RUNTIMES
    )
    assert not candidates
    assert "telemetry" in rejected[0].reason


def test_model_sources_filter() -> None:
    m = model(
        variant("inside", "1GiB", uri="https://models.internal/x.gguf"),
        variant("outside", "1GiB", uri="https://hub.example.org/x.gguf"),
    )
    pol = policy(model_sources=["https://models.internal/*"])
    candidates, rejected = static_candidates(request("d", m, pol), device(), RUNTIMES)
    assert names(candidates) == ["inside"]
    assert "outside the policy's model_sources" in rejected[0].reason


# ---------------------------------------------------------------- memory, pools, storage


def test_memory_alone_must_fit_host_memory_minus_reserve() -> None:
    m = model(variant("fits", "7.5GiB"), variant("too-big", "7.6GiB"))
    candidates, rejected = static_candidates(request("d", m), device("8GiB"), RUNTIMES)
    assert names(candidates) == ["fits"]
    assert rejected[0].reason == (
        "needs 7.6GiB of memory (runtime llama-cpp on cpu), the class has 7.5GiB "
        "(8GiB - 512MiB reserve)"
    )


def test_accelerator_with_memory_is_its_own_pool() -> None:
    cls = device("4GiB", accelerators=[{"type": "cuda", "memory": "8GiB"}])
    m = model(
        variant("gpu", "6GiB", accelerators=["cuda"]),
        variant("huge", "9GiB", accelerators=["cuda"]),
    )
    candidates, rejected = static_candidates(request("d", m), cls, RUNTIMES)
    assert [(c.variant, c.accelerator, c.pool) for c in candidates] == [("gpu", "cuda", "cuda")]
    assert rejected[0].reason == (
        "needs 9GiB of cuda memory (runtime llama-cpp on cuda), the class has 8GiB of cuda memory"
    )


def test_accelerator_without_memory_shares_the_host_pool() -> None:
    cls = device("4GiB", accelerators=[{"type": "cuda"}])
    m = model(variant("gpu", "6GiB", accelerators=["cuda"]))
    candidates, rejected = static_candidates(request("d", m), cls, RUNTIMES)
    assert not candidates
    assert "3.5GiB (4GiB - 512MiB reserve)" in rejected[0].reason


def test_storage_holds_keep_plus_one_copies() -> None:
    cls = device(storage="10GB")
    m = model(variant("q4", "1GiB", size="3GB"))
    ok, _ = static_candidates(request("d", m, keep=2), cls, RUNTIMES)  # 3 copies = 9GB
    assert ok and ok[0].storage == 9 * 10**9
    _, rejected = static_candidates(request("d", m, keep=3), cls, RUNTIMES)  # 12GB
    assert rejected[0].reason == (
        "needs 11.18GiB of storage for 4 copies (keep 3 + 1) of its 3GB artifact, "
        "the class has 10GB of storage"
    )


# ---------------------------------------------------------------- co-residency


def chat_model() -> ModelSpec:
    return model(
        variant("q8", "3GiB", quality=0.99),
        variant("q4", "1.5GiB", quality=0.95),
    )


def test_coresident_models_fit_only_with_the_smaller_variants() -> None:
    cls = device("6.5GiB")  # 6GiB after reserve
    reqs = [request(n, chat_model(), priority=p) for n, p in (("a", 3), ("b", 2), ("c", 1))]
    choices, problems = choose("board", cls, reqs, RUNTIMES)
    assert not problems
    assert {n: c.variant for n, c in choices.items()} == {"a": "q8", "b": "q4", "c": "q4"}
    skipped = choices["b"].rejected[0]
    assert skipped.variant == "q8"
    assert skipped.reason == (
        "needs 3GiB of memory, 1.5GiB left of 6GiB (6.5GiB - 512MiB reserve) "
        "after a (q8, 3GiB), keeping room for c (q4, 1.5GiB)"
    )
    assert "1 better left no room" in choices["b"].reason


def test_priority_then_name_decides_who_gets_memory_first() -> None:
    cls = device("5GiB")  # 4.5GiB: one q8 and one q4
    reqs = [request("zeta", chat_model(), priority=1), request("alpha", chat_model(), priority=1)]
    choices, _ = choose("board", cls, reqs, RUNTIMES)
    assert (choices["alpha"].variant, choices["zeta"].variant) == ("q8", "q4")
    reqs = [request("zeta", chat_model(), priority=2), request("alpha", chat_model(), priority=1)]
    choices, _ = choose("board", cls, reqs, RUNTIMES)
    assert (choices["alpha"].variant, choices["zeta"].variant) == ("q4", "q8")


def test_choice_does_not_depend_on_request_order() -> None:
    cls = device("6.5GiB")
    reqs = [request(n, chat_model()) for n in "abc"]
    first, _ = choose("board", cls, reqs, RUNTIMES)
    second, _ = choose("board", cls, list(reversed(reqs)), RUNTIMES)
    assert first == second


def test_no_room_even_with_the_smallest_names_them_with_numbers() -> None:
    cls = device("4GiB")  # 3.5GiB
    reqs = [request(n, chat_model(), priority=p) for n, p in (("a", 3), ("b", 2), ("c", 1))]
    choices, problems = choose("board", cls, reqs, RUNTIMES)
    assert set(choices) == {"a", "b"}
    assert [(p.kind, p.deployment, p.others) for p in problems] == [("no-room", "c", ("a", "b"))]
    assert problems[0].message == (
        "deployment 'c' does not fit on device class 'board' next to 2 deployment(s) placed "
        "before it, even with the smallest candidates: a (q4, 1.5GiB), b (q4, 1.5GiB), plus "
        "c (q4, 1.5GiB), need 4.5GiB of memory, the class has 3.5GiB (4GiB - 512MiB reserve)"
    )


def test_no_candidate_lists_every_variant() -> None:
    cls = device("1.5GiB")
    choices, problems = choose("tiny", cls, [request("a", chat_model())], RUNTIMES)
    assert not choices
    (problem,) = problems
    assert problem.kind == "no-candidate"
    assert [r.variant for r in problem.rejected] == ["q8", "q4"]
    assert "q8: needs 3GiB" in problem.message and "q4: needs 1.5GiB" in problem.message


def test_pools_are_separate_and_storage_is_shared() -> None:
    cls = device("4GiB", storage="10GB", accelerators=[{"type": "cuda", "memory": "4GiB"}])
    gpu = model(variant("g", "3GiB", size="4GB", accelerators=["cuda"]))
    cpu = model(variant("c", "1GiB", size="4GB"))
    two = [request("g", gpu, keep=0), request("c", cpu, keep=0)]
    choices, problems = choose("box", cls, two, RUNTIMES)
    assert not problems and set(choices) == {"g", "c"}  # 3GiB on cuda, 1GiB host, 8GB disk
    assert choices["g"].accelerator == "cuda" and choices["c"].accelerator == "cpu"
    _, problems = choose("box", cls, [*two, request("d", cpu, keep=0)], RUNTIMES)
    (problem,) = problems  # c, d, g by name: g comes last and finds the disk full
    assert (problem.deployment, problem.others) == ("g", ("c", "d"))
    assert problem.message.endswith(
        "c (c, 3.73GiB), d (c, 3.73GiB), plus g (g, 3.73GiB), need 11.18GiB of storage, "
        "the class has 10GB of storage"
    )


def test_every_rejection_reason_has_numbers_where_sizes_matter() -> None:
    cls = device("4GiB", storage="2GB")
    m = model(variant("big", "8GiB"), variant("fat", "1GiB", size="3GB"))
    _, rejected = static_candidates(request("d", m), cls, RUNTIMES)
    assert all(NUMBER.search(r.reason) for r in rejected)


def test_choice_carries_runtime_accelerator_and_delivery() -> None:
    cls = device(accelerators=[{"type": "cuda"}])
    m = model(variant("q4", "1GiB", accelerators=["cpu", "cuda"]))
    pol = policy(egress={"default": "deny", "allow": ["models.example.com:443"]})
    choices, _ = choose("jetson", cls, [request("d", m, pol)], RUNTIMES)
    c = choices["d"]
    assert (c.variant, c.runtime, c.accelerator, c.delivery) == (
        "q4",
        "llama-cpp",
        "cuda",
        "device",
    )
    assert c.candidates[0].pool == "host"
    assert "runtime llama-cpp on cuda" in c.reason


# ---------------------------------------------------------------- sources, egress, delivery


def test_source_allowed_globs() -> None:
    assert source_allowed("https://a/x", [])
    assert source_allowed("https://a/x/y.gguf", ["https://a/*"])
    assert not source_allowed("https://b/x", ["https://a/*"])


@pytest.mark.parametrize(
    ("uri", "entries", "allowed"),
    [
        ("https://models.example.com/x", ["models.example.com"], True),
        ("https://models.example.com/x", ["models.example.com:443"], True),
        ("https://models.example.com/x", ["models.example.com:8443"], False),
        ("http://models.example.com/x", ["models.example.com:443"], False),
        ("http://models.example.com/x", ["models.example.com:80"], True),
        ("https://models.example.com:8443/x", ["models.example.com:8443"], True),
        ("https://MODELS.example.com/x", ["models.example.com"], True),
        ("https://cdn.example.com/x", ["*.example.com:443"], True),
        ("https://other.org/x", ["models.example.com"], False),
        ("file:///srv/models/x.onnx", ["models.example.com"], False),
        ("https://models.example.com/x", [], False),
    ],
)
def test_egress_allows(uri: str, entries: list[str], allowed: bool) -> None:
    assert egress_allows(uri, entries) is allowed


def test_delivery() -> None:
    deny = policy(egress={"default": "deny", "allow": ["models.example.com"]})
    assert delivery("https://models.example.com/x", deny) == "device"
    assert delivery("https://elsewhere.org/x", deny) == "controller"
    assert delivery("file:///srv/x", deny) == "controller"
    allow = policy(egress={"default": "allow"})
    assert delivery("https://elsewhere.org/x", allow) == "device"
    assert delivery("file:///srv/x", allow) == "device"


def test_fit_problems_are_the_problems_of_choose() -> None:
    cls = device("4GiB")
    reqs = [request(n, chat_model(), priority=p) for n, p in (("a", 3), ("b", 2), ("c", 1))]
    reqs.append(request("tiny", model(variant("huge", "99GiB"))))
    _, problems = choose("board", cls, reqs, RUNTIMES)
    found = fit_problems("board", cls, reqs, RUNTIMES)
    assert [(p.kind, p.deployment, p.message) for p in found] == [
        (p.kind, p.deployment, p.message) for p in problems
    ]
    assert [p.kind for p in found] == ["no-room", "no-candidate"]


def test_long_listings_are_shortened() -> None:
    cls = device("8GiB")
    reqs = [request(f"d{i}", model(variant("v", "1GiB")), keep=0) for i in range(8)]
    _, problems = choose("board", cls, reqs, RUNTIMES)
    (problem,) = problems
    assert problem.deployment == "d7" and len(problem.others) == 7
    assert (
        "d0 (v, 1GiB), d1 (v, 1GiB), d2 (v, 1GiB), d3 (v, 1GiB) and 3 more, plus d7 (v, 1GiB), "
        "need 8GiB of memory"
    ) in problem.message


def test_candidates_can_come_from_a_cache() -> None:
    cls = device()
    req = request("a", chat_model())
    calls: list[str] = []

    def cached(r: Request) -> tuple[list[Candidate], list[Rejection]]:
        calls.append(r.name)
        return static_candidates(r, cls, RUNTIMES)

    choices, _ = choose("c", cls, [req], RUNTIMES, candidates=cached)
    assert calls == ["a"] and choices["a"].variant == "q8"
