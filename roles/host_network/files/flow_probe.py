"""Probe TCP flows from this host: connect to each target and say how far the packet got.

Argument: base64 of a JSON list of {"address", "port"}. Prints a JSON list with "result" added:
  open     - connected (a listener answered)
  refused  - the destination answered with a reset: the firewall let it through, nothing listens
  dropped  - no answer before the timeout: a firewall dropped it
  error    - anything else (no route, name error), with the message
Read-only: connects and closes, sends no data.
"""
import base64
import concurrent.futures
import errno
import json
import socket
import sys


def probe(target, timeout):
    family = socket.AF_INET6 if ":" in target["address"] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((target["address"], int(target["port"])))
        result, detail = "open", ""
    except socket.timeout:
        result, detail = "dropped", "no answer in %ss" % timeout
    except ConnectionRefusedError:
        result, detail = "refused", ""
    except OSError as exc:
        result = "dropped" if exc.errno in (errno.ETIMEDOUT, errno.EHOSTUNREACH) else "error"
        detail = str(exc)
    finally:
        sock.close()
    return dict(target, result=result, detail=detail)


def main():
    targets = json.loads(base64.b64decode(sys.argv[1]).decode())
    timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda t: probe(t, timeout), targets))
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
