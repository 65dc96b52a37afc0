//! Template `tcp_io`: send and receive calls on TCP sockets, in the calling
//! process, with the size asked and the bytes moved.
//!
//! `tcp_sendmsg()`/`tcp_recvmsg()` are reached from many syscalls; the
//! `sock_send_length(sk, ret, flags)` / `sock_recv_length` raw tracepoints
//! fire once per call with the result. The size asked is only in the
//! syscall's arguments, so the `syscalls:sys_enter_*` tracepoints of the
//! calls that reach a socket (read, write, sendto, recvfrom, sendmsg,
//! recvmsg, readv, writev) note it per thread when the fd is a TCP socket,
//! and the length tracepoint picks it up.
//!
//! Where fexit programs load (6.1 with its BTF; not this project's dev
//! host), one fexit program on `tcp_sendmsg(sk, msg, size)` /
//! `tcp_recvmsg(sk, msg, len, flags, ...)` sees the parameters and the
//! result together. Kernels without fexit or those tracepoints get the
//! kprobe strategy: a kprobe at entry and a kretprobe for the result.
//! Both find the parameters by their positions in the function's BTF
//! prototype.
#![no_std]
// `asm!` for BPF: `common::ctx_load`.
#![feature(asm_experimental_arch)]
#![no_main]

#[path = "../common.rs"]
mod common;

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_get_current_task, bpf_probe_read_user},
    macros::{fexit, kprobe, kretprobe, map, raw_tracepoint, tracepoint},
    maps::LruHashMap,
    programs::{
        FExitContext, ProbeContext, RawTracePointContext, RetProbeContext, TracePointContext,
    },
    EbpfContext,
};
use common::*;
use tcpq_abi::{off, slot::io as s};

/// What a thread asked for in the syscall it is in.
#[derive(Clone, Copy)]
#[repr(C)]
struct Pending {
    sk: u64,
    size: u64,
}

#[map]
static TCPQ_PENDING: LruHashMap<u32, Pending> = LruHashMap::with_max_entries(16384, 0);

/// Most iovec entries summed for readv/writev/sendmsg/recvmsg.
const MAX_IOV: u64 = 16;

/// The TCP socket behind `fd` in the current task, or 0.
#[inline(always)]
fn tcp_sock_of_fd(fd: u64) -> u64 {
    let task = unsafe { bpf_get_current_task() };
    let files = read_ptr(task, loc(off::TASK_FILES).off);
    let fdt = read_ptr(files, loc(off::FILES_FDT).off);
    if fdt == 0 || fd >= read_off(fdt, off::FDT_MAX_FDS) {
        return 0;
    }
    let fds = read_ptr(fdt, loc(off::FDT_FD).off);
    if fds == 0 {
        return 0;
    }
    let file: u64 = read(fds + fd * 8);
    let sock = read_ptr(file, loc(off::FILE_PRIVATE_DATA).off);
    // Only a socket's file has a private_data whose `file` points back.
    if sock == 0 || read_ptr(sock, loc(off::SOCKET_FILE).off) != file {
        return 0;
    }
    let sk = read_ptr(sock, loc(off::SOCKET_SK).off);
    if is_full_tcp_sock(sk) {
        sk
    } else {
        0
    }
}

#[inline(always)]
fn note(fd: u64, size: u64) {
    let sk = tcp_sock_of_fd(fd);
    if sk != 0 {
        let tid = bpf_get_current_pid_tgid() as u32;
        let _ = TCPQ_PENDING.insert(tid, Pending { sk, size }, 0);
    }
}

/// Sum the lengths of a user iovec array.
#[inline(always)]
fn iov_total(iov: u64, n: u64) -> u64 {
    let len_off = loc(off::IOVEC_LEN).off as u64;
    let stride = loc(off::IOVEC_SIZE).off as u64;
    let mut total = 0u64;
    let mut i = 0;
    while i < MAX_IOV {
        if i >= n {
            break;
        }
        let len: u64 =
            unsafe { bpf_probe_read_user((iov + i * stride + len_off) as *const u64) }.unwrap_or(0);
        total = total.wrapping_add(len);
        i += 1;
    }
    total
}

