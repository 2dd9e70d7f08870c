"""`prodgate keys`: Ed25519 signing keys for approvers and governance key holders."""
import os

from ..governance import dsse
from ..errors import ProdgateError
from ._approval_args import add_passphrase_flags, read_passphrase
from ._common import add_json_flag, emit


def register(subparsers):
    keys = subparsers.add_parser("keys", help="create and inspect Ed25519 signing keys")
    sub = keys.add_subparsers(dest="keys_command", metavar="SUBCOMMAND")

    gen = sub.add_parser("generate", help="create a key pair; the private key is written with mode 0600")
    gen.add_argument("--out", required=True, metavar="PATH", help="private key file to write (PEM, PKCS#8); PATH.pub gets the public key")
    gen.add_argument("--person", help="person id the key is for (printed in the policy snippet)")
    gen.add_argument("--force", action="store_true", help="replace an existing key file")
    add_passphrase_flags(gen)
    add_json_flag(gen)
    gen.set_defaults(handler=generate)

    show = sub.add_parser("show", help="print the key id and public key of a private or .pub key file")
    show.add_argument("path")
    add_passphrase_flags(show)
    add_json_flag(show)
    show.set_defaults(handler=show_key)


def generate(args):
    passphrase = read_passphrase(args, confirm=True)
    key = dsse.generate_private_key()
    public = dsse.write_key_pair(args.out, key, passphrase, force=args.force)  # neither file overwritten without --force
    data = {"private_key": os.path.abspath(args.out), "public_key_file": os.path.abspath(args.out + ".pub"),
            "public_key": public, "keyid": dsse.keyid_of(public), "encrypted": bool(passphrase), "person": args.person}
    snippet = f"  - id: {args.person or '<person id>'}\n    keys:\n      - public_key: {public}"
    emit(args, data, f"private key: {data['private_key']} (mode 0600{', encrypted' if passphrase else ''})\n"
                     f"public key:  {public}\nkey id:      {data['keyid']}\n"
                     f"add to the policy's people (then re-sign the policy):\n{snippet}")
    return 0


def show_key(args):
    data = dsse.read_key_file(args.path)  # a regular file of at most 64 KiB: no FIFO or /dev/zero hangs here
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ProdgateError(f"key file {args.path} is not a key (binary content): give the PEM private key or the .pub "
                            "file written by `prodgate keys generate`") from None
    if "PRIVATE KEY" in text:
        public = dsse.public_key_hex(dsse.load_private_key(args.path, read_passphrase(args)).public_key())
    else:
        public = text
        dsse.parse_public_key(public, args.path)
    if not public:
        raise ProdgateError(f"{args.path} holds no key")
    data = {"public_key": public, "keyid": dsse.keyid_of(public)}
    emit(args, data, f"public key: {public}\nkey id:     {data['keyid']}")
    return 0
