//! Template `tcp_retransmit`: the `tcp_retransmit_skb(sk, skb[, err])` raw
//! tracepoint. One
//! retransmitted skb can carry several segments; `segs` is its
//! `tcp_skb_pcount()`, read from `TCP_SKB_CB(skb)->tcp_gso_segs`, so that the
//! sum of `segs` matches the kernel's `TcpRetransSegs`.
//!
//! Since 6.17 the tracepoint fires for every attempt, with `err`; the
//! template keeps exactly those the kernel counts in `TcpRetransSegs`
//! ([`tcpq_abi::retransmit`] says which and why), the sent ones and the ones
//! the send path refused after the count (`err` -EPERM from a firewall, ...),
//! and stores `err` with them.
//!
//! `tlp` (a tail loss probe or not) is read from the socket's timer state
//! only for a clause that uses it.
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
    // An attempt the kernel did not count in TcpRetransSegs (it left
    // `__tcp_retransmit_skb()` before the count: -EBUSY, the original still
    // queued in the host, ...) is not a retransmission: a fixed rule of the
    // template, before any filter. Kernels without `err` (before 6.17) leave
    // the offset unresolved and read 0: there the tracepoint fires only for
    // sent retransmissions. `err` is a C `int`: sign-extend it.
    let err = sext32(tp_field(ctx, off::TP_RETRANS_ERR));
    if !tcpq_abi::retransmit::counted(err as i64) {
        return None;
    }
    let ev = begin_probe_slots()?;
    // Both probe slots before the early filter: `err` is in a register
    // already, and `segs` is one read.
    ev.vals[s::ERR as usize] = err;
    let cb = loc(off::SKB_CB).off;
    let segs = loc(off::TCB_GSO_SEGS);
    ev.vals[s::SEGS as usize] = read_loc(skb + cb as u64, &segs);
    // A tail loss probe, for a clause that reads `tlp`: the kernel's state
    // at the moment only `tcp_send_loss_probe()` retransmits in
    // ([`tcpq_abi::retransmit::tail_loss_probe`] says why each part).
    if cfg.probe & tcpq_abi::probe_bit(s::TLP) != 0 {
        let pending = read_off(sk, off::ICSK_PENDING);
        // The first condition alone spares the other reads of most
        // retransmissions (the predicate's arguments are read before it runs).
        let tlp = pending == tcpq_abi::retransmit::ICSK_TIME_LOSS_PROBE
            && tcpq_abi::retransmit::tail_loss_probe(
                pending,
                read_off(sk, off::ICSK_RTX_TIMER_PPREV),
                read_off(sk, off::TP_TLP_HIGH_SEQ),
                read_loc(skb + cb as u64, &loc(off::TCB_END_SEQ)),
                read_off(sk, off::TP_SND_NXT),
            );
        ev.vals[s::TLP as usize] = tlp as u64;
    }
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
