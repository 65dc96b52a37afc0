//! Code and maps shared by every template. Each template binary includes this
//! module, so each object carries its own copy of the maps and of the
//! owner-tracking programs; the runtime loads and attaches all of them.
//!
//! Nothing here knows a struct layout: every kernel offset comes from the
//! `TCPQ_RO_OFFSETS` table, set by the runtime from BTF and tracepoint
//! format files. Nothing here knows the user's question: the filter and the
//! action come from `TCPQ_RO_CONFIG`. Both are read-only globals the runtime
//! sets before loading the object.

// Each template uses part of this module.
#![allow(dead_code)]

use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_task, bpf_get_smp_processor_id, bpf_ktime_get_ns,
        bpf_probe_read_kernel,
    },
    macros::{map, raw_tracepoint},
    maps::{Array, LruHashMap, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::{RawTracePointContext, TracePointContext},
    EbpfContext,
};
use tcpq_abi::{
    action, base, bucket, off, scale, slot, stat, AggKey, AggValue, Event, FieldLoc, ListenKey,
    Owner, SmallAggKey, TemplateConfig, TupleKey, INSN_SIGNED, JUMP_ACCEPT, JUMP_REJECT, MAX_INSNS,
    MAX_KEY_SLOTS, MAX_LOADS, N_OFFSETS, N_SLOTS, VIA_NONE,
};

pub const AF_INET: u64 = 2;
pub const AF_INET6: u64 = 10;
pub const IPPROTO_TCP: u64 = 6;
pub const SOCK_STREAM: u64 = 1;

pub const TCP_SYN_SENT: u64 = 2;
pub const TCP_TIME_WAIT: u64 = 6;
pub const TCP_CLOSE: u64 = 7;
pub const TCP_LISTEN: u64 = 10;
pub const TCP_NEW_SYN_RECV: u64 = 12;

/// `BPF_F_NO_PREALLOC`.
const BPF_F_NO_PREALLOC: u32 = 1;

/// The configuration (`tcpq_abi::globals::CONFIG`), set by the runtime
/// before it loads the object: frozen `.rodata`, whose values the verifier
/// knows. Read it through [`config`].
///
/// Mutable and exported (`.cargo/config.toml`) only for the compiler: it
/// would fold the initial value of a constant, or of a global the linker
/// keeps private, into the code. Nothing writes it. (It was read through
/// `black_box` before, which cost every event a pointer stored to the
/// stack and loaded back ahead of its first configuration read.)
#[unsafe(no_mangle)]
#[unsafe(link_section = ".rodata")]
static mut TCPQ_RO_CONFIG: TemplateConfig = TemplateConfig::EMPTY;

/// [`TCPQ_RO_CONFIG`], configured or not.
#[inline(always)]
fn ro_config() -> &'static TemplateConfig {
    // SAFETY: never written (see TCPQ_RO_CONFIG).
    unsafe { &*core::ptr::addr_of!(TCPQ_RO_CONFIG) }
}

/// Where each kernel value is (`tcpq_abi::globals::OFFSETS`), set like
/// [`TCPQ_RO_CONFIG`]. Read it through [`loc`].
#[unsafe(no_mangle)]
#[unsafe(link_section = ".rodata")]
static mut TCPQ_RO_OFFSETS: [FieldLoc; N_OFFSETS] = [FieldLoc::EMPTY; N_OFFSETS];

/// The runtime may resize it before load; this is the default.
#[map]
pub static TCPQ_EVENTS: RingBuf = RingBuf::with_byte_size(1 << 20, 0);

/// Not preallocated: creating a preallocated per-CPU hash of this size took
/// about 10 ms of tcpq's start-up, for a map most runs never fill.
#[map]
pub static TCPQ_AGG: PerCpuHashMap<AggKey, AggValue> =
    PerCpuHashMap::with_max_entries(16384, BPF_F_NO_PREALLOC);

/// `TCPQ_AGG` for keys of two words or fewer (`tcpq_abi::small_key`).
#[map]
pub static TCPQ_AGG_SMALL: PerCpuHashMap<SmallAggKey, AggValue> =
    PerCpuHashMap::with_max_entries(16384, BPF_F_NO_PREALLOC);

#[map]
pub static TCPQ_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(stat::N_STATS, 0);

#[map]
pub static TCPQ_OWNERS: LruHashMap<u64, Owner> = LruHashMap::with_max_entries(65536, 0);

#[map]
pub static TCPQ_LISTENERS: LruHashMap<ListenKey, Owner> = LruHashMap::with_max_entries(4096, 0);

#[map]
pub static TCPQ_TUPLES: LruHashMap<TupleKey, Owner> = LruHashMap::with_max_entries(16384, 0);

/// The socket and process `tcpq_own_io` last saw on this CPU, and the
/// [`TCPQ_OWNER_GEN`] it saw them in.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct LastIo {
    sk: u64,
    tgid: u32,
    generation: u64,
}

#[map]
pub static TCPQ_LAST_IO: PerCpuArray<LastIo> = PerCpuArray::with_max_entries(1, 0);

/// Bumped whenever an owner is set or forgotten, so that no CPU's
/// [`LastIo`] outlives what it saw (another process may have taken the
/// socket over, or its memory may have become another socket). Shared by
/// the session's objects, like `TCPQ_OWNERS`.
#[map]
pub static TCPQ_OWNER_GEN: Array<u64> = Array::with_max_entries(1, 0);

/// Make `owner` the owner of `sk`.
#[inline(always)]
pub fn set_owner(sk: u64, owner: Owner) {
    let _ = TCPQ_OWNERS.insert(sk, owner, 0);
    owners_changed();
}

/// The current process is using `sk`: make it the owner unless it is.
#[inline(always)]
pub fn claim(sk: u64) {
    claim_for(sk, (bpf_get_current_pid_tgid() >> 32) as u32);
}

#[inline(always)]
fn claim_for(sk: u64, tgid: u32) {
    let known = match unsafe { TCPQ_OWNERS.get(sk) } {
        Some(o) => o.pid == tgid,
        None => false,
    };
    if !known {
        set_owner(sk, current_owner());
    }
}

/// Invalidate every CPU's [`LastIo`]: an owner was set or forgotten.
#[inline(always)]
pub fn owners_changed() {
    if let Some(g) = TCPQ_OWNER_GEN.get_ptr_mut(0) {
        // Not atomic (this target's core has no atomic add): two CPUs
        // racing here may store the same value, but it differs from the
        // one before either, which is all a `LastIo` is checked against;
        // a cache taken in the nanoseconds between the two stores may
        // miss the second change until the next one.
        unsafe { core::ptr::write_volatile(g, core::ptr::read_volatile(g).wrapping_add(1)) };
    }
}

/// One record under construction per CPU (too big for the 512-byte stack).
#[map]
pub static TCPQ_SCRATCH: PerCpuArray<Event> = PerCpuArray::with_max_entries(1, 0);

