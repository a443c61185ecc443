"""What the demo prints for a person to look around: exact kubectl commands, logs, how to stop."""

from __future__ import annotations

import shlex
import sys
import urllib.parse
from pathlib import Path

from rayref.api.kinds import CLUSTER_KIND, JOB_KIND
from rayref.demo.samples import Samples


def shown_path(path: Path) -> str:
    """A path as short as it can be pasted from the current directory."""
    try:
        relative = path.relative_to(Path.cwd())
    except ValueError:
        home = Path.home()
        if path.is_relative_to(home):
            return f"~/{path.relative_to(home)}"
        return str(path)
    return str(relative) if str(relative) != "." else "."


def _quote(path: Path) -> str:
    text = shown_path(path)
    # `~/...` must stay unquoted for the shell to expand it.
    return text if text.startswith("~/") and " " not in text else shlex.quote(text)


def kubectl_command(kubectl: Path, kubeconfig: Path) -> str:
    return f"{_quote(kubectl)} --kubeconfig {_quote(kubeconfig)}"


def rayref_logs_command(kubeconfig: Path, endpoint: str) -> str:
    """`rayref logs` as pasted from the checkout: the demo's cluster, simulator and its store."""
    store = urllib.parse.urlsplit(endpoint).netloc
    # Set for this command only: it reads the demo's cluster whatever $KUBECONFIG the shell has.
    return (
        f"KUBECONFIG={_quote(kubeconfig)} {_quote(Path(sys.executable))} -m rayref logs "
        f"--endpoint {shlex.quote(endpoint)} --log-host {shlex.quote(store)}"
    )


def look_around(
    samples: Samples,
    kubectl: Path,
    kubeconfig: Path,
    logs: dict[str, Path],
    metrics_url: str | None,
) -> list[str]:
    k = kubectl_command(kubectl, kubeconfig)
    namespace = samples.namespaces[0]
    ns = f"-n {namespace}"
    lines = [
        "Look around from another terminal (kubectl built for the demo, demo kubeconfig):",
        f"  {k} get rayref {ns}",
        f"  {k} get rayref {ns} -w",
        f"  {k} get rayjobref {ns} -o wide",
    ]
    job = samples.first(JOB_KIND)
    cluster = samples.first(CLUSTER_KIND)
    if job is not None:
        lines += [
            f"  {k} describe {job.resource} {ns}",
            f"  {k} wait --for=condition=Complete {job.resource} {ns} --timeout=5m",
            f"  {k} explain rayjobref.status",
        ]
    if cluster is not None:
        lines.append(f"  {k} wait --for=condition=Ready {cluster.resource} {ns} --timeout=5m")
        connection = (cluster.spec.get("connectionSecretRef") or {}).get("name")
        if connection:
            lines.append(
                f"  {k} get secret {connection} {ns} "
                "-o jsonpath='{.data.dashboardUrl}' | base64 -d; echo"
            )
    lines.append(f"  {k} get events {ns} --sort-by=.lastTimestamp")
    for name, path in logs.items():
        lines.append(f"  tail -f {_quote(path)}    # {name} log")
    if metrics_url:
        lines.append(f"  curl -s {metrics_url} | grep ^rayref_    # operator metrics")
    lines.append("Stop: Ctrl-C here (stops the operator, the simulator and the control plane).")
    return lines


def export_hint(kubectl: Path, kubeconfig: Path) -> str:
    bin_dir = _quote(kubectl.parent)
    return f"  export KUBECONFIG={_quote(kubeconfig)} PATH={bin_dir}:$PATH    # then plain kubectl"
