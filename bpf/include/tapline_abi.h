/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * tapline_abi.h: every structure and constant shared between tapline's eBPF
 * programs and its Rust side. One header, one truth:
 *
 *  - the C programs include it;
 *  - the Rust crate `tapline-bpf` reads the `#define`s of this very file at
 *    compile time (`bpf/src/capture.rs`, `abi_define`), so no constant is
 *    typed twice, and mirrors the structs `#[repr(C)]` with size and offset
 *    assertions that fail the build when the two drift apart.
 *
 * Rules: fixed-width fields only, explicit padding, no bool, every struct
 * size checked with _Static_assert. Every `#define` value here must be a
 * plain decimal or 0x hexadecimal number (the Rust reader accepts nothing
 * else). Bump TL_CAPTURE_VERSION on any layout change.
 */
#ifndef TAPLINE_ABI_H
#define TAPLINE_ABI_H

#include <linux/types.h>

/* ---- Capture records (ring buffer tl_cap_ring) ------------------------- */

/* Every record starts with this magic ("TLCP" read as a little-endian u32). */
#define TL_CAPTURE_MAGIC 0x50434c54
/* Layout version of struct tl_capture_hdr and of the maps below. */
#define TL_CAPTURE_VERSION 1

/* tl_capture_hdr.direction: which way the packet went on its interface. The
 * values are those of tapline's stored PacketDirection. */
#define TL_DIR_INGRESS 1
#define TL_DIR_EGRESS 2

/* tl_capture_hdr.flags: the copy was cut at the snap length. */
#define TL_HDR_TRUNCATED 0x1

/* Largest snap length: whole GSO/GRO super-packets of up to 64 KiB. */
#define TL_MAX_SNAPLEN 65536
/* Bytes loaded first to judge the filters (Ethernet, 2 VLAN tags, IPv4 with
 * options or IPv6, and the ports). */
#define TL_PARSE_BYTES 128

/* Size of struct tl_capture_hdr; the packet bytes follow it directly. */
#define TL_CAPTURE_HDR_SIZE 32

/*
 * The header in front of every captured packet in the ring buffer. The
 * record is exactly TL_CAPTURE_HDR_SIZE + cap_len bytes long.
 */
struct tl_capture_hdr {
	__u32 magic;     /* TL_CAPTURE_MAGIC */
	__u16 version;   /* TL_CAPTURE_VERSION */
	__u8 direction;  /* TL_DIR_* */
	__u8 flags;      /* TL_HDR_* */
	__u64 ts_ns;     /* bpf_ktime_get_ns(): CLOCK_MONOTONIC, nanoseconds */
	__u32 ifindex;   /* interface the packet was seen on */
	__u32 orig_len;  /* length of the whole packet (all fragments) */
	__u32 cap_len;   /* bytes that follow this header */
	__u32 _pad;      /* zero */
};

/* ---- Filters (maps filled by userspace; change without reloading) ------ */

/* tl_capture_filter.flags: which filters are active. A packet is captured
 * when every active filter matches it; with none active, every packet is. */
#define TL_FILTER_PORTS 0x1
#define TL_FILTER_HOSTS 0x2

/* Entries of the filter maps. */
#define TL_MAX_PORTS 1024
#define TL_MAX_CIDRS 1024

/* The one value of the array map tl_cap_filter. */
struct tl_capture_filter {
	__u32 flags;  /* TL_FILTER_* */
	__u32 _pad;   /* zero */
};

/* Key of the LPM trie tl_cap_v4 (an IPv4 CIDR), address in network order. */
struct tl_lpm_v4 {
	__u32 prefixlen;
	__u8 addr[4];
};

/* Key of the LPM trie tl_cap_v6 (an IPv6 CIDR), address in network order. */
struct tl_lpm_v6 {
	__u32 prefixlen;
	__u8 addr[16];
};

/* The hash map tl_cap_ports is keyed by a __u16 port in host order and holds
 * a __u8 (1). The tries hold a __u8 (1). */

/* ---- Counters (per-CPU array tl_cap_counters of __u64) ----------------- */

/* Slots within one direction's block. */
#define TL_CNT_SEEN 0        /* packets the program ran on */
#define TL_CNT_MATCHED 1     /* packets the filters selected */
#define TL_CNT_CAPTURED 2    /* records pushed into the ring */
#define TL_CNT_RING_FULL 3   /* records lost: the ring was full */
#define TL_CNT_COPY_FAILED 4 /* records lost: the bytes could not be read */
#define TL_CNT_TRUNCATED 5   /* records cut at the snap length */
/* Slots per direction; ingress uses block 0, egress block 1. */
#define TL_CNT_SLOTS 8
/* Entries of tl_cap_counters. */
#define TL_CNT_ENTRIES 16

/* ---- Scratch (array tl_cap_scratch, 2 entries per possible CPU) -------- */

/* Entry index: cpu * 2 + (direction - 1), so ingress and egress never share
 * a buffer even if one program ran inside the other on the same CPU. */
struct tl_capture_scratch {
	struct tl_capture_hdr hdr;
	__u8 data[TL_MAX_SNAPLEN];
};

_Static_assert(sizeof(struct tl_capture_hdr) == TL_CAPTURE_HDR_SIZE,
	       "tl_capture_hdr size");
_Static_assert(__builtin_offsetof(struct tl_capture_hdr, ts_ns) == 8,
	       "tl_capture_hdr.ts_ns offset");
_Static_assert(__builtin_offsetof(struct tl_capture_hdr, cap_len) == 24,
	       "tl_capture_hdr.cap_len offset");
_Static_assert(sizeof(struct tl_capture_filter) == 8, "tl_capture_filter size");
_Static_assert(sizeof(struct tl_lpm_v4) == 8, "tl_lpm_v4 size");
_Static_assert(sizeof(struct tl_lpm_v6) == 20, "tl_lpm_v6 size");
_Static_assert(sizeof(struct tl_capture_scratch) ==
		       TL_CAPTURE_HDR_SIZE + TL_MAX_SNAPLEN,
	       "tl_capture_scratch size");
_Static_assert(TL_PARSE_BYTES <= TL_MAX_SNAPLEN, "parse window");
_Static_assert(TL_CNT_ENTRIES == 2 * TL_CNT_SLOTS, "counter blocks");

#endif /* TAPLINE_ABI_H */
