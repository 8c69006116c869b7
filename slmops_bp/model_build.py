"""The build-recipe part of the Model kind: ``source``, ``eval`` and a variant's ``build``.

``bp build`` (:mod:`slmops_bp.build`) runs these recipes; :mod:`slmops_bp.checks.build`
checks them.  Strict and closed like every model of :mod:`slmops_bp.model`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from slmops_bp.diagnostics import shown

BUILD_FROM_SOURCE = "source"
Format = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]


class _Closed(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


Digest = Annotated[
    str,
    Field(pattern=r"^sha256:[0-9a-f]{64}$"),
    WithJsonSchema({"type": "string", "pattern": r"^sha256:[0-9a-f]{64}$"}),
]


def _relative_path(value: object) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "Input should be a valid string")
    if not value or "\x00" in value or value.startswith(("/", "\\")) or "://" in value:
        raise PydanticCustomError(
            "bp_path",
            f"{shown(value)} is not a relative path: write a path relative to this blueprint file",
        )
    return value


RelPath = Annotated[
    str,
    PlainValidator(_relative_path),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 4096}),
]


class BuildStep(_Closed):
    """One step of a build recipe: exactly one of ``quantize`` or ``prune``."""

    quantize: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")] | None = None
    prune: Annotated[float, Field(gt=0.0, lt=1.0)] | None = None

    @model_validator(mode="after")
    def _one_operation(self) -> BuildStep:
        given = [k for k in ("quantize", "prune") if getattr(self, k) is not None]
        if len(given) != 1:
            raise PydanticCustomError(
                "bp_build_step",
                "a build step is exactly one of 'quantize: METHOD' or 'prune: SPARSITY' "
                "(got {given})",
                {"given": ", ".join(given) or "neither"},
            )
        return self

    @property
    def operation(self) -> str:
        return "quantize" if self.quantize is not None else "prune"


class Build(_Closed):
    """How ``bp build`` makes a variant: ``steps`` applied in order to ``from``."""

    model_config = ConfigDict(populate_by_name=True)

    from_: Annotated[str, Field(alias="from", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")] = (
        BUILD_FROM_SOURCE
    )
    steps: list[BuildStep] = Field(default_factory=list)
    digest: Digest | None = None
    seal: Digest | None = None


class ModelSource(_Closed):
    """The reference artifact build recipes start from, shipped with the blueprints."""

    path: RelPath
    format: Format
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None


class EvalSet(_Closed):
    """Inputs (JSON lines) and the metric quality is measured with against the reference."""

    inputs: RelPath
    metric: Literal["next-token-agreement", "kl", "cosine"]
