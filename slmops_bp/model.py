"""The blueprint language: one pydantic model per kind (SPEC §2).

Models are strict (no silent coercion) and closed (``extra="forbid"``).  Sizes,
durations and percentages are parsed into typed values by
:mod:`slmops_bp.quantities`.  Validation errors never reach the user as
pydantic's dump: :mod:`slmops_bp.schema_errors` maps them back to the YAML
positions kept by the loader.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from slmops_bp import API_VERSION
from slmops_bp import quantities as q
from slmops_bp import values as v
from slmops_bp.contract import NAME_MAX, NAME_PATTERN, Engine
from slmops_bp.diagnostics import shown
from slmops_bp.values import ValueProblem

GROUP_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"
_BAD_CHARS = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")

Arch = Literal["x86_64", "aarch64", "armv7l", "riscv64"]
AcceleratorType = Literal["cuda", "rocm", "npu", "openvino", "metal", "edgetpu"]
AcceleratorName = Literal["cpu", "cuda", "rocm", "npu", "openvino", "metal", "edgetpu"]


def _reject_control(value: str, what: str) -> str:
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Cf") or _BAD_CHARS.match(ch):
            raise PydanticCustomError(
                "bp_identifier",
                f"{what} {shown(value)} contains a control or bidi character U+{ord(ch):04X}",
            )
    return value


def _name(value: object) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "Input should be a valid string")
    if len(value) <= NAME_MAX:  # a longer one is refused below, whatever it holds
        _reject_control(value, "name")
    if len(value) > NAME_MAX or not re.match(NAME_PATTERN, value):
        raise PydanticCustomError(
            "bp_name",
            f"invalid name {shown(value)}: use at most 63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit",
        )
    return value


def _group(value: object) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "Input should be a valid string")
    _reject_control(value, "group name")
    if not re.match(GROUP_PATTERN, value):
        raise PydanticCustomError("bp_name", f"invalid inventory group name {shown(value)}")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "Input should be a valid string")
    for ch in value:
        if _BAD_CHARS.match(ch):
            raise PydanticCustomError(
                "bp_identifier", f"text contains a bidi control character U+{ord(ch):04X}"
            )
    return value


def _ident(value: object) -> str:
    """A short identifier-like string (a license): no control or bidi characters."""
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "Input should be a valid string")
    return _reject_control(value, "value")


def _checked(check: Any, kind: str) -> Any:
    """A validator from a :mod:`slmops_bp.values` rule on a string."""

    def validate(value: object) -> Any:
        if not isinstance(value, str):
            raise PydanticCustomError("string_type", "Input should be a valid string")
        _reject_control(value, "value")
        try:
            check(value)
        except ValueProblem as exc:
            raise PydanticCustomError(f"bp_{kind}", str(exc)) from None
        return value

    return validate


def _quantity(parse: Any, kind: str) -> Any:
    def validate(value: object) -> Any:
        try:
            return parse(value)
        except q.QuantityError as exc:
            raise PydanticCustomError(f"bp_{kind}", str(exc)) from None

    return validate


Name = Annotated[
    str,
    PlainValidator(_name),
    WithJsonSchema({"type": "string", "pattern": NAME_PATTERN, "maxLength": NAME_MAX}),
]
GroupName = Annotated[
    str, PlainValidator(_group), WithJsonSchema({"type": "string", "pattern": GROUP_PATTERN})
]
Text = Annotated[str, PlainValidator(_text), WithJsonSchema({"type": "string"})]
Ident = Annotated[str, PlainValidator(_ident), WithJsonSchema({"type": "string", "minLength": 1})]
Version = Annotated[
    str,
    PlainValidator(_checked(v.check_segment, "version")),
    WithJsonSchema({"type": "string", "pattern": v.SEGMENT_PATTERN, "examples": ["1.20.1"]}),
]
ArtifactUri = Annotated[
    str,
    PlainValidator(_checked(v.artifact_file, "uri")),
    WithJsonSchema({"type": "string", "pattern": v.URI_PATTERN, "maxLength": 4096}),
]
EgressAllow = Annotated[
    str,
    PlainValidator(_checked(v.parse_egress, "egress")),
    WithJsonSchema({"type": "string", "pattern": v.EGRESS_PATTERN, "maxLength": 260}),
]
Size = Annotated[
    int,
    PlainValidator(_quantity(q.parse_size, "size")),
    PlainSerializer(q.format_size, return_type=str),
    WithJsonSchema(
        {"type": "string", "pattern": q.NONZERO_SIZE_PATTERN, "examples": ["512MiB", "2.4GB"]}
    ),
]
SizeOrZero = Annotated[
    int,
    PlainValidator(_quantity(q.parse_size_or_zero, "size")),
    PlainSerializer(q.format_size, return_type=str),
    WithJsonSchema({"type": "string", "pattern": q.SIZE_PATTERN, "examples": ["0B", "512MiB"]}),
]
Duration = Annotated[
    float,
    PlainValidator(_quantity(q.parse_duration, "duration")),
    PlainSerializer(q.format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": q.DURATION_PATTERN, "examples": ["90s", "5m"]}),
]
Timeout = Annotated[
    float,
    PlainValidator(_quantity(q.parse_timeout, "duration")),
    PlainSerializer(q.format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": q.DURATION_PATTERN, "examples": ["60s", "5m"]}),
]
CountOrPercent = Annotated[
    int | q.Percent,
    PlainValidator(_quantity(q.parse_count_or_percent, "percent")),
    PlainSerializer(lambda v: v if isinstance(v, int) else str(v)),
    WithJsonSchema(
        {
            "oneOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": q.PERCENT_PATTERN},
            ]
        }
    ),
]
Scalar = str | int | float | bool


def _cpu_only() -> list[AcceleratorName]:
    return ["cpu"]


def _all_at_once() -> list[int | q.Percent]:
    return [q.Percent(100.0)]


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


# ---------------------------------------------------------------- metadata


class Metadata(Strict):
    name: Name
    labels: dict[Text, Text] = Field(default_factory=dict)
    description: Text | None = None


# ---------------------------------------------------------------- DeviceClass


class HostMatch(Strict):
    """Which inventory hosts: member of any of ``groups`` and all ``hostvars`` equal."""

    groups: list[GroupName] = Field(default_factory=list)
    hostvars: dict[Text, Scalar] = Field(default_factory=dict)


class Accelerator(Strict):
    type: AcceleratorType
    memory: Size | None = None


class DeviceClassSpec(Strict):
    match: HostMatch | None = None
    arch: Arch
    memory: Size
    reserve: SizeOrZero = Field(default=512 * 1024**2, json_schema_extra={"default": "512MiB"})
    storage: Size
    accelerators: list[Accelerator] = Field(default_factory=list)
    runtimes: list[Name] = Field(min_length=1)
    encrypted_storage: bool = False
    connectivity: Literal["always", "intermittent", "offline"] = "always"


# ---------------------------------------------------------------- Runtime


class ArchiveInstall(Strict):
    url: ArtifactUri
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class RuntimeInstall(Strict):
    """Engine-specific install recipe; every key optional (the engine's default recipe)."""

    pip: list[Text] | None = None
    pip_args: list[Text] = Field(default_factory=list)
    index_url: Text | None = None
    system_site_packages: bool = False
    archive: ArchiveInstall | None = None
    packages: list[Text] = Field(default_factory=list)


class RuntimeSpec(Strict):
    engine: Engine
    version: Version
    formats: list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]] = Field(min_length=1)
    accelerators: list[AcceleratorName] = Field(default_factory=_cpu_only, min_length=1)
    telemetry: Literal["none", "opt-out", "on"] = "none"
    install: RuntimeInstall = Field(default_factory=RuntimeInstall)
    role: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+){0,2}$")] | None = None

    @model_validator(mode="after")
    def _role_for_custom(self) -> RuntimeSpec:
        if self.engine == "custom" and not self.role:
            raise PydanticCustomError(
                "bp_role", "engine 'custom' needs 'role': the Ansible role that provisions it"
            )
        if self.engine != "custom" and self.role:
            raise PydanticCustomError(
                "bp_role",
                "'role' is only for engine 'custom' (engine is '{engine}')",
                {"engine": self.engine},
            )
        return self


