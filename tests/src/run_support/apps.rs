//! The programs of the `tapline run` tests, in Python: the quote service (buggy and fixed
//! builds), its two dependencies, and the isolation checks run from inside an environment.

/// The quote service: `GET /quote/ITEM?qty=N` asks `inventory` for `/stock/ITEM` and
/// `pricing` for `/price/ITEM` (by host name, through the hosts file) and answers the total;
/// the buggy build ignores the discount pricing returns, the fixed build applies it.
/// `GET /health` calls nobody. `--delay-ms` slows every answer; `--orphan-pidfile` forks a
/// child into its own session (out of the process group) and writes its pid there.
pub const APP_PY: &str = r#"
import argparse, json, os, sys, time, urllib.error, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--variant", choices=["buggy", "fixed"], default="buggy")
p.add_argument("--inventory", default="http://inventory:8081")
p.add_argument("--pricing", default="http://pricing:8082")
p.add_argument("--delay-ms", type=int, default=0)
p.add_argument("--orphan-pidfile")
args = p.parse_args()
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

if args.orphan_pidfile:
    pid = os.fork()
    if pid == 0:
        os.setsid()
        time.sleep(600)
        os._exit(0)
    with open(args.orphan_pidfile, "w") as f:
        f.write(str(pid))

def fetch(base, path):
    try:
        with opener.open(base + path, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "quote"
    sys_version = ""
    def log_message(self, *a):
        pass
    def send(self, status, obj):
        body = (json.dumps(obj, sort_keys=True) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if args.delay_ms:
            time.sleep(args.delay_ms / 1000)
        path, _, query = self.path.partition("?")
        parts = path.strip("/").split("/")
        if parts == ["health"]:
            return self.send(200, {"status": "ok"})
        if len(parts) == 2 and parts[0] == "quote":
            item = parts[1]
            params = dict(kv.split("=", 1) for kv in query.split("&") if "=" in kv)
            qty = int(params.get("qty", "1"))
            status, stock = fetch(args.inventory, "/stock/" + item)
            if status != 200:
                return self.send(404, {"error": "unknown item", "item": item})
            status, price = fetch(args.pricing, "/price/" + item)
            total = price["cents"] * qty
            if args.variant == "fixed":
                total = total * (100 - price["discount_pct"]) // 100
            return self.send(200, {"item": item, "qty": qty,
                                   "available": stock["stock"] >= qty, "total_cents": total})
        self.send(404, {"error": "no route"})

ThreadingHTTPServer.daemon_threads = True
server = ThreadingHTTPServer(("127.0.0.1", args.port), H)
print("READY", flush=True)
server.serve_forever()
"#;

/// A dependency of the quote service: `inventory` answers `/stock/ITEM` (404 past item 100),
/// `pricing` answers `/price/ITEM` with a 10% discount on every fifth item.
pub const DEPENDENCY_PY: &str = r#"
import argparse, json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

p = argparse.ArgumentParser()
p.add_argument("--name", required=True)
p.add_argument("--host", required=True)
p.add_argument("--port", type=int, required=True)
args = p.parse_args()

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = args.name
    sys_version = ""
    def log_message(self, *a):
        pass
    def send(self, status, obj):
        body = (json.dumps(obj, sort_keys=True) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        parts = self.path.strip("/").split("/")
        item = int(parts[1]) if len(parts) == 2 and parts[1].isdigit() else -1
        if args.name == "inventory" and parts[0] == "stock" and 0 <= item <= 100:
            return self.send(200, {"item": item, "stock": (item * 7) % 13})
        if args.name == "pricing" and parts[0] == "price" and item >= 0:
            return self.send(200, {"item": item, "cents": 100 + item * 37,
                                   "discount_pct": 10 if item % 5 == 0 else 0})
        self.send(404, {"error": "no such thing", "service": args.name})

ThreadingHTTPServer.daemon_threads = True
server = ThreadingHTTPServer((args.host, args.port), H)
print("READY", flush=True)
server.serve_forever()
"#;

/// Checks run from inside an environment, written as JSON to `--out`: TCP connects to a
/// listener on the host's loopback (`--host-loopback-port`), to the host's own address
/// (`--host-addr IP:PORT`, optional) and to an outside address; a call to the `inventory`
/// mock; resolving an unknown name; the interfaces present.
pub const ISOLATION_PY: &str = r#"
import argparse, errno, json, socket, time, urllib.request

p = argparse.ArgumentParser()
p.add_argument("--out", required=True)
p.add_argument("--host-loopback-port", type=int, required=True)
p.add_argument("--host-addr")
args = p.parse_args()

def tcp(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect((host, port))
        return "connected"
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    finally:
        s.close()

out = {"host_loopback": tcp("127.0.0.1", args.host_loopback_port),
       "outside": tcp("192.0.2.1", 80)}
if args.host_addr:
    host, port = args.host_addr.rsplit(":", 1)
    out["host_address"] = tcp(host, int(port))
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open("http://inventory:8081/stock/1", timeout=5) as r:
        out["mock_status"] = r.status
        out["mock_mark"] = r.headers.get("X-Tapline-Mock")
except Exception as e:
    out["mock_status"] = repr(e)
started = time.time()
try:
    socket.getaddrinfo("tapline-unknown.example.com", 80)
    out["dns"] = "resolved"
except socket.gaierror:
    out["dns"] = "failed"
out["dns_seconds"] = time.time() - started
out["interfaces"] = sorted(name for _, name in socket.if_nameindex())
with open(args.out, "w") as f:
    json.dump(out, f)
"#;
