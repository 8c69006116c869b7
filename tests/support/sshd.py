"""Simulated devices reached over real SSH: one private ``sshd`` per device on 127.0.0.1.

Each device gets its own port (a free one, probed at start), host key, ``sshd_config``, pid
file and log under the fleet's directory, and its own non-root login user with password-less
sudo (``become: true``).  Nothing system-wide is started: no sshd service, no change to
``/etc/ssh``; the fixture adds only its users and their ``/etc/sudoers.d`` drop-ins, and
removes them again in :meth:`SshFleet.stop`.  Every sshd is stopped by its PID, with the
per-connection processes it forked (so a connection Ansible keeps open with ControlPersist
is dropped too: a stopped device is really unreachable).

Needs root (``useradd``, sudoers) and Debian's ``openssh-server`` and ``sudo``
(``apt-get install -y openssh-server sudo``, as ``.ci/run`` does).  A missing piece is an
error with that hint, never a silent skip.

Used by the SSH drills (``tests/e2e/test_ssh_drills.py``) and ``bench/apply.py --ssh``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")
INSTALL_HINT = "apt-get install -y openssh-server sudo (as .ci/run does)"
PRIVSEP_DIR = Path("/run/sshd")  # Debian's sshd refuses to start without it
SUDOERS_DIR = Path("/etc/sudoers.d")
DEVICE_PYTHON = "/usr/bin/python3"


class SshSetupError(RuntimeError):
    """The machine cannot host SSH devices (not root, openssh-server or sudo missing, ...)."""


def sshd_binary() -> str:
    found = shutil.which("sshd")
    found = found or next((c for c in SSHD_CANDIDATES if os.access(c, os.X_OK)), None)
    if found is None:
        raise SshSetupError(f"sshd is not installed: {INSTALL_HINT}")
    return found


def check_host() -> str:
    """The sshd to run; raises :class:`SshSetupError` saying what is missing."""
    if os.geteuid() != 0:
        raise SshSetupError("the SSH device fixture runs as root (it adds users and sudoers)")
    for tool in ("useradd", "userdel", "visudo", "ssh-keygen", "ssh"):
        if shutil.which(tool) is None:
            raise SshSetupError(f"{tool} is not installed: {INSTALL_HINT}")
    if not Path("/usr/bin/sudo").exists() and shutil.which("sudo") is None:
        raise SshSetupError(f"sudo is not installed: {INSTALL_HINT}")
    return sshd_binary()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    if proc.returncode != 0:
        raise SshSetupError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc), deepest last."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the comm field may hold spaces and parentheses: ppid follows the last ')'
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        kids = [child for child, parent in parents.items() if parent == current]
        found += kids
        frontier += kids
    return found


@dataclass
class SshDevice:
    """One simulated device: its sshd, its login user, its own directory."""

    name: str
    user: str
    directory: Path  # host key, sshd_config, pid file, log
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.directory / "sshd.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class SshFleet:
    """Devices over SSH for tests and benchmarks; :meth:`start` then :meth:`stop`."""

    base: Path
    names: list[str]
    devices: dict[str, SshDevice] = field(default_factory=dict)
    control_dir: Path | None = None  # short path: ssh's ControlPath sockets live here
    _users: list[str] = field(default_factory=list)

    @property
    def client_key(self) -> Path:
        return self.base / "client_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.base / "known_hosts"

    # ------------------------------------------------------------ life cycle

    def start(self) -> SshFleet:
        sshd = check_host()
        self.base.mkdir(parents=True, exist_ok=True)
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        self.control_dir = Path(tempfile.mkdtemp(prefix="bpcp-"))
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bp-fleet",
              "-f", str(self.client_key)])  # fmt: skip
        public = (self.base / "client_ed25519.pub").read_text()
        tag = secrets.token_hex(3)
        try:
            for index, name in enumerate(self.names, start=1):
                device = SshDevice(name, f"bpssh-{tag}-{index:02d}", self.base / "sshd" / name)
                self.devices[name] = device
                self._add_user(device.user, public)
                device.directory.mkdir(parents=True)
                _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name,
                      "-f", str(device.directory / "host_ed25519")])  # fmt: skip
                self._start_sshd(sshd, device)
            self._write_known_hosts()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every sshd (by PID, with its connections); remove the users and drop-ins."""
        for device in self.devices.values():
            self.stop_device(device.name)
        for user in self._users:
            with contextlib.suppress(OSError):
                (SUDOERS_DIR / user).unlink()
            subprocess.run(["userdel", "-r", "-f", user], capture_output=True, check=False)
        self._users.clear()
        if self.control_dir is not None:
            shutil.rmtree(self.control_dir, ignore_errors=True)

    def stop_device(self, name: str) -> None:
        """The device goes away: its sshd and every connection it serves are killed."""
        device = self.devices[name]
        process = device.process
        if process is None:
            return
        if process.poll() is None:
            for pid in [process.pid, *descendants(process.pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        device.process = None

    def start_device(self, name: str) -> None:
        """Bring a stopped device back (a new free port if its old one was taken meanwhile)."""
        device = self.devices[name]
        if not device.running:
            self._start_sshd(sshd_binary(), device, port=device.port)
            self._write_known_hosts()

    def close_connections(self) -> None:
        """End the SSH connections Ansible keeps open (ControlPersist) to every device, so
        that the next run pays for its logins as a run after a pause would."""
        if self.control_dir is None:
            return
        for socket_path in sorted(self.control_dir.iterdir()):
            if socket_path.is_socket():
                subprocess.run(
                    ["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "bp-device"],
                    capture_output=True, check=False, timeout=30,
                )  # fmt: skip

    # ------------------------------------------------------------ inventory

    def host_vars(self, name: str) -> dict[str, Any]:
        """Connection variables of one device, as an inventory sets them."""
        device = self.devices[name]
        assert self.control_dir is not None
        return {
            "ansible_connection": "ssh",
            "ansible_host": "127.0.0.1",
            "ansible_port": device.port,
            "ansible_user": device.user,
            "ansible_become": True,
            "ansible_python_interpreter": DEVICE_PYTHON,
            "ansible_ssh_common_args": (
                f"-o IdentityFile={self.client_key} -o IdentitiesOnly=yes "
                f"-o UserKnownHostsFile={self.known_hosts} -o StrictHostKeyChecking=yes"
            ),
            "ansible_control_path_dir": str(self.control_dir),
        }

    # ------------------------------------------------------------ internals

    def _add_user(self, user: str, public_key: str) -> None:
        # '*' and not useradd's default '!': sshd refuses keys of a locked account
        _run(["useradd", "--create-home", "--shell", "/bin/sh", "--password", "*", user])
        self._users.append(user)
        home = Path("/home") / user
        ssh_dir = home / ".ssh"
        ssh_dir.mkdir(mode=0o700)
        (ssh_dir / "authorized_keys").write_text(public_key)
        shutil.chown(ssh_dir, user, user)
        shutil.chown(ssh_dir / "authorized_keys", user, user)
        (ssh_dir / "authorized_keys").chmod(0o600)
        drop_in = SUDOERS_DIR / user
        staged = SUDOERS_DIR / f".{user}.tmp"  # sudo ignores names with a dot
        staged.write_text(f"{user} ALL=(ALL) NOPASSWD: ALL\n")
        staged.chmod(0o440)
        _run(["visudo", "-c", "-q", "-f", str(staged)])
        staged.rename(drop_in)

    def _config(self, device: SshDevice) -> Path:
        config = device.directory / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {device.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {device.directory / 'host_ed25519'}",
                    f"PidFile {device.directory / 'sshd.pid'}",
                    f"AllowUsers {device.user}",
                    "AuthenticationMethods publickey",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin no",
                    "UsePAM no",
                    "UseDNS no",
                    "MaxStartups 50:30:100",
                    "MaxSessions 50",
                    "LogLevel VERBOSE",
                    "Subsystem sftp internal-sftp",
                    "",
                ]
            )
        )
        return config

    def _start_sshd(self, sshd: str, device: SshDevice, port: int = 0) -> None:
        """Start the device's sshd in the foreground (-D) on a free port; wait until it listens."""
        for attempt in range(5):
            device.port = port if (port and attempt == 0) else free_port()
            config = self._config(device)
            _run([sshd, "-t", "-f", str(config)])
            with device.log.open("ab") as log:
                device.process = subprocess.Popen(
                    [sshd, "-D", "-e", "-f", str(config)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                )  # fmt: skip
            if self._wait_listening(device):
                return
            self.stop_device(device.name)
        raise SshSetupError(f"sshd of {device.name} did not start; see {device.log}")

    @staticmethod
    def _wait_listening(device: SshDevice, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if device.process is None or device.process.poll() is not None:
                return False  # exited: the port was taken meanwhile, or a bad config
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.settimeout(0.5)
                try:
                    sock.connect(("127.0.0.1", device.port))
                    banner = sock.recv(64)
                except OSError:
                    banner = b""
            if banner.startswith(b"SSH-"):
                return True
            time.sleep(0.05)
        return False

    def _write_known_hosts(self) -> None:
        lines = []
        for device in self.devices.values():
            key = (device.directory / "host_ed25519.pub").read_text().split()
            lines.append(f"[127.0.0.1]:{device.port} {key[0]} {key[1]}\n")
        self.known_hosts.write_text("".join(lines))


def ssh_inventory_text(fleet: SshFleet, groups: dict[str, list[str]], host_vars: dict[str, str],
                       ) -> str:  # fmt: skip
    """A YAML inventory of the fleet: ``groups`` name → hosts, ``host_vars`` host → the
    extra variables of each host as YAML flow text (e.g. its ``bp_root`` and ``bp_facts``)."""
    lines = ["# Devices over SSH (tests/support/sshd.py): each its own sshd and login user.",
             "all:", "  children:"]  # fmt: skip
    for group, hosts in groups.items():
        lines += [f"    {group}:", "      hosts:"]
        for host in hosts:
            lines.append(f"        {host}:")
            for key, value in fleet.host_vars(host).items():
                text = "true" if value is True else _quote(value)
                lines.append(f"          {key}: {text}")
            lines += [f"          {line}" for line in host_vars.get(host, "").splitlines()]
    return "\n".join(lines) + "\n"


def _quote(value: object) -> str:
    if isinstance(value, int):
        return str(value)
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


if __name__ == "__main__":  # a manual check: start two devices, print their inventory, stop
    with tempfile.TemporaryDirectory() as tmp:
        demo = SshFleet(Path(tmp), ["dev-a", "dev-b"]).start()
        try:
            print(ssh_inventory_text(demo, {"demo": demo.names}, {}))
            for name in demo.names:
                print(name, demo.devices[name].port, demo.devices[name].user, file=sys.stderr)
        finally:
            demo.stop()
