"""Run testinfra over `podman exec` instead of one ansible process per command.

Molecule hands testinfra an Ansible inventory whose connection (containers.podman.podman) has
no native testinfra backend, so every host.run would start a whole ansible run; the podman
backend talks to the same container directly.
"""
import pytest
import testinfra


@pytest.fixture(scope="module")
def host():
    return testinfra.get_host("podman://prodgate-mol-os_baseline")
