"""Devices that boot systemd: a minimal Debian root file system booted with ``systemd-nspawn -b``.

The root file system is built once with ``debootstrap --variant=minbase`` and cached by its
recipe (suite + package list + the customisation below) under
``$BP_ROOTFS_CACHE`` (default ``~/.cache/slmops-bp/rootfs/<digest>/root``); a build in progress
lives next to it under a temporary name and is renamed into place only when complete, under a
file lock, so two test sessions never build it twice nor use half of it.

Each device boots from its own overlay (``mount -t overlay``: the cached tree read-only below,
the device's own writable layer in the test's directory above), in a network namespace of its
own (``--network-veth``): a /29 of the 10.0.0.0/8 range picked at random and checked against the
machine's addresses; the host end of the veth pair holds ``.1`` (the test servers listen there)
and ``.3`` (an address no policy allows, for egress probes), the device ``.2``. No default route
and no forwarding: the device reaches the host's addresses on its link and nothing else.

The device runs systemd as PID 1 (``systemctl is-system-running`` is waited for), an sshd on
port 22, and a non-root login user ``bp`` with password-less sudo whose authorized key is the
fleet's own (generated per fleet). ``machinectl`` needs systemd as PID 1 on the host, so nothing
registers with machined (``--register=no --keep-unit``): devices are stopped by the PID of their
``systemd-nspawn`` (SIGTERM asks the container's systemd to power off; SIGKILL after a grace
period), then the overlay is unmounted.

Needs root, ``debootstrap`` and ``systemd-container`` (``.ci/system-packages``). The kernel may
refuse what nspawn needs (overlayfs, network namespaces, veth): :class:`NspawnRefused` says what;
the tests skip on it with that reason. Anything else missing is an error (:class:`NspawnError`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.sshd import descendants

SUITE = "bookworm"
PACKAGES = (
    "dbus",
    "iproute2",
    "libgomp1",  # llama.cpp's CPU backend (the llama-cpp-python wheel) links OpenMP
    "nftables",
    "openssh-server",
    "python3",
    "python3-venv",
    "sudo",
    "systemd",
    "systemd-sysv",
)
LOGIN_USER = "bp"
DEVICE_PYTHON = "/usr/bin/python3"
INSTALL_HINT = "apt-get install -y debootstrap systemd-container (as .ci/run does)"
# Bumped when the customisation of the cached tree changes (part of the cache digest).
RECIPE_VERSION = "1"
BOOT_TIMEOUT = 90.0


class NspawnError(RuntimeError):
    """The machine cannot host nspawn devices (not root, a tool missing, a build failed)."""


class NspawnRefused(NspawnError):
    """The kernel refuses what a booted device needs (overlayfs, namespaces, veth)."""


def _run(
    cmd: list[str], *, refused: bool = False, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    if proc.returncode != 0:
        kind = NspawnRefused if refused else NspawnError
        raise kind(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc


def check_host() -> None:
    if os.geteuid() != 0:
        raise NspawnError("booted devices need root (debootstrap, mount, systemd-nspawn)")
    for tool in ("debootstrap", "systemd-nspawn", "nsenter", "ip", "ssh-keygen", "ssh"):
        if shutil.which(tool) is None:
            raise NspawnError(f"{tool} is not installed: {INSTALL_HINT}")


def mirror() -> str:
    """The Debian mirror: ``$BP_DEBIAN_MIRROR``, else the first one this machine's apt uses."""
    if os.environ.get("BP_DEBIAN_MIRROR"):
        return os.environ["BP_DEBIAN_MIRROR"]
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for source in sources:
        with contextlib.suppress(OSError):
            for line in source.read_text().splitlines():
                words = line.split()
                if words[:1] == ["deb"] and len(words) >= 3 and "security" not in words[-2]:
                    return next(w for w in words[1:] if "://" in w)
                if words[:1] == ["URIs:"] and len(words) >= 2 and "security" not in words[1]:
                    return words[1]
    return "http://deb.debian.org/debian"


