// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tapline's TLS plaintext capture: uprobes on TLS libraries' read and write
 * calls, and syscall tracepoints that tie each library session to its TCP
 * connection.
 *
 * The path of a call (SSL_write, SSL_read, SSL_write_ex, SSL_read_ex, or
 * the internal functions OpenSSL 3's pairs share when userspace probes those
 * instead, gnutls_record_send, gnutls_record_recv):
 *   1. tl_tls_enter (uprobe at the function) saves the session pointer, the
 *      buffer and, for the _ex calls, the length pointer under the thread id
 *      in tl_tls_active; the attach cookie says which library, which way the
 *      bytes go and whether the length comes back through a pointer;
 *   2. while the thread is inside the call, tl_tls_sys_enter (tracepoints on
 *      the read/write family of system calls) sees the socket's fd, walks
 *      task->files->fdt->fd[fd]->private_data->sk and remembers the session's
 *      4-tuple in tl_tls_conns, so later calls served from the library's
 *      buffer (no system call) still know it;
 *   3. tl_tls_exit (uretprobe) reads the length the call returned and copies
 *      the plaintext into the ring, TL_TLS_CHUNK bytes per record, with a
 *      bounded bpf_loop; what cannot be copied is counted and reported in the
 *      records' `lost` field.
 * tl_tls_close (uprobe at SSL_free/gnutls_deinit) ends a session with a CLOSE
 * record. accept()/connect() exits record which side each socket is
 * (tl_tls_roles). tl_tls_exec reports execve() so userspace can attach to
 * the libraries of new processes.
 *
 * Records go out with bpf_ringbuf_output from a per-CPU scratch buffer,
 * without waking userspace, which drains the ring every few milliseconds.
 */
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "tapline_tls.h"
#include "tapline_tls_kernel.bpf.h"

#define TL_EINPROGRESS 115

/* Filters (TL_TLS_FILTER_*), set by the loader. */
const volatile __u32 tl_tls_filter = 0;
/* Nonzero to emit EXEC records, set by the loader. */
const volatile __u32 tl_tls_exec_events = 0;

/* The records, for userspace to read memory-mapped. The loader sets the size. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24);
} tl_tls_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TL_TLS_SCRATCH_LEVELS);
	__type(key, __u32);
	__type(value, struct tl_tls_scratch);
} tl_tls_scratch SEC(".maps");

/* Scratch buffers in use on this CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} tl_tls_nest SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TL_TLS_CNT_ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
} tl_tls_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TL_TLS_MAX_PIDS);
	__type(key, __u32);
	__type(value, __u8);
} tl_tls_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TL_TLS_MAX_EXES);
	__type(key, struct tl_tls_exe);
	__type(value, __u8);
} tl_tls_exes SEC(".maps");

/* A data call in progress on a thread. */
struct tl_tls_call {
	__u64 session;
	__u64 buf;
	__u64 len_ptr; /* _ex calls: size_t *written / *readbytes */
	__u64 asked;   /* the length argument: no call moves more */
	__u64 ts_ns;   /* when the call started */
	__u32 cookie;  /* the attach cookie (TL_TLS_COOKIE_*) */
	__s32 fd;      /* the socket seen under the call, -1 when none yet */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TL_TLS_MAX_THREADS);
	__type(key, __u64);
	__type(value, struct tl_tls_call);
} tl_tls_active SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TL_TLS_MAX_CONNS);
	__type(key, struct tl_tls_conn_key);
	__type(value, struct tl_tls_conn);
} tl_tls_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TL_TLS_MAX_ROLES);
	__type(key, struct tl_tls_tuple);
	__type(value, __u8);
} tl_tls_roles SEC(".maps");

/* connect() calls in flight: thread id -> fd. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TL_TLS_MAX_THREADS);
	__type(key, __u64);
	__type(value, __s32);
} tl_tls_connecting SEC(".maps");

/* The context of the syscall tracepoints (see events/syscalls/.../format). */
struct tl_sys_enter_ctx {
	__u64 common;
	__s64 nr;
	__u64 args[6];
};

struct tl_sys_exit_ctx {
	__u64 common;
	__s64 nr;
	__s64 ret;
};

/* The context of sched/sched_process_exec. */
struct tl_exec_ctx {
	__u64 common;
	__u32 filename_loc; /* __data_loc: offset in the low 16 bits */
	__s32 pid;
	__s32 old_pid;
};

