"""A local Kubernetes control plane: etcd, kube-apiserver and kube-controller-manager.

There is no Docker here, so, like Kubernetes' own envtest, the control plane runs
as plain local processes on loopback ports, with real authentication (client
certificates, service-account tokens) and RBAC. Used by the test fixtures and by
`rayref demo`. Binaries come from `rayref.devcluster.build.ensure_binaries()`.

Every process is started through `rayref.devcluster.processes` and stopped by its
pid (SIGTERM, then SIGKILL); an atexit hook and the kernel's parent-death signal
are the backstops for a crashed or interrupted caller.

One idea at about 500 lines: the start order, readiness checks and restart of the three
processes depend on each other (the apiserver's flags name etcd's and the PKI's files).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import yaml

from rayref.devcluster.pki import Pki, make_pki
from rayref.devcluster.ports import free_port
from rayref.devcluster.processes import ChildProcess

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
# kube-controller-manager runs only what the rest of the project relies on:
# ownerReference garbage collection, namespace deletion, ServiceAccounts and
# their tokens, the kube-root-ca.crt ConfigMap pods mount, and aggregated
# ClusterRoles (admin/edit/view).
CONTROLLERS = (
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",
)
_CRD_KIND = "CustomResourceDefinition"


class DevClusterError(RuntimeError):
    """The control plane could not be started, or a kubectl call failed."""


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(path: Path, server: str, ca: Path, user: dict[str, str]) -> Path:
    """A self-contained kubeconfig (embedded data), readable only by its owner."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "rayref-dev",
                "cluster": {"server": server, "certificate-authority-data": _b64(ca)},
            }
        ],
        "users": [{"name": "user", "user": user}],
        "contexts": [{"name": "rayref-dev", "context": {"cluster": "rayref-dev", "user": "user"}}],
        "current-context": "rayref-dev",
    }
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _cert_user(cert: Path, key: Path) -> dict[str, str]:
    return {"client-certificate-data": _b64(cert), "client-key-data": _b64(key)}


def _default_data_root() -> Path | None:
    # etcd fsyncs on every write; on tmpfs that costs nothing.
    shm = Path("/dev/shm")  # noqa: S108 (a per-run mkdtemp inside it, never a fixed name)
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else None


_LIVE: set[DevCluster] = set()


def _stop_all_live() -> None:
    for cluster in list(_LIVE):
        cluster.stop()


atexit.register(_stop_all_live)


