"""testinfra over `podman exec` for the molecule scenarios of this collection.

Molecule hands testinfra an Ansible inventory whose connection (containers.podman.podman) has no
native testinfra backend, so every ``host.run`` would start a whole ansible process (seconds per
command). In a scenario with one platform, ``host`` talks to that container directly; scenarios
with several platforms name their hosts with ``testinfra.get_host("podman://NAME")``.
"""
import os

import pytest
import testinfra
import yaml


def _platforms():
    scenario = os.environ.get("MOLECULE_SCENARIO_DIRECTORY")
    if not scenario:
        return []
    with open(os.path.join(scenario, "molecule.yml"), encoding="utf-8") as handle:
        return [platform["name"] for platform in yaml.safe_load(handle).get("platforms", [])]


_PLATFORMS = _platforms()

if len(_PLATFORMS) == 1:
    @pytest.fixture(scope="module")
    def host():
        return testinfra.get_host("podman://" + _PLATFORMS[0])
