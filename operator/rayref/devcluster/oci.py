"""A small writer of OCI image layouts (image-spec v1.1): layers, config, manifest, index.

Enough for `ctr images import` and any OCI tool: every blob is content-addressed
under blobs/sha256/, the index names the image (both the OCI and the containerd
annotation, so `ctr` tags it on import), and the archive is one uncompressed tar
of the layout. Layers are gzip-compressed tars; the config lists their
uncompressed digests (diff_ids), as the spec asks.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CHUNK = 1 << 20


@dataclass(frozen=True)
class Layer:
    """A gzip-compressed layer blob on disk and the digest of its uncompressed tar."""

    path: Path
    digest: str
    diff_id: str
    size: int


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def compress_layer(tar_path: Path, out: Path) -> Layer:
    """Gzip a layer tar (mtime 0, so the same tar gives the same blob)."""
    diff_id = _sha256_file(tar_path)
    with (
        tar_path.open("rb") as source,
        out.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz,
    ):
        shutil.copyfileobj(source, gz, CHUNK)
    return Layer(out, _sha256_file(out), diff_id, out.stat().st_size)


def write_tree_layer(root: Path, members: Iterable[str], out: Path, *, mtime: int) -> None:
    """A tar of the given paths under root (and all below them), owned by root, sorted.

    Sorted names, fixed ownership and clamped times make the tar depend on the
    files' content and modes only.
    """

    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = min(int(info.mtime), mtime)
        return info

    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            for path in _walk_sorted(root / member):
                arcname = path.relative_to(root).as_posix()
                tar.add(path, arcname=arcname, recursive=False, filter=normalise)


def _walk_sorted(top: Path) -> Iterable[Path]:
    yield top
    if top.is_dir() and not top.is_symlink():
        for entry in sorted(os.scandir(top), key=lambda e: e.name):
            yield from _walk_sorted(Path(entry.path))


def _blob(layout: Path, data: bytes) -> tuple[str, int]:
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).write_bytes(data)
    return digest, len(data)


def _canonical(document: Mapping[str, object]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def write_archive(
    out: Path, layers: list[Layer], image_config: Mapping[str, object], ref: str, work: Path
) -> str:
    """Write the OCI layout of one linux/amd64 image as a tar at `out`; return the manifest digest.

    `ref` is the full image name (e.g. rayref.local/rayref-operator:0.1.0).
    """
    layout = work / "layout"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for layer in layers:
        shutil.copyfile(layer.path, blobs / layer.digest.removeprefix("sha256:"))
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": dict(image_config),
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
    }
    config_digest, config_size = _blob(layout, _canonical(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [
            {"mediaType": MEDIA_LAYER, "digest": layer.digest, "size": layer.size}
            for layer in layers
        ],
    }
    manifest_digest, manifest_size = _blob(layout, _canonical(manifest))
    tag = ref.rsplit(":", 1)[1] if ":" in ref.rsplit("/", 1)[-1] else "latest"
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": MEDIA_MANIFEST,
                "digest": manifest_digest,
                "size": manifest_size,
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": ref,
                    "org.opencontainers.image.ref.name": tag,
                },
            }
        ],
    }
    (layout / "index.json").write_bytes(_canonical(index))
    (layout / "oci-layout").write_bytes(_canonical({"imageLayoutVersion": "1.0.0"}))
    partial = out.with_name(f".{out.name}.partial")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in _walk_sorted(layout):
            if path == layout:
                continue
            info = tar.gettarinfo(path, arcname=path.relative_to(layout).as_posix())
            info.uid = info.gid = 0
            info.mtime = 0
            if info.isfile():
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    partial.replace(out)
    return manifest_digest


def read_archive_index(archive: Path) -> dict[str, object]:
    """The index.json of an archive written here (for tests and reports)."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        if member is None:
            raise ValueError(f"{archive} has no index.json")
        loaded: dict[str, object] = json.load(io.TextIOWrapper(member))
    return loaded
