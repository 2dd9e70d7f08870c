"""Runs the `prodgate` command in-process for the tests of this folder: (exit code, stdout, stderr)."""
from ansible_collections.prodgate.deploy.plugins.plugin_utils.cli import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])   # paths may be given as Path objects
    out = capsys.readouterr()
    return code, out.out, out.err