#[inline(always)]
pub fn stat_inc(which: u32) {
    if let Some(p) = TCPQ_STATS.get_ptr_mut(which) {
        // Per-CPU slot: no other writer while this program runs here.
        unsafe { *p += 1 };
    }
}

/// The `OFFSETS` entry `index`. With a constant `index` (almost every
/// read) the verifier knows the entry, and checks and keeps only the code
/// for its size and shape.
#[inline(always)]
pub fn loc(index: u32) -> FieldLoc {
    // SAFETY: never written (see TCPQ_RO_CONFIG).
    unsafe { (*core::ptr::addr_of!(TCPQ_RO_OFFSETS))[index as usize & (N_OFFSETS - 1)] }
}

/// A `T` (a number of 1 to 8 bytes) at kernel address `addr`.
#[inline(always)]
pub fn read<T: Copy + Default>(addr: u64) -> T {
    const { assert!(core::mem::size_of::<T>() <= 8) };
    let v = read_kernel(addr, core::mem::size_of::<T>() as u32);
    // SAFETY: T is a plain number no larger than 8 bytes; little-endian,
    // its bytes are the low bytes of `v`.
    unsafe { core::mem::transmute_copy(&v) }
}

/// A `T` at `addr` through `bpf_probe_read_kernel`, whatever the kernel.
#[inline(always)]
pub fn read_helper<T: Copy + Default>(addr: u64) -> T {
    match unsafe { bpf_probe_read_kernel(addr as *const T) } {
        Ok(v) => v,
        Err(_) => {
            stat_inc(stat::READ_ERR);
            T::default()
        }
    }
}

/// Read a pointer-sized value at `base + off`.
#[inline(always)]
pub fn read_ptr(base: u64, off: u32) -> u64 {
    tcpq_read_loc(base, off as u64 | 8 << 32)
}

/// Read the value `l` describes, zero-extended: the bytes the field
/// occupies through [`read_kernel`] (one load, or one helper call for
/// every size: with a call per size, each read inlined before the early
/// filter was eight call sites for the verifier), then the bit field's
/// shift and mask.
#[inline(always)]
fn read_loc_inline(base: u64, l: &FieldLoc) -> u64 {
    if base == 0 || l.size == 0 {
        return 0;
    }
    // A whole field first and on its own: with the entry known to the
    // verifier (frozen `.rodata`), that path is all it keeps, with no
    // shift or mask left over from the bit-field one.
    if l.bit_size == 0 {
        return read_kernel(base + l.off as u64, (l.size as u32).min(8));
    }
    let end = l.bit_off as u32 + l.bit_size as u32;
    let mask = if l.bit_size >= 64 {
        u64::MAX
    } else {
        (1u64 << l.bit_size) - 1
    };
    (read_kernel(base + l.off as u64, end.div_ceil(8).min(8)) >> (l.bit_off as u64 & 63)) & mask
}

/// 1 when the runtime rewrote this object's placeholder calls into calls of
/// `bpf_rdonly_cast` (see `tcpq_abi::fast_read`). Frozen `.rodata`: the
/// verifier knows its value, so it checks, and the JIT keeps, only the
/// path this kernel takes. Mutable and exported like [`TCPQ_RO_CONFIG`],
/// which also keeps the three in one `.rodata` section.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".rodata")]
static mut TCPQ_FAST_READ: u32 = 0;

#[inline(always)]
pub fn fast_read() -> bool {
    // SAFETY: never written.
    unsafe { core::ptr::read_volatile(core::ptr::addr_of!(TCPQ_FAST_READ)) != 0 }
}

/// `bpf_rdonly_cast(addr, 0)`: `addr` as read-only untrusted memory, which
/// the program may load from directly. The verifier turns the call into a
/// register move and each load into one the JIT guards with an exception
/// entry: a bad address reads as 0 instead of faulting. On the kernel here
/// a `bpf_probe_read_kernel` of one field cost about 50 ns (the call, the
/// fault-tolerant copy, the SRSO-safe return); such a load costs a few.
#[inline(always)]
fn untrusted(addr: u64) -> u64 {
    let cast: unsafe extern "C" fn(u64, u64) -> u64 =
        unsafe { core::mem::transmute(tcpq_abi::fast_read::CAST_CALL as usize) };
    unsafe { cast(addr, 0) }
}

/// `bytes` (1 to 8) bytes at kernel address `addr`, zero-extended. Never
/// reads more than the bytes asked for rounded up to a power of two, so a
/// field at the very end of an object does not make the read cross into
/// the next page.
#[inline(always)]
pub fn read_kernel(addr: u64, bytes: u32) -> u64 {
    if fast_read() {
        let p = untrusted(addr);
        // One arm a size, each a lone load: the verifier, knowing `bytes`,
        // keeps one (3, 5, 6 and 7 bytes, which no field has, are masked).
        // SAFETY: `p` is an untrusted kernel address; the kernel turns a
        // faulting load into 0.
        let v = unsafe {
            if bytes == 1 {
                return core::ptr::read_volatile(p as *const u8) as u64;
            } else if bytes == 2 {
                return core::ptr::read_volatile(p as *const u16) as u64;
            } else if bytes == 4 {
                return core::ptr::read_volatile(p as *const u32) as u64;
            } else if bytes >= 8 {
                return core::ptr::read_volatile(p as *const u64);
            } else if bytes < 4 {
                core::ptr::read_volatile(p as *const u32) as u64
            } else {
                core::ptr::read_volatile(p as *const u64)
            }
        };
        return v & ((1u64 << (bytes * 8)) - 1);
    }
    read_by_helper(addr, bytes)
}

/// `bytes` (1 to 8) at `addr` through one `bpf_probe_read_kernel` call,
/// into a zeroed word (little-endian: the bytes read are the value's low
/// bytes).
#[inline(always)]
fn read_by_helper(addr: u64, bytes: u32) -> u64 {
    let mut v: u64 = 0;
    let r = unsafe {
        aya_ebpf::helpers::generated::bpf_probe_read_kernel(
            &mut v as *mut u64 as *mut core::ffi::c_void,
            bytes,
            addr as *const core::ffi::c_void,
        )
    };
    if r != 0 {
        stat_inc(stat::READ_ERR);
        return 0;
    }
    v
}

/// A [`FieldLoc`] in one register, for the global functions below (whose
/// arguments must be scalars).
#[inline(always)]
fn pack(l: &FieldLoc) -> u64 {
    l.off as u64 | (l.size as u64) << 32 | (l.bit_off as u64) << 40 | (l.bit_size as u64) << 48
}

/// [`read_loc`] out of line, as a global function: with the BTF the
/// templates carry, the verifier checks its body once, on its own, rather
/// than again at each of the dozens of places that read a kernel field.
/// Its arguments are plain numbers, so `base` must be an address read from
/// the kernel, never the program's context (see [`ctx_field`]).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn tcpq_read_loc(base: u64, packed: u64) -> u64 {
    let l = FieldLoc {
        off: packed as u32,
        size: (packed >> 32) as u8,
        bit_off: (packed >> 40) as u8,
        bit_size: (packed >> 48) as u8,
        _pad: 0,
    };
    read_loc_inline(base, &l)
}

