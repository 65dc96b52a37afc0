//! Template `tcp_select_window`: every non-SYN segment TCP sends, with the
//! receive window it advertises.
//!
//! `tcp_select_window()` is inlined on many kernels (it is on 6.18), so there
//! is nothing to probe at the function itself. Strategy `net_dev_queue`: the
//! `net_dev_queue` raw tracepoint sees each outgoing skb as it is queued to a
//! device, after `__tcp_transmit_skb()` wrote the TCP header; the header's
//! window field is exactly what `tcp_select_window()` returned, and `skb->sk`
//! is the socket that sent it.
//!
//! The template's second program, `tcpq_syn_ndq` (probe `tcp_syn`), keeps
//! the segments the first one leaves out: SYNs and SYN-ACKs, with the
//! options of their TCP header. A SYN's window is not tcp_select_window()'s
//! (`__tcp_transmit_skb()` and `tcp_make_synack()` write
//! `min(rcv_wnd, 65535)`, never scaled), and a SYN-ACK's `skb->sk` is the
//! request socket (`NEW_SYN_RECV`), which has no `tcp_sock` fields.
#![no_std]
// `asm!` for BPF: `common::ctx_load`.
#![feature(asm_experimental_arch)]
#![no_main]

#[path = "../common.rs"]
mod common;

use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};
use common::*;
use tcpq_abi::{
    off, probe_bit, slot, slot::select_window as s, slot::syn as y, Event, TemplateConfig, N_SLOTS,
};

const TCPHDR_SYN: u64 = 0x02;
const TCPHDR_ACK: u64 = 0x10;

#[raw_tracepoint(tracepoint = "net_dev_queue")]
pub fn tcpq_selwin_ndq(ctx: RawTracePointContext) -> i32 {
    let _ = run(&ctx);
    0
}

#[inline(always)]
fn run(ctx: &RawTracePointContext) -> Option<()> {
    let cfg = config()?;
    let skb = tp_field(ctx, off::TP_NET_DEV_QUEUE_SKB);
    // With plain kernel loads, the skb's four fields are four loads, and
    // the window they locate is tested (the quick step) before the record
    // is begun: most segments of a `where win == 0` stop here. Without,
    // the record comes first: the reads before the early filter land in
    // the parts of it that `passes_early` clears (a buffer on the stack
    // made the program's stack, with its calls', too large for 6.1's
    // verifier). Two whole paths, each defining every value it passes on:
    // with one value left undefined on the path the verifier walks (an
    // `Option` of the four), 6.1's verifier refused a register read.
    if fast_read() {
        let f = skb_loads(skb);
        if quick_rejects_computed(s::WIN, || window(f.1, f.2)) {
            return None;
        }
        rest(cfg, begin_probe_slots()?, skb, f)
    } else {
        let ev = begin_probe_slots()?;
        // The reads before the early filter in line (see `read_off_hot`).
        let f = skb_fields(skb, unsafe {
            &mut *(ev.vals.as_mut_ptr().add(slot::LOADED as usize) as *mut [u64; 32])
        });
        rest(cfg, ev, skb, f)
    }
}

