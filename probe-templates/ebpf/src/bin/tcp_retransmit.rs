//! Template `tcp_retransmit`: the `tcp_retransmit_skb(sk, skb[, err])` raw
//! tracepoint. One
//! retransmitted skb can carry several segments; `segs` is its
//! `tcp_skb_pcount()`, read from `TCP_SKB_CB(skb)->tcp_gso_segs`, so that the
//! sum of `segs` matches the kernel's `TcpRetransSegs`.
#![no_std]
// `asm!` for BPF: `common::ctx_load`.
#![feature(asm_experimental_arch)]
#![no_main]

#[path = "../common.rs"]
mod common;

use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};
use common::*;
use tcpq_abi::{off, slot::retransmit as s};

#[raw_tracepoint(tracepoint = "tcp_retransmit_skb")]
pub fn tcpq_retrans_tp(ctx: RawTracePointContext) -> i32 {
    let _ = run(&ctx);
    0
}

#[inline(always)]
fn run(ctx: &RawTracePointContext) -> Option<()> {
    let cfg = config()?;
    let sk = tp_field(ctx, off::TP_RETRANS_SK);
    let skb = tp_field(ctx, off::TP_RETRANS_SKB);
    if sk == 0 || skb == 0 {
        return None;
    }
    // Since 6.x the tracepoint also fires for attempts that failed (err
    // -EBUSY: the original is still queued in the host). Nothing went on the
    // wire and TcpRetransSegs did not count them, so neither do we. Kernels
    // without the field leave the offset unresolved and read 0.
    if tp_field(ctx, off::TP_RETRANS_ERR) != 0 {
        return None;
    }
    let ev = begin_own()?;
    let cb = loc(off::SKB_CB).off;
    let segs = loc(off::TCB_GSO_SEGS);
    ev.vals[s::SEGS as usize] = read_loc(skb + cb as u64, &segs);
    if !passes_early(cfg, ev) {
        return None;
    }
    fill_sock(ev, sk);
    load_fields(ev, sk, skb);
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
