"""`prodgate release`: build and verify release bundles (Art. 8-10, 28)."""
from ..governance import release
from ._common import add_json_flag, emit


def register(subparsers):
    group = subparsers.add_parser("release", help="build and verify release bundles (manifest, digests, Art. 9 documents)")
    sub = group.add_subparsers(dest="release_command", metavar="SUBCOMMAND")

    build = sub.add_parser("build", help="pack a bundle source directory (with release.yml) into a verified tarball")
    build.add_argument("source", metavar="DIR", help="bundle source directory holding release.yml, app/, data/, migrations/, docs/")
    build.add_argument("-o", "--out", metavar="OUT", help="bundle file or directory to write (default: ./<system>-<version>.tar.gz)")
    add_json_flag(build)
    build.set_defaults(handler=build_command)

    verify = sub.add_parser("verify", help="check a bundle against its manifest; prints the bundle digest approvals bind to")
    verify.add_argument("bundle", metavar="BUNDLE")
    add_json_flag(verify)
    verify.set_defaults(handler=verify_command)


def _summary(path, manifest):
    return release.summary(path, manifest)


def _text(verb, data):
    return (f"{verb} {data['bundle']}\n"
            f"  system {data['system']} version {data['version']}: {data['artifacts']} artifacts, "
            f"{len(data['data_scripts'])} data scripts, {len(data['migrations'])} migrations, "
            f"{len(data['parameters'])} parameters, {len(data['documents'])} documents, rollback plan {data['rollback_plan']}\n"
            f"  sha256 {data['sha256']}")


def build_command(args):
    path = release.build_bundle(args.source, args.out)[0]
    data = _summary(path, release.verify_bundle(path))
    emit(args, data, lambda: _text("built", data))
    return 0


def verify_command(args):
    data = _summary(args.bundle, release.verify_bundle(args.bundle))
    emit(args, data, lambda: _text("verified", data))
    return 0