/* An EXEC record as reserved in the ring. */
struct tl_tls_exec_rec {
	struct tl_tls_hdr hdr;
	char name[TL_TLS_EXEC_NAME];
};

static __always_inline void tl_count(__u32 slot, __u64 n)
{
	__u64 *counter = bpf_map_lookup_elem(&tl_tls_counters, &slot);

	if (counter)
		__sync_fetch_and_add(counter, n);
}

/* Whether the calls of the current process are to be captured. */
static __always_inline int tl_wanted(__u32 pid)
{
	__u32 filter = tl_tls_filter;

	if (filter == 0)
		return 1;
	if ((filter & TL_TLS_FILTER_PIDS) && bpf_map_lookup_elem(&tl_tls_pids, &pid))
		return 1;
	if (filter & TL_TLS_FILTER_EXES) {
		struct task_struct *task = (void *)bpf_get_current_task();
		struct inode *inode = BPF_CORE_READ(task, mm, exe_file, f_inode);
		struct tl_tls_exe exe = {};

		if (!inode)
			return 0;
		exe.ino = BPF_CORE_READ(inode, i_ino);
		exe.dev = BPF_CORE_READ(inode, i_sb, s_dev);
		if (bpf_map_lookup_elem(&tl_tls_exes, &exe))
			return 1;
	}
	return 0;
}

/* A 64-bit id of (process, session pointer): splitmix64 of their mix. */
static __always_inline __u64 tl_conn_id(__u32 pid, __u64 session)
{
	__u64 h = session ^ ((__u64)pid * 0x9e3779b97f4a7c15ULL);

	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

/* Fills `t` from a socket: family, addresses and ports. */
static __always_inline void tl_sock_tuple(struct sock *sk, struct tl_tls_tuple *t)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	t->family = family;
	if (family == TL_TLS_AF_INET) {
		__u32 local = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 remote = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		t->local_addr[10] = 0xff;
		t->local_addr[11] = 0xff;
		__builtin_memcpy(&t->local_addr[12], &local, 4);
		t->remote_addr[10] = 0xff;
		t->remote_addr[11] = 0xff;
		__builtin_memcpy(&t->remote_addr[12], &remote, 4);
	} else if (family == TL_TLS_AF_INET6) {
		BPF_CORE_READ_INTO(&t->local_addr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&t->remote_addr, sk, __sk_common.skc_v6_daddr);
	} else {
		return;
	}
	t->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	t->remote_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
}

/* Fills `t` from the current task's file descriptor `fd`; nonzero when it
 * is not a socket. */
static __always_inline int tl_fd_tuple(__s64 fd, struct tl_tls_tuple *t)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *file = NULL;
	struct socket *socket;
	struct sock *sk;
	__u16 mode;

	if (!fdt || fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds))
		return -1;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return -1;
	mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & TL_S_IFMT) != TL_S_IFSOCK)
		return -1;
	socket = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(socket, sk);
	if (!sk)
		return -1;
	tl_sock_tuple(sk, t);
	return 0;
}

/* Fills every field of a record header but the data ones. */
static __always_inline void tl_fill_hdr(struct tl_tls_hdr *hdr, __u8 kind, __u64 id, __u64 ts)
{
	hdr->magic = TL_TLS_MAGIC;
	hdr->version = TL_TLS_VERSION;
	hdr->kind = kind;
	hdr->direction = 0;
	hdr->ts_ns = ts;
	hdr->pid = id >> 32;
	hdr->tid = (__u32)id;
	hdr->conn_id = 0;
	hdr->cgroup_id = bpf_get_current_cgroup_id();
	__builtin_memset(&hdr->tuple, 0, sizeof(hdr->tuple));
	hdr->library = 0;
	hdr->role = 0;
	hdr->_pad = 0;
	hdr->lost = 0;
	hdr->offset = 0;
	hdr->data_len = 0;
	hdr->call_len = 0;
	hdr->_pad2 = 0;
	bpf_get_current_comm(hdr->comm, sizeof(hdr->comm));
}

SEC("uprobe")
int tl_tls_enter(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tl_tls_call call = {};

	if (!tl_wanted(id >> 32))
		return 0;
	call.cookie = bpf_get_attach_cookie(ctx);
	call.session = PT_REGS_PARM1(ctx);
	call.buf = PT_REGS_PARM2(ctx);
	call.asked = PT_REGS_PARM3(ctx);
	/* SSL_read/SSL_write take an int: the register's upper half is not theirs. */
	if ((call.cookie & 0xff) == TL_TLS_LIB_OPENSSL && !(call.cookie & TL_TLS_COOKIE_EX))
		call.asked = (__u32)call.asked;
	call.ts_ns = bpf_ktime_get_ns();
	call.fd = -1;
	if (call.cookie & TL_TLS_COOKIE_EX)
		call.len_ptr = PT_REGS_PARM4(ctx);
	bpf_map_update_elem(&tl_tls_active, &id, &call, BPF_ANY);
	return 0;
}

