// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tl_tc_egress / tl_tc_ingress: tapline's live-capture TC classifiers.
 *
 * tl_tc_egress copies every packet leaving an interface (that the filters in
 * tl_cap_filter/tl_cap_ports/tl_cap_v4/tl_cap_v6 select) into the ring buffer
 * tl_cap_ring, with a struct tl_capture_hdr in front (see tapline_abi.h and
 * tapline_capture.bpf.h). tl_tc_ingress does the same for packets arriving,
 * for interfaces where XDP cannot be attached.
 *
 * They return TC_ACT_UNSPEC, which with TCX is TCX_NEXT and with a legacy
 * clsact filter "continue": the packet goes on exactly as if no program were
 * attached, and any program after this one still runs. They never drop or
 * change a packet.
 *
 * This file builds alone into tc_capture.bpf.o (tapline_bpf::TC_CAPTURE) and
 * is also compiled together with the XDP program by xdp/build.rs, so that
 * both share one ring buffer.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "tapline_capture.bpf.h"

SEC("classifier")
int tl_tc_egress(struct __sk_buff *skb)
{
	__u64 ts = bpf_ktime_get_ns();

	tl_cap_packet(skb, TL_CTX_SKB, TL_DIR_EGRESS, skb->ifindex, skb->len, ts);
	return TC_ACT_UNSPEC;
}

SEC("classifier")
int tl_tc_ingress(struct __sk_buff *skb)
{
	__u64 ts = bpf_ktime_get_ns();

	tl_cap_packet(skb, TL_CTX_SKB, TL_DIR_INGRESS, skb->ifindex, skb->len, ts);
	return TC_ACT_UNSPEC;
}
