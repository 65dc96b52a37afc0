//! Template `tcp_sock_event`: raw tracepoints whose only argument of
//! interest is the socket (`tcp_rcv_space_adjust(sk)`, ...). Each program
//! reads argument 0, fills the socket's fields and the configured loads.
#![no_std]
// `asm!` for BPF: `common::ctx_load`.
#![feature(asm_experimental_arch)]
#![no_main]

#[path = "../common.rs"]
mod common;

use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};
use common::*;
use tcpq_abi::off;

/// Receive-buffer autotuning ran (`tcp_rcv_space_adjust()`, once per RTT
/// while the application reads).
#[raw_tracepoint(tracepoint = "tcp_rcv_space_adjust")]
pub fn tcpq_rcvspace(ctx: RawTracePointContext) -> i32 {
    let _ = run(&ctx);
    0
}

#[inline(always)]
fn run(ctx: &RawTracePointContext) -> Option<()> {
    // Nothing to do until the runtime has set a configuration.
    config()?;
    let sk = tp_field(ctx, off::TP_SK_ARG0);
    if !is_full_tcp_sock(sk) {
        return None;
    }
    let ev = begin()?;
    fill_sock(ev, sk);
    load_fields(ev, sk, 0);
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
