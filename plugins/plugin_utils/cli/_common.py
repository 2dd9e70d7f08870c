"""Helpers shared by the CLI groups: the --json flag and output."""
import json


def add_json_flag(parser):
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def emit(args, data, text):
    """Print ``data`` as JSON when --json was given, else the human text (a str or callable)."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        print(text() if callable(text) else text)
