"""Stand-in for ansible-test's get-pip bootstrap script (its download server is unreachable here).

ansible-test looks for ~/.ansible/test/cache/get_pip_<version>.py before downloading; this one
bootstraps pip with ensurepip, then installs what ansible-test asked for with the machine's CA
bundle (pip in those virtual environments otherwise rejects the TLS chain). See platform-notes.
"""
import os
import subprocess
import sys

DROP = {"--no-setuptools", "--no-wheel"}


def main():
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
    args = [a for a in sys.argv[1:] if a not in DROP]
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check"]
    cert = "/etc/ssl/certs/ca-certificates.crt"
    if os.path.exists(cert):
        cmd += ["--cert", cert]
    if args:
        subprocess.check_call(cmd + args)


if __name__ == "__main__":
    main()
