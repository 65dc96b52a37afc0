//! Template `tcp_probe`: the `tcp:tcp_probe` tracepoint, which fires for
//! segments received on an established socket, with the sender's state.
//!
//! Two programs, one per strategy: `tcpq_probe_rtp` on the raw tracepoint
//! `tcp_probe(sk, skb)` reads the values from the socket and the skb at
//! offsets from BTF (kernels whose classic record lacks `skaddr`, such as
//! 6.1, included); `tcpq_probe_tp` on the classic tracepoint reads them from
//! its record, at offsets from the format file.
#![no_std]
// `asm!` for BPF: `common::ctx_load`.
#![feature(asm_experimental_arch)]
#![no_main]

#[path = "../common.rs"]
mod common;

use aya_ebpf::{
    macros::{raw_tracepoint, tracepoint},
    programs::{RawTracePointContext, TracePointContext},
    EbpfContext,
};
use common::*;
use tcpq_abi::{off, slot::probe as s, Event, TemplateConfig};

// Each program tests the quick first step (see `quick_rejects`) in its
// entry function and calls the rest of the path, a function of its own,
// only for the events that pass. Most one-liners match almost nothing, and
// the entry then needs no callee-saved registers: the JIT saves and
// restores none, and an event the quick step rejects costs about twenty
// machine instructions, prologue and epilogue included.

#[tracepoint]
pub fn tcpq_probe_tp(ctx: TracePointContext) -> u32 {
    if let Some((off, value)) = IMMEDIATE {
        if DEAD_READ {
            // The configuration's line, read and dropped: the verifier
            // knows both values, and no instruction uses them.
            if let Some(cfg) = config() {
                let _ = unsafe { core::ptr::read_volatile(&cfg.quick.base) };
            }
        }
        let v = ctx_load(ctx.as_ptr(), off, 4).unwrap_or(0);
        if v != value {
            return 0;
        }
    } else if quick_rejects_record(&ctx) {
        return 0;
    }
    let _ = run(&ctx);
    0
}

/// An experiment, never part of a shipped template (`build.sh` does not set
/// it): `TCPQ_EXPERIMENT_IMMEDIATE=OFF:VALUE` at build time replaces the
/// quick step with "reject unless the `u32` at record offset OFF is VALUE",
/// both compiled into the instruction, which is how bpftrace tests a
/// constant. `benches/quick-step.sh` measures it against the shipped quick
/// step, which reads its bounds from the configuration (a map) instead.
const IMMEDIATE: Option<(u32, u64)> = match option_env!("TCPQ_EXPERIMENT_IMMEDIATE") {
    Some(s) => Some(off_value(s.as_bytes())),
    None => None,
};

/// With [`IMMEDIATE`]: `TCPQ_EXPERIMENT_DEAD_READ=1` also reads two fields
/// of the configuration first and uses neither, to tell the cost of the
/// load from the cost of what depends on it.
const DEAD_READ: bool = option_env!("TCPQ_EXPERIMENT_DEAD_READ").is_some();

/// `b"OFF:VALUE"`, both decimal.
const fn off_value(s: &[u8]) -> (u32, u64) {
    let (mut off, mut value, mut i, mut seen) = (0u64, 0u64, 0, false);
    while i < s.len() {
        match s[i] {
            b':' => seen = true,
            c @ b'0'..=b'9' if seen => value = value * 10 + (c - b'0') as u64,
            c @ b'0'..=b'9' => off = off * 10 + (c - b'0') as u64,
            _ => panic!("TCPQ_EXPERIMENT_IMMEDIATE is OFF:VALUE"),
        }
        i += 1;
    }
    assert!(seen, "TCPQ_EXPERIMENT_IMMEDIATE is OFF:VALUE");
    (off as u32, value)
}

#[inline(never)]
fn run(ctx: &TracePointContext) -> Option<()> {
    let cfg = config()?;
    let ev = begin_probe_slots()?;
    fill_probe_slots_tp(cfg, true, ev, ctx);
    if !passes_early(cfg, ev) {
        return None;
    }
    let sk = tp_field(ctx, off::TP_PROBE_SK);
    if sk == 0 {
        return None;
    }
    fill_probe_slots_tp(cfg, false, ev, ctx);
    fill_sock(ev, sk);
    load_fields(ev, sk, 0);
    finish(ev);
    Some(())
}

