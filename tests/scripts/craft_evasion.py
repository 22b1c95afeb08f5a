#!/usr/bin/env python3
"""Writes crafted captures of HTTP/1 exchanges that stress TCP reassembly, for tapline's tests.

Usage: craft_evasion.py --out DIR CASE [CASE...]   (or `all`, or `--list`)

Each case writes DIR/CASE.pcap (or .pcapng) and prints its path. The expected exchanges are
asserted in tests/tests/crafted.rs; keep the two in step. Everything is deterministic: fixed
addresses, sequence numbers and timestamps (1 ms apart from T0).

Reassembly policy the captures check: when segments overlap with different bytes, the bytes
seen FIRST (earliest in the capture) win.
"""
import argparse
import decimal
import logging
import os
import sys

# Mixed link layers in the noise case make scapy warn about linktypes; the writer's
# linktype is set explicitly, so the warning says nothing here.
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)

from scapy.all import (  # noqa: E402
    ARP, IP, TCP, UDP, Dot1AD, Dot1Q, Ether, IPv6, Raw, PcapNgWriter, PcapWriter,
)
from scapy.layers.l2 import CookedLinux, CookedLinuxV2

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z
CLIENT_MAC = "02:00:00:00:00:01"
SERVER_MAC = "02:00:00:00:00:02"

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276


class Clock:
    """Hands out timestamps 1 ms apart."""

    def __init__(self):
        self.tick = 0

    def next(self):
        self.tick += 1
        return T0 + self.tick / 1000.0


class Conn:
    """One TCP connection; methods return packets (IP layer and up) without sending them.

    Offsets passed to c()/s() are relative to the first data byte of that direction.
    """

    def __init__(self, cport=40000, sport=80, isn_c=1000, isn_s=5000, v6=False,
                 cip=None, sip=None):
        self.v6 = v6
        self.cip = cip or ("fd00::1" if v6 else "10.1.0.1")
        self.sip = sip or ("fd00::2" if v6 else "10.1.0.2")
        self.cport, self.sport = cport, sport
        self.isn_c, self.isn_s = isn_c, isn_s
        self.c_next = 0  # next relative data offset, client
        self.s_next = 0
        self.c_fin = False
        self.s_fin = False

    def _ip(self, from_client):
        if self.v6:
            return IPv6(src=self.cip, dst=self.sip) if from_client else IPv6(src=self.sip, dst=self.cip)
        return IP(src=self.cip, dst=self.sip) if from_client else IP(src=self.sip, dst=self.cip)

    def _seq(self, from_client, off):
        isn = self.isn_c if from_client else self.isn_s
        return (isn + 1 + off) % 2**32

    def _ack(self, from_client):
        # Acknowledge everything the other side has sent so far (plus its FIN).
        if from_client:
            return self._seq(False, self.s_next + (1 if self.s_fin else 0))
        return self._seq(True, self.c_next + (1 if self.c_fin else 0))

    def _tcp(self, from_client, flags, seq, ack=True):
        sport, dport = (self.cport, self.sport) if from_client else (self.sport, self.cport)
        return TCP(sport=sport, dport=dport, flags=flags, seq=seq,
                   ack=self._ack(from_client) if ack else 0, window=65535)

    def handshake(self):
        syn = self._ip(True) / TCP(sport=self.cport, dport=self.sport, flags="S",
                                   seq=self.isn_c, window=65535)
        synack = self._ip(False) / TCP(sport=self.sport, dport=self.cport, flags="SA",
                                       seq=self.isn_s, ack=(self.isn_c + 1) % 2**32, window=65535)
        ack = self._ip(True) / self._tcp(True, "A", self._seq(True, 0))
        return [syn, synack, ack]

    def _data(self, from_client, data, off):
        nxt = self.c_next if from_client else self.s_next
        if off is None:
            off = nxt
        pkt = self._ip(from_client) / self._tcp(from_client, "PA", self._seq(from_client, off)) / Raw(data)
        end = off + len(data)
        if from_client:
            self.c_next = max(self.c_next, end)
        else:
            self.s_next = max(self.s_next, end)
        return pkt

    def c(self, data, off=None):
        """A client data segment at relative offset `off` (default: next)."""
        return self._data(True, data, off)

    def s(self, data, off=None):
        """A server data segment at relative offset `off` (default: next)."""
        return self._data(False, data, off)

    def ack_c(self):
        """A bare ACK from the client."""
        return self._ip(True) / self._tcp(True, "A", self._seq(True, self.c_next + (1 if self.c_fin else 0)))

    def ack_s(self):
        return self._ip(False) / self._tcp(False, "A", self._seq(False, self.s_next + (1 if self.s_fin else 0)))

    def fin_c(self):
        pkt = self._ip(True) / self._tcp(True, "FA", self._seq(True, self.c_next))
        self.c_fin = True
        return pkt

    def fin_s(self):
        pkt = self._ip(False) / self._tcp(False, "FA", self._seq(False, self.s_next))
        self.s_fin = True
        return pkt

    def rst_c(self):
        return self._ip(True) / self._tcp(True, "R", self._seq(True, self.c_next), ack=False)

    def close(self):
        """Server FIN, client FIN, last ACK."""
        return [self.fin_s(), self.fin_c(), self.ack_s()]


