/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * tapline_tls_kernel.bpf.h: the few kernel structures the TLS programs read
 * (src/tls.bpf.c), declared with only the fields used.
 *
 * They are marked preserve_access_index: clang records each field access as
 * a CO-RE relocation, and the loader (aya) rewrites the offsets against the
 * running kernel's BTF (/sys/kernel/btf/vmlinux) by field name, looking
 * through anonymous structs and unions. So the layouts here need not match
 * any kernel's; the names and kinds of fields must. This stands in for a
 * generated vmlinux.h (2.8 MB) and keeps the build free of the build
 * machine's kernel.
 */
#ifndef TAPLINE_TLS_KERNEL_BPF_H
#define TAPLINE_TLS_KERNEL_BPF_H

#include <linux/types.h>

#define TL_CORE __attribute__((preserve_access_index))

struct super_block {
	__u32 s_dev; /* dev_t */
} TL_CORE;

struct inode {
	__u16 i_mode; /* umode_t */
	unsigned long i_ino;
	struct super_block *i_sb;
} TL_CORE;

struct file {
	struct inode *f_inode;
	void *private_data;
} TL_CORE;

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} TL_CORE;

struct files_struct {
	struct fdtable *fdt;
} TL_CORE;

struct mm_struct {
	struct file *exe_file;
} TL_CORE;

struct task_struct {
	struct files_struct *files;
	struct mm_struct *mm;
} TL_CORE;

struct in6_addr {
	__u8 s6_addr[16];
};

struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} TL_CORE;

struct sock {
	struct sock_common __sk_common;
} TL_CORE;

struct socket {
	struct sock *sk;
} TL_CORE;

/* S_IFMT and S_IFSOCK of <sys/stat.h>. */
#define TL_S_IFMT 0170000
#define TL_S_IFSOCK 0140000

#endif /* TAPLINE_TLS_KERNEL_BPF_H */
