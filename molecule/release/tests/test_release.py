"""State of the host after converge and side_effect: 1.0.0 serving through nginx after rollbacks."""
import json


def test_current_points_at_1_0_0_and_previous_at_the_rolled_back_release(host):
    assert host.file("/opt/sampleapp/current").linked_to == "/opt/sampleapp/releases/1.0.0"
    assert host.file("/opt/sampleapp/previous").linked_to == "/opt/sampleapp/releases/1.1.0"


def test_tampered_bundle_left_no_release_behind(host):
    # the refused 1.2.0 stayed in its staging directory and never became a release
    assert sorted(host.file("/opt/sampleapp/releases").listdir()) == ["1.0.0", "1.1.0"]
    assert not host.file("/opt/sampleapp/releases/1.2.0").exists
    assert "# injected" in host.file("/opt/sampleapp/releases/.1.2.0.unpack/app/sampleapp.py").content_string


def test_service_and_nginx_run_and_serve_1_0_0(host):
    assert host.service("sampleapp").is_running and host.service("sampleapp").is_enabled
    assert host.service("nginx").is_running
    answer = json.loads(host.check_output("python3 -c \"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1/version').read().decode())\""))
    assert answer == {"system": "sampleapp", "version": "1.0.0", "greeting": "hello from the lab"}


def test_configuration_is_rendered_from_the_manifest_and_not_world_readable(host):
    config = host.file("/opt/sampleapp/releases/1.0.0/config.ini")
    assert config.mode == 0o640 and config.group == "sampleapp"
    assert "listen_port = 8080" in config.content_string
    assert "# db_password (risk high)" in config.content_string


def test_nginx_upstream_has_the_node_in_service(host):
    site = host.file("/etc/nginx/conf.d/sampleapp.conf").content_string
    assert "server 127.0.0.1:8080" in site and " down;" not in site