def request(method, target, body=b"", headers=()):
    lines = [f"{method} {target} HTTP/1.1", "Host: example.test"]
    lines += [f"{k}: {v}" for k, v in headers]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def response(status, body=b"", reason="OK", headers=(), chunked=False):
    lines = [f"HTTP/1.1 {status} {reason}", "Server: craft"]
    lines += [f"{k}: {v}" for k, v in headers]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        encoded = b""
        for i in range(0, len(body), 7):
            part = body[i:i + 7]
            encoded += b"%x\r\n" % len(part) + part + b"\r\n"
        encoded += b"0\r\n\r\n"
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + encoded
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def simple_exchange(conn, target, body, close=True):
    """Handshake, GET target, 200 with body, ACKs, and (optionally) the closing handshake."""
    pkts = conn.handshake()
    pkts += [conn.c(request("GET", target)), conn.ack_s(), conn.s(response(200, body)), conn.ack_c()]
    if close:
        pkts += conn.close()
    return pkts


def frame(pkt, link, from_client):
    """Wraps an IP packet for a link type; returns (frame, linktype)."""
    src, dst = (CLIENT_MAC, SERVER_MAC) if from_client else (SERVER_MAC, CLIENT_MAC)
    ethertype = 0x86DD if IPv6 in pkt else 0x0800
    if link == "ethernet":
        return Ether(src=src, dst=dst) / pkt, LINKTYPE_ETHERNET
    if link == "vlan":
        return Ether(src=src, dst=dst) / Dot1Q(vlan=100) / pkt, LINKTYPE_ETHERNET
    if link == "qinq":
        return Ether(src=src, dst=dst) / Dot1AD(vlan=200) / Dot1Q(vlan=100) / pkt, LINKTYPE_ETHERNET
    if link == "sll":
        return CookedLinux(pkttype=0 if from_client else 4, lladdrtype=1, lladdrlen=6,
                           src=bytes.fromhex(src.replace(":", "")) + b"\0\0", proto=ethertype) / pkt, LINKTYPE_LINUX_SLL
    if link == "sll2":
        return CookedLinuxV2(proto=ethertype, ifindex=2, lladdrtype=1, pkttype=0 if from_client else 4,
                             lladdrlen=6, src=bytes.fromhex(src.replace(":", "")) + b"\0\0") / pkt, LINKTYPE_LINUX_SLL2
    if link == "raw":
        return pkt, LINKTYPE_RAW
    raise ValueError(link)


def write(path, pkts, link="ethernet", nano=False, pcapng=False, client_ips=None):
    """Writes IP packets framed for `link`, timestamps 1 ms apart (plus 123 ns when `nano`,
    so that a reader that drops nanoseconds shows).

    A packet is from the client when its source address is in `client_ips`
    (default: the crafted clients 10.1.0.1 and fd00::1).
    """
    client_ips = client_ips or {"10.1.0.1", "fd00::1"}
    clock = Clock()
    frames, linktype = [], LINKTYPE_ETHERNET
    for pkt in pkts:
        if isinstance(pkt, tuple):  # (pre-built link frame, linktype)
            f, linktype = pkt
        else:
            ip = pkt[IPv6] if IPv6 in pkt else pkt[IP]
            f, linktype = frame(pkt, link, ip.src in client_ips)
        f.time = clock.next()
        if nano:
            f.time = decimal.Decimal(T0) + decimal.Decimal(clock.tick) / 1000 + decimal.Decimal("0.000000123")
        frames.append(f)
    if pcapng:
        writer = PcapNgWriter(path)
    else:
        writer = PcapWriter(path, linktype=linktype, nano=nano, sync=True)
    for f in frames:
        writer.write(f)
    writer.close()
    return path


# ---------------------------------------------------------------- cases

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


@case
def baseline(out):
    conn = Conn()
    return write(f"{out}/baseline.pcap", simple_exchange(conn, "/baseline", b"hello, baseline\n"))


