//! Template `tcp_select_window`: every non-SYN segment TCP sends, with the
//! receive window it advertises.
//!
//! `tcp_select_window()` is inlined on many kernels (it is on 6.18), so there
//! is nothing to probe at the function itself. Strategy `net_dev_queue`: the
//! `net_dev_queue` raw tracepoint sees each outgoing skb as it is queued to a
//! device, after `__tcp_transmit_skb()` wrote the TCP header; the header's
//! window field is exactly what `tcp_select_window()` returned, and `skb->sk`
//! is the socket that sent it.
#![no_std]
#![no_main]

#[path = "../common.rs"]
mod common;

use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};
use common::*;
use tcpq_abi::{off, slot, slot::select_window as s, Event, TemplateConfig};

const TCPHDR_SYN: u64 = 0x02;

#[raw_tracepoint(tracepoint = "net_dev_queue")]
pub fn tcpq_selwin_ndq(ctx: RawTracePointContext) -> i32 {
    let _ = run(&ctx);
    0
}

#[inline(always)]
fn run(ctx: &RawTracePointContext) -> Option<()> {
    let cfg = config()?;
    let skb = tp_field(ctx, off::TP_NET_DEV_QUEUE_SKB);
    // The reads before the early filter in line (see `read_off_hot`).
    let sk = read_ptr_hot(skb, loc(off::SKB_SK).off);
    // One read before the filter (a UDP segment's header would parse as
    // garbage); the full check costs three, paid only by events it passes.
    if sk == 0 || read_off_hot(sk, off::SK_PROTOCOL) != IPPROTO_TCP {
        return None;
    }
    let (head, th) = head_and_transport_header(skb);
    if head == 0 || th == 0xffff {
        return None;
    }
    let hdr = head + th;
    // struct tcphdr: seq @4, ack_seq @8, flags @13, window @14, all big-endian.
    let words: [u32; 4] = read_hdr(hdr)?;
    let seq = u32::from_be(words[1]) as u64;
    let ack = u32::from_be(words[2]) as u64;
    let w3 = words[3].to_le_bytes();
    let flags = w3[1] as u64;
    if flags & TCPHDR_SYN != 0 {
        return None;
    }
    let win = u16::from_be_bytes([w3[2], w3[3]]) as u64;

    let ev = begin_own()?;
    let v = &mut ev.vals;
    // The header's fields cost nothing more; the socket's are read only
    // when the early filter needs them, or once it has passed.
    v[s::WIN as usize] = win;
    v[s::TCP_FLAGS as usize] = flags;
    v[s::SEQ as usize] = seq;
    v[s::ACK_SEQ as usize] = ack;
    fill_own(cfg, true, ev, sk, win);
    if !passes_early(cfg, ev) || !is_full_tcp_sock(sk) {
        return None;
    }
    fill_own(cfg, false, ev, sk, win);
    fill_sock(cfg, ev, sk);
    load_fields(cfg, ev, sk, skb);
    // Ports as on the wire: a socket that close() aborted has already given
    // its local port back (inet_num = 0) when its reset leaves.
    let w0 = words[0].to_le_bytes();
    ev.vals[slot::SPORT as usize] = u16::from_be_bytes([w0[0], w0[1]]) as u64;
    ev.vals[slot::DPORT as usize] = u16::from_be_bytes([w0[2], w0[3]]) as u64;
    finish(cfg, ev);
    Some(())
}

/// Fill the own slots read from the socket that are due now (`own_now`).
/// `win_bytes` and `rcv_wscale` come from one read; when the early filter
/// reads only one of them, the other reads `rcv_wscale` again after the
/// filter (it does not change after the handshake).
#[inline(always)]
fn fill_own(cfg: &TemplateConfig, before: bool, ev: &mut Event, sk: u64, win: u64) {
    // In line before the early filter (see `read_off_hot`).
    let read_off = |base, index| {
        if before {
            read_off_hot(base, index)
        } else {
            read_off(base, index)
        }
    };
    let v = &mut ev.vals;
    if own_now(cfg, before, s::WIN_BYTES) || own_now(cfg, before, s::RCV_WSCALE) {
        let rcv_wscale = read_off(sk, off::TP_RCV_WSCALE);
        if own_now(cfg, before, s::WIN_BYTES) {
            v[s::WIN_BYTES as usize] = win << (rcv_wscale & 15);
        }
        if own_now(cfg, before, s::RCV_WSCALE) {
            v[s::RCV_WSCALE as usize] = rcv_wscale;
        }
    }
    if own_now(cfg, before, s::RCV_WND) {
        v[s::RCV_WND as usize] = read_off(sk, off::TP_RCV_WND);
    }
    if own_now(cfg, before, s::SND_WSCALE) {
        v[s::SND_WSCALE as usize] = read_off(sk, off::TP_SND_WSCALE);
    }
    if own_now(cfg, before, s::WSCALE_OK) {
        v[s::WSCALE_OK as usize] = read_off(sk, off::TP_WSCALE_OK);
    }
    if own_now(cfg, before, s::SND_WND) {
        v[s::SND_WND as usize] = read_off(sk, off::TP_SND_WND);
    }
}

/// `skb->head` and `skb->transport_header`, with one read where they lie
/// within 24 bytes of each other (they do on every kernel since 5.x: the
/// header offsets sit just before `head`), else two.
#[inline(always)]
fn head_and_transport_header(skb: u64) -> (u64, u64) {
    let h = loc(off::SKB_HEAD);
    let t = loc(off::SKB_TRANSPORT_HEADER);
    let first = h.off.min(t.off) & !7;
    let (hd, td) = (h.off - first, t.off - first);
    if h.size == 8 && t.size == 2 && t.bit_size == 0 && hd % 8 == 0 && hd <= 16 && td <= 22 {
        if let Ok(w) = unsafe {
            aya_ebpf::helpers::bpf_probe_read_kernel((skb + first as u64) as *const [u64; 3])
        } {
            let word = |i: u32| match i {
                0 => w[0],
                1 => w[1],
                _ => w[2],
            };
            let head = word(hd / 8);
            let th = (word(td / 8) >> ((td % 8) * 8)) & 0xffff;
            return (head, th);
        }
    }
    (read_ptr(skb, h.off), read_off(skb, off::SKB_TRANSPORT_HEADER))
}

#[inline(always)]
fn read_hdr(addr: u64) -> Option<[u32; 4]> {
    unsafe { aya_ebpf::helpers::bpf_probe_read_kernel(addr as *const [u32; 4]) }.ok()
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
