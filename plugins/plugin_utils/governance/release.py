"""Release bundles (Art. 8-10, 28): a tarball with a manifest that lists and checksums everything.

A bundle source directory holds ``release.yml`` (system id, version, configuration parameters with
their Art. 10(2) risk grades, the Art. 9 documents and the rollback plan) and the files by
convention: ``app/`` the built artifacts, ``data/`` DML data-initialisation scripts (Art. 10(3)),
``migrations/`` schema migrations (a separate, declared category), ``docs/`` the documents.

:func:`build_bundle` writes ``manifest.yml`` with a sha256 for every file and packs a reproducible
tarball (sorted members, fixed owner and times), so the same source always gives the same
:func:`bundle_digest`: the digest that approvals bind to. :func:`verify_bundle` refuses a bundle
whose files do not match the manifest, that carries files the manifest does not list, or that
lacks an Art. 9 document or the Art. 28 rollback plan; the refusal names the file and the reason.
"""
import gzip
import hashlib
import io
import os
import posixpath
import re
import tarfile
import zlib

import yaml

from ..errors import ReleaseError

MANIFEST = "manifest.yml"
SOURCE = "release.yml"
FORMAT = "prodgate-release/1"

# Art. 9: the handover documents a release must carry.
REQUIRED_DOCUMENTS = (
    "installation_manual",
    "parameter_manual",
    "backup_restore_guide",
    "failure_recovery_manual",
    "file_list",
    "log_locations",
    "password_change_guide",
    "cleanup_plan",
    "contact_list",
)
# Art. 10(2): parameters are graded by risk control.
RISK_GRADES = ("low", "medium", "high")
# Where each kind of file lives in a bundle source directory.
CATEGORIES = {"artifacts": "app", "data_scripts": "data", "migrations": "migrations"}
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]*$")
_SYSTEM = re.compile(r"^[a-z][a-z0-9_-]*$")


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def bundle_digest(path):
    """sha256 of the bundle tarball as a file: what an approval of this release signs."""
    if not os.path.isfile(path):
        raise ReleaseError(f"bundle {path} does not exist")
    return sha256_file(path)


def _load_source(src):
    path = os.path.join(src, SOURCE)
    if not os.path.isfile(path):
        raise ReleaseError(f"{src} has no {SOURCE}: write one with system, version, parameters, documents and rollback_plan")
    with open(path, "r", encoding="utf-8") as handle:
        try:
            data = yaml.safe_load(handle) or {}
        except yaml.YAMLError as exc:
            raise ReleaseError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ReleaseError(f"{path} must be a mapping")
    return data


def _files_under(src, folder):
    base = os.path.join(src, folder)
    found = []
    for root, dirs, files in os.walk(base):
        dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", ".git"))
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")):
                continue
            full = os.path.join(root, name)
            if os.path.islink(full):
                raise ReleaseError(f"{full} is a symbolic link: a bundle carries regular files only")
            found.append(os.path.relpath(full, src).replace(os.sep, "/"))
    return sorted(found)


def _entry(src, rel):
    full = os.path.join(src, rel)
    if not os.path.isfile(full):
        raise ReleaseError(f"{rel} is listed in {SOURCE} but missing from {src}")
    return {"path": rel, "sha256": sha256_file(full)}


def build_manifest(src):
    """The manifest for the bundle source directory ``src`` (checked as :func:`verify_bundle` would)."""
    source = _load_source(src)
    manifest = {
        "format": FORMAT,
        "system": source.get("system"),
        "version": str(source.get("version", "")),
        "description": source.get("description", ""),
        "parameters": source.get("parameters") or [],
        "documents": {},
    }
    for key, folder in CATEGORIES.items():
        manifest[key] = [_entry(src, rel) for rel in _files_under(src, folder)]
    for doc_id, rel in sorted((source.get("documents") or {}).items()):
        manifest["documents"][doc_id] = _entry(src, rel)
    plan = source.get("rollback_plan")
    manifest["rollback_plan"] = _entry(src, plan) if plan else None
    check_manifest(manifest)
    return manifest