/// The kernel value the `OFFSETS` entry `index` describes, read at `base`
/// (a kernel address): a global function, checked once (see
/// [`tcpq_read_loc`]).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn tcpq_read_off(base: u64, index: u32) -> u64 {
    // The read itself in line: a call less on every field read.
    read_loc_inline(base, &loc(index))
}

/// [`read_off`] in line, for the few reads an event makes before its early
/// filter. Everywhere else a read calls the global function, which the
/// verifier checks once; on this hot path the call would cost more than
/// the rest: measured, a read through it took 13 ns longer (the kernel
/// here returns from every BPF subprogram through its SRSO "safe RET"
/// thunk).
#[inline(always)]
pub fn read_off_hot(base: u64, index: u32) -> u64 {
    read_loc_inline(base, &loc(index))
}

/// [`read_off_hot`] before the early filter (`before`), [`read_off`]
/// after it. A function rather than the closure each template had: once
/// the reads became loads the closure grew past what LLVM inlines, and
/// each of its uses cost a BPF-to-BPF call and return.
#[inline(always)]
pub fn read_now(before: bool, base: u64, index: u32) -> u64 {
    if before {
        read_off_hot(base, index)
    } else {
        read_off(base, index)
    }
}

/// [`read_ptr`] in line (see [`read_off_hot`]).
#[inline(always)]
pub fn read_ptr_hot(base: u64, off: u32) -> u64 {
    if base == 0 {
        return 0;
    }
    read_kernel(base + off as u64, 8)
}

/// Read the value `l` describes at `base` (a kernel address).
#[inline(always)]
pub fn read_loc(base: u64, l: &FieldLoc) -> u64 {
    tcpq_read_loc(base, pack(l))
}

/// Read the kernel value the `OFFSETS` entry `index` describes.
#[inline(always)]
pub fn read_off(base: u64, index: u32) -> u64 {
    tcpq_read_off(base, index)
}

/// Read the `OFFSETS` entry `index` from the program's context (`ctx`
/// pointer): like any other field ([`read_kernel`]), but not through the
/// global functions, whose arguments cannot be the context.
#[inline(never)]
pub fn ctx_field(ctx: u64, index: u32) -> u64 {
    read_loc_inline(ctx, &loc(index))
}

/// A tracepoint field: for a classic tracepoint at the offset its format
/// file gave, for a raw tracepoint the `TP_PROTO` argument (offset
/// `8 * position`, checked against the kernel's BTF by the runtime). An
/// argument a kernel lacks (size 0) reads as 0 and never fails the attach.
#[inline(always)]
pub fn tp_field<C: TpArgs>(ctx: &C, index: u32) -> u64 {
    ctx.arg(index)
}

/// How a program's context gives up a tracepoint field.
pub trait TpArgs {
    fn arg(&self, index: u32) -> u64;
}

impl TpArgs for RawTracePointContext {
    /// The first argument straight from the context, with no helper call;
    /// the others through `bpf_probe_read_kernel`. The kernel refuses to
    /// attach a raw tracepoint program that may read the context beyond the
    /// tracepoint's arguments (EINVAL), and the tracepoints the templates
    /// use have as few as one (`net_dev_queue(skb)`, `tcp_destroy_sock(sk)`).
    #[inline(always)]
    fn arg(&self, index: u32) -> u64 {
        let l = loc(index);
        if l.off == 0 && l.size == 8 {
            unsafe { *(self.as_ptr() as *const u64) }
        } else {
            ctx_field(self.as_ptr() as u64, index)
        }
    }
}

impl TpArgs for TracePointContext {
    /// Through `bpf_probe_read_kernel`: the offset comes from the format
    /// file at run time, and the verifier only allows constant offsets
    /// into the context. (A comparison tree of constant-offset loads
    /// would avoid the helper, but the kernel refuses to attach a program
    /// whose context reads may reach past the tracepoint's record, and
    /// records differ in size from one tracepoint and kernel to another.)
    #[inline(always)]
    fn arg(&self, index: u32) -> u64 {
        ctx_field(self.as_ptr() as u64, index)
    }
}

/// Sign-extend a 32-bit tracepoint `int`.
#[inline(always)]
pub fn sext32(v: u64) -> u64 {
    v as u32 as i32 as i64 as u64
}

#[inline(always)]
fn comm_words(comm: &[u8; 16]) -> (u64, u64) {
    let mut a = 0u64;
    let mut b = 0u64;
    let mut i = 0;
    while i < 8 {
        a |= (comm[i] as u64) << (8 * i);
        b |= (comm[8 + i] as u64) << (8 * i);
        i += 1;
    }
    (a, b)
}

/// Write zeroes one word at a time. A plain `= [0; N]` or `Default` of a
/// byte array becomes a call to `memset`, which this target implements as
/// a loop storing one byte per iteration (5 instructions a byte).
#[inline(always)]
fn zero_words<const N: usize>(words: &mut [u64; N]) {
    for w in words.iter_mut() {
        unsafe { core::ptr::write_volatile(w, 0) };
    }
}

/// The current task's `comm` as the two little-endian words a record
/// stores (zero when the helper fails, like `bpf_get_current_comm()`'s
/// caller used to substitute).
#[inline(always)]
fn current_comm_words() -> [u64; 2] {
    let mut words = [0u64; 2];
    zero_words(&mut words);
    // The helper zeroes the buffer itself when it fails.
    unsafe { aya_ebpf::helpers::generated::bpf_get_current_comm(words.as_mut_ptr() as *mut _, 16) };
    words
}

#[inline(always)]
pub fn current_owner() -> Owner {
    let id = bpf_get_current_pid_tgid();
    Owner {
        pid: (id >> 32) as u32,
        tid: id as u32,
        // Little-endian words back to bytes: the same 16 bytes.
        comm: unsafe { core::mem::transmute::<[u64; 2], [u8; 16]>(current_comm_words()) },
    }
}

/// Is `sk` a full TCP socket (not a request or time-wait mini-socket, not the
/// per-netns control socket that sends resets)?
#[inline(always)]
pub fn is_full_tcp_sock(sk: u64) -> bool {
    if sk == 0 {
        return false;
    }
    // sk_state lives in sock_common, which mini-sockets share: check it
    // before reading anything beyond sock_common.
    let state = read_off(sk, off::SKC_STATE);
    if state == TCP_TIME_WAIT || state == TCP_NEW_SYN_RECV || state == 0 {
        return false;
    }
    read_off(sk, off::SK_PROTOCOL) == IPPROTO_TCP && read_off(sk, off::SK_TYPE) == SOCK_STREAM
}

#[inline(always)]
pub fn sock_netns(sk: u64) -> u32 {
    let net = read_ptr(sk, loc(off::SKC_NET).off);
    read_off(net, off::NET_INUM) as u32
}