/* Whether two 4-tuples are the same (compared as 16-bit words: the struct's alignment). */
static __always_inline int tl_tuple_equal(const struct tl_tls_tuple *a,
					  const struct tl_tls_tuple *b)
{
	const __u16 *x = (const __u16 *)a;
	const __u16 *y = (const __u16 *)b;

#pragma unroll
	for (int i = 0; i < (int)(sizeof(*a) / sizeof(__u16)); i++)
		if (x[i] != y[i])
			return 0;
	return 1;
}

SEC("tracepoint")
int tl_tls_sys_enter(struct tl_sys_enter_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tl_tls_call *call = bpf_map_lookup_elem(&tl_tls_active, &id);
	struct tl_tls_conn_key key = {};
	struct tl_tls_conn conn = {};
	struct tl_tls_conn *known;
	__s32 fd;
	__u8 *role;

	if (!call)
		return 0;
	fd = (__s32)ctx->args[0];
	if (fd < 0 || call->fd == fd)
		return 0;
	call->fd = fd;
	key.pid = id >> 32;
	key.session = call->session;
	known = bpf_map_lookup_elem(&tl_tls_conns, &key);
	if (tl_fd_tuple(fd, &conn.tuple))
		return 0;
	/* The same fd number is not the same socket: a client that reconnects with the same
	 * session (wrk: SSL_clear, no SSL_free) gets the lowest free fd again. Resolve every
	 * call's socket and write only when the 4-tuple changed. */
	if (known && known->fd == fd && tl_tuple_equal(&known->tuple, &conn.tuple))
		return 0;
	conn.fd = fd;
	conn.library = call->cookie & 0xff;
	role = bpf_map_lookup_elem(&tl_tls_roles, &conn.tuple);
	conn.role = role ? *role : TL_TLS_ROLE_UNKNOWN;
	bpf_map_update_elem(&tl_tls_conns, &key, &conn, BPF_ANY);
	return 0;
}

/* Adds `n` lost bytes to a header's `lost`, saturating. */
static __always_inline void tl_add_lost(struct tl_tls_hdr *hdr, __u64 n)
{
	__u64 lost = hdr->lost + n;

	hdr->lost = lost > 0xffffffffULL ? 0xffffffffU : (__u32)lost;
}

/* State of the chunk loop of one call. */
struct tl_chunk_ctx {
	__u64 buf;
	__u64 len;  /* the call's bytes */
	__u32 level;
	__u32 _pad;
};

/*
 * One iteration copies chunk `index`. Its offset comes from the index, which
 * the verifier knows nothing of, rather than from a running total in the
 * context: a total would be a different constant on each iteration, and the
 * verifier, which checks bpf_loop callbacks until their states converge,
 * would give up ("the sequence of 8193 jumps is too complex"). For the same
 * reason the bytes lost since the last record add up in the scratch header's
 * `lost` field (map memory, which the verifier does not follow), not here.
 */

static long tl_chunk(__u64 index, void *arg)
{
	struct tl_chunk_ctx *c = arg;
	__u32 level = c->level;
	struct tl_tls_scratch *s = bpf_map_lookup_elem(&tl_tls_scratch, &level);
	__u64 off = index * TL_TLS_CHUNK;
	__u64 n;

	if (!s || off >= c->len)
		return 1;
	n = c->len - off;
	if (n > TL_TLS_CHUNK)
		n = TL_TLS_CHUNK;
	barrier_var(n);
	if (n > TL_TLS_CHUNK)
		return 1;
	if (bpf_probe_read_user(s->data, n, (const void *)(c->buf + off))) {
		tl_add_lost(&s->hdr, n);
		tl_count(TL_TLS_CNT_READ_FAULT, 1);
		tl_count(TL_TLS_CNT_LOST_BYTES, n);
		return 0;
	}
	s->hdr.offset = off;
	s->hdr.data_len = n;
	if (bpf_ringbuf_output(&tl_tls_ring, s, TL_TLS_HDR_SIZE + n, BPF_RB_NO_WAKEUP)) {
		tl_add_lost(&s->hdr, n);
		tl_count(TL_TLS_CNT_RING_FULL, 1);
		tl_count(TL_TLS_CNT_LOST_BYTES, n);
		return 0;
	}
	s->hdr.lost = 0;
	tl_count(TL_TLS_CNT_CHUNKS, 1);
	tl_count(TL_TLS_CNT_BYTES, n);
	return 0;
}

