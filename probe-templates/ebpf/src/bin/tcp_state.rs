//! Template `tcp_state`: every TCP state change, from the
//! `inet_sock_set_state(sk, oldstate, newstate)` raw tracepoint. The probes
//! `tcp_connect`, `tcp_accept` and `tcp_close` are views of it: the same
//! program with a fixed filter (e.g. SYN_SENT -> ESTABLISHED) that the
//! planner puts in front of the user's `where`.
//!
//! `err` is the socket's `sk_err` at the move, negated.
//!
//! It also keeps each socket's birth time (its move to SYN_SENT or
//! SYN_RECV), so that a state change carries the connection's age, as
//! BCC's `tcplife` reports it at close.
#![no_std]
// `asm!` for BPF: `common::ctx_load`.
#![feature(asm_experimental_arch)]
#![no_main]

#[path = "../common.rs"]
mod common;

use aya_ebpf::{
    helpers::bpf_ktime_get_ns,
    macros::{map, raw_tracepoint},
    maps::LruHashMap,
    programs::RawTracePointContext,
};
use common::*;
use tcpq_abi::{off, slot, slot::state as s};

const TCP_SYN_RECV: u64 = 3;

/// Birth time (ktime ns) per socket.
#[map]
static TCPQ_BIRTH: LruHashMap<u64, u64> = LruHashMap::with_max_entries(65536, 0);

#[raw_tracepoint(tracepoint = "inet_sock_set_state")]
pub fn tcpq_state_rtp(ctx: RawTracePointContext) -> i32 {
    let _ = run(&ctx);
    0
}

#[inline(always)]
fn run(ctx: &RawTracePointContext) -> Option<()> {
    let sk = tp_field(ctx, off::TP_SET_STATE_SK);
    if sk == 0 || read_off(sk, off::SK_PROTOCOL) != IPPROTO_TCP {
        return None;
    }
    let old = tp_field(ctx, off::TP_SET_STATE_OLDSTATE);
    let new = tp_field(ctx, off::TP_SET_STATE_NEWSTATE);
    let now = unsafe { bpf_ktime_get_ns() };
    let duration = match unsafe { TCPQ_BIRTH.get(sk) } {
        Some(born) => now.saturating_sub(*born) / 1000,
        None => 0,
    };
    if new == TCP_SYN_SENT || new == TCP_SYN_RECV {
        let _ = TCPQ_BIRTH.insert(sk, now, 0);
    } else if new == TCP_CLOSE {
        let _ = TCPQ_BIRTH.remove(sk);
    }

    let cfg = config()?;
    let ev = begin_probe_slots()?;
    let v = &mut ev.vals;
    v[s::OLDSTATE as usize] = old;
    v[s::NEWSTATE as usize] = new;
    v[s::DURATION as usize] = duration;
    // The socket's error, for a clause that reads it: set before a failed
    // connection moves to CLOSE (tcp_reset(), tcp_write_err() and the ICMP
    // handlers store it, then call tcp_done()), stored positive, reported
    // negative like the kernel passes errors elsewhere.
    if cfg.probe & tcpq_abi::probe_bit(s::ERR) != 0 {
        let err = read_off(sk, off::SK_ERR) as u32 as i32 as i64;
        v[s::ERR as usize] = err.wrapping_neg() as u64;
    }
    if !passes_early(cfg, ev) {
        return None;
    }
    fill_sock(ev, sk);
    load_fields(ev, sk, 0);
    // The tracepoint fires before the store: sk_state is still the old
    // state. `state` is the one the socket enters.
    ev.vals[slot::STATE as usize] = new;
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