/// The common slots of the addresses (their family comes with them).
const ADDR_SLOTS: u32 = 1 << slot::FAMILY
    | 1 << slot::SADDR_HI
    | 1 << slot::SADDR_LO
    | 1 << slot::DADDR_HI
    | 1 << slot::DADDR_LO;
/// The common slots of a connection's [`TupleKey`].
const TUPLE_SLOTS: u32 = ADDR_SLOTS | 1 << slot::SPORT | 1 << slot::DPORT | 1 << slot::NETNS;

/// Start a record in this CPU's scratch slot, zeroed.
#[inline(always)]
pub fn begin() -> Option<&'static mut Event> {
    let ev = begin_probe_slots()?;
    clear_shared(ev);
    Some(ev)
}

/// Start a record in this CPU's scratch slot with only the probe slots
/// that the clause reads zeroed: what a template writes before its
/// early filter. The others it reads are cleared by [`passes_early`] for
/// the events it lets through, so an event the early filter rejects never
/// pays for clearing them.
#[inline(always)]
pub fn begin_probe_slots() -> Option<&'static mut Event> {
    let ev = unsafe { &mut *TCPQ_SCRATCH.get_ptr_mut(0)? };
    let cfg = ro_config();
    let n = cfg.n_clear_probe as usize;
    clear_slots(ev, cfg, 0, n.min(LOADED - PROBE_FIRST));
    Some(ev)
}

const PROBE_FIRST: usize = slot::PROBE_FIRST as usize;
const LOADED: usize = slot::LOADED as usize;

/// Zero the slots the clause reads other than the probe slots (see
/// [`begin_probe_slots`] and [`TemplateConfig::clear`]).
#[inline(always)]
fn clear_shared(ev: &mut Event) {
    let cfg = ro_config();
    clear_slots(ev, cfg, cfg.n_clear_probe as usize, cfg.n_clear as usize);
}

/// Zero the slots `clear[from..to]` names: one store each, at an index
/// from the frozen configuration (the verifier, knowing both bounds, walks
/// exactly these iterations).
#[inline(always)]
fn clear_slots(ev: &mut Event, cfg: &TemplateConfig, from: usize, to: usize) {
    let mut i = from;
    while i < to && i < N_SLOTS {
        let s = cfg.clear[i] as usize & (N_SLOTS - 1);
        // Word stores the compiler may not merge (see `zero_words`).
        unsafe { core::ptr::write_volatile(ev.vals.get_unchecked_mut(s), 0) };
        i += 1;
    }
}

/// The common slots of the on-CPU task.
const TASK_SLOTS: u32 = 1 << slot::TASK_PID | 1 << slot::TASK_COMM_0 | 1 << slot::TASK_COMM_1;

/// The task on the CPU (not the socket's owner).
#[inline(always)]
fn fill_task(ev: &mut Event) {
    let id = bpf_get_current_pid_tgid();
    ev.vals[slot::TASK_PID as usize] = id >> 32;
    let [a, b] = current_comm_words();
    ev.vals[slot::TASK_COMM_0 as usize] = a;
    ev.vals[slot::TASK_COMM_1 as usize] = b;
}

/// Does the template fill probe slot `slot` before [`rejected_early`]
/// (`before`) or after it? With an early filter, the slots the filter
/// reads ([`TemplateConfig::early_probe`]) come before and the others after;
/// otherwise all of them come before. A slot the clause does not read
/// ([`TemplateConfig::probe`]) is not filled at all. So every probe slot the
/// clause reads is filled exactly once, and an event the early filter
/// rejects costs only its reads. The runtime folds those three fields
/// into [`TemplateConfig::probe_before`] and [`TemplateConfig::probe_after`]:
/// one load and one test a slot.
///
/// The masks come from the frozen configuration, so the verifier knows
/// every bit and walks one path (they were read afresh, volatile, at every
/// call when the configuration was an ordinary map, whose values the
/// verifier does not know).
#[inline(always)]
pub fn probe_slot_due(cfg: &TemplateConfig, before: bool, slot: u8) -> bool {
    let bit = 1u32 << ((slot - tcpq_abi::slot::PROBE_FIRST) & 15);
    let due = if before {
        cfg.probe_before
    } else {
        cfg.probe_after
    };
    due as u32 & bit != 0
}

/// With a filter over the probe slots only (`filter_early`), run it now,
/// before the socket, the owner and the loads are read: true when the
/// record is rejected and the template should stop.
#[inline(always)]
pub fn rejected_early(cfg: &TemplateConfig, ev: &Event) -> bool {
    if cfg.filter_early == 0 {
        return false;
    }
    !filter(cfg, ev)
}

/// One load of `$ty` at each listed constant offset from `$ctx`, the arm
/// chosen by `$off`: `None` for an offset not listed.
macro_rules! ctx_arms {
    ($ctx:expr, $off:expr, $ty:literal, [$($o:literal)*]) => {
        match $off {
            $($o => {
                let v: u64;
                // SAFETY: a load from the program's context, which the
                // verifier checks against the record's size.
                unsafe {
                    core::arch::asm!(
                        concat!("{0} = *(", $ty, " *)({1} + ", stringify!($o), ")"),
                        out(reg) v,
                        in(reg) $ctx,
                        options(readonly, nostack, preserves_flags),
                    )
                };
                Some(v)
            })*
            _ => None,
        }
    };
}

/// `size` bytes at offset `off` of a classic tracepoint's record, as one
/// load straight from the program's context, for an aligned field of 2, 4
/// or 8 bytes in the record's first 256 (else `None`). The verifier allows only loads
/// at a constant offset from the context, so each offset is an arm of its
/// own (written in assembly, which the compiler cannot merge into one load
/// at a variable offset); with `off` and `size` from the frozen
/// configuration, the verifier keeps the one arm they name, and counts
/// only its bytes against the record's size when the program attaches.
#[inline(always)]
pub fn ctx_load(ctx: *const core::ffi::c_void, off: u32, size: u8) -> Option<u64> {
    match size {
        2 => {
            ctx_arms!(ctx, off, "u16", [0 2 4 6 8 10 12 14 16 18 20 22 24 26 28 30 32 34 36 38 40 42 44 46 48 50 52 54 56 58 60 62 64 66 68 70 72 74 76 78 80 82 84 86 88 90 92 94 96 98 100 102 104 106 108 110 112 114 116 118 120 122 124 126 128 130 132 134 136 138 140 142 144 146 148 150 152 154 156 158 160 162 164 166 168 170 172 174 176 178 180 182 184 186 188 190 192 194 196 198 200 202 204 206 208 210 212 214 216 218 220 222 224 226 228 230 232 234 236 238 240 242 244 246 248 250 252 254])
        }
        4 => {
            ctx_arms!(ctx, off, "u32", [0 4 8 12 16 20 24 28 32 36 40 44 48 52 56 60 64 68 72 76 80 84 88 92 96 100 104 108 112 116 120 124 128 132 136 140 144 148 152 156 160 164 168 172 176 180 184 188 192 196 200 204 208 212 216 220 224 228 232 236 240 244 248 252])
        }
        8 => {
            ctx_arms!(ctx, off, "u64", [0 8 16 24 32 40 48 56 64 72 80 88 96 104 112 120 128 136 144 152 160 168 176 184 192 200 208 216 224 232 240 248])
        }
        _ => None,
    }
}