def check_manifest(manifest):
    """Refuse a manifest that lacks what Art. 8, 9, 10(2) and 28 require (the reason names what)."""
    if not isinstance(manifest, dict):
        raise ReleaseError(f"{MANIFEST} must be a mapping")
    if manifest.get("format") != FORMAT:
        raise ReleaseError(f"{MANIFEST}: format is {manifest.get('format')!r}, expected {FORMAT!r}")
    system = manifest.get("system")
    if not isinstance(system, str) or not _SYSTEM.match(system):
        raise ReleaseError(f"{MANIFEST}: system id {system!r} is missing or invalid (lower-case letters, digits, - and _)")
    version = manifest.get("version")
    if not isinstance(version, str) or not _VERSION.match(version):
        raise ReleaseError(f"{MANIFEST}: version {version!r} is missing or invalid")
    if not manifest.get("artifacts"):
        raise ReleaseError(f"{MANIFEST}: no artifacts (Art. 8): put the built programs under app/")
    names = set()
    for param in manifest.get("parameters") or []:
        name = param.get("name") if isinstance(param, dict) else None
        if not name:
            raise ReleaseError(f"{MANIFEST}: a configuration parameter has no name: {param!r}")
        if name in names:
            raise ReleaseError(f"{MANIFEST}: configuration parameter {name} is listed twice")
        names.add(name)
        if param.get("risk") not in RISK_GRADES:
            raise ReleaseError(f"{MANIFEST}: configuration parameter {name} has risk grade {param.get('risk')!r}; "
                               f"Art. 10(2) needs one of {', '.join(RISK_GRADES)} assigned by risk control")
    documents = manifest.get("documents") or {}
    for doc_id in REQUIRED_DOCUMENTS:
        if doc_id not in documents:
            raise ReleaseError(f"{MANIFEST}: Art. 9 document {doc_id} is not listed: add it under documents in {SOURCE}")
    if not manifest.get("rollback_plan"):
        raise ReleaseError(f"{MANIFEST}: no rollback plan (Art. 28): set rollback_plan in {SOURCE}")
    return manifest


def listed_files(manifest):
    """Every file entry of the manifest: (section, entry)."""
    for key in CATEGORIES:
        for entry in manifest.get(key) or []:
            yield key, entry
    for doc_id, entry in sorted((manifest.get("documents") or {}).items()):
        yield f"document {doc_id}", entry
    if manifest.get("rollback_plan"):
        yield "rollback plan", manifest["rollback_plan"]


def _tarinfo(name, size, mode=0o644):
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def build_bundle(src, out=None):
    """Pack ``src`` into a bundle; returns (path, manifest). Default name: ``<system>-<version>.tar.gz``."""
    manifest = build_manifest(src)
    if out is None or os.path.isdir(out):
        out = os.path.join(out or ".", f"{manifest['system']}-{manifest['version']}.tar.gz")
    text = yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False).encode("utf-8")
    files = sorted({entry["path"] for _section, entry in listed_files(manifest)})
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_tarinfo(MANIFEST, len(text)), io.BytesIO(text))
        for rel in files:
            full = os.path.join(src, rel)
            mode = 0o755 if os.access(full, os.X_OK) else 0o644
            with open(full, "rb") as handle:
                tar.addfile(_tarinfo(rel, os.path.getsize(full), mode), handle)
    tmp = out + ".tmp"
    with open(tmp, "wb") as handle:
        # mtime=0 and no file name in the gzip header: the same source gives the same digest.
        with gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0) as gz:
            gz.write(raw.getvalue())
    os.replace(tmp, out)
    return out, manifest


def _safe_name(name):
    norm = posixpath.normpath(name)
    return not (name.startswith("/") or norm.startswith("..") or norm in (".", ""))


