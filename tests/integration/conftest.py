"""Fixtures shared by the integration tests."""
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def ee_image():
    """The prodgate execution environment, built by scripts/build-ee.sh (`make ee`) if its recipe changed."""
    version = yaml.safe_load((REPO / "galaxy.yml").read_text(encoding="utf-8"))["version"]
    proc = subprocess.run([str(REPO / "scripts" / "build-ee.sh")], cwd=str(REPO), capture_output=True, text=True,
                          timeout=1800, check=False)
    assert proc.returncode == 0, f"make ee failed:\n{proc.stdout}{proc.stderr}"
    return f"localhost/prodgate-ee:{version}"
