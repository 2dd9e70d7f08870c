# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Production hygiene rules (Art. 26): what counts as development or test software on a host.

Runs on the target host (shipped with the module), so it is pure Python with no Ansible
imports and no third-party packages. The rules are pure functions over an inventory of the
host (installed packages, commands found, files under the application paths), which the
module gathers and the unit tests build by hand.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import os

# Finding kinds, in the order a reader meets them in a report.
KINDS = (
    "compiler",
    "dev_package",
    "package_manager",
    "debugger",
    "denied_package",
    "source_tree",
    "vcs_directory",
)
PACKAGE_KINDS = ("compiler", "dev_package", "package_manager", "debugger", "denied_package")
PATH_KINDS = ("source_tree", "vcs_directory")

COMMAND_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def _matches(name, patterns):
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


class Finding(dict):
    """One offending item: kind, item, evidence and, for package kinds, the package to remove."""

    def __init__(self, kind, item, evidence, package=None):
        super(Finding, self).__init__(kind=kind, item=item, evidence=evidence, package=package)


def classify_packages(packages, commands, rules):
    """Findings for installed packages and commands found on the host.

    ``packages``: {name: version} of installed packages.
    ``commands``: {command: {"path": str, "package": str or None}} for the commands of interest
    that exist on the host (commands not found are absent).
    ``rules``: dict with lists ``compiler_commands``, ``compiler_packages``, ``dev_packages``,
    ``package_manager_commands``, ``debugger_commands``, ``deny_packages`` (patterns).

    One finding per package (or per command path when no package owns it), with the evidence
    gathered from every rule that hit it, so a report reads one line per thing to remove.
    """
    found = {}
    order = []

    def add(kind, package, item, evidence):
        key = package or item
        if key not in found:
            found[key] = Finding(kind, key, [], package)
            order.append(key)
        if evidence not in found[key]["evidence"]:
            found[key]["evidence"].append(evidence)

    command_rules = (
        ("compiler", rules.get("compiler_commands", [])),
        ("package_manager", rules.get("package_manager_commands", [])),
        ("debugger", rules.get("debugger_commands", [])),
    )
    for kind, names in command_rules:
        for name in names:
            info = commands.get(name)
            if not info:
                continue
            pkg = info.get("package")
            add(kind, pkg, info["path"], "command %s at %s" % (name, info["path"]))

    package_rules = (
        ("compiler", rules.get("compiler_packages", []), "compiler or build-tool package"),
        ("dev_package", rules.get("dev_packages", []), "development package"),
        ("denied_package", rules.get("deny_packages", []), "on the deny list"),
    )
    for name in sorted(packages):
        for kind, patterns, why in package_rules:
            if _matches(name, patterns):
                add(kind, name, name, "package %s %s installed (%s)" % (name, packages[name], why))
                break
    for key in order:
        found[key]["evidence"] = "; ".join(found[key]["evidence"])
    return [found[key] for key in order]


def scan_paths(app_paths, source_globs, vcs_dirs, max_entries=200000):
    """Findings for source code and version-control directories under the application paths.

    Source files are reported per directory that holds them (nested directories fold into the
    outermost one), so a source tree of a thousand files is one finding, not a thousand.
    """
    findings = []
    source_dirs = {}
    seen = 0
    for root_path in app_paths:
        if not os.path.isdir(root_path):
            continue
        for dirpath, dirnames, filenames in os.walk(root_path):
            seen += len(dirnames) + len(filenames)
            if seen > max_entries:
                findings.append(Finding("source_tree", root_path,
                                        "scan stopped after %d entries; raise hygiene_max_entries" % max_entries))
                return findings
            for vcs in [d for d in dirnames if d in vcs_dirs]:
                path = os.path.join(dirpath, vcs)
                findings.append(Finding("vcs_directory", path, "%s directory (version-control checkout)" % vcs))
            # Do not descend into version-control metadata; it is reported above.
            dirnames[:] = sorted(d for d in dirnames if d not in vcs_dirs)
            hits = sorted(f for f in filenames if _matches(f, source_globs))
            if hits:
                source_dirs[dirpath] = hits
    for path in sorted(source_dirs):
        parent = os.path.dirname(path)
        outer = None
        while parent and parent != os.path.dirname(parent):
            if parent in source_dirs:
                outer = parent
            parent = os.path.dirname(parent)
        if outer:
            continue
        files = [f for d, fs in source_dirs.items() if d == path or d.startswith(path + os.sep) for f in fs]
        examples = ", ".join(files[:3])
        findings.append(Finding("source_tree", path, "%d source file(s), e.g. %s" % (len(files), examples)))
    return findings


def apply_allow_list(findings, allow):
    """Split findings into (offending, allowed). An allow entry names an item (glob) and,
    optionally, a kind; it must carry a reason, since every exception is on record (Art. 26)."""
    offending, allowed = [], []
    for finding in findings:
        finding["summary"] = "%s %s: %s" % (finding["kind"], finding["item"], finding["evidence"])
        match = None
        for entry in allow:
            if entry.get("kind") and entry["kind"] != finding["kind"]:
                continue
            if fnmatch.fnmatchcase(finding["item"], entry["item"]):
                match = entry
                break
        if match is None:
            offending.append(finding)
        else:
            kept = dict(finding)
            kept["reason"] = match["reason"]
            kept["summary"] = "allowed %s %s: %s" % (finding["kind"], finding["item"], match["reason"])
            allowed.append(kept)
    return offending, allowed


def sort_findings(findings):
    return sorted(findings, key=lambda f: (KINDS.index(f["kind"]), f["item"]))


def removable_packages(findings):
    return sorted(set(f["package"] for f in findings if f["kind"] in PACKAGE_KINDS and f.get("package")))


def removable_paths(findings):
    return sorted(set(f["item"] for f in findings if f["kind"] in PATH_KINDS))


def find_command(name, dirs=COMMAND_DIRS):
    for directory in dirs:
        path = os.path.join(directory, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None
