"""A real node for the test control plane: containerd, a kubelet and the scheduler.

Everything lives under one work folder (containerd's root, state and socket, the
kubelet's root and pod logs) and is started and stopped by pid through
rayref.devcluster.processes. Choices forced by the machines this runs on:
- the kubelet tolerates cgroup v1 (`failCgroupV1: false`) and swap, with the
  cgroupfs driver, under a cgroup root of its own;
- containerd's CRI runs runc with `restrict_oom_score_adj` (runc fails with
  "can't get final child's PID from pipe" otherwise) and a sandbox image built
  here from the pinned Kubernetes module's pause.c (no registry is reachable);
- the node's IP sits on a dummy interface with a private address: the API server
  refuses to proxy `kubectl logs` to a loopback address;
- no node-lifecycle controller runs, so the node's not-ready taint is removed
  here once the kubelet reports Ready;
- pods that need the API server use hostNetwork: the `kubernetes` Service has no
  endpoints (no kube-proxy) and the control plane listens on 127.0.0.1 only. A
  bridge CNI config is installed all the same, as the kubelet wants one to call
  the node's network ready.
Needs root and Debian's containerd, runc and containernetworking-plugins.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rayref.devcluster.build import find_go, module_dir
from rayref.devcluster.cluster import DevCluster
from rayref.devcluster.image import SOURCE_DATE_EPOCH, image_cache
from rayref.devcluster.oci import compress_layer, write_archive, write_tree_layer
from rayref.devcluster.ports import free_port
from rayref.devcluster.processes import ChildProcess

NODE_NAME = "rayref-node"
PAUSE_IMAGE = "rayref.local/pause:3.10"
CNI_DIR = Path("/usr/lib/cni")
CNI_PLUGINS = ("bridge", "host-local", "loopback")
COMMANDS = ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "ip", "gcc", "mount")
CRI_NAMESPACE = "k8s.io"
WORKLOAD_CONTROLLERS = ("deployment-controller", "replicaset-controller")

Log = Callable[[str], None]


class NodeError(RuntimeError):
    """A part of the node did not start; the message names it and ends with its log."""


def _cgroup_controllers() -> set[str]:
    unified = Path("/sys/fs/cgroup/cgroup.controllers")
    if unified.is_file():
        return set(unified.read_text().split())
    return {p.name for p in Path("/sys/fs/cgroup").iterdir() if (p / "tasks").is_file()}


def missing_prerequisites() -> list[str]:
    """What this machine lacks to run the node (empty when it can)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (the kubelet and containerd)")
    absent = [c for c in COMMANDS if shutil.which(c) is None]
    if absent:
        missing.append(f"{', '.join(absent)} (apt-get install containerd runc gcc iproute2)")
    plugins = [p for p in CNI_PLUGINS if not (CNI_DIR / p).is_file()]
    if plugins:
        missing.append(
            f"CNI plugins {', '.join(plugins)} (apt-get install containernetworking-plugins)"
        )
    try:
        controllers = _cgroup_controllers()
    except OSError:
        controllers = set()
    lacking = sorted({"cpu", "memory", "pids"} - controllers)
    if lacking:
        missing.append(f"cgroup controllers {', '.join(lacking)}")
    if "overlay" not in Path("/proc/filesystems").read_text():
        missing.append("the overlay filesystem")
    return missing


def _run(argv: list[str], what: str, *, timeout: float = 120, cwd: Path | None = None) -> str:
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd
    )
    if result.returncode != 0:
        raise NodeError(
            f"{what} failed (exit {result.returncode}): {' '.join(argv)}\n{result.stderr}"
        )
    return result.stdout


def pause_image(log: Log) -> Path:
    """The sandbox image: the pinned module's pause.c, compiled static, alone in one layer."""
    source_dir = _run(
        [find_go(), "list", "-m", "-f", "{{.Dir}}", "k8s.io/kubernetes"],
        "go list",
        timeout=60,
        cwd=module_dir(),
    )
    source = Path(source_dir.strip()) / "build" / "pause" / "linux" / "pause.c"
    key = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    archive = image_cache() / f"pause-{key}.oci.tar"
    if archive.is_file():
        return archive
    log(f"node: building the pause image from {source}")
    with tempfile.TemporaryDirectory(prefix="rayref-pause-") as tmp:
        work = Path(tmp)
        (work / "root").mkdir()
        binary = work / "root" / "pause"
        _run(["gcc", "-Os", "-static", "-DVERSION=3.10", "-o", str(binary), str(source)], "gcc")
        _run(["strip", str(binary)], "strip")
        write_tree_layer(work / "root", ["pause"], work / "layer.tar", mtime=SOURCE_DATE_EPOCH)
        layer = compress_layer(work / "layer.tar", work / "layer.tar.gz")
        config: dict[str, object] = {"Entrypoint": ["/pause"], "User": "65535:65535"}
        archive.parent.mkdir(parents=True, exist_ok=True)
        partial = archive.with_name(f".{archive.name}.{os.getpid()}")
        write_archive(partial, [layer], config, PAUSE_IMAGE, work)
        partial.replace(archive)
    return archive