/// The filter's first step straight from `base` (the program's context
/// or the socket: see [`tcpq_abi::Quick`]), before anything else, even
/// the check that there is a configuration (a quick step means there is
/// one): true when it rejects the event, and the template stops.
///
/// A load, a mask, a subtraction and a comparison, in line; the verifier
/// keeps the load of this configuration's size only. No scratch record, no
/// table walk, no counter. An event this lets through goes the usual way.
#[inline(always)]
pub fn quick_rejects(base: u64) -> bool {
    let q = &ro_config().quick;
    if !loads(q) {
        return false;
    }
    let mut v = read_kernel(base + q.off as u64, q.size as u32);
    if q.flags & tcpq_abi::Quick::BE16 != 0 {
        v = (v as u16).swap_bytes() as u64;
    }
    q.rejects(v & q.mask)
}

/// A quick step that loads its value: `size` 1 to 8 (not 0, no step, nor
/// [`tcpq_abi::Quick::COMPUTED`]), in one comparison.
#[inline(always)]
fn loads(q: &tcpq_abi::Quick) -> bool {
    q.size.wrapping_sub(1) < 8
}

/// [`quick_rejects`] for a value the template computes itself
/// ([`tcpq_abi::Quick::COMPUTED`]): `value` runs only when the quick step
/// tests `slot`.
#[inline(always)]
pub fn quick_rejects_computed(slot: u8, value: impl FnOnce() -> u64) -> bool {
    let q = &ro_config().quick;
    if q.size != tcpq_abi::Quick::COMPUTED || q.slot != slot {
        return false;
    }
    q.rejects(value() & q.mask)
}

/// [`quick_rejects`] for a classic tracepoint, whose values lie in its
/// record: one load straight from the context ([`ctx_load`]), on any
/// kernel.
#[inline(always)]
pub fn quick_rejects_record(ctx: &TracePointContext) -> bool {
    let q = &ro_config().quick;
    if !loads(q) {
        return false;
    }
    match ctx_load(ctx.as_ptr(), q.off, q.size) {
        Some(v) => q.rejects(v & q.mask),
        None => false,
    }
}

/// For a record begun with [`begin_probe_slots`]: true when the early filter lets
/// it through (or there is none), and then the rest of the record is
/// cleared for the slots still to come.
#[inline(always)]
pub fn passes_early(cfg: &TemplateConfig, ev: &mut Event) -> bool {
    if rejected_early(cfg, ev) {
        return false;
    }
    clear_shared(ev);
    true
}

/// Fill the slots every template shares from the socket `sk`: those of
/// addresses, ports, family, state, netns and cookie the clause uses
/// (`common`), and the socket's owner when it shows or tests it.
#[inline(always)]
pub fn fill_sock(ev: &mut Event, sk: u64) {
    tcpq_fill_sock(ev, sk);
}

/// [`fill_sock`] as a global function, checked once by the verifier
/// rather than at every path that reaches it (see [`tcpq_read_loc`]).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn tcpq_fill_sock(ev: *mut Event, sk: u64) -> u32 {
    let Some(cfg) = config() else { return 0 };
    if ev.is_null() {
        return 0;
    }
    fill_sock_inline(cfg, unsafe { &mut *ev }, sk);
    0
}

#[inline(always)]
fn fill_sock_inline(cfg: &TemplateConfig, ev: &mut Event, sk: u64) {
    let v = &mut ev.vals;
    v[slot::sock::SKADDR as usize] = sk;
    // The owner first: a socket tcpq has not seen used is looked up by its
    // connection's tuple, which must then be read whatever the clause shows.
    let mut known: Option<&Owner> = None;
    if cfg.owner != 0 {
        known = unsafe { TCPQ_OWNERS.get(sk) };
    }
    let tuple = cfg.owner != 0 && known.is_none();
    // Only the slots the clause reads (`common`), each read from the
    // configuration afresh: a mask kept in a register would make the
    // verifier walk every combination of its bits.
    let wants = |bits: u32| {
        let common = unsafe { core::ptr::read_volatile(&cfg.common) } as u32;
        common & bits != 0 || (tuple && TUPLE_SLOTS & bits != 0)
    };
    if wants(ADDR_SLOTS) {
        let family = read_off(sk, off::SKC_FAMILY);
        v[slot::FAMILY as usize] = family;
        if family == AF_INET6 {
            let s = loc(off::SKC_V6_RCV_SADDR);
            let d = loc(off::SKC_V6_DADDR);
            let (mut s_hi, mut s_lo, mut d_hi, mut d_lo) = (0, 0, 0, 0);
            if s.size != 0 {
                s_hi = u64::from_be(read_ptr(sk, s.off));
                s_lo = u64::from_be(read_ptr(sk, s.off + 8));
            }
            if d.size != 0 {
                d_hi = u64::from_be(read_ptr(sk, d.off));
                d_lo = u64::from_be(read_ptr(sk, d.off + 8));
            }
            v[slot::SADDR_HI as usize] = s_hi;
            v[slot::SADDR_LO as usize] = s_lo;
            v[slot::DADDR_HI as usize] = d_hi;
            v[slot::DADDR_LO as usize] = d_lo;
        } else {
            let s = read_off(sk, off::SKC_RCV_SADDR) as u32;
            let d = read_off(sk, off::SKC_DADDR) as u32;
            // All four words: the owner's tuple key reads them whether or
            // not the clause does (and then they are not cleared).
            v[slot::SADDR_HI as usize] = 0;
            v[slot::DADDR_HI as usize] = 0;
            v[slot::SADDR_LO as usize] = 0x0000_ffff_0000_0000 | u32::from_be(s) as u64;
            v[slot::DADDR_LO as usize] = 0x0000_ffff_0000_0000 | u32::from_be(d) as u64;
        }
    }
    if wants(1 << slot::STATE) {
        v[slot::STATE as usize] = read_off(sk, off::SKC_STATE);
    }
    if wants(1 << slot::SPORT) {
        let mut sport = read_off(sk, off::SKC_NUM);
        if sport == 0 && is_full_tcp_sock(sk) {
            // A socket close() aborted has given its port back already.
            sport = (read_off(sk, off::INET_SPORT) as u16).swap_bytes() as u64;
        }
        v[slot::SPORT as usize] = sport;
    }
    if wants(1 << slot::DPORT) {
        v[slot::DPORT as usize] = (read_off(sk, off::SKC_DPORT) as u16).swap_bytes() as u64;
    }
    if wants(1 << slot::NETNS) {
        v[slot::NETNS as usize] = sock_netns(sk) as u64;
    }
    if wants(1 << slot::SOCK_COOKIE) {
        v[slot::SOCK_COOKIE as usize] = read_off(sk, off::SKC_COOKIE);
    }

    if cfg.owner == 0 {
        return;
    }
    let netns = v[slot::NETNS as usize] as u32;
    let sport = v[slot::SPORT as usize];
    let owner = match known {
        Some(o) => Some(*o),
        None => {
            // A connection that existed before tcpq started and has not
            // been used since: its process, from /proc at start.
            let tuple = TupleKey {
                netns,
                sport: sport as u16,
                dport: v[slot::DPORT as usize] as u16,
                saddr: [v[slot::SADDR_HI as usize], v[slot::SADDR_LO as usize]],
                daddr: [v[slot::DADDR_HI as usize], v[slot::DADDR_LO as usize]],
            };
            match unsafe { TCPQ_TUPLES.get(tuple) } {
                Some(o) => Some(*o),
                None => {
                    // A passive socket nobody has touched since the
                    // handshake: its process is whoever listens on its port.
                    let key = ListenKey {
                        netns,
                        port: sport as u16,
                        _pad: 0,
                    };
                    unsafe { TCPQ_LISTENERS.get(key) }.copied()
                }
            }
        }
    };
    if let Some(o) = owner {
        v[slot::PID as usize] = o.pid as u64;
        let (a, b) = comm_words(&o.comm);
        v[slot::COMM_0 as usize] = a;
        v[slot::COMM_1 as usize] = b;
    }
}

