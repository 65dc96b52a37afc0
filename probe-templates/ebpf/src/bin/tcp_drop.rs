//! Template `tcp_drop`: TCP segments the kernel dropped, from the
//! `kfree_skb(skb, location, reason[, rx_sk])` raw tracepoint, with the
//! drop reason (`enum skb_drop_reason`, named by the runtime from BTF) and
//! the dropping function's address (named from kallsyms).
//!
//! Non-TCP skbs are skipped after a look at the IP header. The socket is
//! `skb->sk`, else the tracepoint's `rx_sk` (newer kernels); without one,
//! the segment is taken as inbound and the addresses come from its headers.
#![no_std]
// `asm!` for BPF: `common::ctx_load`.
#![feature(asm_experimental_arch)]
#![no_main]

#[path = "../common.rs"]
mod common;

use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};
use common::*;
use tcpq_abi::{off, slot::drop as s};

#[raw_tracepoint(tracepoint = "kfree_skb")]
pub fn tcpq_drop_rtp(ctx: RawTracePointContext) -> i32 {
    let _ = run(&ctx);
    0
}

#[inline(always)]
fn run(ctx: &RawTracePointContext) -> Option<()> {
    let cfg = config()?;
    let skb = tp_field(ctx, off::TP_KFREE_SKB_SKB);
    if skb == 0 {
        return None;
    }
    let ev = begin()?;
    // Headers first: they say whether this is TCP at all.
    if !fill_from_headers(ev, skb, true) {
        return None;
    }
    let mut sk = read_ptr(skb, loc(off::SKB_SK).off);
    if !is_full_tcp_sock(sk) {
        sk = tp_field(ctx, off::TP_KFREE_SKB_RX_SK);
    }
    let has_sock = is_full_tcp_sock(sk);
    ev.vals[s::INBOUND as usize] = !has_sock as u64;
    ev.vals[s::REASON as usize] = tp_field(ctx, off::TP_KFREE_SKB_REASON);
    ev.vals[s::LOCATION as usize] = tp_field(ctx, off::TP_KFREE_SKB_LOCATION);
    if rejected_early(cfg, ev) {
        return None;
    }
    if has_sock {
        fill_sock(ev, sk);
        load_fields(ev, sk, skb);
    }
    finish(ev);
    Some(())
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
