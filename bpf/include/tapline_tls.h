/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * tapline_tls.h: the structures and constants shared between the TLS
 * plaintext programs (src/tls.bpf.c) and their Rust side.
 *
 *  - the C programs include it;
 *  - the Rust crate `tapline-bpf` reads the `#define`s of this very file at
 *    compile time (`bpf/src/tls.rs`, `tls_define`), so no constant is typed
 *    twice, and mirrors the structs `#[repr(C)]` with size and offset
 *    assertions that fail the build when the two drift apart.
 *
 * Rules as in tapline_abi.h: fixed-width fields only, explicit padding, no
 * bool, every struct size checked with _Static_assert, every `#define` value
 * a plain decimal or 0x hexadecimal number. Bump TL_TLS_VERSION on any
 * layout change.
 *
 * The ring buffer tl_tls_ring carries three kinds of records, each a
 * struct tl_tls_hdr followed by data_len bytes:
 *  - DATA: plaintext an SSL/gnutls call sent or received. A call's bytes are
 *    cut into chunks of at most TL_TLS_CHUNK bytes, one record each; a
 *    record's `lost` counts the bytes of the call that could not be
 *    delivered right before its own (a gap), and a call whose last bytes were
 *    lost ends with a record of data_len 0 whose `lost` is that last gap.
 *  - CLOSE: the library freed the connection (SSL_free, gnutls_deinit).
 *  - EXEC: a process called execve(); the data is its file name.
 */
#ifndef TAPLINE_TLS_H
#define TAPLINE_TLS_H

#include <linux/types.h>

/* Every record starts with this magic ("TLTS" read as a little-endian u32). */
#define TL_TLS_MAGIC 0x53544c54
/* Layout version of struct tl_tls_hdr and of the maps below. */
#define TL_TLS_VERSION 1

/* tl_tls_hdr.kind */
#define TL_TLS_KIND_DATA 1
#define TL_TLS_KIND_CLOSE 2
#define TL_TLS_KIND_EXEC 3

/* tl_tls_hdr.direction: which way the plaintext went, seen from the process
 * that made the call. */
#define TL_TLS_DIR_SENT 1
#define TL_TLS_DIR_RECEIVED 2

/* tl_tls_hdr.library: the TLS library the call went to. */
#define TL_TLS_LIB_OPENSSL 1
#define TL_TLS_LIB_GNUTLS 2

/* tl_tls_hdr.role: the process's side of the TCP connection, when the
 * programs saw the connection being made (accept or connect). */
#define TL_TLS_ROLE_UNKNOWN 0
#define TL_TLS_ROLE_CLIENT 1
#define TL_TLS_ROLE_SERVER 2

/* tl_tls_tuple.family: AF_INET or AF_INET6 (0 when unknown, other values
 * for sockets of other families, whose addresses stay zero). */
#define TL_TLS_AF_INET 2
#define TL_TLS_AF_INET6 10

/* Largest chunk of plaintext in one record. */
#define TL_TLS_CHUNK 16384
/* Most chunks copied from one call (TL_TLS_CHUNK * this = 64 MiB); bytes
 * beyond are counted as lost. */
#define TL_TLS_MAX_CHUNKS 4096
/* Largest file name carried by an EXEC record. */
#define TL_TLS_EXEC_NAME 256

/* Attach cookie of the entry probe on a data call (bpf_get_attach_cookie):
 * library in bits 0-7, direction in bits 8-15, and TL_TLS_COOKIE_EX when
 * the call reports its length through a pointer (SSL_read_ex/SSL_write_ex:
 * argument 4, size_t *). The close probe's cookie is the library alone. */
#define TL_TLS_COOKIE_DIR_SHIFT 8
#define TL_TLS_COOKIE_EX 0x10000

/* Load-time setting tl_tls_filter (const volatile __u32): which filters
 * pick the processes whose calls are captured. With none set, every
 * process's are; with some, a process that any of them picks is. */
#define TL_TLS_FILTER_PIDS 0x1
#define TL_TLS_FILTER_EXES 0x2
/* Load-time setting tl_tls_exec_events (const volatile __u32): nonzero to
 * emit EXEC records. */

/* Entries of the maps. */
#define TL_TLS_MAX_PIDS 1024
#define TL_TLS_MAX_EXES 256
#define TL_TLS_MAX_THREADS 16384
#define TL_TLS_MAX_CONNS 65536
#define TL_TLS_MAX_ROLES 65536

/* Size of struct tl_tls_hdr; the record's bytes follow it directly. */
#define TL_TLS_HDR_SIZE 120

/* A TCP connection's ends as the process sees them. IPv4 addresses are
 * written IPv4-mapped (::ffff:a.b.c.d); ports are in host order. */
struct tl_tls_tuple {
	__u8 local_addr[16];
	__u8 remote_addr[16];
	__u16 local_port;
	__u16 remote_port;
	__u16 family;    /* TL_TLS_AF_*, 0 when unknown */
	__u16 _pad;      /* zero */
};

/* The header in front of every record in tl_tls_ring. The record is
 * exactly TL_TLS_HDR_SIZE + data_len bytes long. */
