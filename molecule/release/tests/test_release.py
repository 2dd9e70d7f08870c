"""State of the host after converge and side_effect: 1.0.0 serving through nginx after rollbacks.

side_effect: 1.0.0 -> 1.1.0 -> rollback (1.0.0) -> second rollback refused -> tampered bundles
refused -> 1.1.0 -> 1.2.0 fails its health check, back to 1.1.0 -> rollback (1.0.0, not 1.2.0) ->
rollback refused.
"""
import json


def test_current_points_at_1_0_0_and_there_is_no_earlier_good_release(host):
    assert host.file("/opt/sampleapp/current").linked_to == "/opt/sampleapp/releases/1.0.0"
    # previous names the rollback target; nothing passed its health check before 1.0.0
    assert not host.file("/opt/sampleapp/previous").exists


def test_history_holds_only_the_good_release_in_service(host):
    history = host.file("/opt/sampleapp/HISTORY")
    assert history.user == "root" and history.group == "root" and history.mode == 0o644
    versions = [line.strip() for line in history.content_string.splitlines() if line.strip() and not line.startswith("#")]
    # 1.1.0 was rolled back from twice; 1.2.0 failed its health check and never entered it
    assert versions == ["1.0.0"]


def test_releases_on_the_host_include_the_broken_one_but_no_staging_left(host):
    # 1.2.0 was installed (its files match its manifest) and failed its health check; the staging
    # directory of the refused tampered 1.2.0 was replaced by the real unpack
    assert sorted(host.file("/opt/sampleapp/releases").listdir()) == ["1.0.0", "1.1.0", "1.2.0"]
    assert not host.file("/opt/sampleapp/releases/.1.2.0.unpack").exists
    assert "# injected" not in host.file("/opt/sampleapp/releases/1.2.0/app/sampleapp.py").content_string


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