/// The rest of an event, from the skb's `sk`, `head`, `transport_header`
/// and `network_header`.
#[inline(always)]
fn rest(
    cfg: &TemplateConfig,
    ev: &mut Event,
    skb: u64,
    (sk, head, th, nh): (u64, u64, u64, u64),
) -> Option<()> {
    if sk == 0 || head == 0 || th == 0xffff {
        return None;
    }
    // TCP only (a UDP segment's header would parse as garbage): the IP
    // header says so, read with the TCP header where it lies just before
    // it; else the socket's protocol. The full-socket check costs three
    // reads more, paid only by events the early filter passes.
    // struct tcphdr: seq @4, ack_seq @8, flags @13, window @14, all big-endian.
    let words: [u32; 4] = match ip_and_tcp_header(head, nh, th, unsafe {
        &mut *(ev.vals.as_mut_ptr() as *mut [u32; 16])
    }) {
        Ip::Tcp(words) => words,
        Ip::Other => return None,
        Ip::Unknown => {
            if read_off_hot(sk, off::SK_PROTOCOL) != IPPROTO_TCP {
                return None;
            }
            read_hdr(head + th)?
        }
    };
    let seq = u32::from_be(words[1]) as u64;
    let ack = u32::from_be(words[2]) as u64;
    let w3 = words[3].to_le_bytes();
    let flags = w3[1] as u64;
    if flags & TCPHDR_SYN != 0 {
        return None;
    }
    let win = u16::from_be_bytes([w3[2], w3[3]]) as u64;

    let v = &mut ev.vals;
    // The header's fields cost nothing more; the socket's are read only
    // when the early filter needs them, or once it has passed.
    v[s::WIN as usize] = win;
    v[s::TCP_FLAGS as usize] = flags;
    v[s::SEQ as usize] = seq;
    v[s::ACK_SEQ as usize] = ack;
    fill_probe_slots(cfg, true, ev, sk, win);
    if !passes_early(cfg, ev) || !is_full_tcp_sock(sk) {
        return None;
    }
    fill_probe_slots(cfg, false, ev, sk, win);
    fill_sock(ev, sk);
    load_fields(ev, sk, skb);
    // Ports as on the wire: a socket that close() aborted has already given
    // its local port back (inet_num = 0) when its reset leaves.
    let w0 = words[0].to_le_bytes();
    ev.vals[slot::SPORT as usize] = u16::from_be_bytes([w0[0], w0[1]]) as u64;
    ev.vals[slot::DPORT as usize] = u16::from_be_bytes([w0[2], w0[3]]) as u64;
    finish(ev);
    Some(())
}

#[raw_tracepoint(tracepoint = "net_dev_queue")]
pub fn tcpq_syn_ndq(ctx: RawTracePointContext) -> i32 {
    let _ = syn(&ctx);
    0
}

/// Most bytes of TCP options (a 60-byte header).
const OPT_MAX: u32 = 40;
/// The record's words the options are read into before they are parsed:
/// loaded slots, which the record only fills after its early filter.
const OPT_WORD: usize = 48;
/// The option slots: their bytes are read and parsed only for a clause
/// that uses one of them.
const OPT_SLOTS: u16 = probe_bit(y::OPT_MSS)
    | probe_bit(y::OPT_WSCALE_OK)
    | probe_bit(y::OPT_WSCALE)
    | probe_bit(y::OPT_SACK_OK)
    | probe_bit(y::OPT_TS);

