// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tl_chaos: a TC classifier that loses and duplicates packets on purpose.
 *
 * This kernel has no netem, so the end-to-end tests attach this program to a
 * veth to make the kernels' TCP stacks really retransmit. For every packet it
 * draws one 32-bit random number r:
 *   r <  tl_drop_threshold                           -> drop (TC_ACT_SHOT)
 *   r <  tl_drop_threshold + tl_dup_threshold        -> send a clone the same
 *                                                       way (bpf_clone_redirect
 *                                                       to the same ifindex),
 *                                                       then pass the original
 *   otherwise                                        -> pass (TC_ACT_OK)
 * Thresholds are fractions of 2^32 set by the loader before load; their sum
 * must not exceed 2^32 - 1 (the loader checks).
 *
 * Where to attach: a drop at egress is reported to the sending socket
 * (NET_XMIT_DROP), so TCP quietly sends the segment again as if it had never
 * left; a drop at ingress is a real loss the sender only learns of from
 * missing ACKs, and the packet is still seen by a capture on that interface
 * (packet taps run before TC ingress). Set tl_ingress to nonzero when
 * attaching to ingress, so that clones are re-injected on the receive path.
 *
 * The clone passes through this program again; it carries TL_CLONE_MARK in
 * skb->mark so that it is passed untouched (and the mark cleared) instead of
 * being judged again.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

/* Counter slots of tl_chaos_counters; mirrored in the Rust crate. */
#define TL_CHAOS_SEEN 0
#define TL_CHAOS_DROPPED 1
#define TL_CHAOS_DUPLICATED 2
#define TL_CHAOS_DUP_FAILED 3
#define TL_CHAOS_COUNTERS 4

/* Mark carried by our own clones (ASCII "tlcl"). */
#define TL_CLONE_MARK 0x746c636cU

/* Share of packets to drop, out of 2^32. Set at load. */
const volatile __u32 tl_drop_threshold = 0;
/* Share of packets to duplicate, out of 2^32. Set at load. */
const volatile __u32 tl_dup_threshold = 0;
/* Nonzero when attached to ingress (clones go to the receive path). Set at load. */
const volatile __u32 tl_ingress = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TL_CHAOS_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} tl_chaos_counters SEC(".maps");

static __always_inline void tl_count(__u32 slot)
{
	__u64 *value = bpf_map_lookup_elem(&tl_chaos_counters, &slot);

	if (value)
		*value += 1;
}

SEC("classifier")
int tl_chaos(struct __sk_buff *skb)
{
	__u32 r;

	if (skb->mark == TL_CLONE_MARK) {
		skb->mark = 0;
		return TC_ACT_OK;
	}
	tl_count(TL_CHAOS_SEEN);

	r = bpf_get_prandom_u32();
	if (r < tl_drop_threshold) {
		tl_count(TL_CHAOS_DROPPED);
		return TC_ACT_SHOT;
	}
	if (r - tl_drop_threshold < tl_dup_threshold) {
		__u32 mark = skb->mark;

		skb->mark = TL_CLONE_MARK;
		if (bpf_clone_redirect(skb, skb->ifindex, tl_ingress ? BPF_F_INGRESS : 0) == 0)
			tl_count(TL_CHAOS_DUPLICATED);
		else
			tl_count(TL_CHAOS_DUP_FAILED);
		skb->mark = mark;
	}
	return TC_ACT_OK;
}

char _license[] SEC("license") = "Dual BSD/GPL";
