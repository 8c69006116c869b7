"""Documents → validated blueprints: the typed set every later stage reads.

``parse_documents`` validates each loaded document against its kind's model;
:mod:`slmops_bp.model_errors` turns pydantic's errors into diagnostics.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from slmops_bp import API_VERSION
from slmops_bp.diagnostics import Diagnostic, Severity, did_you_mean, error, shown
from slmops_bp.load import Document, Loc
from slmops_bp.model import (
    KINDS,
    DeploymentSpec,
    DeviceClassSpec,
    Metadata,
    ModelSpec,
    OverlaySpec,
    PrivacyPolicySpec,
    RuntimeSpec,
)
from slmops_bp.model_errors import map_validation_error

S = TypeVar("S", bound=BaseModel)


@dataclass(frozen=True)
class Entry(Generic[S]):
    """One validated document of a kind, with the source it came from."""

    kind: str
    metadata: Metadata
    spec: S
    doc: Document

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def where(self) -> str:
        line, _ = self.doc.pos(("metadata", "name"))
        return f"{self.doc.path}:{line}"

    def diag(
        self,
        code: str,
        message: str,
        loc: Loc = ("metadata", "name"),
        *,
        key: bool = False,
        severity: Severity = Severity.ERROR,
    ) -> Diagnostic:
        line, column = self.doc.pos(loc, key=key)
        return Diagnostic(self.doc.path, line, column, code, severity, message)


@dataclass
class BlueprintSet:
    """Every valid document, by kind and name (insertion order = file order)."""

    device_classes: dict[str, Entry[DeviceClassSpec]] = field(default_factory=dict)
    runtimes: dict[str, Entry[RuntimeSpec]] = field(default_factory=dict)
    models: dict[str, Entry[ModelSpec]] = field(default_factory=dict)
    policies: dict[str, Entry[PrivacyPolicySpec]] = field(default_factory=dict)
    deployments: dict[str, Entry[DeploymentSpec]] = field(default_factory=dict)
    overlays: dict[str, Entry[OverlaySpec]] = field(default_factory=dict)
    invalid: set[tuple[str, str]] = field(default_factory=set)
    """(kind, name) of documents that failed validation: references to them are not reported."""
    duplicates: list[Entry[Any]] = field(default_factory=list)
    """Valid documents whose kind and name an earlier one has (the first is kept; BP301)."""

    def table(self, kind: str) -> dict[str, Any]:
        tables: dict[str, dict[str, Any]] = {
            "DeviceClass": self.device_classes,
            "Runtime": self.runtimes,
            "Model": self.models,
            "PrivacyPolicy": self.policies,
            "Deployment": self.deployments,
            "Overlay": self.overlays,
        }
        return tables[kind]


def parse_documents(docs: Iterable[Document]) -> tuple[BlueprintSet, list[Diagnostic]]:
    bset = BlueprintSet()
    diags: list[Diagnostic] = []
    for doc in docs:
        diags.extend(_parse_one(doc, bset))
    return bset, diags


def _parse_one(doc: Document, bset: BlueprintSet) -> list[Diagnostic]:
    data = doc.data
    head = _check_header(doc)
    if head:
        return head
    kind = data["kind"]
    try:
        parsed = KINDS[kind].model_validate(data)
    except ValidationError as exc:
        meta = data.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("name"), str):
            bset.invalid.add((kind, meta["name"]))
        return map_validation_error(exc, doc, KINDS[kind])
    table = bset.table(kind)
    entry = Entry(kind, parsed.metadata, parsed.spec, doc)  # type: ignore[attr-defined]
    if entry.name in table:
        bset.duplicates.append(entry)
    else:
        table[entry.name] = entry
    return []


def _check_header(doc: Document) -> list[Diagnostic]:
    data = doc.data
    out: list[Diagnostic] = []
    api = data.get("apiVersion")
    if api != API_VERSION:
        if "apiVersion" not in data:
            line, col = doc.line, doc.column
            msg = f"missing 'apiVersion: {API_VERSION}'"
        else:
            line, col = doc.pos(("apiVersion",))
            msg = f"unsupported apiVersion {shown(api)}: expected '{API_VERSION}'"
        out.append(error("BP200", msg, doc.path, line, col))
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        if "kind" not in data:
            out.append(
                error(
                    "BP207",
                    f"missing 'kind' (one of {', '.join(KINDS)})",
                    doc.path,
                    doc.line,
                    doc.column,
                )
            )
        else:
            line, col = doc.pos(("kind",))
            hint = did_you_mean(str(kind), KINDS) if isinstance(kind, str) else ""
            out.append(
                error(
                    "BP207",
                    f"unknown kind {shown(kind)}{hint}; expected one of {', '.join(KINDS)}",
                    doc.path,
                    line,
                    col,
                )
            )
    return out
