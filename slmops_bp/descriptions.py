"""What every kind and field of the blueprint language means, in one line each.

Keyed by the pydantic model's class name, then by field name; ``""`` holds the
model's own description.  :mod:`slmops_bp.schema` puts them into the exported
JSON Schemas (editors show them on hover, ``bp schema`` writes them) and
``docs/blueprints.md`` is generated from the same table, so the three never
disagree.  ``tests/test_schema.py`` fails when a field of the models has no
entry here, or an entry names a field that no longer exists.
"""

from __future__ import annotations

DESCRIPTIONS: dict[str, dict[str, str]] = {
    "Metadata": {
        "": "Name, labels and description of the document.",
        "name": "Unique per kind; lowercase letters, digits and '-', at most 63 characters.",
        "labels": "Free-form string labels for people and tools; default none.",
        "description": "Free text for people; default none.",
    },
    "HostMatch": {
        "": "Which inventory hosts: member of any of `groups` and all `hostvars` equal.",
        "groups": "Inventory groups; a host in any of them matches. Default: any group.",
        "hostvars": "Host variables that must all equal these scalar values. Default: none.",
    },
    "Accelerator": {
        "": "An accelerator the devices of the class have.",
        "type": "Kind of accelerator: cuda, rocm, npu, openvino, metal or edgetpu.",
        "memory": "Its own memory (a size); variants running on it use this instead of RAM.",
    },
    "DeviceClassSpec": {
        "": "The hardware of one kind of device and which inventory hosts are of it.",
        "match": "Which inventory hosts belong to the class; `bp_device_class` on a host wins.",
        "arch": "CPU architecture: x86_64, aarch64, armv7l or riscv64.",
        "memory": "Total RAM of one device (a size, e.g. 8GiB).",
        "reserve": "RAM kept free for the OS and other apps (a size); default 512MiB.",
        "storage": "Space for runtimes and models on one device (a size, e.g. 64GiB).",
        "accelerators": "Accelerators the devices have; default none (CPU only).",
        "runtimes": "Runtime names that may be provisioned here, in order of preference.",
        "encrypted_storage": "Whether the device's storage is encrypted at rest; default false.",
        "connectivity": "How the device is reachable: always, intermittent or offline; "
        "default always.",
    },
    "ArchiveInstall": {
        "": "An archive to download and unpack as the engine.",
        "url": "Where the archive is downloaded from.",
        "sha256": "SHA-256 of the archive, 64 lowercase hex digits; checked before use.",
    },
    "RuntimeInstall": {
        "": "Engine-specific install recipe; every key optional (the engine's default recipe).",
        "pip": "pip requirement strings to install instead of the engine's default package.",
        "pip_args": "Extra arguments for pip install; default none.",
        "index_url": "Package index URL pip installs from; default pip's own.",
        "system_site_packages": "Whether the engine's virtualenv sees system site-packages; "
        "default false.",
        "archive": "An archive (URL and sha256) to install instead of packages.",
        "packages": "OS packages to install first; default none.",
    },
    "RuntimeSpec": {
        "": "An inference engine that can be provisioned on devices.",
        "engine": "Engine: onnxruntime, llama-cpp, ollama, litert or custom.",
        "version": 'Engine version, a quoted string (e.g. "1.20.1"): letters, digits, . _ + -',
        "formats": "Artifact formats it serves (onnx, gguf, tflite, ...).",
        "accelerators": "Accelerators it can run on; cpu means no accelerator. Default [cpu].",
        "telemetry": "What the engine sends by itself: none, opt-out (turned off on the device) "
        "or on; default none.",
        "install": "Engine-specific install recipe; default: the engine's own recipe.",
        "role": "Ansible role that provisions it (namespace.collection.role); engine custom only.",
    },
    "Artifact": {
        "": "The file of a variant, verified by sha256 on the device.",
        "uri": "Where the file is fetched from: an https, http or file URI.",
        "sha256": "SHA-256 of the file, 64 lowercase hex digits; verified on the device before "
        "use.",
        "size": "Size of the file on disk (a size, e.g. 2.4GB); keep + 1 copies must fit the "
        "class's storage.",
    },
    "Variant": {
        "": "One build of the model: a format and precision with its artifact and needs.",
        "name": "Variant name, unique within the model.",
        "format": "Artifact format (onnx, gguf, tflite, ...); a runtime must serve it.",
        "precision": "Numeric precision: fp32, fp16, bf16, int8, int4, q8_0, q4_k_m, ...",
        "sparsity": "Fraction of weights pruned, in [0, 1); default none.",
        "build": "How bp build makes it from the model's source; bp build then writes "
        "artifact, memory, quality and sparsity. Default none (written by hand).",
        "artifact": "The file: URI, sha256 and size. Required unless the variant has a build "
        "recipe (bp build writes it).",
        "memory": "Resident memory needed at run time, weights plus working set (a size). "
        "Required unless the variant has a build recipe (bp build measures it).",
        "accelerators": "Accelerators it can run on; cpu means none. Default [cpu].",
        "quality": "Share of the reference model's quality kept, in (0, 1]; default 1.",
    },
    "Build": {
        "": "A build recipe: steps applied in order to the source or to another variant.",
        "from": "'source' (the model's reference artifact) or the name of a variant with a "
        "recipe; default source.",
        "steps": "quantize / prune steps, in order; none: the source itself, measured.",
        "digest": "Written by bp build: digest of source, recipe and eval set measured with.",
        "seal": "Written by bp build: digest of the measured values as written.",
    },
    "BuildStep": {
        "": "One step: exactly one of quantize or prune.",
        "quantize": "Quantization method: int8-dynamic, int8-static, fp16 (onnx); q8_0, q4_0, "
        "q4_1, q5_0, q5_1, f16 (gguf).",
        "prune": "Magnitude pruning: the share of weights set to zero, in (0, 1).",
    },
    "ModelSource": {
        "": "The reference artifact build recipes start from, shipped with the blueprints.",
        "path": "Path of the file, relative to this blueprint file.",
        "format": "Its format (onnx, gguf); built variants have the same format.",
        "sha256": "SHA-256 of the file; default: hashed when needed. bp build checks it.",
    },
    "EvalSet": {
        "": "What quality is measured on: inputs and a metric against the reference.",
        "inputs": 'JSON lines file, relative to this blueprint file: {"tokens": [ids]} or '
        '{"text": "..."} per line.',
        "metric": "next-token-agreement or kl (text-generation), cosine (embedding).",
    },
    "ModelSpec": {
        "": "A model and its variants.",
        "version": 'Model version, a quoted string (e.g. "1.2.0"); installed side by side.',
        "task": "What it does: text-generation, embedding, classification, ...",
        "license": "License identifier, checked against a policy's `licenses`.",
        "source": "The reference artifact build recipes start from; default none.",
        "eval": "The eval set bp build measures quality on; needed when a variant has a build "
        "recipe.",
        "variants": "Builds of the model; the planner picks the best one that fits.",
    },
    "Egress": {
        "": "Network egress of the inference service.",
        "default": "deny or allow; default deny.",
        "allow": "host, *.domain, host:port, address or CIDR reachable under deny; other "
        "artifacts come from the controller. Default none.",
    },
    "Logging": {
        "": "What the inference service may log.",
        "prompts": "Whether prompts may be logged; default false.",
        "outputs": "Whether outputs may be logged; default false.",
        "retention": "How long logs are kept (a duration, e.g. 7d); default none.",
    },
    "PrivacyPolicySpec": {
        "": "Where data may live and what may leave the device.",
        "residency": "Where prompts and outputs may be processed or stored: device, site "
        "or region.",
        "telemetry": "Telemetry allowed: none, aggregate or full; under none a runtime with "
        "telemetry on is not a candidate. Default none.",
        "egress": "Network egress of the inference service; default deny, nothing allowed.",
        "logging": "Prompt and output logging; default nothing logged.",
        "encryption_at_rest": "required, preferred or none; required needs encrypted_storage. "
        "Default none.",
        "model_sources": "Glob allow-list for artifact URIs; a variant outside it is not a "
        "candidate. Default empty = any.",
        "licenses": "Allowed model licenses; a model outside them is an error. Default empty = "
        "any.",
    },
    "VariantPolicy": {
        "": "How the variant is chosen.",
        "prefer": "quality: highest quality, then less memory, then name; size: least memory, "
        "then higher quality, then name; measured: highest throughput the fleet measured on the "
        "class (bp history), unmeasured variants after them by quality. Default quality.",
        "allow": "Variant names that may be chosen; default any.",
    },
    "RuntimeSettings": {
        "": "Settings handed to the engine.",
        "port": "TCP port the inference service listens on, 1-65535; default the engine's.",
        "params": "Engine parameters (threads, context, ...), scalars; unknown keys may warn, "
        "never fail. Default none.",
    },
    "Health": {
        "": "The health check after each switch: a real inference on the device.",
        "prompt": 'Prompt of the health check inference; default "Reply with OK.".',
        "timeout": "Time allowed for the health check (a positive duration); default 60s.",
        "min_tokens_per_s": "Minimum generation speed in tokens per second; default none.",
    },
    "Rollout": {
        "": "Staged rollout: batches, failure budget, health gate.",
        "stages": "Batches as Ansible serial: positive counts or percentages in (0%, 100%], never "
        "decreasing, the last 100%; default [100%].",
        "max_failures": "Failed plus unreachable hosts a stage may have (count or percentage); "
        "default 0%.",
        "health": "The health check after each switch; default a built-in prompt, 60s.",
        "on_failure": "rollback (switch back) or halt; default rollback.",
    },
    "DeploymentSpec": {
        "": "Which model goes to which device classes, under which policy and rollout.",
        "priority": "Who gets memory first on a shared class, higher first; default 0.",
        "model": "Name of the Model to deploy.",
        "deviceClasses": "Names of the DeviceClasses it goes to.",
        "hosts": "Narrows the target hosts by inventory group; default all hosts of the classes.",
        "privacy": "Name of the PrivacyPolicy it runs under.",
        "variants": "How the variant is chosen; default prefer quality, any variant.",
        "runtime": "Port and engine parameters; default the engine's defaults.",
        "rollout": "Staged rollout and health gate; default one stage of 100%.",
        "keep": "Earlier versions kept on the device for bp rollback, 0-100; keep + 1 artifacts "
        "must fit the storage. Default 1.",
    },
    "OverlaySpec": {
        "": "A local adaptation of a deployment for some of its hosts.",
        "deployment": "Name of the Deployment it adapts.",
        "hosts": "Which of the deployment's hosts it applies to: any of the groups, all of the "
        "host vars.",
        "set": "Partial deployment spec deep-merged for those hosts; not model, deviceClasses, "
        "stages, max_failures or on_failure.",
    },
    "DeviceClass": {
        "": "A kind of edge hardware in the fleet and which inventory hosts belong to it.",
    },
    "Runtime": {"": "An inference engine that can be provisioned on devices."},
    "Model": {"": "A model and its variants (format, precision, artifact, needs)."},
    "PrivacyPolicy": {
        "": "Where data may live: telemetry, egress, logging, encryption, sources, licenses.",
    },
    "Deployment": {
        "": "Which model goes to which device classes, under which policy and rollout.",
    },
    "Overlay": {"": "A local adaptation of a deployment for some hosts, within guardrails."},
}

DOCUMENT_FIELDS: dict[str, str] = {
    "apiVersion": "Version of the blueprint language: slmops.bp/v1.",
    "kind": "Kind of document: DeviceClass, Runtime, Model, PrivacyPolicy, Deployment or Overlay.",
    "metadata": "Name, labels and description of the document.",
    "spec": "The kind's fields.",
}
"""Descriptions of the header fields every document has, whatever its kind."""