def cache_dir() -> Path:
    configured = os.environ.get("BP_ROOTFS_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "slmops-bp" / "rootfs"


def recipe_digest(packages: tuple[str, ...] = PACKAGES) -> str:
    recipe = {"suite": SUITE, "packages": sorted(packages), "recipe": RECIPE_VERSION,
              "arch": os.uname().machine}  # fmt: skip
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def rootfs(packages: tuple[str, ...] = PACKAGES, log: Path | None = None) -> Path:
    """The cached root file system (built on first use); its path."""
    check_host()
    base = cache_dir() / recipe_digest(packages)
    root = base / "root"
    if (base / "complete").exists():
        return root
    base.mkdir(parents=True, exist_ok=True)
    with (base / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (base / "complete").exists():
            return root
        staging = base / f"root.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
        cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(sorted(packages))}",
               SUITE, str(staging), mirror()]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if log is not None:
            log.write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            tail = (proc.stdout + proc.stderr).strip()[-2000:]
            raise NspawnError(f"debootstrap failed ({proc.returncode}): {tail}")
        _customise(staging)
        staging.rename(root)
        (base / "complete").write_text(json.dumps({"packages": sorted(packages), "suite": SUITE}))
    return root


def _customise(root: Path) -> None:
    """What every device shares: the login user with sudo, sshd's settings, a quiet boot."""
    _run(["chroot", str(root), "useradd", "--create-home", "--shell", "/bin/sh",
          "--password", "*", LOGIN_USER])  # fmt: skip
    sudoers = root / "etc" / "sudoers.d" / LOGIN_USER
    sudoers.write_text(f"{LOGIN_USER} ALL=(ALL) NOPASSWD: ALL\n")
    sudoers.chmod(0o440)
    (root / "etc" / "ssh" / "sshd_config.d").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "ssh" / "sshd_config.d" / "bp.conf").write_text(
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin no\n"
        "UseDNS no\nMaxStartups 50:30:100\nMaxSessions 50\n"
    )
    # host keys are made per device (see NspawnFleet._prepare); none is shared
    for key in (root / "etc" / "ssh").glob("ssh_host_*"):
        key.unlink()
    # units a test device does not need (and that would wait for hardware or the network)
    for unit in ("systemd-networkd-wait-online.service", "apt-daily.timer",
                 "apt-daily-upgrade.timer", "e2scrub_all.timer", "fstrim.timer"):  # fmt: skip
        with contextlib.suppress(OSError):
            (root / "etc" / "systemd" / "system" / unit).unlink()
            (root / "etc" / "systemd" / "system" / unit).symlink_to("/dev/null")
    (root / "etc" / "machine-id").write_text("")


# ------------------------------------------------------------------ processes