/// Fill family, addresses and ports from the IP and TCP headers of `skb`
/// when there is no socket to read them from. `inbound`: the segment was
/// arriving, so the local side is its destination. Returns false when the
/// skb is not TCP over IPv4/IPv6 (or its headers cannot be read).
#[inline(always)]
pub fn fill_from_headers(ev: &mut Event, skb: u64, inbound: bool) -> bool {
    let head = read_ptr(skb, loc(off::SKB_HEAD).off);
    let nh = read_off(skb, off::SKB_NETWORK_HEADER);
    if head == 0 || nh == 0xffff {
        return false;
    }
    let ip = head + nh;
    let first: u8 = read(ip);
    let th_off = read_off(skb, off::SKB_TRANSPORT_HEADER);
    let (family, s_hi, s_lo, d_hi, d_lo, th) = match first >> 4 {
        4 => {
            let proto: u8 = read(ip + 9);
            if proto as u64 != IPPROTO_TCP {
                return false;
            }
            let sa: u32 = read(ip + 12);
            let da: u32 = read(ip + 16);
            let ihl = ((first & 0x0f) as u64) * 4;
            let th = if th_off != 0xffff && th_off != nh {
                head + th_off
            } else {
                ip + ihl
            };
            (
                AF_INET,
                0,
                0x0000_ffff_0000_0000 | u32::from_be(sa) as u64,
                0,
                0x0000_ffff_0000_0000 | u32::from_be(da) as u64,
                th,
            )
        }
        6 => {
            let next: u8 = read(ip + 6);
            if next as u64 != IPPROTO_TCP {
                return false;
            }
            let th = if th_off != 0xffff && th_off != nh {
                head + th_off
            } else {
                ip + 40
            };
            (
                AF_INET6,
                u64::from_be(read(ip + 8)),
                u64::from_be(read(ip + 16)),
                u64::from_be(read(ip + 24)),
                u64::from_be(read(ip + 32)),
                th,
            )
        }
        _ => return false,
    };
    let ports: u32 = read(th);
    let p = ports.to_le_bytes();
    let (src, dst) = (
        u16::from_be_bytes([p[0], p[1]]) as u64,
        u16::from_be_bytes([p[2], p[3]]) as u64,
    );
    let dev = read_ptr(skb, loc(off::SKB_DEV).off);
    let net = read_ptr(dev, loc(off::NETDEV_NET).off);
    let netns = read_off(net, off::NET_INUM);
    let v = &mut ev.vals;
    v[slot::FAMILY as usize] = family;
    v[slot::NETNS as usize] = netns;
    if inbound {
        v[slot::SADDR_HI as usize] = d_hi;
        v[slot::SADDR_LO as usize] = d_lo;
        v[slot::DADDR_HI as usize] = s_hi;
        v[slot::DADDR_LO as usize] = s_lo;
        v[slot::SPORT as usize] = dst;
        v[slot::DPORT as usize] = src;
    } else {
        v[slot::SADDR_HI as usize] = s_hi;
        v[slot::SADDR_LO as usize] = s_lo;
        v[slot::DADDR_HI as usize] = d_hi;
        v[slot::DADDR_LO as usize] = d_lo;
        v[slot::SPORT as usize] = src;
        v[slot::DPORT as usize] = dst;
    }
    true
}

/// Which outcomes of comparing `a` with `b` (bit 0: less, 1: equal,
/// 2: greater) each operator accepts, four bits per [`tcpq_abi::op`];
/// 6 and above read as `GE`, as they always did.
const OP_TRUTH: u64 = 0b010 // EQ
    | 0b101 << 4 // NE
    | 0b001 << 8 // LT
    | 0b011 << 12 // LE
    | 0b100 << 16 // GT
    | 0b110 << 20 // GE
    | 0b110 << 24
    | 0b110 << 28;

/// `a OP b`, as `i64` when `signed`. One unsigned three-way comparison and
/// a table lookup rather than a branch per operator and signedness: the
/// verifier walks this once per filter step, up to `MAX_INSNS` times, so
/// every path here multiplies. Flipping the sign bit of both sides turns a
/// signed order into the unsigned one.
#[inline(always)]
fn compare(op: u8, signed: bool, a: u64, b: u64) -> bool {
    let flip = (signed as u64) << 63;
    let (a, b) = (a ^ flip, b ^ flip);
    let outcome = (a >= b) as u64 + (a > b) as u64;
    (OP_TRUTH >> ((op as u64).min(7) * 4 + outcome)) & 1 != 0
}

/// Run the configured filter over the record: 1 when it matches. The
/// first instruction runs in line (a one-comparison filter, the usual
/// one-liner, makes no call: see [`read_off_hot`] for what a call costs),
/// the rest in [`tcpq_filter`].
#[inline(always)]
pub fn filter(cfg: &TemplateConfig, ev: &Event) -> bool {
    let n = cfg.n_insns;
    if n == 0 {
        return true;
    }
    let next = filter_step(cfg, ev, 0);
    if next == JUMP_ACCEPT as u32 {
        return true;
    }
    if next == JUMP_REJECT as u32 || next == 0 {
        return false;
    }
    tcpq_filter(ev, next) != 0
}

/// The filter from instruction `pc` on: 1 when it matches. Jumps only go
/// forward, so at most `MAX_INSNS` steps run.
///
/// A global function (exported, never inlined), like every loop and every
/// loop body here: with the BTF the templates carry, the verifier checks a
/// global function once, on its own, instead of again at every path that
/// reaches a call (and every iteration of the loop around it). That is
/// what keeps a template's verification to a few milliseconds.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn tcpq_filter(ev: *const Event, pc: u32) -> u32 {
    let Some(cfg) = config() else { return 0 };
    if ev.is_null() {
        return 0;
    }
    let n = cfg.n_insns;
    let mut pc = pc;
    let mut step = 0;
    while step < MAX_INSNS {
        if pc >= n {
            return 0;
        }
        let next = tcpq_filter_step(ev, pc);
        if next == JUMP_ACCEPT as u32 {
            return 1;
        }
        if next == JUMP_REJECT as u32 || next <= pc {
            return 0;
        }
        pc = next;
        step += 1;
    }
    0
}

