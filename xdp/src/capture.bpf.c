// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tl_xdp_capture: tapline's live-capture XDP program for the ingress side.
 *
 * It copies every packet arriving on the interface (that the filters select)
 * into the ring buffer tl_cap_ring with a struct tl_capture_hdr in front; the
 * code it shares with the TC egress program is in tapline_capture.bpf.h.
 * Section "xdp.frags" declares that it handles multi-buffer packets: native
 * XDP then works on a veth with a large MTU, and GSO super-packets of up to
 * 64 KiB are read whole with bpf_xdp_load_bytes().
 *
 * It always returns XDP_PASS: the packet goes on to the stack unchanged.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "tapline_capture.bpf.h"

SEC("xdp.frags")
int tl_xdp_capture(struct xdp_md *ctx)
{
	__u64 ts = bpf_ktime_get_ns();
	__u32 len = bpf_xdp_get_buff_len(ctx);

	tl_cap_packet(ctx, TL_CTX_XDP, TL_DIR_INGRESS, ctx->ingress_ifindex, len, ts);
	return XDP_PASS;
}