def _container_init(pid: int) -> int | None:
    """The PID (on the host) of the container's PID 1 below nspawn process ``pid``."""
    for child in descendants(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{child}/status").read_text().splitlines():
                if line.startswith("NSpid:") and line.split()[-1] == "1" and len(line.split()) > 2:
                    return child
    return None


def _free_subnet() -> ipaddress.IPv4Network:
    used = [ipaddress.ip_interface(a) for a in _addresses()]
    for _ in range(200):
        net = ipaddress.IPv4Network((random.randrange(0x0A000000, 0x0B000000) & ~7, 29))
        if not any(net.overlaps(u.network) for u in used):
            return net
    raise NspawnError("no free 10.0.0.0/8 subnet for a device link")


def _addresses() -> list[str]:
    out = _run(["ip", "-j", "-4", "addr"]).stdout
    return [
        f"{a['local']}/{a['prefixlen']}"
        for link in json.loads(out)
        for a in link.get("addr_info", [])
    ]


# ------------------------------------------------------------------ devices


@dataclass
class NspawnDevice:
    """One booted device: its nspawn process, overlay, link and addresses."""

    name: str  # inventory name
    machine: str  # nspawn machine name (short: the host interface is ve-<machine>)
    directory: Path
    subnet: ipaddress.IPv4Network
    process: subprocess.Popen[bytes] | None = None
    leader: int | None = None

    @property
    def address(self) -> str:
        return str(self.subnet[2])

    @property
    def host_address(self) -> str:
        """The host's end of the link: where the test servers listen for this device."""
        return str(self.subnet[1])

    @property
    def outside_address(self) -> str:
        """A second host address on the link that no policy allows (for egress probes)."""
        return str(self.subnet[3])

    @property
    def merged(self) -> Path:
        return self.directory / "merged"

    @property
    def log(self) -> Path:
        return self.directory / "console.log"

    @property
    def interface(self) -> str:
        return f"ve-{self.machine}"[:15]


@dataclass
class NspawnFleet:
    """Booted devices for tests: :meth:`start` then :meth:`stop`."""

    base: Path
    names: list[str]
    binds: list[tuple[Path, str]] = field(default_factory=list)  # read-only (host, device)
    devices: dict[str, NspawnDevice] = field(default_factory=dict)
    control_dir: Path | None = None
    rootfs: Path | None = None

    @property
    def client_key(self) -> Path:
        return self.base / "client_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.base / "known_hosts"

    def start(self) -> NspawnFleet:
        check_host()
        self.base.mkdir(parents=True, exist_ok=True)
        self.rootfs = rootfs(log=self.base / "debootstrap.log")
        self.control_dir = Path(
            subprocess.run(["mktemp", "-d", "/tmp/bpns-XXXXXX"], capture_output=True, text=True,
                           check=True).stdout.strip()
        )  # fmt: skip
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bp-nspawn",
              "-f", str(self.client_key)])  # fmt: skip
        tag = secrets.token_hex(3)
        try:
            for index, name in enumerate(self.names, start=1):
                device = NspawnDevice(name, f"bp{tag}{index:02d}", self.base / "devices" / name,
                                      _free_subnet())  # fmt: skip
                self.devices[name] = device
                self._prepare(device)
                self._boot(device)
            for device in self.devices.values():
                self._wait_running(device)
            self._route_to_servers()
            self._write_known_hosts()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for device in self.devices.values():
            self._stop_device(device)
        if self.control_dir is not None:
            shutil.rmtree(self.control_dir, ignore_errors=True)

    # ------------------------------------------------------------ use

    def run(self, name: str, command: list[str], timeout: float = 120.0, check: bool = True
            ) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """A command on the device as root, over SSH as the login user with sudo."""
        device = self.devices[name]
        ssh = ["ssh", "-o", "BatchMode=yes", "-o", f"IdentityFile={self.client_key}",
               "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={self.known_hosts}",
               "-o", "StrictHostKeyChecking=yes", f"{LOGIN_USER}@{device.address}", "--",
               "sudo", "-n", *(_shell_quote(part) for part in command)]  # fmt: skip
        proc = subprocess.run(ssh, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(command)} on {name} failed ({proc.returncode}):\n"
                f"{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def host_vars(self, name: str) -> dict[str, Any]:
        device = self.devices[name]
        assert self.control_dir is not None
        return {
            "ansible_connection": "ssh",
            "ansible_host": device.address,
            "ansible_port": 22,
            "ansible_user": LOGIN_USER,
            "ansible_become": True,
            "ansible_python_interpreter": DEVICE_PYTHON,
            "ansible_ssh_common_args": (
                f"-o IdentityFile={self.client_key} -o IdentitiesOnly=yes "
                f"-o UserKnownHostsFile={self.known_hosts} -o StrictHostKeyChecking=yes"
            ),
            "ansible_control_path_dir": str(self.control_dir),
        }

    def inventory_text(self, groups: dict[str, list[str]], host_vars: dict[str, str]) -> str:
        lines = ["# Devices that boot systemd (tests/support/nspawn.py).", "all:", "  children:"]
        for group, hosts in groups.items():
            lines += [f"    {group}:", "      hosts:"]
            for host in hosts:
                lines.append(f"        {host}:")
                for key, value in self.host_vars(host).items():
                    text = "true" if value is True else str(value) if isinstance(value, int) else (
                        json.dumps(str(value)))  # fmt: skip
                    lines.append(f"          {key}: {text}")
                lines += [f"          {line}" for line in host_vars.get(host, "").splitlines()]
        return "\n".join(lines) + "\n"

    @property
    def server_address(self) -> str:
        """Where the test servers listen for every device: the first device's host end (the
        others have a host route to it through their own link)."""
        return next(iter(self.devices.values())).host_address

    # ------------------------------------------------------------ internals

    def _route_to_servers(self) -> None:
        for device in list(self.devices.values())[1:]:
            assert device.leader is not None
            route = [f"{self.server_address}/32", "via", device.host_address, "dev", "host0"]
            _run(["nsenter", f"--net=/proc/{device.leader}/ns/net", "ip", "route", "add", *route])

    def _prepare(self, device: NspawnDevice) -> None:
        assert self.rootfs is not None
        upper, work = device.directory / "upper", device.directory / "work"
        for path in (upper, work, device.merged):
            path.mkdir(parents=True)
        _run(["mount", "-t", "overlay", "overlay", "-o",
              f"lowerdir={self.rootfs},upperdir={upper},workdir={work}", str(device.merged)],
             refused=True)  # fmt: skip
        etc = device.merged / "etc"
        (etc / "hostname").write_text(device.name + "\n")
        (etc / "hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 {device.name}\n")
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", device.name,
              "-f", str(etc / "ssh" / "ssh_host_ed25519_key")])  # fmt: skip
        ssh_dir = device.merged / "home" / LOGIN_USER / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text((self.base / "client_ed25519.pub").read_text())
        (ssh_dir / "authorized_keys").chmod(0o600)
        owner = (device.merged / "home" / LOGIN_USER).stat()
        os.chown(ssh_dir, owner.st_uid, owner.st_gid)
        os.chown(ssh_dir / "authorized_keys", owner.st_uid, owner.st_gid)

    def _boot(self, device: NspawnDevice) -> None:
        cmd = ["systemd-nspawn", "--quiet", "--boot", "--register=no", "--keep-unit",
               f"--machine={device.machine}", f"--directory={device.merged}",
               "--network-veth", "--console=passive", "--link-journal=no"]  # fmt: skip
        cmd += [f"--bind-ro={host}:{target}" for host, target in self.binds]
        with device.log.open("ab") as log:
            device.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while device.leader is None:
            if device.process.poll() is not None:
                raise NspawnRefused(
                    f"systemd-nspawn of {device.name} exited ({device.process.returncode}): "
                    f"{device.log.read_text(errors='replace')[-2000:]}"
                )
            if time.monotonic() > deadline:
                raise NspawnError(f"{device.name}: no container init after 30s; see {device.log}")
            device.leader = _container_init(device.process.pid)
            time.sleep(0.1)
        # the link: host end .1 and .3, device .2; no default route, no forwarding
        while not Path(f"/sys/class/net/{device.interface}").exists():
            if time.monotonic() > deadline:
                raise NspawnRefused(f"{device.name}: no veth interface {device.interface}")
            time.sleep(0.1)
        prefix = device.subnet.prefixlen
        _run(["ip", "addr", "add", f"{device.host_address}/{prefix}", "dev", device.interface])
        _run(["ip", "addr", "add", f"{device.outside_address}/{prefix}", "dev", device.interface])
        _run(["ip", "link", "set", device.interface, "up"])
        inside = ["nsenter", f"--net=/proc/{device.leader}/ns/net", "ip"]
        _run([*inside, "addr", "add", f"{device.address}/{prefix}", "dev", "host0"])
        _run([*inside, "link", "set", "host0", "up"])

    def _wait_running(self, device: NspawnDevice) -> None:
        """Until the device's systemd says running (or degraded: a unit the test does not
        need failed) and its sshd answers."""
        deadline = time.monotonic() + BOOT_TIMEOUT
        state = ""
        assert device.leader is not None
        while time.monotonic() < deadline:
            if device.process is None or device.process.poll() is not None:
                raise NspawnError(f"{device.name} stopped while booting; see {device.log}")
            proc = subprocess.run(
                ["nsenter", f"--target={device.leader}", "--mount", "--pid", "--",
                 "systemctl", "is-system-running"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            state = proc.stdout.strip()
            if state in ("running", "degraded") and self._ssh_banner(device):
                return
            time.sleep(0.5)
        raise NspawnError(f"{device.name} did not finish booting ({state!r}); see {device.log}")

    @staticmethod
    def _ssh_banner(device: NspawnDevice) -> bool:
        import socket

        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            try:
                sock.connect((device.address, 22))
                return sock.recv(64).startswith(b"SSH-")
            except OSError:
                return False

    def _write_known_hosts(self) -> None:
        lines = []
        for device in self.devices.values():
            key = (device.merged / "etc" / "ssh" / "ssh_host_ed25519_key.pub").read_text().split()
            lines.append(f"{device.address} {key[0]} {key[1]}\n")
        self.known_hosts.write_text("".join(lines))

    def _stop_device(self, device: NspawnDevice) -> None:
        process = device.process
        if process is not None and process.poll() is None:
            # SIGTERM: nspawn asks the container's systemd to power off
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                for pid in [process.pid, *descendants(process.pid)]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                process.wait(timeout=10)
        device.process = None
        if device.merged.is_mount():
            subprocess.run(["umount", str(device.merged)], capture_output=True, check=False)
            if device.merged.is_mount():
                subprocess.run(
                    ["umount", "-l", str(device.merged)], capture_output=True, check=False
                )
        with contextlib.suppress(OSError):
            # the host end goes with the namespace; remove it if a killed nspawn left it
            if Path(f"/sys/class/net/{device.interface}").exists():
                subprocess.run(
                    ["ip", "link", "del", device.interface], capture_output=True, check=False
                )


def _shell_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


@contextlib.contextmanager
def booted(base: Path, names: list[str], binds: list[tuple[Path, str]] | None = None
           ) -> Iterator[NspawnFleet]:  # fmt: skip
    fleet = NspawnFleet(base, names, binds=list(binds or []))
    try:
        yield fleet.start()
    finally:
        fleet.stop()