# ---------------------------------------------------------------- Model


class Artifact(Strict):
    uri: ArtifactUri
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    size: Size

    @property
    def filename(self) -> str:
        """The file name on the device: the URI path's last segment (never query or fragment)."""
        return v.artifact_file(self.uri)


class Variant(Strict):
    name: Name
    format: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
    precision: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
    sparsity: Annotated[float, Field(ge=0.0, lt=1.0)] | None = None
    artifact: Artifact
    memory: Size
    accelerators: list[AcceleratorName] = Field(default_factory=_cpu_only, min_length=1)
    quality: Annotated[float, Field(gt=0.0, le=1.0)] | None = None

    @property
    def effective_quality(self) -> float:
        return 1.0 if self.quality is None else self.quality


class ModelSpec(Strict):
    version: Version
    task: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    license: Ident
    variants: list[Variant] = Field(min_length=1)


# ---------------------------------------------------------------- PrivacyPolicy


class Egress(Strict):
    default: Literal["deny", "allow"] = "deny"
    allow: list[EgressAllow] = Field(default_factory=list)


class Logging(Strict):
    prompts: bool = False
    outputs: bool = False
    retention: Duration | None = None


class PrivacyPolicySpec(Strict):
    residency: Literal["device", "site", "region"]
    telemetry: Literal["none", "aggregate", "full"] = "none"
    egress: Egress = Field(default_factory=Egress)
    logging: Logging = Field(default_factory=Logging)
    encryption_at_rest: Literal["required", "preferred", "none"] = "none"
    model_sources: list[Text] = Field(default_factory=list)
    licenses: list[Ident] = Field(default_factory=list)