/// read, write, sendto, recvfrom: (fd, buf, len).
#[tracepoint]
pub fn tcpq_io_enter(ctx: TracePointContext) -> u32 {
    note(
        tp_field(&ctx, off::TP_SYS_FD),
        tp_field(&ctx, off::TP_SYS_ARG2),
    );
    0
}

/// readv, writev: (fd, iov, iovcnt).
#[tracepoint]
pub fn tcpq_io_enter_v(ctx: TracePointContext) -> u32 {
    let fd = tp_field(&ctx, off::TP_SYS_FD);
    let iov = tp_field(&ctx, off::TP_SYS_ARG1);
    let n = tp_field(&ctx, off::TP_SYS_ARG2);
    note(fd, iov_total(iov, n));
    0
}

/// sendmsg, recvmsg: (fd, msghdr, flags).
#[tracepoint]
pub fn tcpq_io_enter_m(ctx: TracePointContext) -> u32 {
    let fd = tp_field(&ctx, off::TP_SYS_FD);
    let msg = tp_field(&ctx, off::TP_SYS_ARG1);
    let iov_p = msg + loc(off::MSGHDR_IOV).off as u64;
    let n_p = msg + loc(off::MSGHDR_IOVLEN).off as u64;
    let iov: u64 = unsafe { bpf_probe_read_user(iov_p as *const u64) }.unwrap_or(0);
    let n: u64 = unsafe { bpf_probe_read_user(n_p as *const u64) }.unwrap_or(0);
    note(fd, iov_total(iov, n));
    0
}

/// A kprobe'd call in progress, per thread.
#[derive(Clone, Copy)]
#[repr(C)]
struct KCall {
    sk: u64,
    size: u64,
    flags: u64,
}

#[map]
static TCPQ_KCALLS: LruHashMap<u32, KCall> = LruHashMap::with_max_entries(16384, 0);

/// The kprobe'd function's parameter whose position `OFFSETS[index]`
/// holds, read from the saved registers. Through `bpf_probe_read_kernel`:
/// the verifier refuses a context read at an offset it cannot see.
#[inline(always)]
fn karg(ctx: &ProbeContext, index: u32) -> u64 {
    let l = loc(index);
    if l.size == 0 || l.off >= 6 {
        return 0;
    }
    ctx_field(ctx.as_ptr() as u64, off::PT_REGS_ARG0 + l.off)
}

#[inline(always)]
fn kenter(ctx: &ProbeContext, sk_i: u32, size_i: u32, flags_i: Option<u32>) {
    let sk = karg(ctx, sk_i);
    if !is_full_tcp_sock(sk) {
        return;
    }
    let call = KCall {
        sk,
        size: karg(ctx, size_i),
        flags: match flags_i {
            Some(i) => karg(ctx, i),
            None => 0,
        },
    };
    let tid = bpf_get_current_pid_tgid() as u32;
    let _ = TCPQ_KCALLS.insert(tid, call, 0);
}

#[inline(always)]
fn kexit(ctx: &RetProbeContext) -> Option<()> {
    let tid = bpf_get_current_pid_tgid() as u32;
    let call = unsafe { TCPQ_KCALLS.get(tid) }.copied()?;
    let _ = TCPQ_KCALLS.remove(tid);
    let ret = ctx_field(ctx.as_ptr() as u64, off::PT_REGS_RET);
    emit(call.sk, call.size, sext32(ret), call.flags)
}

#[kprobe]
pub fn tcpq_io_ksend(ctx: ProbeContext) -> u32 {
    kenter(&ctx, off::KP_SEND_SK, off::KP_SEND_SIZE, None);
    0
}

#[kretprobe]
pub fn tcpq_io_ksend_ret(ctx: RetProbeContext) -> u32 {
    let _ = kexit(&ctx);
    0
}

#[kprobe]
pub fn tcpq_io_krecv(ctx: ProbeContext) -> u32 {
    kenter(
        &ctx,
        off::KP_RECV_SK,
        off::KP_RECV_LEN,
        Some(off::KP_RECV_FLAGS),
    );
    0
}

