"""Generate a realistic static Ansible inventory of N edge hosts.

    python bench/gen_inventory.py N OUTDIR [--format ini|yaml] [--compare]

Layout (deterministic for a given N and format)::

    OUTDIR/hosts.ini | hosts.yml     hosts in 20 leaf groups  <site>_<kind>
    OUTDIR/group_vars/all.yml        fleet-wide defaults
    OUTDIR/group_vars/<kind>.yml     hardware facts (bp_facts) per kind
    OUTDIR/group_vars/site_<s>.yml   site, timezone
    OUTDIR/group_vars/region_<r>/    a directory of several vars files
    OUTDIR/group_vars/clinics.yml
    OUTDIR/host_vars/<host>.yml      every 10th host: its own bp_facts

Groups: leaf ``<site>_<kind>``; parents ``site_<site>`` and ``<kind>``; above
them ``region_<r>``, ``edge`` (all kinds) and ``clinics`` (two sites).

``--compare`` also times ``load_inventory`` (fast path) against
``ansible-inventory --list`` on the result and checks they agree.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

SITES: dict[str, dict[str, str]] = {
    "berlin": {"region": "de", "timezone": "Europe/Berlin"},
    "munich": {"region": "de", "timezone": "Europe/Berlin"},
    "paris": {"region": "fr", "timezone": "Europe/Paris"},
    "lyon": {"region": "fr", "timezone": "Europe/Paris"},
    "madrid": {"region": "es", "timezone": "Europe/Madrid"},
}

KINDS: dict[str, dict[str, Any]] = {
    "jetson": {"hw": "orin-nano", "bp_facts": {"arch": "aarch64", "memory": "8GiB"}},
    "rpi5": {"hw": "rpi5-8g", "bp_facts": {"arch": "aarch64", "memory": "8GiB"}},
    "nuc": {"hw": "nuc13", "bp_facts": {"arch": "x86_64", "memory": "32GiB"}},
    "coral": {"hw": "coral-dev", "bp_facts": {"arch": "aarch64", "memory": "4GiB"}},
}

CLINIC_SITES = ("berlin", "paris")
DEVICE_CLASS = {
    "jetson": "jetson-orin-8g",
    "rpi5": "rpi5-8g",
    "nuc": "nuc-openvino-16g",
    "coral": "gateway-2g",
}


def leaf_groups() -> list[tuple[str, str]]:
    return [(site, kind) for site in SITES for kind in KINDS]


def host_name(index: int, site: str, kind: str) -> str:
    return f"{site}-{kind}-{index:05d}"


def host_inline_vars(index: int, site: str, kind: str) -> dict[str, Any]:
    site_no = list(SITES).index(site)
    kind_no = list(KINDS).index(kind)
    found: dict[str, Any] = {
        "ansible_host": f"10.{site_no * 10 + kind_no}.{index // 250 % 250}.{index % 250 + 1}"
    }
    if index % 7 == 0:
        found["bp_root"] = f"/opt/slmops-{index % 3}"
    if index % 50 == 0:
        found["bp_device_class"] = DEVICE_CLASS[kind]
    if index % 11 == 0:
        found["rack"] = index % 40
    return found


def host_file_vars(index: int, kind: str) -> dict[str, Any] | None:
    if index % 10:
        return None
    facts = dict(KINDS[kind]["bp_facts"])
    facts["serial"] = f"SN{index:08d}"
    if kind == "jetson":
        facts["accelerators"] = [{"type": "cuda", "memory": "8GiB"}]
    return {"bp_facts": facts, "maintenance_window": f"sun-0{index % 5}:00"}


def hosts(n: int) -> list[tuple[str, str, str, int]]:
    """(name, site, kind, index) for N hosts, round-robin over the leaf groups."""
    leaves = leaf_groups()
    found = []
    for index in range(n):
        site, kind = leaves[index % len(leaves)]
        found.append((host_name(index, site, kind), site, kind, index))
    return found


def write_ini(path: Path, members: list[tuple[str, str, str, int]]) -> None:
    lines: list[str] = []
    for site, kind in leaf_groups():
        lines.append(f"[{site}_{kind}]")
        for name, h_site, h_kind, index in members:
            if (h_site, h_kind) == (site, kind):
                inline = host_inline_vars(index, site, kind)
                lines.append(" ".join([name, *(f"{k}={v}" for k, v in inline.items())]))
        lines.append("")
    for site in SITES:
        lines += [f"[site_{site}:children]", *(f"{site}_{kind}" for kind in KINDS), ""]
    for kind in KINDS:
        lines += [f"[{kind}:children]", *(f"{site}_{kind}" for site in SITES), ""]
    for region in sorted({s["region"] for s in SITES.values()}):
        sites = [s for s, info in SITES.items() if info["region"] == region]
        lines += [f"[region_{region}:children]", *(f"site_{s}" for s in sites), ""]
    lines += ["[edge:children]", *KINDS, ""]
    lines += ["[clinics:children]", *(f"site_{s}" for s in CLINIC_SITES), ""]
    lines += ["[all:vars]", "ansible_user=edge", "bp_service_manager=systemd", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def yaml_tree(members: list[tuple[str, str, str, int]]) -> dict[str, Any]:
    leaves: dict[str, dict[str, Any]] = {f"{s}_{k}": {"hosts": {}} for s, k in leaf_groups()}
    for name, site, kind, index in members:
        leaves[f"{site}_{kind}"]["hosts"][name] = host_inline_vars(index, site, kind)
    sites = {
        f"site_{site}": {"children": {f"{site}_{kind}": leaves[f"{site}_{kind}"] for kind in KINDS}}
        for site in SITES
    }
    kinds = {kind: {"children": {f"{site}_{kind}": None for site in SITES}} for kind in KINDS}
    regions = {
        f"region_{region}": {
            "children": {f"site_{s}": None for s, i in SITES.items() if i["region"] == region}
        }
        for region in sorted({s["region"] for s in SITES.values()})
    }
    children: dict[str, Any] = {**sites, **kinds, **regions}
    children["edge"] = {"children": {kind: None for kind in KINDS}}
    children["clinics"] = {"children": {f"site_{s}": None for s in CLINIC_SITES}}
    all_vars = {"ansible_user": "edge", "bp_service_manager": "systemd"}
    return {"all": {"vars": all_vars, "children": children}}


def dump(path: Path, data: Any) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def write_group_vars(outdir: Path) -> None:
    group_vars = outdir / "group_vars"
    group_vars.mkdir(parents=True, exist_ok=True)
    dump(
        group_vars / "all.yml",
        {
            "bp_root": "/opt/slmops",
            "ntp_servers": ["0.pool.ntp.org", "1.pool.ntp.org"],
            "telemetry": {"enabled": False},
        },
    )
    for kind, info in KINDS.items():
        dump(group_vars / f"{kind}.yml", {**info, "bp_device_class_hint": DEVICE_CLASS[kind]})
    for site, info in SITES.items():
        dump(group_vars / f"site_{site}.yml", {"site": site, **info})
    for region in sorted({s["region"] for s in SITES.values()}):
        region_dir = group_vars / f"region_{region}"
        region_dir.mkdir(exist_ok=True)
        dump(region_dir / "main.yml", {"region_name": region, "bp_root": f"/srv/{region}/slmops"})
        dump(region_dir / "network.yml", {"proxy": f"http://proxy.{region}.example.com:3128"})
    dump(group_vars / "clinics.yml", {"privacy_zone": "clinical", "telemetry": {"enabled": False}})


def write_host_vars(outdir: Path, members: list[tuple[str, str, str, int]]) -> None:
    host_vars = outdir / "host_vars"
    host_vars.mkdir(parents=True, exist_ok=True)
    for name, _site, kind, index in members:
        data = host_file_vars(index, kind)
        if data is not None:
            dump(host_vars / f"{name}.yml", data)


def generate_inventory(n: int, outdir: Path | str, fmt: str = "ini") -> Path:
    """Write the inventory for N hosts into OUTDIR (emptied first); return the inventory file."""
    out = Path(outdir)
    if out.exists() and any(out.iterdir()):
        if not any((out / name).exists() for name in ("hosts.ini", "hosts.yml")):
            raise SystemExit(f"{out} is not empty and not a generated inventory; not replacing it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    members = hosts(n)
    if fmt == "ini":
        inventory = out / "hosts.ini"
        write_ini(inventory, members)
    elif fmt == "yaml":
        inventory = out / "hosts.yml"
        dump(inventory, yaml_tree(members))
    else:
        raise ValueError(f"unknown format {fmt!r} (ini or yaml)")
    write_group_vars(out)
    write_host_vars(out, members)
    return inventory


def compare(inventory: Path) -> int:
    """Time load_inventory (fast path) against ansible-inventory --list and compare."""
    from slmops_bp.inventory import load_inventory

    started = time.perf_counter()
    loaded, diags = load_inventory([str(inventory)])
    fast_s = time.perf_counter() - started
    assert loaded is not None, diags
    tool = Path(sys.executable).with_name("ansible-inventory")
    started = time.perf_counter()
    out = subprocess.run(
        [str(tool), "-i", str(inventory), "--list"], capture_output=True, text=True, check=True
    ).stdout
    ansible_s = time.perf_counter() - started
    reference = json.loads(out)["_meta"]["hostvars"]
    same = all(dict(h.vars) == reference.get(name, {}) for name, h in loaded.hosts.items())
    print(
        f"hosts={len(loaded.hosts)} loader={loaded.loader} fast={fast_s:.3f}s "
        f"ansible-inventory={ansible_s:.3f}s ratio={fast_s / ansible_s:.3f} hostvars_equal={same}"
    )
    return 0 if same and loaded.loader == "fast" else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="number of hosts")
    parser.add_argument("outdir", help="output directory (replaced)")
    parser.add_argument("--format", choices=("ini", "yaml"), default="ini")
    parser.add_argument("--compare", action="store_true", help="time against ansible-inventory")
    args = parser.parse_args(argv)
    inventory = generate_inventory(args.n, args.outdir, args.format)
    print(inventory)
    if args.compare:
        sys.path.insert(0, os.fspath(Path(__file__).resolve().parent.parent))
        return compare(inventory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