# ---------------------------------------------------------------- Deployment


class VariantPolicy(Strict):
    prefer: Literal["quality", "size"] = "quality"
    allow: list[Name] | None = None


class RuntimeSettings(Strict):
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    params: dict[Text, Scalar] = Field(default_factory=dict)


DEFAULT_HEALTH_PROMPT = "Reply with OK."


class Health(Strict):
    prompt: Text = DEFAULT_HEALTH_PROMPT
    timeout: Timeout = Field(default=60.0, json_schema_extra={"default": "60s"})
    min_tokens_per_s: Annotated[float, Field(gt=0)] | None = None


class Rollout(Strict):
    stages: list[CountOrPercent] = Field(
        default_factory=_all_at_once,
        min_length=1,
        json_schema_extra={"default": ["100%"]},
    )
    max_failures: CountOrPercent = Field(
        default=q.Percent(0.0), json_schema_extra={"default": "0%"}
    )
    health: Health = Field(default_factory=Health)
    on_failure: Literal["rollback", "halt"] = "rollback"


class DeploymentSpec(Strict):
    priority: int = 0
    model: Name
    deviceClasses: list[Name] = Field(min_length=1)
    hosts: HostMatch | None = None
    privacy: Name
    variants: VariantPolicy = Field(default_factory=VariantPolicy)
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    rollout: Rollout = Field(default_factory=Rollout)
    keep: Annotated[int, Field(ge=0, le=100)] = 1


# ---------------------------------------------------------------- Overlay


class OverlaySpec(Strict):
    deployment: Name
    hosts: HostMatch
    set: dict[Text, Any] = Field(
        json_schema_extra={"description": "deep-merged onto the deployment's spec"}
    )


# ---------------------------------------------------------------- documents


class _Document(Strict):
    apiVersion: Literal["slmops.bp/v1"]
    metadata: Metadata


class DeviceClass(_Document):
    kind: Literal["DeviceClass"]
    spec: DeviceClassSpec


class Runtime(_Document):
    kind: Literal["Runtime"]
    spec: RuntimeSpec


class Model(_Document):
    kind: Literal["Model"]
    spec: ModelSpec


class PrivacyPolicy(_Document):
    kind: Literal["PrivacyPolicy"]
    spec: PrivacyPolicySpec


class Deployment(_Document):
    kind: Literal["Deployment"]
    spec: DeploymentSpec


class Overlay(_Document):
    kind: Literal["Overlay"]
    spec: OverlaySpec


KINDS: dict[str, type[_Document]] = {
    "DeviceClass": DeviceClass,
    "Runtime": Runtime,
    "Model": Model,
    "PrivacyPolicy": PrivacyPolicy,
    "Deployment": Deployment,
    "Overlay": Overlay,
}
AnyDocument = DeviceClass | Runtime | Model | PrivacyPolicy | Deployment | Overlay

assert API_VERSION == "slmops.bp/v1"
