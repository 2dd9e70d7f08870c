"""Host identity, network files and the firewall (Art. 6), seen from both hosts."""
import testinfra

# podman exec directly: the molecule inventory's podman connection has no native testinfra backend
APP = testinfra.get_host("podman://prodgate-mol-host_network-app")
DB = testinfra.get_host("podman://prodgate-mol-host_network-db")
DOMAIN = "molecule.prodgate.internal"


CONNECT = (
    "python3 -c \"import socket,sys; s=socket.socket(); s.settimeout(3); "
    "r=s.connect_ex(('{address}', {port})); print(r); sys.exit(0)\""
)


def address(host):
    return host.run("hostname -I").stdout.split()[0]


def connect(source, destination, port):
    """0: connected; 111: refused; 11 or timeout text: dropped."""
    result = source.run(CONNECT.format(address=address(destination), port=port))
    return result.stdout.strip() or result.stderr


def test_estate_names_resolve_on_every_host():
    for here, there, name in ((APP, DB, "prodgate-mol-host_network-db"), (DB, APP, "prodgate-mol-host_network-app")):
        answer = here.run("getent hosts %s.%s" % (name, DOMAIN)).stdout.split()
        assert answer[0] == address(there)


def test_declared_flow_is_allowed():
    assert connect(APP, DB, 5432) == "0"


def test_undeclared_port_is_dropped():
    # something listens on 6432 (prepare), but no flow declares it
    assert DB.socket("tcp://0.0.0.0:6432").is_listening
    assert connect(APP, DB, 6432) not in ("0", "111")


def test_undeclared_source_is_dropped():
    # app accepts 8080 only from load balancers; the database host is not one
    assert connect(DB, APP, 8080) not in ("0", "111")


def test_firewall_loaded_and_survives_reboot_config():
    for node in (APP, DB):
        assert node.service("nftables").is_enabled
        rules = node.run("nft list table inet prodgate").stdout
        assert "policy drop" in rules
    assert 'comment "flow database"' in DB.run("nft list table inet prodgate").stdout


def test_networkd_files_rendered():
    eth0 = APP.file("/etc/systemd/network/60-prodgate-eth0.network").content_string
    assert "Ansible managed" in eth0
    assert "Address=%s/" % address(APP) in eth0
    assert "Gateway=" in eth0
    bond = APP.file("/etc/systemd/network/60-prodgate-bond0.netdev").content_string
    assert "Kind=bond" in bond and "Mode=802.3ad" in bond
    assert "Bond=bond0" in APP.file("/etc/systemd/network/60-prodgate-eth1.network").content_string
    bond_network = APP.file("/etc/systemd/network/60-prodgate-bond0.network").content_string
    assert "VLAN=bond0.200" in bond_network
    vlan = APP.file("/etc/systemd/network/60-prodgate-bond0.200.network").content_string
    assert "Address=192.0.2.10/24" in vlan and "Destination=198.51.100.0/24" in vlan
    assert "Id=200" in APP.file("/etc/systemd/network/60-prodgate-bond0.200.netdev").content_string
    # rendered, not applied: networkd stays off in a container
    assert not APP.service("systemd-networkd").is_running
