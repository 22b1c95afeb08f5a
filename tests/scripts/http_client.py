#!/usr/bin/env python3
"""Makes a deterministic mix of HTTP/1.1 requests and records every exchange it saw.

Usage: http_client.py --host4 A --host6 A6 --port P --count N --seed S --out FILE.json

The mix: GET fixed-length, chunked and close-delimited bodies (0 bytes to 200 KiB), POST and
PUT with bodies (up to 100 KiB), HEAD, 204 and 404; on keep-alive connections (1 to 8
requests each) and on one-request `Connection: close` ones; over IPv4 and IPv6; targets with
and without query strings. Four threads share the plan. Each record holds the method, the
target as sent, the status, and the SHA-256 of both bodies as the client saw them (after
chunked decoding). Exits non-zero when any request fails.
"""
import argparse
import hashlib
import http.client
import json
import random
import sys
import threading

SIZES = [0, 1, 100, 1460, 1461, 4096, 20000, 65535, 65536, 70000, 150000, 200000]


def plan(count, seed, host4, host6):
    """A list of connections, each a (host, keepalive, [requests])."""
    rng = random.Random(seed)
    conns, n = [], 0
    while n < count:
        host = host6 if rng.random() < 0.25 else host4
        keepalive = rng.random() < 0.7
        k = min(rng.randint(1, 8) if keepalive else 1, count - n)
        reqs = []
        for _ in range(k):
            reqs.append(one_request(rng, n))
            n += 1
        conns.append((host, keepalive, reqs))
    return conns


def one_request(rng, n):
    kind = rng.choices(
        ["bytes", "chunked", "close", "echo", "head", "empty", "missing"],
        weights=[35, 15, 5, 20, 10, 5, 5])[0]
    size = rng.choice(SIZES)
    query = rng.choice(["", "?a=1", "?q=hello%20world&x=%2F&y=", "?list=1,2,3;z", "?" + "k" * 300 + "=v"])
    body = b""
    method = "GET"
    if kind == "echo":
        method = rng.choice(["POST", "PUT"])
        body = random.Random(n).randbytes(min(size, 100_000))
        target = f"/r/{n}/echo{query}"
    elif kind == "head":
        method = "HEAD"
        target = f"/r/{n}/bytes/{size}{query}"
    elif kind == "empty":
        target = f"/r/{n}/empty{query}"
    elif kind == "missing":
        target = f"/r/{n}/no/such/thing{query}"
    else:
        target = f"/r/{n}/{kind}/{size}{query}"
    return {"method": method, "target": target, "body": body, "close_delimited": kind == "close"}


def run_connection(host, port, keepalive, reqs, records, lock):
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        for i, req in enumerate(reqs):
            last = i == len(reqs) - 1
            headers = {"User-Agent": "tapline-e2e"}
            if not keepalive or last:
                headers["Connection"] = "close"
            body = req["body"] if req["method"] in ("POST", "PUT") else None
            conn.request(req["method"], req["target"], body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            record = {
                "method": req["method"],
                "target": req["target"],
                "status": resp.status,
                "request_body_len": len(req["body"]),
                "request_body_sha256": hashlib.sha256(req["body"]).hexdigest(),
                "response_body_len": len(data),
                "response_body_sha256": hashlib.sha256(data).hexdigest(),
            }
            with lock:
                records.append(record)
            if req["close_delimited"] or resp.will_close:
                # The server closed (or will close) this connection: open a new one.
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=60)
    finally:
        conn.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host4", required=True)
    parser.add_argument("--host6", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    conns = plan(args.count, args.seed, args.host4, args.host6)
    records, lock, errors = [], threading.Lock(), []

    def worker(index):
        for j in range(index, len(conns), args.threads):
            host, keepalive, reqs = conns[j]
            try:
                run_connection(host, args.port, keepalive, reqs, records, lock)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(f"connection {j} to {host}: {e!r}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(args.out, "w") as f:
        json.dump(sorted(records, key=lambda r: r["target"]), f, indent=1)
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    print(f"{len(records)} exchanges", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
