#!/usr/bin/env python3
"""The client of replay_service.py for tapline's replay tests: a fixed mix of requests over
several kept-alive connections, paced, so that recorded traffic has identical requests (for
noise detection), failing ones (the bug) and known timing.

Usage: replay_client.py --port PORT [--connections N] [--gap-ms MS] [--mix shop|health|items] [--count N]

  shop    users 1..20 twice each (5, 10, 15, 20 hit the bug), orders (two identical), health
  health  N requests of GET /health
  items   N requests of GET /api/items/K, K cycling through 0..99 (for benchmarks)
Requests go to the connections in turn, one every MS milliseconds. Prints one JSON line per
request: {"method", "path", "status"}.
"""
import argparse
import http.client
import json
import sys
import time


def plan(mix, count):
    if mix == "health":
        return [("GET", "/health", None)] * count
    if mix == "items":
        return [("GET", f"/api/items/{i % 100}", None) for i in range(count)]
    out = []
    for round_ in range(2):
        for uid in range(1, 21):
            out.append(("GET", f"/api/users/{uid}", None))
        out.append(("POST", "/api/orders", {"item": "book", "qty": 2}))
        out.append(("GET", "/health", None))
    out.append(("POST", "/api/orders", {"item": "lamp", "qty": 1}))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--gap-ms", type=float, default=5)
    parser.add_argument("--mix", default="shop")
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    conns = [http.client.HTTPConnection("127.0.0.1", args.port, timeout=10) for _ in range(args.connections)]
    start = time.monotonic()
    for i, (method, path, doc) in enumerate(plan(args.mix, args.count)):
        due = start + i * args.gap_ms / 1000
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        conn = conns[i % len(conns)]
        body = json.dumps(doc).encode() if doc is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        print(json.dumps({"method": method, "path": path, "status": resp.status}), flush=True)
    for conn in conns:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