#[kretprobe]
pub fn tcpq_io_krecv_ret(ctx: RetProbeContext) -> u32 {
    let _ = kexit(&ctx);
    0
}

/// The fexit'd function's parameter whose position `OFFSETS[index]` holds:
/// the context is the parameters as 64-bit slots, then the return value.
/// Through `bpf_probe_read_kernel`, like [`karg`]: the position is only
/// known at run time.
#[inline(always)]
fn farg(ctx: &FExitContext, index: u32) -> u64 {
    let l = loc(index);
    if l.size == 0 || l.off >= 6 {
        return 0;
    }
    read_helper(ctx.as_ptr() as u64 + 8 * l.off as u64)
}

#[inline(always)]
fn fexit_done(ctx: &FExitContext, sk_i: u32, size_i: u32, flags_i: Option<u32>, ret_i: u32) {
    let sk = farg(ctx, sk_i);
    if sk == 0 || read_off_hot(sk, off::SK_PROTOCOL) != IPPROTO_TCP {
        return;
    }
    let flags = match flags_i {
        Some(i) => farg(ctx, i) & 0xffff_ffff,
        None => 0,
    };
    let ret = ctx_field(ctx.as_ptr() as u64, ret_i);
    let _ = emit(sk, farg(ctx, size_i), sext32(ret), flags);
}

#[fexit(function = "tcp_sendmsg")]
pub fn tcpq_io_fsend(ctx: FExitContext) -> u32 {
    fexit_done(
        &ctx,
        off::KP_SEND_SK,
        off::KP_SEND_SIZE,
        None,
        off::FX_SEND_RET,
    );
    0
}

#[fexit(function = "tcp_recvmsg")]
pub fn tcpq_io_frecv(ctx: FExitContext) -> u32 {
    fexit_done(
        &ctx,
        off::KP_RECV_SK,
        off::KP_RECV_LEN,
        Some(off::KP_RECV_FLAGS),
        off::FX_RECV_RET,
    );
    0
}

#[raw_tracepoint(tracepoint = "sock_send_length")]
pub fn tcpq_io_send(ctx: RawTracePointContext) -> i32 {
    let _ = done(&ctx);
    0
}

#[raw_tracepoint(tracepoint = "sock_recv_length")]
pub fn tcpq_io_recv(ctx: RawTracePointContext) -> i32 {
    let _ = done(&ctx);
    0
}

#[inline(always)]
fn done(ctx: &RawTracePointContext) -> Option<()> {
    let cfg = config()?;
    // Every send and receive on the machine comes here: one read says
    // whether it is TCP; the full-socket check (three reads) waits for the
    // events the early filter passes.
    let sk = tp_field(ctx, off::TP_SOCK_LENGTH_SK);
    if sk == 0 || read_off_hot(sk, off::SK_PROTOCOL) != IPPROTO_TCP {
        return None;
    }
    // The size asked was noted at the syscall's entry, for clauses that
    // use it (the entry programs are attached only for them).
    let size = if cfg.probe & tcpq_abi::probe_bit(s::SIZE) != 0 {
        let tid = bpf_get_current_pid_tgid() as u32;
        let size = match unsafe { TCPQ_PENDING.get(tid) } {
            Some(p) if p.sk == sk => p.size,
            _ => 0,
        };
        let _ = TCPQ_PENDING.remove(tid);
        size
    } else {
        0
    };
    emit(
        sk,
        size,
        sext32(tp_field(ctx, off::TP_SOCK_LENGTH_RET)),
        tp_field(ctx, off::TP_SOCK_LENGTH_FLAGS),
    )
}

/// One call's record. It runs in the caller's context, so the caller is
/// the socket's owner (and becomes it, for this template's other events).
#[inline(always)]
fn emit(sk: u64, size: u64, ret: u64, flags: u64) -> Option<()> {
    let cfg = config()?;
    let ev = begin_probe_slots()?;
    let v = &mut ev.vals;
    v[s::SIZE as usize] = size;
    v[s::RET as usize] = ret;
    v[s::FLAGS as usize] = flags;
    if !passes_early(cfg, ev) || !is_full_tcp_sock(sk) {
        return None;
    }
    claim(sk);
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