/// `tcp_syn`: a SYN or SYN-ACK as it is queued to a device.
#[inline(always)]
fn syn(ctx: &RawTracePointContext) -> Option<()> {
    let cfg = config()?;
    let skb = tp_field(ctx, off::TP_NET_DEV_QUEUE_SKB);
    let ev = begin_probe_slots()?;
    let (sk, head, th, nh) = if fast_read() {
        skb_loads(skb)
    } else {
        skb_fields(skb, unsafe {
            &mut *(ev.vals.as_mut_ptr().add(slot::LOADED as usize) as *mut [u64; 32])
        })
    };
    if sk == 0 || head == 0 || th == 0xffff {
        return None;
    }
    // Most segments are not SYNs: the flags byte alone decides.
    if read::<u8>(head + th + 13) as u64 & TCPHDR_SYN == 0 {
        return None;
    }
    // A SYN-ACK's socket is the request socket: sock_common (addresses,
    // ports, state, namespace) and nothing of a full socket beyond it.
    let request = read_off(sk, off::SKC_STATE) == TCP_NEW_SYN_RECV;
    if !request && !is_full_tcp_sock(sk) {
        return None;
    }
    let words: [u32; 4] = match ip_and_tcp_header(head, nh, th, unsafe {
        &mut *(ev.vals.as_mut_ptr() as *mut [u32; 16])
    }) {
        Ip::Tcp(words) => words,
        Ip::Other => return None,
        // A full socket's protocol was checked; a request socket's IP
        // header with options or extension headers is not followed.
        Ip::Unknown if !request => read_hdr(head + th)?,
        Ip::Unknown => return None,
    };
    let w3 = words[3].to_le_bytes();
    let flags = w3[1] as u64;
    if flags & TCPHDR_SYN == 0 {
        return None;
    }
    let doff = ((w3[0] >> 4) as u32) * 4;
    if doff < 20 {
        return None;
    }
    let v = &mut ev.vals;
    v[y::WIN as usize] = u16::from_be_bytes([w3[2], w3[3]]) as u64;
    v[y::TCP_FLAGS as usize] = flags;
    v[y::SEQ as usize] = u32::from_be(words[1]) as u64;
    v[y::ACK_SEQ as usize] = u32::from_be(words[2]) as u64;
    v[y::ACK as usize] = (flags & TCPHDR_ACK != 0) as u64;
    if cfg.probe & OPT_SLOTS != 0 {
        let n = doff - 20;
        let buf = unsafe { ev.vals.as_mut_ptr().add(OPT_WORD) } as *mut core::ffi::c_void;
        if n > 0 && read_bytes(buf, n, OPT_MAX, head + th + 20) {
            let mut i = 0;
            let mut step = 0;
            while step < OPT_MAX {
                let next = tcpq_syn_option(ev, i, n);
                if next <= i || next >= n {
                    break;
                }
                i = next;
                step += 1;
            }
        }
    }
    if !passes_early(cfg, ev) {
        return None;
    }
    fill_sock(ev, sk);
    // No socket fields for a request socket: they read 0.
    load_fields(ev, if request { 0 } else { sk }, skb);
    let w0 = words[0].to_le_bytes();
    ev.vals[slot::SPORT as usize] = u16::from_be_bytes([w0[0], w0[1]]) as u64;
    ev.vals[slot::DPORT as usize] = u16::from_be_bytes([w0[2], w0[3]]) as u64;
    finish(ev);
    Some(())
}

/// The TCP option at byte `i` of the `n` (at most [`OPT_MAX`]) read into
/// the record's words from [`OPT_WORD`]: note it in its slot when it is
/// MSS (kind 2, 4 bytes), window scale (3, 3), SACK-permitted (4, 2) or
/// timestamps (8, 10), as `tcp_parse_options()` takes them, and return
/// where the next one starts (`u32::MAX` at the end of the list or at a
/// malformed option). A global function, like the filter's step: the
/// verifier checks it once, not once per iteration of the loop around it.
#[unsafe(no_mangle)]
#[inline(never)]
extern "C" fn tcpq_syn_option(ev: *mut Event, i: u32, n: u32) -> u32 {
    const END: u32 = u32::MAX;
    if ev.is_null() {
        return END;
    }
    let ev = unsafe { &mut *ev };
    let v = &mut ev.vals;
    let n = n.min(OPT_MAX);
    let byte = |v: &[u64; N_SLOTS], k: u32| -> u64 {
        // Through a volatile read, so that the compiler keeps the mask
        // that shows the verifier the bounds (it knows `k < n <= 40` from
        // the tests here, in the 32 bits it compared, and would index
        // with all 64 of the register, which the verifier refuses).
        let k = unsafe { core::ptr::read_volatile(&k) } & 63;
        (v[(OPT_WORD + (k as usize >> 3)) & (N_SLOTS - 1)] >> ((k & 7) * 8)) & 0xff
    };
    if i >= n {
        return END;
    }
    let kind = byte(v, i);
    if kind == 0 {
        return END;
    }
    if kind == 1 {
        return i + 1;
    }
    if i + 1 >= n {
        return END;
    }
    let len = byte(v, i + 1) as u32;
    if len < 2 || i + len > n {
        return END;
    }
    match (kind, len) {
        (2, 4) => v[y::OPT_MSS as usize] = byte(v, i + 2) << 8 | byte(v, i + 3),
        (3, 3) => {
            v[y::OPT_WSCALE_OK as usize] = 1;
            v[y::OPT_WSCALE as usize] = byte(v, i + 2);
        }
        (4, 2) => v[y::OPT_SACK_OK as usize] = 1,
        (8, 10) => v[y::OPT_TS as usize] = 1,
        _ => {}
    }
    i + len
}

