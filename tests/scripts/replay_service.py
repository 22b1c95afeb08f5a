#!/usr/bin/env python3
"""A small shop service for tapline's replay tests: it calls a dependency over HTTP and has a
bug for some inputs.

Usage: replay_service.py --port PORT --dependency http://127.0.0.1:DPORT [--fixed] [--delay-ms N]

Prints READY once listening on 127.0.0.1:PORT (0 picks a free port; READY names it).
  GET  /api/users/ID   asks the dependency for /profiles/ID and answers
                       {"id", "name", "email_domain", "served_at", "request_id"}.
                       The bug: a profile without an email makes it fail with 500. --fixed
                       answers 200 with "email_domain": null instead.
  POST /api/orders     {"item", "qty"}: asks the dependency for /prices/ITEM, answers 201
                       {"order_id", "item", "qty", "total", "created_at"}
  GET  /health         200 "ok"
Noise on purpose: a Date header, an X-Request-Id header and "request_id"/"order_id" fields
(fresh UUIDs), and "served_at"/"created_at" timestamps with microseconds.
--delay-ms N waits N ms before each answer (a slower build).
"""
import argparse
import datetime
import http.client
import json
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
LOCAL = threading.local()


def dependency(path):
    """GET path from the dependency over a kept-alive connection per thread."""
    url = urllib.parse.urlsplit(ARGS.dependency)
    for attempt in range(2):
        conn = getattr(LOCAL, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
            LOCAL.conn = conn
        try:
            conn.request("GET", path, headers={"Accept": "application/json"})
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, json.loads(body) if body else None
        except (http.client.HTTPException, OSError, ValueError):
            conn.close()
            LOCAL.conn = None
            if attempt == 1:
                raise
    return 502, None


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "shop"
    sys_version = ""
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def send_json(self, status, doc):
        if ARGS.delay_ms:
            time.sleep(ARGS.delay_ms / 1000)
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Request-Id", str(uuid.uuid4()))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if parts == ["health"]:
            return self.send_json(200, "ok")
        if len(parts) == 3 and parts[:2] == ["api", "users"] and parts[2].isdigit():
            status, profile = dependency(f"/profiles/{parts[2]}")
            if status == 404:
                return self.send_json(404, {"error": "no such user"})
            try:
                email = profile["email"]
                if ARGS.fixed and email is None:
                    domain = None
                else:
                    domain = email.split("@")[1]  # the bug: email may be null
            except Exception:  # noqa: BLE001 - a real service's catch-all handler
                return self.send_json(500, {"error": "internal error"})
            return self.send_json(200, {
                "id": profile["id"],
                "name": profile["name"],
                "email_domain": domain,
                "served_at": now(),
                "request_id": str(uuid.uuid4()),
            })
        self.send_json(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path != "/api/orders":
            return self.send_json(404, {"error": "not found"})
        try:
            order = json.loads(raw)
            item, qty = str(order["item"]), int(order["qty"])
        except (ValueError, KeyError, TypeError):
            return self.send_json(400, {"error": "bad order"})
        _, price = dependency(f"/prices/{urllib.parse.quote(item)}")
        self.send_json(201, {
            "order_id": str(uuid.uuid4()),
            "item": item,
            "qty": qty,
            "total": round(price["price"] * qty, 2),
            "created_at": now(),
        })


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dependency", required=True)
    parser.add_argument("--fixed", action="store_true")
    parser.add_argument("--delay-ms", type=float, default=0)
    ARGS = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    print(f"READY {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