class DevCluster:
    """etcd + kube-apiserver + kube-controller-manager on free loopback ports.

    `work_dir` holds the PKI, the kubeconfigs and the processes' logs (kept after
    `stop()` for post-mortems; `remove_work_dir()` deletes it); etcd's data lives on
    tmpfs when available and is deleted by `stop()`.
    """

    def __init__(
        self,
        bin_dir: Path,
        *,
        work_dir: Path | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.bin_dir = bin_dir
        self.work_dir = work_dir or Path(tempfile.mkdtemp(prefix="rayref-devcluster-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir = self.work_dir / "logs"
        self.logs_dir.mkdir(exist_ok=True)
        self.kubeconfig = self.work_dir / "admin.kubeconfig"
        self._log = log or (lambda _line: None)
        self._pki: Pki | None = None
        self._data_dir: Path | None = None
        self.etcd_port = 0
        self.apiserver_port = 0
        self.controller_manager_port = 0
        self.etcd: ChildProcess | None = None
        self.apiserver: ChildProcess | None = None
        self.controller_manager: ChildProcess | None = None

    # ---- lifecycle -------------------------------------------------------------

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def pki(self) -> Pki:
        if self._pki is None:
            raise DevClusterError("the dev cluster has not been started")
        return self._pki

    def start(self, timeout: float = 90.0) -> None:
        """Start etcd, kube-apiserver and kube-controller-manager; wait until ready."""
        missing = [
            name
            for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")
            if not os.access(self.bin_dir / name, os.X_OK)
        ]
        if missing:
            raise DevClusterError(f"{self.bin_dir} lacks {', '.join(missing)}")
        _LIVE.add(self)
        try:
            started = time.monotonic()
            self._pki = make_pki(self.work_dir / "pki")
            data_root = _default_data_root()
            self._data_dir = Path(
                tempfile.mkdtemp(prefix="rayref-etcd-", dir=str(data_root) if data_root else None)
            )
            self._start_etcd(started + timeout)
            self.apiserver_port = free_port()
            self._start_apiserver(started + timeout)
            write_kubeconfig(
                self.kubeconfig,
                self.server,
                self.pki.ca.cert,
                _cert_user(self.pki.admin.cert, self.pki.admin.key),
            )
            self._start_controller_manager(started + timeout)
            self._log(f"devcluster: ready at {self.server} in {time.monotonic() - started:.1f} s")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the processes this object started (by pid), newest first; delete etcd data."""
        for process in (self.controller_manager, self.apiserver, self.etcd):
            if process is not None:
                process.stop()
        if self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None
        _LIVE.discard(self)

    def remove_work_dir(self) -> None:
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> DevCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop_apiserver(self, grace: float = 3.0) -> None:
        """Stop only kube-apiserver (etcd and the controller manager keep running).

        With the controller manager's watches open, a graceful shutdown stalls after
        the listener is closed, hence the short grace before SIGKILL.
        """
        if self.apiserver is not None:
            self.apiserver.stop(grace)

    def start_apiserver(self, timeout: float = 60.0) -> None:
        """Start kube-apiserver again on the same port, against the same etcd."""
        if self.apiserver is not None and self.apiserver.running():
            return
        self._start_apiserver(time.monotonic() + timeout)

    # ---- processes ---------------------------------------------------------------

    def _process(self, name: str, argv: Sequence[str]) -> ChildProcess:
        return ChildProcess(
            name, [str(self.bin_dir / name), *argv], self.logs_dir / f"{name}.log", append_log=True
        )

    def _start_etcd(self, deadline: float) -> None:
        for _attempt in range(3):
            self.etcd_port, peer_port = free_port(), free_port()
            assert self._data_dir is not None
            client_url = f"http://127.0.0.1:{self.etcd_port}"
            peer_url = f"http://127.0.0.1:{peer_port}"
            self.etcd = self._process(
                "etcd",
                [
                    "--name=devcluster",
                    f"--data-dir={self._data_dir}",
                    f"--listen-client-urls={client_url}",
                    f"--advertise-client-urls={client_url}",
                    f"--listen-peer-urls={peer_url}",
                    f"--initial-advertise-peer-urls={peer_url}",
                    f"--initial-cluster=devcluster={peer_url}",
                    "--listen-metrics-urls=",
                    # Throwaway data: durability buys nothing, speed does.
                    "--unsafe-no-fsync",
                    "--log-level=warn",
                ],
            )
            self.etcd.start()
            if self._wait_http(self.etcd, f"{client_url}/health", deadline, context=None):
                return
        raise self._failure(self.etcd, "etcd did not start")

    def _apiserver_args(self) -> list[str]:
        pki = self.pki
        return [
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.apiserver_port}",
            "--advertise-address=127.0.0.1",
            # The default reconciler would publish 127.0.0.1 as the kubernetes
            # Service's endpoint and fight over it; nothing here needs it.
            "--endpoint-reconciler-type=none",
            f"--cert-dir={self.work_dir / 'apiserver-certs'}",
            f"--tls-cert-file={pki.apiserver.cert}",
            f"--tls-private-key-file={pki.apiserver.key}",
            f"--client-ca-file={pki.ca.cert}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.service_account_pub}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--allow-privileged=true",
            "--profiling=false",
            # A node's name need not resolve (tests/fixtures/node.py): reach its kubelet
            # (logs, exec) at its InternalIP.
            "--kubelet-preferred-address-types=InternalIP,Hostname",
        ]

    def _start_apiserver(self, deadline: float) -> None:
        self.apiserver = self._process("kube-apiserver", self._apiserver_args())
        self.apiserver.start()
        if not self._wait_http(
            self.apiserver, f"{self.server}/readyz", deadline, self._admin_tls()
        ):
            raise self._failure(self.apiserver, "kube-apiserver did not become ready (/readyz)")

    def _start_controller_manager(self, deadline: float) -> None:
        pki = self.pki
        kubeconfig = write_kubeconfig(
            self.work_dir / "controller-manager.kubeconfig",
            self.server,
            pki.ca.cert,
            _cert_user(pki.controller_manager.cert, pki.controller_manager.key),
        )
        for _attempt in range(3):
            self.controller_manager_port = free_port()
            self.controller_manager = self._process(
                "kube-controller-manager",
                [
                    f"--kubeconfig={kubeconfig}",
                    f"--authentication-kubeconfig={kubeconfig}",
                    f"--authorization-kubeconfig={kubeconfig}",
                    # Otherwise it reads the requestheader config from kube-system
                    # and refuses to start without a front proxy.
                    "--authentication-skip-lookup=true",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={self.controller_manager_port}",
                    f"--cert-dir={self.work_dir / 'controller-manager-certs'}",
                    "--leader-elect=false",
                    f"--controllers={','.join(CONTROLLERS)}",
                    f"--service-account-private-key-file={pki.service_account_key}",
                    f"--root-ca-file={pki.ca.cert}",
                    "--use-service-account-credentials=false",
                ],
            )
            self.controller_manager.start()
            url = f"https://127.0.0.1:{self.controller_manager_port}/healthz"
            # Its serving certificate is self-signed at start; only liveness matters.
            if self._wait_http(self.controller_manager, url, deadline, _insecure_tls()):
                return
        raise self._failure(self.controller_manager, "kube-controller-manager did not start")

    def _admin_tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki.ca.cert))
        context.load_cert_chain(str(self.pki.admin.cert), str(self.pki.admin.key))
        return context

    def _wait_http(
        self,
        process: ChildProcess,
        url: str,
        deadline: float,
        context: ssl.SSLContext | None,
    ) -> bool:
        """True once `url` answers 200; False if the process died of a port clash."""
        while True:
            if not process.running():
                if "address already in use" in process.tail(50):
                    process.stop()
                    return False
                raise self._failure(process, f"{process.name} exited during start")
            try:
                # Only URLs built here, http(s) to loopback.
                with urllib.request.urlopen(url, timeout=2, context=context) as response:  # noqa: S310
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise self._failure(process, f"{process.name} not ready in time ({url})")
            time.sleep(0.1)

    def _failure(self, process: ChildProcess | None, message: str) -> DevClusterError:
        name = process.name if process else "?"
        tail = process.tail() if process else ""
        return DevClusterError(
            f"{message}. Logs: {self.logs_dir}\n--- last lines of {name}.log ---\n{tail}"
        )

    def log_tails(self, lines: int = 30) -> str:
        parts = []
        for process in (self.etcd, self.apiserver, self.controller_manager):
            if process is not None:
                parts.append(f"--- {process.log_path} ---\n{process.tail(lines)}")
        return "\n".join(parts)

    def rss_bytes(self) -> dict[str, int]:
        """Resident memory of each running process (for measurements)."""
        return {
            p.name: p.rss_bytes()
            for p in (self.etcd, self.apiserver, self.controller_manager)
            if p is not None and p.running()
        }

    # ---- clients -------------------------------------------------------------------

    def kubectl(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        check: bool = True,
        input: str | None = None,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bin_dir / "kubectl"), f"--kubeconfig={kubeconfig or self.kubeconfig}"]
        result = subprocess.run(
            [*argv, *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise DevClusterError(
                f"kubectl {' '.join(args)} failed (exit {result.returncode}): "
                f"{result.stderr.strip()}"
            )
        return result

    def api_client(self, kubeconfig: Path | None = None) -> ApiClient:
        """A new `kubernetes.client.ApiClient` for the admin (or the given) kubeconfig."""
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig or self.kubeconfig),
            client_configuration=configuration,
            persist_config=False,
        )
        return client.ApiClient(configuration)

    def service_account_kubeconfig(
        self,
        namespace: str,
        name: str,
        *,
        duration_seconds: int = 3600,
        path: Path | None = None,
    ) -> Path:
        """Kubeconfig with a TokenRequest token of ServiceAccount namespace/name.

        The ServiceAccount is created if missing. The apiserver enforces at least
        600 s of validity.
        """
        from kubernetes import client

        with self.api_client() as api:
            core = client.CoreV1Api(api)
            try:
                core.create_namespaced_service_account(
                    namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
                )
            except client.ApiException as error:
                if error.status != 409:
                    raise
            request = client.AuthenticationV1TokenRequest(
                spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=duration_seconds)
            )
            response = core.create_namespaced_service_account_token(name, namespace, request)
            if response.status is None or not response.status.token:
                raise DevClusterError(f"TokenRequest for {namespace}/{name} returned no token")
            token = response.status.token
        target = path or self.work_dir / f"sa-{namespace}-{name}.kubeconfig"
        return write_kubeconfig(target, self.server, self.pki.ca.cert, {"token": token})

    def apply_crds(self, directory: Path, timeout: float = 60.0) -> list[str]:
        """Apply every CRD manifest of `directory` and wait until each is Established."""
        files = sorted(p for p in directory.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))
        names: list[str] = []
        for manifest in files:
            for document in yaml.safe_load_all(manifest.read_text()):
                if (
                    isinstance(document, dict)
                    and document.get("kind") == "CustomResourceDefinition"
                ):
                    names.append(str(document["metadata"]["name"]))
        if not files:
            return names
        file_args: list[str] = []
        for manifest in files:
            file_args += ["-f", str(manifest)]
        self.kubectl("apply", "--server-side", "--force-conflicts", *file_args)
        if names:
            self.kubectl(
                "wait",
                "--for=condition=Established",
                f"--timeout={int(timeout)}s",
                *(f"crd/{n}" for n in names),
                timeout=timeout + 30,
            )
        return names


def _insecure_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@contextlib.contextmanager
def running(bin_dir: Path, **kwargs: Any) -> Any:
    """`with running(bin_dir) as cluster:` start, yield, stop."""
    cluster = DevCluster(bin_dir, **kwargs)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