/* Copies `len` bytes of plaintext of `call` into the ring. */
static __always_inline void tl_emit_data(struct tl_tls_call *call, __u64 id, __u64 len)
{
	__u32 pid = id >> 32, zero = 0, level;
	__u8 library = call->cookie & 0xff;
	__u8 direction = (call->cookie >> TL_TLS_COOKIE_DIR_SHIFT) & 0xff;
	struct tl_tls_conn_key key = { .pid = pid, .session = call->session };
	struct tl_tls_conn *conn = bpf_map_lookup_elem(&tl_tls_conns, &key);
	struct tl_chunk_ctx c = {};
	struct tl_tls_scratch *s;
	__u32 *nest;
	__u64 chunks;

	tl_count(TL_TLS_CNT_CALLS, 1);
	if (!conn) {
		struct tl_tls_conn fresh = {};

		fresh.fd = -1;
		fresh.library = library;
		bpf_map_update_elem(&tl_tls_conns, &key, &fresh, BPF_NOEXIST);
	}
	nest = bpf_map_lookup_elem(&tl_tls_nest, &zero);
	if (!nest)
		return;
	level = __sync_fetch_and_add(nest, 1);
	if (level >= TL_TLS_SCRATCH_LEVELS) {
		tl_count(TL_TLS_CNT_NESTED, 1);
		tl_count(TL_TLS_CNT_LOST_BYTES, len);
		goto out;
	}
	s = bpf_map_lookup_elem(&tl_tls_scratch, &level);
	if (!s)
		goto out;
	tl_fill_hdr(&s->hdr, TL_TLS_KIND_DATA, id,
		    direction == TL_TLS_DIR_SENT ? call->ts_ns : bpf_ktime_get_ns());
	s->hdr.direction = direction;
	s->hdr.conn_id = tl_conn_id(pid, call->session);
	s->hdr.library = library;
	s->hdr.call_len = len > 0xffffffffULL ? 0xffffffffU : (__u32)len;
	if (conn) {
		s->hdr.tuple = conn->tuple;
		s->hdr.role = conn->role;
	}
	if (s->hdr.tuple.family == 0)
		tl_count(TL_TLS_CNT_NO_TUPLE, 1);

	if (len > (__u64)TL_TLS_MAX_CHUNKS * TL_TLS_CHUNK)
		chunks = TL_TLS_MAX_CHUNKS;
	else
		chunks = (len + TL_TLS_CHUNK - 1) / TL_TLS_CHUNK;
	c.buf = call->buf;
	c.len = len;
	c.level = level;
	bpf_loop(chunks, tl_chunk, &c, 0);
	if (len > chunks * TL_TLS_CHUNK) {
		__u64 rest = len - chunks * TL_TLS_CHUNK;

		tl_count(TL_TLS_CNT_TOO_LONG, rest);
		tl_count(TL_TLS_CNT_LOST_BYTES, rest);
		tl_add_lost(&s->hdr, rest);
	}
	if (s->hdr.lost) {
		s->hdr.offset = s->hdr.call_len;
		s->hdr.data_len = 0;
		if (bpf_ringbuf_output(&tl_tls_ring, s, TL_TLS_HDR_SIZE, BPF_RB_NO_WAKEUP))
			tl_count(TL_TLS_CNT_EVENTS_LOST, 1);
	}
out:
	__sync_fetch_and_sub(nest, 1);
}

SEC("uretprobe")
int tl_tls_exit(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tl_tls_call *saved = bpf_map_lookup_elem(&tl_tls_active, &id);
	struct tl_tls_call call;
	__u64 len;

	if (!saved) {
		if (tl_tls_filter == 0)
			tl_count(TL_TLS_CNT_NO_ENTRY, 1);
		return 0;
	}
	call = *saved;
	bpf_map_delete_elem(&tl_tls_active, &id);
	if (call.cookie & TL_TLS_COOKIE_EX) {
		__u64 done = 0;

		/* SSL_*_ex return 1 on success, the internal functions they share
		 * any positive value. */
		if ((int)PT_REGS_RC(ctx) <= 0 || !call.len_ptr)
			return 0;
		if (bpf_probe_read_user(&done, sizeof(done), (const void *)call.len_ptr))
			return 0;
		len = done;
	} else if ((call.cookie & 0xff) == TL_TLS_LIB_OPENSSL) {
		int ret = (int)PT_REGS_RC(ctx);

		if (ret <= 0)
			return 0;
		len = ret;
	} else {
		long ret = (long)PT_REGS_RC(ctx);

		if (ret <= 0)
			return 0;
		len = ret;
	}
	if (len > call.asked)
		len = call.asked;
	if (len == 0)
		return 0;
	tl_emit_data(&call, id, len);
	return 0;
}