/// One filter instruction: where the filter goes next from `pc` (a later
/// `pc`, `JUMP_ACCEPT` or `JUMP_REJECT`).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn tcpq_filter_step(ev: *const Event, pc: u32) -> u32 {
    let Some(cfg) = config() else {
        return JUMP_REJECT as u32;
    };
    if ev.is_null() {
        return JUMP_REJECT as u32;
    }
    filter_step(cfg, unsafe { &*ev }, pc)
}

#[inline(always)]
fn filter_step(cfg: &TemplateConfig, ev: &Event, pc: u32) -> u32 {
    // The masks are what convince the verifier: the runtime never writes
    // a `pc` or a slot out of range.
    let insn = unsafe { cfg.insns.get_unchecked(pc as usize & (MAX_INSNS - 1)) };
    let v = unsafe { *ev.vals.get_unchecked(insn.slot as usize & (N_SLOTS - 1)) } & insn.mask;
    if compare(insn.op, insn.flags & INSN_SIGNED != 0, v, insn.value) {
        insn.jt as u32
    } else {
        insn.jf as u32
    }
}

/// Fill the slots the configured [`tcpq_abi::Load`]s ask for: the socket
/// fields (and others) this program uses, and only those.
#[inline(always)]
pub fn load_fields(ev: &mut Event, sk: u64, skb: u64) {
    tcpq_load_fields(ev, sk, skb);
}

/// [`load_fields`] as a global function: its `MAX_LOADS` iterations are
/// checked once, not at every path that reaches a call.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn tcpq_load_fields(ev: *mut Event, sk: u64, skb: u64) -> u32 {
    let Some(cfg) = config() else { return 0 };
    if ev.is_null() {
        return 0;
    }
    let n = cfg.n_loads;
    let mut i = 0;
    while i < n && i < MAX_LOADS as u32 {
        tcpq_load_one(ev, i, sk, skb);
        i += 1;
    }
    0
}

/// The configured load `i`: follow its pointers from its base, read the
/// field, shift and scale it, store it in its slot.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn tcpq_load_one(ev: *mut Event, i: u32, sk: u64, skb: u64) -> u32 {
    let Some(cfg) = config() else { return 0 };
    if ev.is_null() || i as usize >= MAX_LOADS {
        return 0;
    }
    let ev = unsafe { &mut *ev };
    let l = unsafe { cfg.loads.get_unchecked(i as usize) };
    let mut p = match l.base {
        base::SOCK => sk,
        base::SKB => skb,
        base::TASK => unsafe { bpf_get_current_task() },
        _ => 0,
    };
    for &via in &l.via {
        if via == VIA_NONE {
            break;
        }
        p = read_ptr(p, loc(via as u32).off);
    }
    let mut v = read_off(p, l.off as u32) >> (l.shr & 63);
    if l.scale == scale::JIFFIES_TO_US {
        let hz = loc(off::HZ).off as u64;
        v = (v * 1_000_000).checked_div(hz).unwrap_or(0);
    }
    ev.vals[l.slot as usize & (N_SLOTS - 1)] = v;
    0
}

/// Count `v` under `key` in `map` (this CPU's value).
#[inline(always)]
fn aggregate<K>(map: &PerCpuHashMap<K, AggValue>, key: K, v: u64, signed: bool) {
    if let Some(p) = map.get_ptr_mut(&key) {
        // Per-CPU value: no other writer while this program runs here.
        add(unsafe { &mut *p }, v, signed);
    } else {
        let first = AggValue {
            count: 1,
            sum: v,
            min: v,
            max: v,
        };
        if map.insert(&key, &first, 1 /* BPF_NOEXIST */).is_err() {
            // Another CPU may have created the key meanwhile: retry once.
            match map.get_ptr_mut(&key) {
                Some(p) => add(unsafe { &mut *p }, v, signed),
                None => stat_inc(stat::AGG_FULL),
            }
        }
    }
}

/// `64 - leading_zeros(v)` without a count-leading-zeros instruction.
#[inline(always)]
fn log2_bucket(mut v: u64) -> u64 {
    if v == 0 {
        return 0;
    }
    let mut b = 1;
    if v >= 1 << 32 {
        v >>= 32;
        b += 32;
    }
    if v >= 1 << 16 {
        v >>= 16;
        b += 16;
    }
    if v >= 1 << 8 {
        v >>= 8;
        b += 8;
    }
    if v >= 1 << 4 {
        v >>= 4;
        b += 4;
    }
    if v >= 1 << 2 {
        v >>= 2;
        b += 2;
    }
    if v >= 1 << 1 {
        b += 1;
    }
    b
}

/// `a < b`, as `i64` when the value is signed.
#[inline(always)]
fn less(a: u64, b: u64, signed: bool) -> bool {
    if signed {
        (a as i64) < (b as i64)
    } else {
        a < b
    }
}

/// `tcpq_abi::linear_bucket`, or `signed_linear_bucket` when `signed`:
/// only the comparisons differ; for a value within the bounds, `v - min`
/// is the same non-negative number in both readings.
#[inline(always)]
fn linear_bucket(v: u64, cfg: &TemplateConfig, signed: bool) -> u64 {
    let step = if cfg.lin_step == 0 { 1 } else { cfg.lin_step };
    if less(v, cfg.lin_min, signed) {
        0
    } else if !less(v, cfg.lin_max, signed) {
        1 + cfg.lin_max.wrapping_sub(cfg.lin_min) / step
    } else {
        1 + v.wrapping_sub(cfg.lin_min) / step
    }
}

/// Filter the finished record (unless `rejected_early` did), then print or
/// aggregate it.
#[inline(always)]
pub fn finish(ev: &mut Event) {
    tcpq_finish(ev);
}

/// [`finish`] as a global function, checked once by the verifier.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn tcpq_finish(ev: *mut Event) -> u32 {
    let Some(cfg) = config() else { return 0 };
    if ev.is_null() {
        return 0;
    }
    finish_inline(cfg, unsafe { &mut *ev });
    0
}