def verify_bundle(path):
    """Return the manifest of the bundle at ``path``, or raise ReleaseError naming what is wrong."""
    if not os.path.isfile(path):
        raise ReleaseError(f"bundle {path} does not exist")
    try:
        tar = tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ReleaseError(f"bundle {path} is not a readable tarball: {exc}") from exc
    with tar:
        digests, manifest_text = {}, None
        try:
            members = tar.getmembers()
            for member in members:
                if not _safe_name(member.name):
                    raise ReleaseError(f"bundle {path}: member {member.name} has an unsafe path")
                if member.isdir():
                    continue
                if not member.isfile():
                    raise ReleaseError(f"bundle {path}: member {member.name} is not a regular file")
                data = tar.extractfile(member).read()
                name = posixpath.normpath(member.name)
                if name in digests or (name == MANIFEST and manifest_text is not None):
                    raise ReleaseError(f"bundle {path}: member {name} appears twice")
                if name == MANIFEST:
                    manifest_text = data
                else:
                    digests[name] = hashlib.sha256(data).hexdigest()
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise ReleaseError(f"bundle {path} is damaged: {exc}") from exc
    if manifest_text is None:
        raise ReleaseError(f"bundle {path} has no {MANIFEST}")
    try:
        manifest = yaml.safe_load(manifest_text)
    except yaml.YAMLError as exc:
        raise ReleaseError(f"bundle {path}: {MANIFEST} is not valid YAML: {exc}") from exc
    check_manifest(manifest)
    listed = set()
    for section, entry in listed_files(manifest):
        rel = entry.get("path") if isinstance(entry, dict) else None
        if not rel or not entry.get("sha256"):
            raise ReleaseError(f"bundle {path}: {section} entry {entry!r} needs path and sha256")
        listed.add(rel)
        if rel not in digests:
            raise ReleaseError(f"bundle {path}: {section} {rel} is listed in {MANIFEST} but missing from the bundle")
        if digests[rel] != entry["sha256"]:
            raise ReleaseError(f"bundle {path}: digest mismatch for {rel}: manifest says {entry['sha256']}, "
                               f"file has {digests[rel]}; the bundle was altered after it was built")
    extra = sorted(set(digests) - listed)
    if extra:
        raise ReleaseError(f"bundle {path}: {', '.join(extra)} not listed in {MANIFEST}; the bundle was altered after it was built")
    return manifest


_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def summary(path, manifest):
    """What a verified bundle holds, as the CLI prints it and the release_verify plugin returns it."""
    return {
        "ok": True,
        "bundle": path,
        "sha256": bundle_digest(path),
        "system": manifest["system"],
        "version": manifest["version"],
        "artifacts": len(manifest["artifacts"]),
        "data_scripts": [e["path"] for e in manifest["data_scripts"]],
        "migrations": [e["path"] for e in manifest["migrations"]],
        "parameters": {p["name"]: p["risk"] for p in manifest["parameters"]},
        "documents": sorted(manifest["documents"]),
        "rollback_plan": manifest["rollback_plan"]["path"],
        "manifest": manifest,
    }


def verify_approved(path, approved_sha256):
    """Verify the bundle at ``path`` and that it is the one approved (Art. 8: the approvals sign
    ``approved_sha256``); return its :func:`summary`, or raise ReleaseError naming what is wrong."""
    approved = str(approved_sha256 or "").strip().lower()
    if not _SHA256.match(approved):
        raise ReleaseError(f"the approved digest {approved_sha256!r} is not a sha256 (64 hexadecimal digits): "
                           "give the digest the approvals sign, as `prodgate release build` printed it")
    manifest = verify_bundle(path)  # first: a bundle altered inside names the file that changed
    found = summary(path, manifest)
    if found["sha256"] != approved:
        raise ReleaseError(f"bundle {path} ({manifest['system']} {manifest['version']}) is not the approved release: "
                           f"its sha256 is {found['sha256']}, the approvals sign {approved}; "
                           "deliver the approved bundle, or have this one approved")
    return found