SEC("uprobe")
int tl_tls_close(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tl_tls_conn_key key = { .pid = id >> 32, .session = PT_REGS_PARM1(ctx) };
	struct tl_tls_conn *conn = bpf_map_lookup_elem(&tl_tls_conns, &key);
	struct tl_tls_hdr *hdr;

	if (!conn)
		return 0;
	hdr = bpf_ringbuf_reserve(&tl_tls_ring, sizeof(*hdr), 0);
	if (hdr) {
		tl_fill_hdr(hdr, TL_TLS_KIND_CLOSE, id, bpf_ktime_get_ns());
		hdr->conn_id = tl_conn_id(key.pid, key.session);
		hdr->tuple = conn->tuple;
		hdr->library = conn->library;
		hdr->role = conn->role;
		bpf_ringbuf_submit(hdr, BPF_RB_NO_WAKEUP);
		tl_count(TL_TLS_CNT_CLOSES, 1);
	} else {
		tl_count(TL_TLS_CNT_EVENTS_LOST, 1);
	}
	bpf_map_delete_elem(&tl_tls_conns, &key);
	return 0;
}

/* Remembers the side of the socket `fd` of the current task. */
static __always_inline void tl_learn_role(__s64 fd, __u8 role)
{
	struct tl_tls_tuple t = {};

	if (tl_fd_tuple(fd, &t))
		return;
	if (t.family != TL_TLS_AF_INET && t.family != TL_TLS_AF_INET6)
		return;
	bpf_map_update_elem(&tl_tls_roles, &t, &role, BPF_ANY);
}

SEC("tracepoint")
int tl_tls_accept_exit(struct tl_sys_exit_ctx *ctx)
{
	if (ctx->ret < 0 || !tl_wanted(bpf_get_current_pid_tgid() >> 32))
		return 0;
	tl_learn_role(ctx->ret, TL_TLS_ROLE_SERVER);
	return 0;
}

SEC("tracepoint")
int tl_tls_connect_enter(struct tl_sys_enter_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__s32 fd = (__s32)ctx->args[0];

	if (!tl_wanted(id >> 32))
		return 0;
	bpf_map_update_elem(&tl_tls_connecting, &id, &fd, BPF_ANY);
	return 0;
}

SEC("tracepoint")
int tl_tls_connect_exit(struct tl_sys_exit_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__s32 *fd = bpf_map_lookup_elem(&tl_tls_connecting, &id);
	__s32 saved;

	if (!fd)
		return 0;
	saved = *fd;
	bpf_map_delete_elem(&tl_tls_connecting, &id);
	if (ctx->ret == 0 || ctx->ret == -TL_EINPROGRESS)
		tl_learn_role(saved, TL_TLS_ROLE_CLIENT);
	return 0;
}

SEC("tracepoint")
int tl_tls_exec(struct tl_exec_ctx *ctx)
{
	struct tl_tls_exec_rec *rec;
	__u32 offset = ctx->filename_loc & 0xffff;
	long n;

	if (!tl_tls_exec_events)
		return 0;
	rec = bpf_ringbuf_reserve(&tl_tls_ring, sizeof(*rec), 0);
	if (!rec) {
		tl_count(TL_TLS_CNT_EVENTS_LOST, 1);
		return 0;
	}
	tl_fill_hdr(&rec->hdr, TL_TLS_KIND_EXEC, bpf_get_current_pid_tgid(), bpf_ktime_get_ns());
	n = bpf_probe_read_kernel_str(rec->name, sizeof(rec->name), (void *)ctx + offset);
	rec->hdr.data_len = n > 1 ? n - 1 : 0;
	bpf_ringbuf_submit(rec, BPF_RB_NO_WAKEUP);
	tl_count(TL_TLS_CNT_EXECS, 1);
	return 0;
}

char _license[] SEC("license") = "Dual BSD/GPL";
