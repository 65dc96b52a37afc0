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
// `asm!` for BPF: `common::ctx_load`.
#![feature(asm_experimental_arch)]
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
        rest(cfg, begin_own()?, skb, f)
    } else {
        let ev = begin_own()?;
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
    fill_own(cfg, true, ev, sk, win);
    if !passes_early(cfg, ev) || !is_full_tcp_sock(sk) {
        return None;
    }
    fill_own(cfg, false, ev, sk, win);
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

/// Fill the own slots read from the socket that are due now (`own_now`).
/// `win_bytes` and `rcv_wscale` come from one read; when the early filter
/// reads only one of them, the other reads `rcv_wscale` again after the
/// filter (it does not change after the handshake).
#[inline(always)]
fn fill_own(cfg: &TemplateConfig, before: bool, ev: &mut Event, sk: u64, win: u64) {
    let v = &mut ev.vals;
    if own_now(cfg, before, s::WIN_BYTES) || own_now(cfg, before, s::RCV_WSCALE) {
        let rcv_wscale = read_now(before, sk, off::TP_RCV_WSCALE);
        if own_now(cfg, before, s::WIN_BYTES) {
            v[s::WIN_BYTES as usize] = win << (rcv_wscale & 15);
        }
        if own_now(cfg, before, s::RCV_WSCALE) {
            v[s::RCV_WSCALE as usize] = rcv_wscale;
        }
    }
    if own_now(cfg, before, s::RCV_WND) {
        v[s::RCV_WND as usize] = read_now(before, sk, off::TP_RCV_WND);
    }
    if own_now(cfg, before, s::SND_WSCALE) {
        v[s::SND_WSCALE as usize] = read_now(before, sk, off::TP_SND_WSCALE);
    }
    if own_now(cfg, before, s::WSCALE_OK) {
        v[s::WSCALE_OK as usize] = read_now(before, sk, off::TP_WSCALE_OK);
    }
    if own_now(cfg, before, s::SND_WND) {
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