/// Fill the probe slots read from the socket that are due now (`probe_slot_due`).
/// `win_bytes` and `rcv_wscale` come from one read; when the early filter
/// reads only one of them, the other reads `rcv_wscale` again after the
/// filter (it does not change after the handshake).
#[inline(always)]
fn fill_probe_slots(cfg: &TemplateConfig, before: bool, ev: &mut Event, sk: u64, win: u64) {
    let v = &mut ev.vals;
    if probe_slot_due(cfg, before, s::WIN_BYTES) || probe_slot_due(cfg, before, s::RCV_WSCALE) {
        let rcv_wscale = read_now(before, sk, off::TP_RCV_WSCALE);
        if probe_slot_due(cfg, before, s::WIN_BYTES) {
            v[s::WIN_BYTES as usize] = win << (rcv_wscale & 15);
        }
        if probe_slot_due(cfg, before, s::RCV_WSCALE) {
            v[s::RCV_WSCALE as usize] = rcv_wscale;
        }
    }
    if probe_slot_due(cfg, before, s::RCV_WND) {
        v[s::RCV_WND as usize] = read_now(before, sk, off::TP_RCV_WND);
    }
    if probe_slot_due(cfg, before, s::SND_WSCALE) {
        v[s::SND_WSCALE as usize] = read_now(before, sk, off::TP_SND_WSCALE);
    }
    if probe_slot_due(cfg, before, s::WSCALE_OK) {
        v[s::WSCALE_OK as usize] = read_now(before, sk, off::TP_WSCALE_OK);
    }
    if probe_slot_due(cfg, before, s::SND_WND) {
        v[s::SND_WND as usize] = read_now(before, sk, off::TP_SND_WND);
    }
}

/// `skb->sk`, `skb->head`, `skb->transport_header` and
/// `skb->network_header`, with one read of the bytes from the first to the
/// last where they lie within 256 bytes (on 6.18: `sk` at 24, the header
/// offsets at 182 and 184, `head` at 192) into `buf`, else four. A helper
/// call costs more than copying 200 bytes.
#[inline(always)]
fn skb_fields(skb: u64, buf: &mut [u64; 32]) -> (u64, u64, u64, u64) {
    let s = loc(off::SKB_SK);
    let h = loc(off::SKB_HEAD);
    let t = loc(off::SKB_TRANSPORT_HEADER);
    let nl = loc(off::SKB_NETWORK_HEADER);
    let first = s.off.min(h.off).min(t.off).min(nl.off) & !7;
    let end = (s.off + 8).max(h.off + 8).max(t.off + 2).max(nl.off + 2);
    let (sd, hd, td, nd) = (s.off - first, h.off - first, t.off - first, nl.off - first);
    if s.size == 8
        && h.size == 8
        && t.size == 2
        && nl.size == 2
        && t.bit_size == 0
        && nl.bit_size == 0
        && sd % 8 == 0
        && hd % 8 == 0
        && td % 2 == 0
        && nd % 2 == 0
        && end - first <= 256
        && read_bytes(
            buf.as_mut_ptr() as *mut _,
            end - first,
            256,
            skb + first as u64,
        )
    {
        // The mask keeps the verifier sure of the bounds.
        let w = |i: u32| buf[i as usize & 31];
        let u16_at = |d: u32| (w(d / 8) >> ((d % 8) * 8)) & 0xffff;
        return (w(sd / 8), w(hd / 8), u16_at(td), u16_at(nd));
    }
    (
        read_ptr_hot(skb, s.off),
        read_ptr_hot(skb, h.off),
        read_off_hot(skb, off::SKB_TRANSPORT_HEADER),
        read_off_hot(skb, off::SKB_NETWORK_HEADER),
    )
}

