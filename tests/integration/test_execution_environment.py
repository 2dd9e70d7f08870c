"""The execution environment `make ee` builds (issue 12, Deliver 2): what an AWX job finds in it."""
import json
import subprocess
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def in_ee(image, script):
    proc = subprocess.run(["podman", "run", "--rm", "--network=none", image, "bash", "-c", script],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_the_ee_carries_the_collection_its_needs_and_the_command(ee_image):
    version = yaml.safe_load((REPO / "galaxy.yml").read_text(encoding="utf-8"))["version"]
    assert ee_image.endswith(f":{version}")
    out = in_ee(ee_image, "ansible-galaxy collection list --format json 2>/dev/null; echo; prodgate --version; "
                          "python3 -c 'import psycopg, cryptography, yaml, ansible_runner; print(\"imports ok\")'; "
                          "stat -c '%U %a' /etc/prodgate/controller.yml; cat /etc/prodgate/controller.yml; "
                          "echo callbacks=$ANSIBLE_CALLBACKS_ENABLED; id -u; "
                          "test -f /usr/share/zoneinfo/Asia/Shanghai && echo tz ok; ansible --version | head -1")
    listing = json.loads(out.split("\n", 1)[0])
    installed = {name: info["version"] for path in listing.values() for name, info in path.items()}
    assert installed["prodgate.deploy"] == version
    declared = yaml.safe_load((REPO / "galaxy.yml").read_text(encoding="utf-8"))["dependencies"]
    assert set(declared) <= set(installed)
    assert "containers.podman" not in installed, "lab-only collections stay out of the EE"
    assert f"prodgate {version}" in out and "imports ok" in out and "tz ok" in out
    assert "root 644" in out
    settings = yaml.safe_load(out.split("root 644\n", 1)[1].split("callbacks=", 1)[0])
    assert settings == {"settings_from_environment": True, "awx": True}
    assert "callbacks=prodgate.deploy.change_register" in out
    assert "\n1000\n" in out, "jobs run as the EE's unprivileged user"
    assert "ansible [core 2.19" in out


def test_make_ee_builds_once(ee_image):
    start = time.monotonic()
    proc = subprocess.run([str(REPO / "scripts" / "build-ee.sh")], cwd=str(REPO), capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout + proc.stderr
    assert time.monotonic() - start < 30
    label = subprocess.run(["podman", "image", "inspect", "--format", '{{ index .Labels "prodgate.recipe" }}', ee_image],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert len(label) == 16
