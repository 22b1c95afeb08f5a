/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * tapline_capture.bpf.h: the maps and the copy-and-filter code shared by the
 * live-capture programs: the XDP ingress program (xdp/src/capture.bpf.c) and
 * the TC programs (bpf/src/tc_capture.bpf.c).
 *
 * Both programs are compiled into one object by xdp/build.rs so that they
 * share one ring buffer: the kernel orders records by their reservation in
 * the ring, so a reply seen at ingress can never be read before the request
 * that caused it at egress. The include guard makes the maps exist once.
 *
 * The path of a packet:
 *   1. count it (TL_CNT_SEEN);
 *   2. when a filter is active, load the first TL_PARSE_BYTES into this CPU's
 *      scratch buffer and judge ports and hosts; stop when they do not match;
 *   3. load up to the snap length into the scratch buffer, after the header;
 *   4. bpf_ringbuf_output() header and bytes without waking userspace (it
 *      drains the ring every few milliseconds), counting a full ring.
 * The programs never drop or change a packet.
 */
#ifndef TAPLINE_CAPTURE_BPF_H
#define TAPLINE_CAPTURE_BPF_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "tapline_abi.h"

/* Snap length, set by the loader (1..=TL_MAX_SNAPLEN). */
const volatile __u32 tl_snaplen = TL_MAX_SNAPLEN;

/* The records, for userspace to read memory-mapped. The loader sets the size. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24);
} tl_cap_ring SEC(".maps");

/* Two scratch buffers per possible CPU (see tapline_abi.h). The loader sets
 * max_entries to twice the number of possible CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct tl_capture_scratch);
} tl_cap_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tl_capture_filter);
} tl_cap_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TL_MAX_PORTS);
	__type(key, __u16);
	__type(value, __u8);
} tl_cap_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, TL_MAX_CIDRS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct tl_lpm_v4);
	__type(value, __u8);
} tl_cap_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, TL_MAX_CIDRS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct tl_lpm_v6);
	__type(value, __u8);
} tl_cap_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TL_CNT_ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
} tl_cap_counters SEC(".maps");

char _license[] SEC("license") = "Dual BSD/GPL";

static __always_inline void tl_cap_count(__u32 direction, __u32 slot)
{
	__u32 index = (direction == TL_DIR_EGRESS ? TL_CNT_SLOTS : 0) + slot;
	__u64 *value = bpf_map_lookup_elem(&tl_cap_counters, &index);

	if (value)
		*value += 1;
}

static __always_inline struct tl_capture_scratch *tl_cap_scratch_of(__u32 direction)
{
	__u32 index = bpf_get_smp_processor_id() * 2 + (direction == TL_DIR_EGRESS);

	return bpf_map_lookup_elem(&tl_cap_scratch, &index);
}

static __always_inline __u16 tl_be16(const __u8 *p)
{
	return ((__u16)p[0] << 8) | p[1];
}

static __always_inline int tl_port_listed(__u16 port)
{
	return bpf_map_lookup_elem(&tl_cap_ports, &port) != NULL;
}

/*
 * Whether the first `n` bytes of an Ethernet frame in `p` pass the active
 * filters in `flags`. Frames the filters cannot judge (not IP, too short, a
 * port filter on a non-first IPv4 fragment or an IPv6 extension header) do
 * not pass while a filter is active.
 */
static __always_inline int tl_cap_match(const __u8 *p, __u32 n, __u32 flags)
{
	__u32 off = 12;
	__u16 proto;
	__u8 l4proto;
	__u32 l4;
	int have_ports = 1;

	if (n < 14)
		return 0;
	proto = tl_be16(p + 12);
#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (proto != ETH_P_8021Q && proto != ETH_P_8021AD)
			break;
		if (n < off + 8)
			return 0;
		off += 4;
		proto = tl_be16(p + off);
	}
	off += 2;

	if (proto == ETH_P_IP) {
		__u32 ihl;
		__u16 frag;

		if (n < off + 20)
			return 0;
		ihl = (p[off] & 0xf) * 4;
		if (ihl < 20)
			return 0;
		l4proto = p[off + 9];
		frag = tl_be16(p + off + 6) & 0x1fff;
		if (frag != 0)
			have_ports = 0;
		if (flags & TL_FILTER_HOSTS) {
			struct tl_lpm_v4 key = { .prefixlen = 32 };

			__builtin_memcpy(key.addr, p + off + 12, 4);
			if (!bpf_map_lookup_elem(&tl_cap_v4, &key)) {
				__builtin_memcpy(key.addr, p + off + 16, 4);
				if (!bpf_map_lookup_elem(&tl_cap_v4, &key))
					return 0;
			}
		}
		l4 = off + ihl;
	} else if (proto == ETH_P_IPV6) {
		if (n < off + 40)
			return 0;
		l4proto = p[off + 6];
		if (flags & TL_FILTER_HOSTS) {
			struct tl_lpm_v6 key = { .prefixlen = 128 };

			__builtin_memcpy(key.addr, p + off + 8, 16);
			if (!bpf_map_lookup_elem(&tl_cap_v6, &key)) {
				__builtin_memcpy(key.addr, p + off + 24, 16);
				if (!bpf_map_lookup_elem(&tl_cap_v6, &key))
					return 0;
			}
		}
		l4 = off + 40;
	} else {
		return 0;
	}

	if (!(flags & TL_FILTER_PORTS))
		return 1;
	if (!have_ports || (l4proto != IPPROTO_TCP && l4proto != IPPROTO_UDP))
		return 0;
	if (l4 > TL_PARSE_BYTES - 4 || n < l4 + 4)
		return 0;
	return tl_port_listed(tl_be16(p + l4)) || tl_port_listed(tl_be16(p + l4 + 2));
}

