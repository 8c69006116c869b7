"""One combination's release, fully resolved: what the device content receives (SPEC §6).

The plan resolves it once per combination (variant, artifact, runtime with its
install data, the policy as enforced values, health, rollout, overlays
applied); rendering writes it as data and reads nothing else of the blueprints.
Sizes are bytes, durations seconds, egress entries host/port pairs or addresses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slmops_bp.policy import egress_entries, policy_digest
from slmops_bp.quantities import Percent, format_duration
from slmops_bp.values import artifact_file

if TYPE_CHECKING:
    from slmops_bp.blueprint import BlueprintSet
    from slmops_bp.coresidency import Choice
    from slmops_bp.model import DeploymentSpec


def resolve_release(
    bset: BlueprintSet,
    deployment: str,
    device_class: str,
    overlays: tuple[str, ...],
    spec: DeploymentSpec,
    choice: Choice,
) -> dict[str, Any]:
    """Everything the content needs for one deployment × combination (SPEC §6)."""
    model = bset.models[spec.model].spec
    variant = next(v for v in model.variants if v.name == choice.variant)
    runtime = bset.runtimes[choice.runtime].spec
    policy = bset.policies[spec.privacy].spec
    cls = bset.device_classes[device_class].spec
    rollout = spec.rollout
    install = runtime.install.model_dump(mode="json", exclude_none=True)
    if runtime.install.archive is not None:  # the device stores it under the resolved name
        install["archive"]["filename"] = artifact_file(runtime.install.archive.url)
    return {
        "deployment": deployment,
        "model": spec.model,
        "version": model.version,
        "variant": variant.name,
        "format": variant.format,
        "precision": variant.precision,
        "task": model.task,
        "license": model.license,
        "description": bset.deployments[deployment].metadata.description or "",
        "labels": dict(bset.deployments[deployment].metadata.labels),
        "artifact": {
            "uri": variant.artifact.uri,
            "sha256": variant.artifact.sha256,
            "size": variant.artifact.size,
            "filename": variant.artifact.filename,
        },
        "memory": variant.memory,
        "accelerator": choice.accelerator,
        "delivery": choice.delivery,
        "overlays": list(overlays),
        "runtime": {
            "name": choice.runtime,
            "engine": runtime.engine,
            "version": runtime.version,
            "formats": list(runtime.formats),
            "telemetry": runtime.telemetry,
            "install": install,
            "role": runtime.role,
        },
        "privacy": {
            "name": spec.privacy,
            "digest": policy_digest(policy),
            "residency": policy.residency,
            "telemetry": policy.telemetry,
            "egress": {
                "default": policy.egress.default,
                "allow": egress_entries(policy.egress.allow),
            },
            "logging": {
                "prompts": policy.logging.prompts,
                "outputs": policy.logging.outputs,
                "retention": _duration(policy.logging.retention),
                "retention_seconds": (
                    None if policy.logging.retention is None else int(policy.logging.retention)
                ),
            },
            "encryption_at_rest": policy.encryption_at_rest,
            "model_sources": list(policy.model_sources),
            "licenses": list(policy.licenses),
        },
        "port": spec.runtime.port,
        "params": dict(spec.runtime.params),
        "health": {
            "prompt": rollout.health.prompt,
            "timeout_seconds": rollout.health.timeout,
            "min_tokens_per_s": rollout.health.min_tokens_per_s,
        },
        "on_failure": rollout.on_failure,
        "keep": spec.keep,
        "class": {
            "name": device_class,
            "arch": cls.arch,
            "memory": cls.memory,
            "reserve": cls.reserve,
            "storage": cls.storage,
        },
        "max_failures": _count_or_percent(rollout.max_failures),
    }


def _duration(seconds: float | None) -> str | None:
    return None if seconds is None else format_duration(seconds)


def _count_or_percent(value: int | Percent) -> int | str:
    return value if isinstance(value, int) else str(value)