#[raw_tracepoint(tracepoint = "tcp_probe")]
pub fn tcpq_probe_rtp(ctx: RawTracePointContext) -> i32 {
    let sk = tp_field(&ctx, off::TP_PROBE_RAW_SK);
    // `tcp_probe(sk, skb)` has both arguments on every kernel (the runtime
    // checks the prototype): the second straight from the context too.
    let skb = if loc(off::TP_PROBE_RAW_SKB).off == 8 {
        unsafe { *(ctx.as_ptr() as *const u64).add(1) }
    } else {
        0
    };
    if sk == 0 || skb == 0 {
        return 0;
    }
    // No full-socket check: the kernel fires tcp_probe in the receive
    // path of full TCP sockets only (request and time-wait mini-sockets
    // take other paths), like the classic program, which never checked.
    if quick_rejects(sk) {
        return 0;
    }
    let _ = run_raw(sk, skb);
    0
}

#[inline(never)]
fn run_raw(sk: u64, skb: u64) -> Option<()> {
    let cfg = config()?;
    let ev = begin_probe_slots()?;
    fill_probe_slots_raw(cfg, true, ev, sk, skb);
    if !passes_early(cfg, ev) {
        return None;
    }
    fill_probe_slots_raw(cfg, false, ev, sk, skb);
    fill_sock(ev, sk);
    load_fields(ev, sk, skb);
    finish(ev);
    Some(())
}

/// Fill the probe slots due now (`probe_slot_due`) from the classic tracepoint's record.
#[inline(always)]
fn fill_probe_slots_tp(cfg: &TemplateConfig, before: bool, ev: &mut Event, ctx: &TracePointContext) {
    let v = &mut ev.vals;
    for &(slot, index) in tcpq_abi::quick::TCP_PROBE_TP {
        if probe_slot_due(cfg, before, slot) {
            // The mask only tells the compiler the index is in range.
            v[slot as usize & (tcpq_abi::N_SLOTS - 1)] = tp_field(ctx, index);
        }
    }
}

/// Fill the probe slots due now (`probe_slot_due`) the way the classic tracepoint's
/// `TP_fast_assign` does, from the socket and the skb.
#[inline(always)]
fn fill_probe_slots_raw(cfg: &TemplateConfig, before: bool, ev: &mut Event, sk: u64, skb: u64) {
    let v = &mut ev.vals;
    // One statement a slot, not a loop over a table: LLVM did not always
    // unroll the loop, and the table was then built on the stack and
    // walked at every event.
    macro_rules! plain {
        ($($slot:expr => $index:expr),*) => {$(
            if probe_slot_due(cfg, before, $slot) {
                v[$slot as usize] = read_now(before, sk, $index);
            }
        )*};
    }
    plain!(
        s::SND_NXT => off::TP_SND_NXT,
        s::SND_UNA => off::TP_SND_UNA,
        s::SND_CWND => off::TP_SND_CWND,
        s::SSTHRESH => off::TP_SND_SSTHRESH,
        s::SND_WND => off::TP_SND_WND,
        s::RCV_WND => off::TP_RCV_WND
    );
    if probe_slot_due(cfg, before, s::SRTT) {
        v[s::SRTT as usize] = read_now(before, sk, off::TP_SRTT_US) >> 3;
    }
    if probe_slot_due(cfg, before, s::DATA_LEN) {
        let head = read_ptr(skb, loc(off::SKB_HEAD).off);
        let th = read_now(before, skb, off::SKB_TRANSPORT_HEADER);
        let doff: u8 = read(head + th + 12);
        let hdr_len = ((doff >> 4) as u64) * 4;
        v[s::DATA_LEN as usize] = read_now(before, skb, off::SKB_LEN).saturating_sub(hdr_len);
    }
    if probe_slot_due(cfg, before, s::MARK) {
        v[s::MARK as usize] = read_now(before, skb, off::SKB_MARK);
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
