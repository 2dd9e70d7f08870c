#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: hygiene_scan
short_description: Find development and test software, compilers and source code on a production host (Art. 26)
version_added: "0.1.0"
description:
  - Gathers the installed packages, the commands of interest and the files under the application
    paths of a host, and classifies them with the production hygiene rules of Art. 26 of the change
    policy (compilers and build tools, development packages, language package managers, debuggers,
    packages on a deny list, source trees and version-control directories).
  - Changes nothing. The role M(prodgate.deploy.hygiene) wraps it, adds remediation and the report.
  - Supports Debian-family hosts (dpkg) and Red Hat-family hosts (rpm).
author:
  - prodgate maintainers (@prodgate)
options:
  compiler_commands:
    description: Commands that count as compilers or build tools when found in the system command directories.
    type: list
    elements: str
    default: []
  compiler_packages:
    description: Package name patterns (shell globs) of compilers and build tools.
    type: list
    elements: str
    default: []
  dev_packages:
    description: Package name patterns of development packages, for example C(*-dev) and C(*-devel).
    type: list
    elements: str
    default: []
  package_manager_commands:
    description: Language package managers (for example C(pip), C(npm), C(gem)).
    type: list
    elements: str
    default: []
  debugger_commands:
    description: Debuggers and tracers (for example C(gdb), C(strace)).
    type: list
    elements: str
    default: []
  deny_packages:
    description: Package name patterns that must not be installed for any other reason (unrelated software).
    type: list
    elements: str
    default: []
  app_paths:
    description: Application directories searched for source code and version-control directories.
    type: list
    elements: path
    default: []
  source_globs:
    description: File name patterns that count as source code under O(app_paths).
    type: list
    elements: str
    default: []
  vcs_dirs:
    description: Directory names of version-control metadata.
    type: list
    elements: str
    default: [".git", ".svn", ".hg"]
  allow:
    description:
      - Justified exceptions. Each names an O(allow[].item) (glob over the finding's item), optionally a
        O(allow[].kind), and a mandatory O(allow[].reason), which the report shows.
    type: list
    elements: dict
    default: []
    suboptions:
      item:
        description: Finding item (package name or path), shell glob.
        type: str
        required: true
      kind:
        description: Restrict the exception to one finding kind.
        type: str
        choices: [compiler, dev_package, package_manager, debugger, denied_package, source_tree, vcs_directory]
      reason:
        description: Why the exception is justified; recorded with the finding.
        type: str
        required: true
  max_entries:
    description: Upper bound of directory entries walked under O(app_paths); beyond it the scan reports itself incomplete.
    type: int
    default: 200000
attributes:
  check_mode:
    support: full
    description: The module only reads the host.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to diff.
notes:
  - Findings are grouped per package (one finding for C(gcc) with every command and rule that hit it),
    and source files per outermost directory holding them.
"""

EXAMPLES = r"""
- name: Scan for compilers and source code under /opt
  prodgate.deploy.hygiene_scan:
    compiler_commands: [gcc, cc, make, javac, go, rustc]
    dev_packages: ["*-dev", "*-devel"]
    app_paths: [/opt]
    source_globs: ["*.c", "*.java", "*.go"]
    allow:
      - item: make
        kind: compiler
        reason: CHG-2025-0142, vendor installer needs make until 2025-12-31
  register: hygiene_scan
"""

RETURN = r"""
findings:
  description: Offending items, not covered by the allow list, sorted by kind and item.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: One of compiler, dev_package, package_manager, debugger, denied_package, source_tree, vcs_directory.
      type: str
    item:
      description: Package name, or path for files and for commands no package owns.
      type: str
    evidence:
      description: What was seen, for the report.
      type: str
    package:
      description: The package that remediation would remove, when there is one.
      type: str
    summary:
      description: "One line for reports: C(kind item: evidence)."
      type: str
  sample:
    - kind: compiler
      item: gcc
      evidence: command gcc at /usr/bin/gcc
      package: gcc
allowed:
  description: Findings covered by the allow list, each with its O(allow[].reason).
  returned: always
  type: list
  elements: dict
packages_to_remove:
  description: Packages owning offending findings (what remediation removes).
  returned: always
  type: list
  elements: str
paths_to_remove:
  description: Source trees and version-control directories among the findings.
  returned: always
  type: list
  elements: str
package_manager:
  description: The host's package database that was read (dpkg or rpm).
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.prodgate.deploy.plugins.module_utils import hygiene


def installed_packages(module):
    if module.get_bin_path("dpkg-query"):
        rc, out, err = module.run_command(["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${db:Status-Abbrev}\n"])
        if rc != 0:
            module.fail_json(msg="dpkg-query failed: %s" % err.strip())
        packages = {}
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[2].startswith("ii"):
                packages[parts[0]] = parts[1]
        return "dpkg", packages
    if module.get_bin_path("rpm"):
        rc, out, err = module.run_command(["rpm", "-qa", "--qf", "%{NAME}\t%{VERSION}-%{RELEASE}\n"])
        if rc != 0:
            module.fail_json(msg="rpm -qa failed: %s" % err.strip())
        return "rpm", dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)
    module.fail_json(msg="no package database found (dpkg-query or rpm): hygiene_scan supports Debian and Red Hat families")


def owner(module, dbtool, path):
    candidates = [path]
    real = os.path.realpath(path)
    if real != path:
        candidates.append(real)
    for candidate in candidates:
        if dbtool == "dpkg":
            rc, out, dummy = module.run_command(["dpkg-query", "-S", candidate])
            if rc == 0 and ":" in out:
                return out.split(":", 1)[0].split(",")[0].strip()
        else:
            rc, out, dummy = module.run_command(["rpm", "-qf", "--qf", "%{NAME}\n", candidate])
            if rc == 0 and out.strip():
                return out.strip().splitlines()[0]
    return None


def main():
    list_str = dict(type="list", elements="str", default=[])
    module = AnsibleModule(
        argument_spec=dict(
            compiler_commands=list_str,
            compiler_packages=list_str,
            dev_packages=list_str,
            package_manager_commands=list_str,
            debugger_commands=list_str,
            deny_packages=list_str,
            app_paths=dict(type="list", elements="path", default=[]),
            source_globs=list_str,
            vcs_dirs=dict(type="list", elements="str", default=[".git", ".svn", ".hg"]),
            allow=dict(type="list", elements="dict", default=[], options=dict(
                item=dict(type="str", required=True),
                kind=dict(type="str", choices=list(hygiene.KINDS)),
                reason=dict(type="str", required=True),
            )),
            max_entries=dict(type="int", default=200000),
        ),
        supports_check_mode=True,
    )
    params = module.params
    dbtool, packages = installed_packages(module)
    names = set(params["compiler_commands"]) | set(params["package_manager_commands"]) | set(params["debugger_commands"])
    commands = {}
    for name in sorted(names):
        path = hygiene.find_command(name)
        if path:
            commands[name] = {"path": path, "package": owner(module, dbtool, path)}
    findings = hygiene.classify_packages(packages, commands, params)
    findings += hygiene.scan_paths(params["app_paths"], params["source_globs"], params["vcs_dirs"], params["max_entries"])
    offending, allowed = hygiene.apply_allow_list(findings, params["allow"])
    offending = hygiene.sort_findings(offending)
    module.exit_json(
        changed=False,
        findings=offending,
        allowed=hygiene.sort_findings(allowed),
        packages_to_remove=hygiene.removable_packages(offending),
        paths_to_remove=hygiene.removable_paths(offending),
        package_manager=dbtool,
    )


if __name__ == "__main__":
    main()