/// [`skb_fields`] as four loads, for kernels with plain kernel loads
/// ([`fast_read`]): `sk`, `head`, `transport_header`, `network_header`.
#[inline(always)]
fn skb_loads(skb: u64) -> (u64, u64, u64, u64) {
    (
        read_ptr_hot(skb, loc(off::SKB_SK).off),
        read_ptr_hot(skb, loc(off::SKB_HEAD).off),
        read_off_hot(skb, off::SKB_TRANSPORT_HEADER),
        read_off_hot(skb, off::SKB_NETWORK_HEADER),
    )
}

/// The window field of the TCP header at `head + th` (big-endian at byte
/// 14), as the `win` slot holds it.
#[inline(always)]
fn window(head: u64, th: u64) -> u64 {
    u16::from_be(read::<u16>(head + th + 14)) as u64
}

/// What the IP header before a TCP header says.
enum Ip {
    /// TCP: the TCP header's first 16 bytes.
    Tcp([u32; 4]),
    /// Another protocol.
    Other,
    /// No plain IPv4 or IPv6 header right before the transport header
    /// (IPv4 options, IPv6 extension headers, no network header).
    Unknown,
}

/// The IP header at `head + nh` and the TCP header at `head + th` after it:
/// with plain kernel loads, a load of each value needed; else one read
/// into `buf`, 36 bytes for IPv4, 56 for IPv6.
#[inline(always)]
fn ip_and_tcp_header(head: u64, nh: u64, th: u64, buf: &mut [u32; 16]) -> Ip {
    if nh == 0xffff || th <= nh || th - nh > 40 || (th - nh) % 4 != 0 {
        return Ip::Unknown;
    }
    let gap = th - nh;
    if fast_read() {
        // Loads of what is needed: the first word, the protocol byte, the
        // TCP header's first 16 bytes.
        let ip = head + nh;
        let first = read::<u32>(ip);
        let proto = match (first & 0xff) >> 4 {
            4 if gap == ((first & 0x0f) * 4) as u64 => read::<u8>(ip + 9),
            6 if gap == 40 => read::<u8>(ip + 6),
            _ => return Ip::Unknown,
        };
        if proto as u64 != IPPROTO_TCP {
            return Ip::Other;
        }
        let t = head + th;
        return Ip::Tcp([read(t), read(t + 4), read(t + 8), read(t + 12)]);
    }
    if !read_bytes(buf.as_mut_ptr() as *mut _, gap as u32 + 16, 56, head + nh) {
        return Ip::Unknown;
    }
    let w = |i: u64| buf[i as usize & 15];
    let first = w(0);
    // Bytes 0 (version), 6 (IPv6 next header), 9 (IPv4 protocol).
    let proto = match (first & 0xff) >> 4 {
        4 if gap == ((first & 0x0f) * 4) as u64 => (w(2) >> 8) & 0xff,
        6 if gap == 40 => (w(1) >> 16) & 0xff,
        _ => return Ip::Unknown,
    };
    if proto as u64 != IPPROTO_TCP {
        return Ip::Other;
    }
    let i = gap / 4;
    Ip::Tcp([w(i), w(i + 1), w(i + 2), w(i + 3)])
}

/// Copy `len` bytes (at most `max`, at most 256) of kernel memory at `src`
/// to `dst`: false when the read fails. `len` goes through a volatile read
/// so that the compiler keeps the mask and the minimum that show the
/// verifier its bounds (it knows them from its callers' tests, and would
/// pass an unchecked copy, which the verifier refuses).
#[inline(always)]
fn read_bytes(dst: *mut core::ffi::c_void, len: u32, max: u32, src: u64) -> bool {
    let n = (unsafe { core::ptr::read_volatile(&len) } & 0x1ff).min(max.min(256));
    unsafe { aya_ebpf::helpers::generated::bpf_probe_read_kernel(dst, n, src as *const _) == 0 }
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
