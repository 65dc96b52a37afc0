//! Template `tcp_reset`: resets this host sends (`tcp_send_reset(sk, skb[,
//! reason])`) and receives (`tcp_receive_reset(sk)`), both raw tracepoints.
//!
//! A reset sent to a closed port has no socket: the addresses then come
//! from the incoming segment it answers (the local side is its
//! destination). One sent from a time-wait or request socket has only the
//! socket's common part, so the socket fields (loads) are not read.
#![no_std]
// `asm!` for BPF: `common::ctx_load`.
#![feature(asm_experimental_arch)]
#![no_main]

#[path = "../common.rs"]
mod common;

use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};
use common::*;
use tcpq_abi::{off, slot::reset as s};

#[raw_tracepoint(tracepoint = "tcp_send_reset")]
pub fn tcpq_rst_send(ctx: RawTracePointContext) -> i32 {
    let _ = sent(&ctx);
    0
}

#[raw_tracepoint(tracepoint = "tcp_receive_reset")]
pub fn tcpq_rst_recv(ctx: RawTracePointContext) -> i32 {
    let _ = received(&ctx);
    0
}

#[inline(always)]
fn sent(ctx: &RawTracePointContext) -> Option<()> {
    let cfg = config()?;
    let sk = tp_field(ctx, off::TP_SEND_RESET_SK);
    let skb = tp_field(ctx, off::TP_SEND_RESET_SKB);
    if sk == 0 && skb == 0 {
        return None;
    }
    let ev = begin_probe_slots()?;
    ev.vals[s::RECEIVED as usize] = 0;
    ev.vals[s::REASON as usize] = tp_field(ctx, off::TP_SEND_RESET_REASON);
    if !passes_early(cfg, ev) {
        return None;
    }
    if sk != 0 {
        fill_sock(ev, sk);
        if is_full_tcp_sock(sk) {
            load_fields(ev, sk, skb);
        }
    } else if !fill_from_headers(ev, skb, true) {
        return None;
    }
    finish(ev);
    Some(())
}

#[inline(always)]
fn received(ctx: &RawTracePointContext) -> Option<()> {
    let cfg = config()?;
    let sk = tp_field(ctx, off::TP_RECV_RESET_SK);
    if sk == 0 {
        return None;
    }
    let ev = begin_probe_slots()?;
    ev.vals[s::RECEIVED as usize] = 1;
    if !passes_early(cfg, ev) {
        return None;
    }
    fill_sock(ev, sk);
    if is_full_tcp_sock(sk) {
        load_fields(ev, sk, 0);
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
