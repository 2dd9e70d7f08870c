"""Bounded HTTP load generator for the lab (make demo, bench/upgrade_bench.py).

    python3 scripts/loadgen.py [--url http://127.0.0.1:18080/version] [--max-requests N] [--max-seconds S]
                               [--concurrency C] [--out FILE]

Sends GET requests without pause until SIGTERM/SIGINT, N requests or S seconds, whichever comes
first, then prints (and writes to --out) one JSON object: total, failed, per-version counts and the
first failures. A GET on a reused keep-alive connection that the server closed without answering
(nginx's old workers close idle connections on a graceful reload) is retried once on a new
connection, as HTTP clients do for idempotent requests (RFC 9112 9.3.1); such retries are counted in
`keepalive_retries`, and a retry that fails counts as failed. Only loopback URLs are accepted: the lab's load balancer is published on
127.0.0.1:18080.
"""
import argparse
import collections
import http.client
import json
import signal
import sys
import threading
import time
import urllib.parse


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:18080/version")
    parser.add_argument("--max-requests", type=int, default=100000)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    url = urllib.parse.urlsplit(args.url)
    if url.hostname not in ("127.0.0.1", "localhost", "::1"):
        parser.error("only loopback URLs (the lab's published load balancer) are allowed")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    lock = threading.Lock()
    stats = {"total": 0, "failed": 0, "keepalive_retries": 0, "versions": collections.Counter(), "failures": []}
    started = time.monotonic()
    path = url.path or "/"

    def worker():
        conn = None
        while not stop.is_set():
            with lock:
                if stats["total"] >= args.max_requests:
                    stop.set()
                    return
                stats["total"] += 1
            if time.monotonic() - started > args.max_seconds:
                stop.set()
                with lock:
                    stats["total"] -= 1
                return
            error = None
            version = None
            try:
                reused = conn is not None
                if conn is None:
                    conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=args.timeout)
                try:
                    conn.request("GET", path)
                    resp = conn.getresponse()
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    if not reused:
                        raise
                    with lock:
                        stats["keepalive_retries"] += 1
                    conn.close()
                    conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=args.timeout)
                    conn.request("GET", path)
                    resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    error = f"HTTP {resp.status}: {body[:120]!r}"
                else:
                    try:
                        version = json.loads(body).get("version")
                    except ValueError:
                        version = "?"
            except (OSError, http.client.HTTPException) as exc:
                error = f"{type(exc).__name__}: {exc}"
                if conn is not None:
                    conn.close()
                conn = None
            with lock:
                if error:
                    stats["failed"] += 1
                    if len(stats["failures"]) < 10:
                        stats["failures"].append({"t": round(time.monotonic() - started, 3), "error": error})
                else:
                    stats["versions"][version] += 1

    threads = [threading.Thread(target=worker, daemon=True) for dummy in range(args.concurrency)]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        stop.wait(0.2)
        if time.monotonic() - started > args.max_seconds + args.timeout + 1:
            break
    stop.set()
    for thread in threads:
        thread.join(timeout=args.timeout + 1)
    result = {"url": args.url, "total": stats["total"], "failed": stats["failed"], "keepalive_retries": stats["keepalive_retries"],
              "seconds": round(time.monotonic() - started, 2), "versions": dict(stats["versions"]),
              "failures": stats["failures"]}
    text = json.dumps(result, sort_keys=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