/* What the context of a capture program is (a compile-time constant). */
#define TL_CTX_XDP 0
#define TL_CTX_SKB 1

/* Loads `len` bytes of the packet from offset 0 into `dst`; 0 on success. The
 * branch not taken disappears at compile time, so neither program calls the
 * other's helper. */
static __always_inline long tl_cap_load(void *ctx, int kind, __u32 len, void *dst)
{
	if (kind == TL_CTX_XDP)
		return bpf_xdp_load_bytes(ctx, 0, dst, len);
	return bpf_skb_load_bytes(ctx, 0, dst, len);
}

/*
 * Captures one packet of `pkt_len` bytes seen at `ts` on `ifindex` in
 * `direction`, from a context of `kind` (TL_CTX_*).
 */
static __always_inline void tl_cap_packet(void *ctx, int kind, __u32 direction,
					  __u32 ifindex, __u32 pkt_len, __u64 ts)
{
	struct tl_capture_scratch *s;
	struct tl_capture_filter *filter;
	__u32 zero = 0;
	__u32 flags = 0;
	__u32 loaded = 0;
	__u32 cap;

	tl_cap_count(direction, TL_CNT_SEEN);
	if (pkt_len == 0)
		return;
	s = tl_cap_scratch_of(direction);
	if (!s)
		return;
	filter = bpf_map_lookup_elem(&tl_cap_filter, &zero);
	if (filter)
		flags = filter->flags;

	if (flags) {
		__u32 n = pkt_len < TL_PARSE_BYTES ? pkt_len : TL_PARSE_BYTES;

		barrier_var(n);
		if (n == 0 || n > TL_PARSE_BYTES)
			return;
		if (tl_cap_load(ctx, kind, n, s->data) != 0) {
			tl_cap_count(direction, TL_CNT_COPY_FAILED);
			return;
		}
		if (!tl_cap_match(s->data, n, flags))
			return;
		loaded = n;
	}
	tl_cap_count(direction, TL_CNT_MATCHED);

	cap = pkt_len;
	if (cap > tl_snaplen)
		cap = tl_snaplen;
	if (cap > TL_MAX_SNAPLEN)
		cap = TL_MAX_SNAPLEN;
	barrier_var(cap);
	if (cap == 0 || cap > TL_MAX_SNAPLEN)
		return;
	if (cap > loaded && tl_cap_load(ctx, kind, cap, s->data) != 0) {
		tl_cap_count(direction, TL_CNT_COPY_FAILED);
		return;
	}

	s->hdr.magic = TL_CAPTURE_MAGIC;
	s->hdr.version = TL_CAPTURE_VERSION;
	s->hdr.direction = direction;
	s->hdr.flags = cap < pkt_len ? TL_HDR_TRUNCATED : 0;
	s->hdr.ts_ns = ts;
	s->hdr.ifindex = ifindex;
	s->hdr.orig_len = pkt_len;
	s->hdr.cap_len = cap;
	s->hdr._pad = 0;
	if (cap < pkt_len)
		tl_cap_count(direction, TL_CNT_TRUNCATED);
	if (bpf_ringbuf_output(&tl_cap_ring, s, TL_CAPTURE_HDR_SIZE + cap, BPF_RB_NO_WAKEUP) != 0)
		tl_cap_count(direction, TL_CNT_RING_FULL);
	else
		tl_cap_count(direction, TL_CNT_CAPTURED);
}

#endif /* TAPLINE_CAPTURE_BPF_H */
