#!/usr/bin/env python3
"""The dependency of replay_service.py: a profile and price service for tapline's replay tests.

Usage: replay_dependency.py --port PORT

Prints READY once listening on 127.0.0.1:PORT. Answers, as JSON:
  GET /profiles/ID   {"id", "name", "email"}; email is null for IDs divisible by 5 (the input
                     that trips the service's bug); 404 for IDs above 1000
  GET /prices/ITEM   {"item", "price"}
Everything is deterministic except the Date header.
"""
import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "profiles"
    sys_version = ""
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def send_json(self, status, doc):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "profiles" and parts[1].isdigit():
            uid = int(parts[1])
            if uid > 1000:
                return self.send_json(404, {"error": "no such profile"})
            email = None if uid % 5 == 0 else f"user{uid}@example.com"
            return self.send_json(200, {"id": uid, "name": f"user {uid}", "email": email})
        if len(parts) == 2 and parts[0] == "prices":
            item = parts[1]
            return self.send_json(200, {"item": item, "price": len(item) * 3 + 1.5})
        self.send_json(404, {"error": "not found"})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"READY {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