struct tl_tls_hdr {
	__u32 magic;      /* TL_TLS_MAGIC */
	__u16 version;    /* TL_TLS_VERSION */
	__u8 kind;        /* TL_TLS_KIND_* */
	__u8 direction;   /* TL_TLS_DIR_* (DATA), else 0 */
	__u64 ts_ns;      /* bpf_ktime_get_ns(): CLOCK_MONOTONIC, nanoseconds;
			   * for sent data the call's start, for received data
			   * its return */
	__u32 pid;        /* thread group id (the process id) */
	__u32 tid;        /* thread id */
	__u64 conn_id;    /* a hash of (pid, the library's session pointer) */
	__u64 cgroup_id;  /* bpf_get_current_cgroup_id() */
	struct tl_tls_tuple tuple;
	__u8 library;     /* TL_TLS_LIB_* (DATA, CLOSE), else 0 */
	__u8 role;        /* TL_TLS_ROLE_* */
	__u16 _pad;       /* zero */
	__u32 lost;       /* DATA: bytes of the call lost right before these */
	__u32 offset;     /* DATA: where these bytes start within the call */
	__u32 data_len;   /* bytes that follow this header */
	__u32 call_len;   /* DATA: plaintext bytes of the whole call */
	__u32 _pad2;      /* zero */
	char comm[16];    /* bpf_get_current_comm() */
};

/* ---- Maps --------------------------------------------------------------- */

/* tl_tls_pids: hash of __u32 process id -> __u8 (1), read when
 * TL_TLS_FILTER_PIDS is set. tl_tls_exes: hash of struct tl_tls_exe ->
 * __u8 (1), the executables whose processes are captured when
 * TL_TLS_FILTER_EXES is set. */
struct tl_tls_exe {
	__u64 ino;  /* inode number */
	__u32 dev;  /* the kernel's dev_t of the file system: major << 20 | minor */
	__u32 _pad; /* zero */
};

/* Key of the LRU hash tl_tls_conns: a library session in a process. */
struct tl_tls_conn_key {
	__u32 pid;
	__u32 _pad;  /* zero */
	__u64 session;
};

/* Value of tl_tls_conns: what the programs learned about a session. */
struct tl_tls_conn {
	struct tl_tls_tuple tuple;
	__s32 fd;      /* the socket last seen under a call, -1 when none */
	__u8 role;     /* TL_TLS_ROLE_* */
	__u8 library;  /* TL_TLS_LIB_* */
	__u16 _pad;    /* zero */
};

/* The LRU hash tl_tls_roles maps a struct tl_tls_tuple seen at accept()
 * (TL_TLS_ROLE_SERVER) or connect() (TL_TLS_ROLE_CLIENT) to a __u8 role. */

/* ---- Counters (per-CPU array tl_tls_counters of __u64) ------------------ */

#define TL_TLS_CNT_CALLS 0        /* data calls that returned plaintext */
#define TL_TLS_CNT_CHUNKS 1       /* DATA records pushed into the ring */
#define TL_TLS_CNT_BYTES 2        /* plaintext bytes pushed into the ring */
#define TL_TLS_CNT_LOST_BYTES 3   /* plaintext bytes not delivered, all causes */
#define TL_TLS_CNT_RING_FULL 4    /* records lost: the ring was full */
#define TL_TLS_CNT_READ_FAULT 5   /* chunks lost: the user memory could not be read */
#define TL_TLS_CNT_TOO_LONG 6     /* bytes lost beyond TL_TLS_MAX_CHUNKS */
#define TL_TLS_CNT_NO_TUPLE 7     /* DATA records without a 4-tuple */
#define TL_TLS_CNT_NESTED 8       /* calls lost: every scratch buffer was busy */
#define TL_TLS_CNT_NO_ENTRY 9     /* returns without a saved entry */
#define TL_TLS_CNT_CLOSES 10      /* CLOSE records pushed */
#define TL_TLS_CNT_EXECS 11       /* EXEC records pushed */
#define TL_TLS_CNT_EVENTS_LOST 12 /* CLOSE/EXEC records lost: the ring was full */
/* Entries of tl_tls_counters. */
#define TL_TLS_CNT_ENTRIES 16

/* ---- Scratch (per-CPU array tl_tls_scratch) ----------------------------- */

/* Scratch buffers per CPU: a program preempted while copying keeps its
 * buffer, and a program of another task on the same CPU takes the next one
 * (tl_tls_nest counts the buffers in use). */
#define TL_TLS_SCRATCH_LEVELS 2

struct tl_tls_scratch {
	struct tl_tls_hdr hdr;
	__u8 data[TL_TLS_CHUNK];
};

_Static_assert(sizeof(struct tl_tls_tuple) == 40, "tl_tls_tuple size");
_Static_assert(sizeof(struct tl_tls_hdr) == TL_TLS_HDR_SIZE, "tl_tls_hdr size");
_Static_assert(__builtin_offsetof(struct tl_tls_hdr, ts_ns) == 8, "ts_ns offset");
_Static_assert(__builtin_offsetof(struct tl_tls_hdr, conn_id) == 24, "conn_id offset");
_Static_assert(__builtin_offsetof(struct tl_tls_hdr, tuple) == 40, "tuple offset");
_Static_assert(__builtin_offsetof(struct tl_tls_hdr, library) == 80, "library offset");
_Static_assert(__builtin_offsetof(struct tl_tls_hdr, lost) == 84, "lost offset");
_Static_assert(__builtin_offsetof(struct tl_tls_hdr, data_len) == 92, "data_len offset");
_Static_assert(__builtin_offsetof(struct tl_tls_hdr, comm) == 104, "comm offset");
_Static_assert(sizeof(struct tl_tls_exe) == 16, "tl_tls_exe size");
_Static_assert(sizeof(struct tl_tls_conn_key) == 16, "tl_tls_conn_key size");
_Static_assert(sizeof(struct tl_tls_conn) == 48, "tl_tls_conn size");
_Static_assert(sizeof(struct tl_tls_scratch) == TL_TLS_HDR_SIZE + TL_TLS_CHUNK,
	       "tl_tls_scratch size");
_Static_assert(TL_TLS_CNT_EVENTS_LOST < TL_TLS_CNT_ENTRIES, "counter slots");

#endif /* TAPLINE_TLS_H */