def _wait(check: Callable[[], bool], timeout: float, what: str, process: ChildProcess) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.running():
            raise NodeError(f"{process.name} exited while waiting for {what}:\n{process.tail()}")
        if check():
            return
        time.sleep(0.5)
    raise NodeError(f"{what} not reached within {timeout:.0f} s:\n{process.tail()}")


class Containerd:
    """containerd with its own root, state and socket under `work_dir`."""

    def __init__(self, work_dir: Path, logs_dir: Path) -> None:
        self.work_dir = work_dir
        self.logs_dir = logs_dir
        self.socket = work_dir / "containerd.sock"
        self.cni_conf_dir = work_dir / "cni"
        self.process = ChildProcess(
            "containerd",
            ["containerd", "--config", str(work_dir / "config.toml")],
            logs_dir / "containerd.log",
        )

    def _config(self) -> str:
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        return f"""version = 2
root = "{self.work_dir / "root"}"
state = "{self.work_dir / "state"}"
# The opt plugin would write to /opt/containerd; nothing here needs it.
disabled_plugins = ["io.containerd.internal.v1.opt"]
[grpc]
  address = "{self.socket}"
[ttrpc]
  address = "{self.socket}.ttrpc"
[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
[{cri}.cni]
  bin_dir = "{CNI_DIR}"
  conf_dir = "{self.cni_conf_dir}"
"""

    def _cni_config(self, bridge: str, subnet: str) -> dict[str, object]:
        return {
            "cniVersion": "1.0.0",
            "name": "rayref",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": bridge,
                    "isGateway": True,
                    "ipMasq": False,
                    "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]]},
                },
                {"type": "loopback"},
            ],
        }

    def start(self, timeout: float = 60) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.cni_conf_dir.mkdir(exist_ok=True)
        suffix = secrets.token_hex(3)
        # No pod of the tests uses the bridge (they run with hostNetwork); its name and
        # subnet are random all the same, so two test beds never share one.
        bridge, subnet = (
            f"rayref{suffix}",
            f"10.{200 + int(suffix[:2], 16) % 50}.{int(suffix[2:4], 16)}.0/24",
        )
        (self.work_dir / "config.toml").write_text(self._config())
        (self.cni_conf_dir / "10-rayref.conflist").write_text(
            json.dumps(self._cni_config(bridge, subnet))
        )
        self.process.start()
        _wait(
            lambda: self.ctr("version", check=False).returncode == 0,
            timeout,
            "containerd's socket",
            self.process,
        )

    def ctr(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        argv = ["ctr", "--address", str(self.socket), "--namespace", CRI_NAMESPACE, *args]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise NodeError(f"{' '.join(argv)} failed (exit {result.returncode}):\n{result.stderr}")
        return result

    def import_image(self, archive: Path) -> None:
        self.ctr("images", "import", str(archive), timeout=300)

    def remove_everything(self) -> None:
        """Kill and delete every task and container, so no shim outlives the test."""
        for task in self.ctr("tasks", "list", "--quiet", check=False).stdout.split():
            self.ctr("tasks", "kill", "--signal", "SIGKILL", task, check=False)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            left = self.ctr("tasks", "list", "--quiet", check=False).stdout.split()
            for task in left:
                self.ctr("tasks", "delete", "--force", task, check=False)
            if not left:
                break
            time.sleep(0.5)
        for container in self.ctr("containers", "list", "--quiet", check=False).stdout.split():
            self.ctr("containers", "delete", container, check=False)

    def stop(self) -> None:
        if self.process.running():
            self.remove_everything()
        self.process.stop()


class NodeAddress:
    """A private address on an interface of its own (a bridge without ports): the InternalIP.

    198.18.0.0/15 is reserved for benchmarking networks, so no real network uses it;
    each node takes a random /32 of it, so two test beds on one machine do not meet.
    """

    def __init__(self) -> None:
        suffix = secrets.token_hex(3)
        self.interface = f"rayref{suffix}"
        network = ipaddress.ip_network("198.18.0.0/15")
        self.ip = str(network[1 + int(suffix, 16) % (network.num_addresses - 2)])

    def add(self) -> None:
        _run(["ip", "link", "add", self.interface, "type", "bridge"], "ip link add")
        _run(["ip", "addr", "add", f"{self.ip}/32", "dev", self.interface], "ip addr add")
        _run(["ip", "link", "set", self.interface, "up"], "ip link set up")

    def remove(self) -> None:
        subprocess.run(["ip", "link", "del", self.interface], capture_output=True, check=False)


class Node:
    """One node registered with a DevCluster: the scheduler and a kubelet over containerd."""

    def __init__(self, cluster: DevCluster, runtime: Containerd, work_dir: Path) -> None:
        self.cluster = cluster
        self.runtime = runtime
        self.work_dir = work_dir
        self.address = NodeAddress()
        self.cgroup_root = f"/{self.address.interface}"
        self.kubelet_port = 0
        logs = runtime.logs_dir
        self.scheduler = self._process("kube-scheduler", self._scheduler_args(), logs)
        self.workloads = ChildProcess(
            "kube-controller-manager (workloads)",
            [str(cluster.bin_dir / "kube-controller-manager"), *self._workload_controller_args()],
            logs / "kube-controller-manager-workloads.log",
        )
        self.kubelet: ChildProcess | None = None

    @property
    def name(self) -> str:
        return NODE_NAME

    def _process(self, name: str, argv: list[str], logs: Path) -> ChildProcess:
        return ChildProcess(name, [str(self.cluster.bin_dir / name), *argv], logs / f"{name}.log")

    def _scheduler_args(self) -> list[str]:
        return [
            f"--kubeconfig={self.cluster.kubeconfig}",
            f"--authentication-kubeconfig={self.cluster.kubeconfig}",
            f"--authorization-kubeconfig={self.cluster.kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}",
        ]

    def _workload_controller_args(self) -> list[str]:
        # The control plane's controller manager runs only what the tests without a
        # node need; Deployments need these two, in a second one started with the node.
        kubeconfig = self.cluster.kubeconfig
        return [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--authentication-skip-lookup=true",
            "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}",
            f"--cert-dir={self.work_dir / 'controller-manager-certs'}",
            "--leader-elect=false",
            f"--controllers={','.join(WORKLOAD_CONTROLLERS)}",
            "--use-service-account-credentials=false",
        ]

    def _kubelet_config(self) -> dict[str, object]:
        socket = f"unix://{self.runtime.socket}"
        self.kubelet_port = free_port()
        return {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            # Machines with cgroup v1 (or a v1/v2 hybrid) and swap run it too.
            "failCgroupV1": False,
            "failSwapOn": False,
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": self.cgroup_root,
            "containerRuntimeEndpoint": socket,
            "imageServiceEndpoint": socket,
            "address": self.address.ip,
            "port": self.kubelet_port,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": free_port(),
            # The API server reaches the kubelet for logs without a client certificate.
            "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
            "authorization": {"mode": "AlwaysAllow"},
            "podLogsDir": str(self.work_dir / "pod-logs"),
            "resolvConf": "/etc/resolv.conf",
            # A shared, busy disk must not evict the operator or collect its image.
            "evictionHard": {
                "memory.available": "50Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
                "nodefs.inodesFree": "1%",
            },
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "localStorageCapacityIsolation": False,
            "nodeStatusUpdateFrequency": "5s",
            "serializeImagePulls": False,
        }

    def start(self, timeout: float = 120) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        _create_cgroups(self.cgroup_root)
        self.address.add()
        self.scheduler.start()
        self.workloads.start()
        config = self.work_dir / "kubelet.yaml"
        config.write_text(json.dumps(self._kubelet_config(), indent=2))
        self.kubelet = self._process(
            "kubelet",
            [
                f"--config={config}",
                f"--kubeconfig={self.cluster.kubeconfig}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={self.address.ip}",
                f"--root-dir={self.work_dir / 'kubelet'}",
                f"--cert-dir={self.work_dir / 'kubelet-pki'}",
                "--v=1",
            ],
            self.runtime.logs_dir,
        )
        self.kubelet.start()
        _wait(self._ready, timeout, f"node {NODE_NAME} Ready", self.kubelet)
        # The node-lifecycle controller would lift this taint; none runs here.
        self.cluster.kubectl(
            "taint", "node", NODE_NAME, "node.kubernetes.io/not-ready-", check=False
        )

    def _ready(self) -> bool:
        result = self.cluster.kubectl(
            "get",
            "node",
            NODE_NAME,
            "-o",
            "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
            check=False,
        )
        return result.returncode == 0 and result.stdout.strip() == "True"

    def stop(self) -> None:
        """Kubelet and scheduler, then every container, the address and the cgroups."""
        if self.kubelet is not None:
            self.kubelet.stop()
        self.scheduler.stop()
        self.workloads.stop()
        self.runtime.remove_everything()
        self.address.remove()
        _remove_cgroups(self.cgroup_root)


def _create_cgroups(root: str) -> None:
    # The kubelet wants its cgroup root to exist in every hierarchy; a new cpuset
    # starts empty and takes no task until it has the parent's CPUs and memory nodes.
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        if not (hierarchy / "cgroup.procs").is_file():
            continue
        top = hierarchy / root.lstrip("/")
        top.mkdir(exist_ok=True)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if (hierarchy / name).is_file():
                (top / name).write_text((hierarchy / name).read_text())


def _remove_cgroups(root: str) -> None:
    # The kubelet's cgroup tree (kubepods, QoS classes, pods) under each hierarchy,
    # children before parents; a cgroup still holding a process stays.
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        top = hierarchy / root.lstrip("/")
        if not top.is_dir():
            continue
        for directory in sorted(top.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if directory.is_dir():
                with contextlib.suppress(OSError):
                    directory.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()


def unmount_below(root: Path) -> None:
    """Unmount what killed containers and pods left under `root` (overlay roots, token
    tmpfs, sandbox shm), deepest first, so the folder can be removed."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(f"{root}/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
