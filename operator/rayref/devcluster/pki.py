"""A throwaway PKI for the local control plane, made with the `openssl` command.

Every start gets fresh keys: nothing here is ever trusted outside one dev cluster.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = rayref-devcluster
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[serving]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = {sans}
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
"""

# Names a client inside or outside the cluster may use for the apiserver;
# 10.0.0.1 is the first address of the service range the apiserver is given.
SERVING_SANS = (
    "IP:127.0.0.1",
    "IP:10.0.0.1",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
)


class PkiError(RuntimeError):
    """openssl is missing or refused to make a key or certificate."""


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    ca: KeyPair
    apiserver: KeyPair
    admin: KeyPair
    controller_manager: KeyPair
    service_account_key: Path
    service_account_pub: Path


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise PkiError("the `openssl` command is needed to make the dev cluster's certificates")
    result = subprocess.run([openssl, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PkiError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def _ec_key(directory: Path, name: str) -> Path:
    path = directory / f"{name}.key"
    _openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-out", str(path), cwd=directory,
    )  # fmt: skip
    path.chmod(0o600)
    return path


def _signed(directory: Path, ca: KeyPair, name: str, subject: str, section: str) -> KeyPair:
    key = _ec_key(directory, name)
    csr = directory / f"{name}.csr"
    cert = directory / f"{name}.crt"
    config = directory / "openssl.cnf"
    _openssl(
        "req", "-new", "-key", str(key), "-subj", subject, "-config", str(config),
        "-out", str(csr), cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key),
        "-set_serial", str(secrets.randbits(63)), "-days", "3650", "-sha256",
        "-extfile", str(config), "-extensions", section, "-out", str(cert), cwd=directory,
    )  # fmt: skip
    csr.unlink()
    return KeyPair(cert=cert, key=key)


def make_pki(directory: Path) -> Pki:
    """CA, apiserver serving cert, admin and controller-manager client certs, SA key."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    config = directory / "openssl.cnf"
    config.write_text(_CONFIG.format(sans=",".join(SERVING_SANS)))

    ca_key = _ec_key(directory, "ca")
    ca = KeyPair(cert=directory / "ca.crt", key=ca_key)
    _openssl(
        "req", "-x509", "-new", "-key", str(ca_key), "-subj", "/CN=rayref-devcluster-ca",
        "-config", str(config), "-extensions", "ca", "-days", "3650", "-sha256",
        "-out", str(ca.cert), cwd=directory,
    )  # fmt: skip

    apiserver = _signed(directory, ca, "apiserver", "/CN=kube-apiserver", "serving")
    admin = _signed(directory, ca, "admin", "/O=system:masters/CN=rayref-admin", "client")
    controller_manager = _signed(
        directory,
        ca,
        "controller-manager",
        "/O=system:masters/CN=system:kube-controller-manager",
        "client",
    )

    sa_key = directory / "service-account.key"
    sa_pub = directory / "service-account.pub"
    _openssl(
        "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
        "-out", str(sa_key), cwd=directory,
    )  # fmt: skip
    sa_key.chmod(0o600)
    _openssl("pkey", "-in", str(sa_key), "-pubout", "-out", str(sa_pub), cwd=directory)
    return Pki(
        ca=ca,
        apiserver=apiserver,
        admin=admin,
        controller_manager=controller_manager,
        service_account_key=sa_key,
        service_account_pub=sa_pub,
    )