def link_case(out, name, link, v6=False, nano=False, pcapng=False):
    conn = Conn(v6=v6)
    pkts = simple_exchange(conn, f"/link/{name}", f"link {name} ok\n".encode())
    ext = "pcapng" if pcapng else "pcap"
    return write(f"{out}/link_{name}.{ext}", pkts, link=link, nano=nano, pcapng=pcapng)


@case
def link_vlan(out):
    return link_case(out, "vlan", "vlan")


@case
def link_qinq(out):
    return link_case(out, "qinq", "qinq")


@case
def link_ipv6(out):
    return link_case(out, "ipv6", "ethernet", v6=True)


@case
def link_ipv6_vlan(out):
    return link_case(out, "ipv6_vlan", "vlan", v6=True)


@case
def link_sll(out):
    return link_case(out, "sll", "sll")


@case
def link_sll2(out):
    return link_case(out, "sll2", "sll2")


@case
def link_raw(out):
    return link_case(out, "raw", "raw")


@case
def link_raw_ipv6(out):
    return link_case(out, "raw_ipv6", "raw", v6=True)


@case
def link_pcapng(out):
    return link_case(out, "pcapng", "ethernet", pcapng=True)


@case
def link_nanosecond(out):
    return link_case(out, "nanosecond", "ethernet", nano=True)


@case
def ooo_dup(out):
    """Request in 3 segments and response in 4, delivered out of order with duplicates."""
    conn = Conn()
    pkts = conn.handshake()
    req = request("GET", "/ooo?x=1&y=2")
    r1, r2, r3 = conn.c(req[:10], 0), conn.c(req[10:25], 10), conn.c(req[25:], 25)
    pkts += [r3, r1, r3, r2, r1, conn.ack_s()]
    body = b"out-of-order and duplicated response body\n" * 3
    resp = response(200, body)
    q = len(resp) // 4
    s = [conn.s(resp[i * q:(i + 1) * q if i < 3 else len(resp)], i * q) for i in range(4)]
    pkts += [s[1], s[0], s[0], s[3], s[2], s[1], conn.ack_c()]
    pkts += conn.close()
    return write(f"{out}/ooo_dup.pcap", pkts)


# Overlap arrangements: (first segment, second segment) as (offset, bytes) within a 10-byte
# body; the result is what the bytes-seen-first policy yields.
OVERLAPS = {
    # the second segment overlaps the first one's left part
    "left": ((4, b"BBBBBB"), (0, b"AAAAAA")),         # -> AAAABBBBBB
    # the second segment overlaps the first one's right part
    "right": ((0, b"AAAAAA"), (4, b"BBBBBB")),        # -> AAAAAABBBB
    # the second segment lies inside the first one
    "contained": ((0, b"AAAAAAAAAA"), (3, b"BBB")),   # -> AAAAAAAAAA
    # the second segment covers the first one and more on both sides
    "containing": ((3, b"BBB"), (0, b"AAAAAAAAAA")),  # -> AAABBBAAAA
    # the same range twice with different bytes
    "same": ((0, b"AAAAAAAAAA"), (0, b"BBBBBBBBBB")),  # -> AAAAAAAAAA
}


@case
def overlap(out):
    """POST /overlap/ARRANGEMENT/ORDER with a 10-byte body sent as two overlapping segments.

    ORDER `inorder`: headers first, then the two body segments.
    ORDER `buffered`: both body segments first (held out of order), then the headers.
    The response echoes nothing; the request body hash tells which bytes won.
    Then one response-side overlap: GET /overlap/response, body 10 bytes, arrangement `left`.
    """
    pkts = []
    port = 41000
    for order in ("inorder", "buffered"):
        for name, ((off1, data1), (off2, data2)) in OVERLAPS.items():
            conn = Conn(cport=port)
            port += 1
            pkts += conn.handshake()
            head = request("POST", f"/overlap/{name}/{order}", b"").replace(
                b"Content-Length: 0", b"Content-Length: 10")
            h = conn.c(head, 0)
            b1 = conn.c(data1, len(head) + off1)
            b2 = conn.c(data2, len(head) + off2)
            conn.c_next = len(head) + 10
            pkts += [h, b1, b2] if order == "inorder" else [b1, b2, h]
            pkts += [conn.ack_s(), conn.s(response(200, b"ok")), conn.ack_c()]
            pkts += conn.close()
    conn = Conn(cport=port)
    pkts += conn.handshake()
    pkts += [conn.c(request("GET", "/overlap/response")), conn.ack_s()]
    head = response(200, b"").replace(b"Content-Length: 0", b"Content-Length: 10")
    (off1, data1), (off2, data2) = OVERLAPS["left"]
    pkts += [conn.s(head, 0), conn.s(data1, len(head) + off1), conn.s(data2, len(head) + off2)]
    conn.s_next = len(head) + 10
    pkts += [conn.ack_c()] + conn.close()
    return write(f"{out}/overlap.pcap", pkts)


