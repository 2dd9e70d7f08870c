"""Production hygiene rules (Art. 26), on host inventories built by hand."""
from ansible_collections.prodgate.deploy.plugins.module_utils import hygiene

RULES = {
    "compiler_commands": ["gcc", "cc", "make", "javac"],
    "compiler_packages": ["gcc", "gcc-[0-9][0-9]", "binutils"],
    "dev_packages": ["*-dev", "*-devel"],
    "package_manager_commands": ["pip3", "npm"],
    "debugger_commands": ["gdb", "strace"],
    "deny_packages": ["telnet*"],
}

CLEAN = {"python3": "3.11.2-1", "gcc-12-base": "12.2.0-14", "libgcc-s1": "12.2.0-14", "postgresql-15": "15.8-0"}


def test_clean_host_has_no_findings():
    assert hygiene.classify_packages(CLEAN, {}, RULES) == []


def test_gcc_is_one_finding_with_all_its_evidence():
    packages = dict(CLEAN, gcc="4:12.2.0-3", **{"gcc-12": "12.2.0-14", "libgcc-12-dev": "12.2.0-14"})
    commands = {"gcc": {"path": "/usr/bin/gcc", "package": "gcc"},
                "cc": {"path": "/usr/bin/cc", "package": "gcc-12"}}
    findings = hygiene.sort_findings(hygiene.classify_packages(packages, commands, RULES))
    assert [(f["kind"], f["item"], f["package"]) for f in findings] == [
        ("compiler", "gcc", "gcc"),
        ("compiler", "gcc-12", "gcc-12"),
        ("dev_package", "libgcc-12-dev", "libgcc-12-dev"),
    ]
    gcc = findings[0]
    assert "command gcc at /usr/bin/gcc" in gcc["evidence"]
    assert "package gcc 4:12.2.0-3 installed" in gcc["evidence"]
    assert hygiene.removable_packages(findings) == ["gcc", "gcc-12", "libgcc-12-dev"]


def test_command_without_a_package_is_reported_by_path_and_not_removable():
    commands = {"npm": {"path": "/usr/local/bin/npm", "package": None}}
    findings = hygiene.classify_packages(CLEAN, commands, RULES)
    assert findings == [hygiene.Finding("package_manager", "/usr/local/bin/npm", "command npm at /usr/local/bin/npm", None)]
    assert hygiene.removable_packages(findings) == []


def test_deny_list_and_debuggers():
    packages = dict(CLEAN, **{"telnet": "0.17", "strace": "6.1"})
    commands = {"strace": {"path": "/usr/bin/strace", "package": "strace"}}
    kinds = {f["item"]: f["kind"] for f in hygiene.classify_packages(packages, commands, RULES)}
    assert kinds == {"strace": "debugger", "telnet": "denied_package"}


def test_source_tree_is_one_finding_per_outermost_directory(tmp_path):
    app = tmp_path / "opt" / "trading"
    (app / "src" / "engine").mkdir(parents=True)
    (app / "src" / "main.c").write_text("int main(){}")
    (app / "src" / "engine" / "order.c").write_text("")
    (app / "src" / "engine" / "order.h").write_text("")
    (app / "bin").mkdir()
    (app / "bin" / "trading").write_text("binary")
    (app / ".git" / "objects").mkdir(parents=True)
    (app / ".git" / "objects" / "x.c").write_text("")  # inside .git: not walked, not double-reported
    findings = hygiene.scan_paths([str(tmp_path / "opt"), str(tmp_path / "absent")], ["*.c", "*.h"], [".git"])
    assert [(f["kind"], f["item"]) for f in findings] == [
        ("vcs_directory", str(app / ".git")),
        ("source_tree", str(app / "src")),
    ]
    assert findings[1]["evidence"].startswith("3 source file(s)")


def test_scan_stops_and_says_so_past_the_entry_limit(tmp_path):
    for i in range(20):
        (tmp_path / ("f%d" % i)).write_text("")
    findings = hygiene.scan_paths([str(tmp_path)], ["*.c"], [".git"], max_entries=10)
    assert findings[-1]["evidence"].startswith("scan stopped after 10 entries")


def test_allow_list_needs_matching_kind_and_keeps_the_reason():
    findings = [hygiene.Finding("debugger", "strace", "command strace", "strace"),
                hygiene.Finding("compiler", "make", "command make", "make")]
    allow = [{"item": "strace", "kind": "debugger", "reason": "CHG-1: vendor case"},
             {"item": "make", "kind": "dev_package", "reason": "wrong kind, does not apply"}]
    offending, allowed = hygiene.apply_allow_list(findings, allow)
    assert [f["item"] for f in offending] == ["make"]
    assert allowed[0]["reason"] == "CHG-1: vendor case"
    assert allowed[0]["summary"] == "allowed debugger strace: CHG-1: vendor case"
    assert offending[0]["summary"] == "compiler make: command make"