#[inline(always)]
fn finish_inline(cfg: &TemplateConfig, ev: &mut Event) {
    // The on-CPU task only for a clause that reads it: two helper calls.
    if cfg.common as u32 & TASK_SLOTS != 0 {
        fill_task(ev);
    }
    if cfg.filter_early == 0 {
        if !filter(cfg, ev) {
            return;
        }
    }
    stat_inc(stat::MATCHED);
    if cfg.action == action::PRINT {
        // Stamped here, for printed records only: an event the filter
        // rejects, or one a kernel map counts, never pays for the clock.
        ev.ktime_ns = unsafe { bpf_ktime_get_ns() };
        ev.cpu = unsafe { bpf_get_smp_processor_id() };
        if TCPQ_EVENTS.output::<Event>(ev, 0).is_err() {
            stat_inc(stat::LOST);
        }
    } else if cfg.action == action::COUNT {
        let mut key = AggKey {
            vals: [0; MAX_KEY_SLOTS],
        };
        zero_words(&mut key.vals);
        let n = cfg.n_key_slots as usize;
        for (i, k) in key.vals.iter_mut().enumerate() {
            if i >= n {
                break;
            }
            let s = cfg.key_slots[i] as usize & (N_SLOTS - 1);
            *k = unsafe { *ev.vals.get_unchecked(s) };
        }
        let v = unsafe { *ev.vals.get_unchecked(cfg.agg_slot as usize & (N_SLOTS - 1)) };
        let signed = cfg.agg_signed != 0;
        if cfg.bucket != bucket::NONE && n < MAX_KEY_SLOTS {
            let b = if cfg.bucket == bucket::LOG2 {
                // Signed: every negative value in bucket 0, like
                // bpftrace's `(..., 0)`; the others one bucket up.
                if !signed {
                    log2_bucket(v)
                } else if (v as i64) < 0 {
                    0
                } else {
                    1 + log2_bucket(v)
                }
            } else {
                linear_bucket(v, cfg, signed)
            };
            // n < MAX_KEY_SLOTS; the mask says so to the verifier.
            key.vals[n & (MAX_KEY_SLOTS - 1)] = b;
        }
        if tcpq_abi::small_key(cfg.n_key_slots, cfg.bucket) {
            aggregate(&TCPQ_AGG_SMALL, [key.vals[0], key.vals[1]], v, signed);
        } else {
            aggregate(&TCPQ_AGG, key, v, signed);
        }
    }
}

/// Add `v` to this CPU's value of a key. A key created on another CPU has
/// zeroes here, so the first value on this CPU sets min and max. A signed
/// value compares as `i64`; its sum wraps like an unsigned one (two's
/// complement), so only min and max need to know.
#[inline(always)]
fn add(a: &mut AggValue, v: u64, signed: bool) {
    if a.count == 0 || less(v, a.min, signed) {
        a.min = v;
    }
    if a.count == 0 || less(a.max, v, signed) {
        a.max = v;
    }
    a.count += 1;
    a.sum = a.sum.wrapping_add(v);
}

/// The configuration, when the runtime has written one.
#[inline(always)]
pub fn config() -> Option<&'static TemplateConfig> {
    let cfg = ro_config();
    if cfg.action == 0 {
        return None;
    }
    Some(cfg)
}

// ---------------------------------------------------------------------------
// Owner tracking: who owns each socket, learned in process context, so that
// events firing in softirq (where the on-CPU task is whoever was interrupted)
// name the right process.
// ---------------------------------------------------------------------------

// These are raw tracepoints, not classic ones, for a reason: a classic
// tracepoint (or kprobe) program holds the per-CPU `bpf_prog_active` while
// it runs, and the kernel silently skips every other such program that fires
// on that CPU meanwhile, e.g. a retransmit timer in a softirq that
// interrupted a send. Raw tracepoints only guard against a program
// re-entering itself. Measured: with classic owner programs the retransmit
// template missed about one event in six test runs.

/// `inet_sock_set_state(sk, oldstate, newstate)`: connect() (SYN_SENT) and
/// listen() (LISTEN) run in the owner's context; CLOSE forgets the socket.
#[raw_tracepoint(tracepoint = "inet_sock_set_state")]
pub fn tcpq_own_state(ctx: RawTracePointContext) -> i32 {
    let sk = tp_field(&ctx, off::TP_SET_STATE_SK);
    if sk == 0 || read_off(sk, off::SK_PROTOCOL) != IPPROTO_TCP {
        return 0;
    }
    let new = tp_field(&ctx, off::TP_SET_STATE_NEWSTATE);
    if new == TCP_SYN_SENT || new == TCP_LISTEN {
        let owner = current_owner();
        set_owner(sk, owner);
        if new == TCP_LISTEN {
            let key = ListenKey {
                netns: sock_netns(sk),
                port: read_off(sk, off::SKC_NUM) as u16,
                _pad: 0,
            };
            let _ = TCPQ_LISTENERS.insert(key, owner, 0);
        }
    } else if new == TCP_CLOSE {
        // The tracepoint fires before the store: sk_state is the old state.
        if read_off(sk, off::SKC_STATE) == TCP_LISTEN {
            let key = ListenKey {
                netns: sock_netns(sk),
                port: read_off(sk, off::SKC_NUM) as u16,
                _pad: 0,
            };
            let _ = TCPQ_LISTENERS.remove(key);
        }
        // The owner is kept until the socket is destroyed: the reset an
        // aborting close() sends leaves after the move to CLOSE.
    }
    0
}

/// `tcp_destroy_sock(sk)`: the socket's memory is about to be freed (and its
/// address reused), so forget its owner.
#[raw_tracepoint(tracepoint = "tcp_destroy_sock")]
pub fn tcpq_own_gone(ctx: RawTracePointContext) -> i32 {
    let sk = tp_field(&ctx, off::TP_DESTROY_SOCK_SK);
    if sk != 0 {
        let _ = TCPQ_OWNERS.remove(sk);
        owners_changed();
    }
    0
}

/// `sock_send_length(sk, ret, flags)` / `sock_recv_length(...)`: whoever
/// moves bytes on a socket owns it now (sockets passed between processes
/// follow).
///
/// It runs on every send and receive on the machine, of any protocol, so
/// the usual case (the process that used this socket last on this CPU uses
/// it again) is answered by this CPU's [`LastIo`], with no read of the
/// socket and no hash lookup. Measured with `sockperf tp -m 64` on loopback: with the
/// lookup on every call, tcpq cost the sender a fifth of its messages.
#[raw_tracepoint(tracepoint = "sock_send_length")]
pub fn tcpq_own_io(ctx: RawTracePointContext) -> i32 {
    let sk = tp_field(&ctx, off::TP_SOCK_LENGTH_SK);
    if sk == 0 {
        return 0;
    }
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let generation = match TCPQ_OWNER_GEN.get(0) {
        Some(g) => unsafe { core::ptr::read_volatile(g) },
        None => return 0,
    };
    let last = match TCPQ_LAST_IO.get_ptr_mut(0) {
        Some(l) => unsafe { &mut *l },
        None => return 0,
    };
    if last.sk == sk && last.tgid == tgid && last.generation == generation {
        return 0;
    }
    // Noted for any socket: a process that keeps using a UDP or Unix
    // socket skips the protocol read too.
    if read_off_hot(sk, off::SK_PROTOCOL) == IPPROTO_TCP {
        claim_for(sk, tgid);
    }
    *last = LastIo {
        sk,
        tgid,
        generation,
    };
    0
}
