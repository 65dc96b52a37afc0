//! Template `tcp_probe`: the `tcp:tcp_probe` tracepoint, which fires for
//! segments received on an established socket, with the sender's state.
//! Tracepoint field offsets come from its format file at run time.
#![no_std]
#![no_main]

#[path = "../common.rs"]
mod common;

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use common::*;
use tcpq_abi::{off, slot::probe as s};

#[tracepoint]
pub fn tcpq_probe_tp(ctx: TracePointContext) -> u32 {
    let _ = run(&ctx);
    0
}

#[inline(always)]
fn run(ctx: &TracePointContext) -> Option<()> {
    let cfg = config()?;
    let sk = tp_field(ctx, off::TP_PROBE_SK);
    if sk == 0 {
        return None;
    }
    let ev = begin()?;
    let v = &mut ev.vals;
    v[s::SND_NXT as usize] = tp_field(ctx, off::TP_PROBE_SND_NXT);
    v[s::SND_UNA as usize] = tp_field(ctx, off::TP_PROBE_SND_UNA);
    v[s::SND_CWND as usize] = tp_field(ctx, off::TP_PROBE_SND_CWND);
    v[s::SSTHRESH as usize] = tp_field(ctx, off::TP_PROBE_SSTHRESH);
    v[s::SND_WND as usize] = tp_field(ctx, off::TP_PROBE_SND_WND);
    v[s::SRTT as usize] = tp_field(ctx, off::TP_PROBE_SRTT);
    v[s::RCV_WND as usize] = tp_field(ctx, off::TP_PROBE_RCV_WND);
    v[s::DATA_LEN as usize] = tp_field(ctx, off::TP_PROBE_DATA_LEN);
    v[s::MARK as usize] = tp_field(ctx, off::TP_PROBE_MARK);
    if rejected_early(cfg, ev) {
        return None;
    }
    fill_sock(ev, sk);
    load_fields(cfg, ev, sk, 0);
    finish(cfg, ev);
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