@case
def tiny_reverse(out):
    """Request and response each sent as 1-byte segments in reverse order."""
    conn = Conn()
    pkts = conn.handshake()
    req = request("GET", "/tiny-reverse")
    pkts += [conn.c(req[i:i + 1], i) for i in reversed(range(len(req)))]
    pkts.append(conn.ack_s())
    resp = response(200, b"reversed!")
    pkts += [conn.s(resp[i:i + 1], i) for i in reversed(range(len(resp)))]
    pkts.append(conn.ack_c())
    pkts += conn.close()
    return write(f"{out}/tiny_reverse.pcap", pkts)


@case
def split_header(out):
    """Request line, a header name, and CRLFs split across segments; chunked response."""
    conn = Conn()
    pkts = conn.handshake()
    req = request("GET", "/split-header?q=split", headers=[("X-Long", "v" * 50)])
    cuts = [0, 7, 12, req.index(b"Host") + 2, req.index(b"X-Long") + 3, len(req) - 3, len(req) - 1, len(req)]
    for a, b in zip(cuts, cuts[1:]):
        pkts.append(conn.c(req[a:b], a))
    pkts.append(conn.ack_s())
    resp = response(200, b"split headers, chunked body", chunked=True)
    cuts = [0, 5, 13, resp.index(b"\r\n") + 1, resp.index(b"\r\n\r\n") + 3, len(resp) - 2, len(resp)]
    for a, b in zip(cuts, cuts[1:]):
        pkts.append(conn.s(resp[a:b], a))
    pkts.append(conn.ack_c())
    pkts += conn.close()
    return write(f"{out}/split_header.pcap", pkts)


@case
def gap(out):
    """A 3000-byte response body whose middle 1000 bytes were never captured."""
    conn = Conn()
    pkts = conn.handshake()
    pkts += [conn.c(request("GET", "/gap")), conn.ack_s()]
    body = bytes((i * 7) % 251 for i in range(3000))
    resp = response(200, body)
    head_len = len(resp) - 3000
    first = resp[:head_len + 1000]
    pkts.append(conn.s(first, 0))
    conn.s(resp[head_len + 1000:head_len + 2000], head_len + 1000)  # lost: not appended
    pkts.append(conn.s(resp[head_len + 2000:], head_len + 2000))
    pkts.append(conn.ack_c())
    pkts += conn.close()
    return write(f"{out}/gap.pcap", pkts)


@case
def seq_wrap(out):
    """Sequence numbers of both directions wrap past 2^32 inside the data."""
    conn = Conn(isn_c=2**32 - 20, isn_s=2**32 - 700)
    pkts = conn.handshake()
    req = request("POST", "/seq-wrap", b"wrapped request body " * 4)
    pkts += [conn.c(req[:30], 0), conn.c(req[30:], 30), conn.ack_s()]
    body = bytes(range(256)) * 8
    resp = response(200, body)
    for i in range(0, len(resp), 500):
        pkts.append(conn.s(resp[i:i + 500], i))
    pkts.append(conn.ack_c())
    pkts += conn.close()
    return write(f"{out}/seq_wrap.pcap", pkts)


@case
def after_rst(out):
    """An exchange, a client RST, then a request and a response sent after the RST."""
    conn = Conn()
    pkts = conn.handshake()
    pkts += [conn.c(request("GET", "/before-rst")), conn.ack_s(), conn.s(response(200, b"fine")), conn.ack_c()]
    pkts.append(conn.rst_c())
    pkts += [conn.c(request("GET", "/after-rst")), conn.s(response(500, b"ghost", reason="Ghost"))]
    return write(f"{out}/after_rst.pcap", pkts)


@case
def after_fin(out):
    """An exchange closed by both FINs, then data past each side's FIN."""
    conn = Conn()
    pkts = conn.handshake()
    pkts += [conn.c(request("GET", "/before-fin")), conn.ack_s(), conn.s(response(200, b"fine")), conn.ack_c()]
    pkts += conn.close()
    # Data whose sequence numbers lie past each FIN.
    pkts.append(conn.c(request("GET", "/after-fin"), conn.c_next + 1))
    pkts.append(conn.s(response(500, b"ghost", reason="Ghost"), conn.s_next + 1))
    return write(f"{out}/after_fin.pcap", pkts)


