#!/usr/bin/env python3
"""A deterministic HTTP/1.1 test server for tapline's end-to-end tests.

Usage: http_server.py --bind ADDR --port PORT

Prints READY once listening (dual-stack when ADDR is `::`). Every target starts with
/r/ID/ (ID makes each request unique) followed by one of:
  bytes/N       N deterministic bytes, Content-Length
  chunked/N     N deterministic bytes, Transfer-Encoding: chunked (chunk sizes vary)
  close/N       N deterministic bytes, no length: the body ends when the server closes
  echo          (POST/PUT) the request body back, reversed, Content-Length
  empty         204 No Content
  anything else 404 with a short body
HEAD answers with GET's headers and no body. Query strings are ignored by the router.
"""
import argparse
import hashlib
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def body_of(n, key):
    """n deterministic bytes derived from `key`."""
    out = bytearray()
    counter = 0
    seed = key.encode()
    while len(out) < n:
        out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:n])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tapline-test"
    sys_version = ""

    def log_message(self, *args):
        pass

    def route(self):
        path = self.path.split("?", 1)[0]
        parts = path.strip("/").split("/")
        # /r/ID/KIND[/N]
        if len(parts) < 3 or parts[0] != "r":
            return ("missing", 0)
        kind = parts[2]
        size = int(parts[3]) if len(parts) > 3 and parts[3].isdigit() else 0
        return (kind, size)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def answer(self, head_only):
        kind, size = self.route()
        request_body = self.read_body()
        key = self.path
        if kind == "bytes":
            self.send_fixed(200, body_of(size, key), head_only)
        elif kind == "echo":
            self.send_fixed(200, request_body[::-1], head_only)
        elif kind == "empty":
            self.send_response(204)
            self.end_headers()
        elif kind == "chunked":
            body = body_of(size, key)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if head_only:
                return
            i, step = 0, 1
            while i < len(body):
                chunk = body[i:i + step]
                self.wfile.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                i += len(chunk)
                step = step * 3 + 1 if step < 20000 else 777
            self.wfile.write(b"0\r\n\r\n")
        elif kind == "close":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            if not head_only:
                self.wfile.write(body_of(size, key))
            self.close_connection = True
        else:
            self.send_fixed(404, b"not found\n", head_only)

    def send_fixed(self, status, body, head_only):
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def do_GET(self):
        self.answer(False)

    def do_POST(self):
        self.answer(False)

    def do_PUT(self):
        self.answer(False)

    def do_HEAD(self):
        self.answer(True)


class DualStackServer(ThreadingHTTPServer):
    daemon_threads = True
    address_family = socket.AF_INET6

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", default="::")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    server_class = DualStackServer if ":" in args.bind else ThreadingHTTPServer
    server = server_class((args.bind, args.port), Handler)
    print("READY", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