@case
def reused_tuple(out):
    """Two connections on the same 4-tuple, one after the other, with unrelated ISNs."""
    first = Conn(isn_c=1000, isn_s=5000)
    second = Conn(isn_c=3_000_000_000, isn_s=123_456_789)
    pkts = simple_exchange(first, "/first", b"one") + simple_exchange(second, "/second", b"two")
    return write(f"{out}/reused_tuple.pcap", pkts)


@case
def midstream(out):
    """A keep-alive connection seen from the middle: no handshake, two exchanges."""
    conn = Conn(isn_c=777_777, isn_s=888_888)
    conn.c_next, conn.s_next = 5000, 9000  # earlier traffic was not captured
    pkts = [conn.c(request("GET", "/midstream/1")), conn.ack_s(), conn.s(response(200, b"first")), conn.ack_c(),
            conn.c(request("GET", "/midstream/2")), conn.ack_s(), conn.s(response(404, b"second", reason="Not Found")),
            conn.ack_c()]
    pkts += conn.close()
    return write(f"{out}/midstream.pcap", pkts)


@case
def keepalive(out):
    """Three exchanges on one connection: Content-Length, chunked, and HEAD."""
    conn = Conn()
    pkts = conn.handshake()
    body = b"x" * 1000
    pkts += [conn.c(request("GET", "/ka/1")), conn.ack_s(), conn.s(response(200, b"first body")), conn.ack_c()]
    pkts += [conn.c(request("POST", "/ka/2", body)), conn.ack_s(),
             conn.s(response(201, b"chunked reply body", reason="Created", chunked=True)), conn.ack_c()]
    pkts += [conn.c(request("HEAD", "/ka/3")), conn.ack_s(),
             conn.s(response(200, b"").replace(b"Content-Length: 0", b"Content-Length: 1234")), conn.ack_c()]
    pkts += conn.close()
    return write(f"{out}/keepalive.pcap", pkts)


@case
def noise(out):
    """The baseline exchange among frames that are not TCP/IP or are malformed."""
    conn = Conn()
    ex = simple_exchange(conn, "/noise", b"signal\n")
    junk = [
        (Ether(src=CLIENT_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="10.1.0.1", pdst="10.1.0.2"), LINKTYPE_ETHERNET),
        (Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src="10.1.0.1", dst="10.1.0.2") / UDP(sport=5353, dport=53) / Raw(b"\x00" * 20), LINKTYPE_ETHERNET),
        (Ether(src=CLIENT_MAC, dst=SERVER_MAC, type=0x0800) / Raw(b"\x45\x00\x00"), LINKTYPE_ETHERNET),  # truncated IPv4
        (Ether(src=CLIENT_MAC, dst=SERVER_MAC, type=0x0800) / Raw(bytes(range(60))), LINKTYPE_ETHERNET),  # garbage IPv4
        (Ether(src=CLIENT_MAC, dst=SERVER_MAC, type=0x86DD) / Raw(b"\x60" + b"\xff" * 50), LINKTYPE_ETHERNET),  # garbage IPv6
        (Ether(src=CLIENT_MAC, dst=SERVER_MAC, type=0x1234) / Raw(b"unknown ethertype"), LINKTYPE_ETHERNET),
        (Raw(b"\x02\x00"), LINKTYPE_ETHERNET),  # shorter than an Ethernet header
    ]
    # IPv4 + TCP header claiming a data offset beyond the packet.
    bad_tcp = Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src="10.1.0.1", dst="10.1.0.2", proto=6) / Raw(
        b"\x9c\x40\x00\x50" + b"\x00" * 8 + b"\xf0\x18" + b"\x00" * 6)
    junk.append((bad_tcp, LINKTYPE_ETHERNET))
    pkts = []
    for i, pkt in enumerate(ex):
        pkts.append(pkt)
        if i < len(junk):
            pkts.append(junk[i])
    return write(f"{out}/noise.pcap", pkts)


@case
def many_exchanges(out):
    """Ten sequential connections GET /many/N -> 200 "body N", ten packets each (for truncation)."""
    pkts = []
    for n in range(10):
        conn = Conn(cport=42000 + n)
        pkts += simple_exchange(conn, f"/many/{n}", f"body {n}\n".encode())
    return write(f"{out}/many_exchanges.pcap", pkts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=False, default=".")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("cases", nargs="*")
    args = parser.parse_args()
    if args.list:
        print("\n".join(CASES))
        return 0
    names = list(CASES) if args.cases == ["all"] else args.cases
    os.makedirs(args.out, exist_ok=True)
    for name in names:
        if name not in CASES:
            print(f"craft_evasion.py: unknown case {name!r}; --list shows them", file=sys.stderr)
            return 2
        print(CASES[name](args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
