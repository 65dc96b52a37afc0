//! The ABI shared by tcpq's eBPF templates and its userspace.
//!
//! Everything here is `#[repr(C)]`, has no dependencies and compiles for both
//! `bpfel-unknown-none` and the host. A template is a fixed program; what a
//! user's `where`, `print` and `count by` mean reaches it only as the contents
//! of the maps named below. Changing a layout here means rebuilding the
//! prebuilt objects (`probe-templates/build.sh`).
#![no_std]

/// Number of `u64` value slots in one event record.
pub const N_SLOTS: usize = 64;
/// Most entries in [`TemplateConfig::loads`].
pub const MAX_LOADS: usize = 24;
/// Most filter instructions a template evaluates per event.
pub const MAX_INSNS: usize = 64;
/// Most `u64` key slots of one `count by` key.
pub const MAX_KEY_SLOTS: usize = 8;
/// Entries in the `OFFSETS` table ([`globals::OFFSETS`]).
pub const N_OFFSETS: usize = 256;

/// Reading kernel memory without a helper call (see the templates'
/// `read_kernel`). A template calls "helper" [`fast_read::CAST_CALL`],
/// which no kernel has: before loading, the runtime rewrites each such call
/// into a call of the kfunc `bpf_rdonly_cast` (its BTF id in the running
/// kernel) and sets the global [`fast_read::ENABLED`] to 1, or, on a kernel
/// without the kfunc's cast to `void` (before 6.17), into `r0 = 0` and
/// leaves the global 0, so that the verifier prunes that path and the
/// template reads through `bpf_probe_read_kernel` as before.
pub mod fast_read {
    /// The `imm` of the placeholder call (`BPF_JMP | BPF_CALL`, `src_reg`
    /// 0): far above any helper id.
    pub const CAST_CALL: i32 = 0x7c5a_0c57;
    /// A `u32` in `.rodata`: 1 when the placeholder calls were rewritten
    /// into kfunc calls.
    pub const ENABLED: &str = "TCPQ_FAST_READ";
}

/// The templates' read-only globals (`.rodata`), which the runtime sets
/// before it loads an object. The kernel freezes them, so the verifier
/// knows their values: it checks only the paths this configuration takes,
/// and the JIT leaves out the rest (a filter's comparison is one compare,
/// not a switch over every operator; a field's read is one load, not a
/// switch over every size).
pub mod globals {
    /// A [`TemplateConfig`](crate::TemplateConfig): the filter and the
    /// action.
    pub const CONFIG: &str = "TCPQ_RO_CONFIG";
    /// `[FieldLoc; N_OFFSETS]`, indexed by [`crate::off`]: where each
    /// kernel value is on this kernel.
    pub const OFFSETS: &str = "TCPQ_RO_OFFSETS";
}

pub mod programs;

/// Map names, as the loader sees them in the object.
pub mod maps {
    /// `RingBuf` of [`crate::Event`] records.
    pub const EVENTS: &str = "TCPQ_EVENTS";
    /// `PerCpuHashMap<AggKey, AggValue>`: in-kernel aggregation.
    pub const AGG: &str = "TCPQ_AGG";
    /// `PerCpuHashMap<SmallAggKey, AggValue>`: in-kernel aggregation of a
    /// clause whose key is two words or fewer ([`crate::small_key`]).
    pub const AGG_SMALL: &str = "TCPQ_AGG_SMALL";
    /// `PerCpuArray<u64>` of `N_STATS` counters, indexed by [`crate::stat`].
    pub const STATS: &str = "TCPQ_STATS";
    /// `LruHashMap<u64 (struct sock *), Owner>`: who owns each socket.
    pub const OWNERS: &str = "TCPQ_OWNERS";
    /// `LruHashMap<ListenKey, Owner>`: who listens on a port, for passive
    /// sockets that have not been touched by their process yet.
    pub const LISTENERS: &str = "TCPQ_LISTENERS";
    /// `LruHashMap<TupleKey, Owner>`: owners of the connections that
    /// existed before tcpq started, filled by the runtime from /proc, for
    /// sockets their process has not used since (a reader stuck in a zero
    /// window, a retransmitting idle connection).
    pub const TUPLES: &str = "TCPQ_TUPLES";
    /// `Array<u64>`, one entry: bumped whenever an owner is set or
    /// forgotten (see the templates' `tcpq_own_io`).
    pub const OWNER_GEN: &str = "TCPQ_OWNER_GEN";
    /// `PerCpuArray<Event>`, one entry: the record under construction
    /// (too big for the BPF stack). Private to the template.
    pub const SCRATCH: &str = "TCPQ_SCRATCH";
}

/// Counters in the `STATS` map.
pub mod stat {
    // 0 counted the records a template built, matching or not: about 6 ns
    // an event on the path of an event the filter rejects (a per-CPU map
    // lookup), for a number nothing used. Left unused.
    /// The record passed the filter.
    pub const MATCHED: u32 = 1;
    /// A matching record found the ring buffer full and was dropped.
    pub const LOST: u32 = 2;
    /// A `count by` key found the aggregation map full.
    pub const AGG_FULL: u32 = 3;
    /// A kernel read (`bpf_probe_read_kernel`) failed.
    pub const READ_ERR: u32 = 4;
    pub const N_STATS: u32 = 8;
}

/// What a template does with a record that passed the filter.
pub mod action {
    /// Send the record to userspace through the ring buffer.
    pub const PRINT: u32 = 1;
    /// Aggregate in the kernel under the key built from `key_slots`.
    pub const COUNT: u32 = 2;
}

/// Comparison operators of a [`FilterInsn`].
pub mod op {
    pub const EQ: u8 = 0;
    pub const NE: u8 = 1;
    pub const LT: u8 = 2;
    pub const LE: u8 = 3;
    pub const GT: u8 = 4;
    pub const GE: u8 = 5;
}

/// Jump targets of a [`FilterInsn`] that end evaluation.
pub const JUMP_ACCEPT: u16 = 0xffff;
pub const JUMP_REJECT: u16 = 0xfffe;

/// [`FilterInsn::flags`]: compare as signed 64-bit integers.
pub const INSN_SIGNED: u8 = 1;

/// One step of a filter: `(vals[slot] & mask) OP value`, then jump to `jt`
/// when true, `jf` when false. Jumps only go forward, so a filter of `n`
/// instructions finishes in at most `n` steps. Any boolean expression of
/// comparisons compiles to this form in linear size (short-circuit
/// evaluation), which is why there is no stack and no `not`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FilterInsn {
    pub slot: u8,
    pub op: u8,
    pub flags: u8,
    pub _pad: u8,
    pub jt: u16,
    pub jf: u16,
    pub mask: u64,
    pub value: u64,
}

impl FilterInsn {
    /// [`FilterInsn::default`], as a constant.
    pub const EMPTY: FilterInsn = FilterInsn {
        slot: 0,
        op: 0,
        flags: 0,
        _pad: 0,
        jt: 0,
        jf: 0,
        mask: 0,
        value: 0,
    };
}

/// Bases a [`Load`] starts from.
pub mod base {
    /// The probe's `struct sock *`.
    pub const SOCK: u8 = 0;
    /// The probe's `struct sk_buff *` (0 where the probe has none).
    pub const SKB: u8 = 1;
    /// The current task (`bpf_get_current_task()`).
    pub const TASK: u8 = 2;
}

/// "No dereference" in [`Load::via`].
pub const VIA_NONE: u8 = 0xff;

/// Read one kernel value into a slot: start at `base`, follow the pointers
/// at the `OFFSETS` entries in `via` (until `VIA_NONE`), read the `OFFSETS`
/// entry `off`, shift right by `shr`. This is how every socket field
/// (`srtt`, `snd_cwnd`, `bytes_acked`, ...) reaches a record: which fields a
/// program uses is map contents, not template code.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Load {
    pub slot: u8,
    pub base: u8,
    pub off: u8,
    pub shr: u8,
    pub via: [u8; 3],
    /// One of [`scale`]: a conversion applied after the shift.
    pub scale: u8,
}

/// Conversions a [`Load`] applies to the value it read.
pub mod scale {
    pub const NONE: u8 = 0;
    /// Jiffies to microseconds: `v * 1_000_000 / HZ`, with HZ in
    /// `OFFSETS[off::HZ].off` (0 there: the value reads as 0).
    pub const JIFFIES_TO_US: u8 = 1;
}

impl Load {
    /// [`Load::default`], as a constant.
    pub const EMPTY: Load = Load {
        slot: 0,
        base: base::SOCK,
        off: 0,
        shr: 0,
        via: [VIA_NONE; 3],
        scale: scale::NONE,
    };
}

impl Default for Load {
    fn default() -> Self {
        Load::EMPTY
    }
}

/// How a `count`-family aggregation turns the value slot into an extra key
/// slot (appended after the `by` slots).
pub mod bucket {
    pub const NONE: u8 = 0;
    /// Power-of-two buckets: 0 for 0, then `64 - leading_zeros(v)` (1 for
    /// 1, 2 for 2..=3, 3 for 4..=7, ...). With
    /// [`TemplateConfig::agg_signed`](crate::TemplateConfig::agg_signed):
    /// 0 for every negative value, then one more than the unsigned bucket
    /// (1 for 0, 2 for 1, 3 for 2..=3, ...); see [`signed_log2_bucket`](crate::signed_log2_bucket).
    pub const LOG2: u8 = 1;
    /// Linear buckets: 0 below `lin_min`, then `1 + (v - lin_min) / lin_step`,
    /// capped at `1 + (lin_max - lin_min) / lin_step` for `v >= lin_max`.
    /// With `agg_signed`, `v`, `lin_min` and `lin_max` compare as `i64`.
    pub const LINEAR: u8 = 2;
}

/// A template's configuration ([`globals::CONFIG`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TemplateConfig {
    /// One of [`action`]. Zero means "not configured": the template does
    /// nothing.
    pub action: u32,
    /// Number of valid entries in `insns`; zero accepts every record.
    pub n_insns: u32,
    /// The filter's first step, when the program can make it straight
    /// from memory it already holds (see [`Quick`]). Here, in the cache
    /// line `action` is in: an event it rejects touches no other line of
    /// the configuration.
    pub quick: Quick,
    /// Number of valid entries in `key_slots`.
    pub n_key_slots: u32,
    /// Number of valid entries in `loads`.
    pub n_loads: u32,
    /// Slots copied, in order, into an [`AggKey`].
    pub key_slots: [u8; MAX_KEY_SLOTS],
    /// The slot whose value `AggValue::sum/min/max` and the bucket use.
    pub agg_slot: u8,
    /// One of [`bucket`].
    pub bucket: u8,
    /// Non-zero when the filter reads only the probe slots (16..32, the
    /// fields the probe defines itself): the template then filters before reading the socket, so
    /// an event that does not match costs only what the filter needs.
    pub filter_early: u8,
    /// Non-zero when the value slot holds a signed number (an `i64`,
    /// sign-extended by the template): `min`/`max` and the buckets then
    /// compare as `i64`. `sum` wraps the same either way (two's
    /// complement); userspace reads it back as `i64`.
    pub agg_signed: u8,
    /// With `filter_early`: the probe slots the filter reads, bit `i` for
    /// slot `PROBE_FIRST + i`. The template fills only these before the
    /// filter and the other probe slots after it, so an event the filter
    /// rejects costs only the reads the filter needs. Ignored (every probe
    /// slot is filled first) when `filter_early` is zero.
    pub early_probe: u16,
    /// Non-zero when the clause shows or tests the socket's owner (`pid`,
    /// `comm`): only then does the template look the owner up (three hash
    /// lookups when the socket has none yet).
    pub owner: u8,
    pub _pad: [u8; 1],
    pub lin_min: u64,
    pub lin_max: u64,
    pub lin_step: u64,
    pub loads: [Load; MAX_LOADS],
    pub insns: [FilterInsn; MAX_INSNS],
    /// The common slots (0..16, bit `i` for slot `i`) the clause reads: the
    /// template reads only these from the socket (the owner's slots are
    /// `owner`'s business).
    pub common: u16,
    /// The probe slots (bit `i` for slot `PROBE_FIRST + i`) the clause
    /// reads: a template that reads its probe's fields one by one
    /// (`tcp_probe`, `tcp_select_window`) reads only these.
    pub probe: u16,
    /// The probe slots to fill before the filter: `probe & early_probe`
    /// with `filter_early`, else all of `probe`. With [`probe_after`], what
    /// `probe`, `filter_early` and `early_probe` say, folded by the runtime so
    /// that the template tests one bit for each slot on the hot path.
    ///
    /// [`probe_after`]: TemplateConfig::probe_after
    pub probe_before: u16,
    /// The probe slots to fill after the filter passed: `probe & !early_probe`
    /// with `filter_early`, else none.
    pub probe_after: u16,
    /// Number of entries of `clear` that are probe slots (16..32), first.
    pub n_clear_probe: u8,
    /// Number of valid entries in `clear`.
    pub n_clear: u8,
    /// The slots the clause reads (its filter and its columns), probe slots
    /// first: each record starts with these zeroed, and only these. A
    /// template writes a slot only when it can (a socket has no owner
    /// yet, a kernel lacks a field), and a slot it did not write must read
    /// 0, not the last event's value; the slots no one reads are left as
    /// they are (zeroing all 64 of them cost 64 stores an event).
    pub clear: [u8; N_SLOTS],
}

/// The filter's first step as a template can run it before anything else,
/// on a value it reads in one load from memory it already holds (its
/// classic tracepoint's record, or the socket): [`quick::tables`] says which
/// probe slots a program can read so. An event this rejects costs that load
/// and one comparison; one it does not goes the usual way (whose filter
/// reaches the same verdict on this step).
///
/// Every comparison the filter knows (`==`, `!=`, `<`, ..., signed or not),
/// either way round, is here one range test: the value `v` (read, then
/// `& mask`) is rejected when `v - base` (wrapping) is at most `span`.
/// (Ranges wrap around, so the values a comparison rejects always form
/// one; a signed order is the unsigned one shifted by 2^63, which `base`
/// includes.) So the template's test is the same five instructions for any
/// comparison, in line: three loads from this struct, a subtraction, and
/// one conditional jump to the program's exit. No branch on the operator.
///
/// The runtime fills it only when the filter's first step can reject (the
/// step runs first whatever the filter reads after it).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quick {
    /// Offset of the value from the program's base (the record, or the
    /// socket).
    pub off: u32,
    /// Bytes to load: 1, 2, 4 or 8; [`Quick::COMPUTED`]: the template
    /// computes the value of `slot` itself; 0: no quick step.
    pub size: u8,
    /// Unused (0).
    pub _reserved: u8,
    /// With `size` [`Quick::COMPUTED`]: the slot whose value the template
    /// computes and tests.
    pub slot: u8,
    /// [`Quick::BE16`] or 0.
    pub flags: u8,
    pub mask: u64,
    pub base: u64,
    pub span: u64,
}

impl Quick {
    /// [`Quick::size`] of a value the template computes.
    pub const COMPUTED: u8 = 0xff;
    /// [`Quick::flags`]: the loaded value is a big-endian 16-bit number
    /// (a port as the socket keeps it) whose slot holds it in host order;
    /// the template swaps its bytes before the test.
    pub const BE16: u8 = 1;

    /// No quick step.
    pub const NONE: Quick = Quick {
        off: 0,
        size: 0,
        _reserved: 0,
        slot: 0,
        flags: 0,
        mask: 0,
        base: 0,
        span: 0,
    };

    /// The step that rejects a value `v` (already `& mask`) exactly when
    /// `(v op value) == when`, compared as `i64` when `signed`; `off` and
    /// `size` are left for the caller. `None` when it would reject nothing.
    pub const fn rejecting(
        op: u8,
        signed: bool,
        mask: u64,
        value: u64,
        when: bool,
    ) -> Option<Quick> {
        let bias = if signed { 1u64 << 63 } else { 0 };
        let u = value ^ bias;
        // The values for which `v op value` holds, in the biased order:
        // `[lo, hi]`, or everything but it when `outside`.
        let (lo, hi, outside) = match op {
            op::EQ => (u, u, false),
            op::NE => (u, u, true),
            op::LT if u == 0 => (0, u64::MAX, true),
            op::LT => (0, u - 1, false),
            op::LE => (0, u, false),
            op::GT if u == u64::MAX => (0, u64::MAX, true),
            op::GT => (u + 1, u64::MAX, false),
            _ => (u, u64::MAX, false),
        };
        let span = hi - lo;
        // Rejected: `[lo, hi]` itself, or the rest of the circle, which
        // starts right after `hi` (empty when `[lo, hi]` is everything).
        let (base, span) = if outside != when {
            (lo, span)
        } else if span == u64::MAX {
            return None;
        } else {
            (hi.wrapping_add(1), u64::MAX - span - 1)
        };
        Some(Quick {
            off: 0,
            size: 0,
            _reserved: 0,
            slot: 0,
            flags: 0,
            mask,
            base: base.wrapping_sub(bias),
            span,
        })
    }

    /// Does the step reject `v` (already `& mask`)? What the templates
    /// compute.
    pub const fn rejects(&self, v: u64) -> bool {
        v.wrapping_sub(self.base) <= self.span
    }

    /// Does `v` (already `& mask`) go on to the rest of the program?
    pub const fn passes(&self, v: u64) -> bool {
        !self.rejects(v)
    }
}

/// Which probe slots a program can read in one load before it begins a
/// record: for each, the `OFFSETS` entry giving where (see [`Quick`]).
pub mod quick {
    use super::{off, slot, slot::probe as p};

    /// `tcp_probe`'s classic tracepoint: the record's fields that fill its
    /// probe slots (all of [`TCP_PROBE_TP_QUICK`] but the ports).
    pub const TCP_PROBE_TP: &[(u8, u32)] = TCP_PROBE_TP_QUICK.split_at(2).1;

    /// What `tcp_probe`'s classic tracepoint can test first: the ports,
    /// then its probe slots (the record holds both).
    pub const TCP_PROBE_TP_QUICK: &[(u8, u32)] = &[
        (slot::SPORT, off::TP_PROBE_SPORT),
        (slot::DPORT, off::TP_PROBE_DPORT),
        (p::SND_NXT, off::TP_PROBE_SND_NXT),
        (p::SND_UNA, off::TP_PROBE_SND_UNA),
        (p::SND_CWND, off::TP_PROBE_SND_CWND),
        (p::SSTHRESH, off::TP_PROBE_SSTHRESH),
        (p::SND_WND, off::TP_PROBE_SND_WND),
        (p::SRTT, off::TP_PROBE_SRTT),
        (p::RCV_WND, off::TP_PROBE_RCV_WND),
        (p::DATA_LEN, off::TP_PROBE_DATA_LEN),
        (p::MARK, off::TP_PROBE_MARK),
    ];

    /// Entries whose value is a big-endian 16-bit number ([`Quick::BE16`]).
    pub const BIG_ENDIAN_16: &[u32] = &[off::SKC_DPORT];

    /// `tcp_probe`'s raw tracepoint: the socket's fields the classic
    /// record copies as they are (`srtt` is shifted, `data_len` and
    /// `mark` come from the skb), and the peer's port, which the socket
    /// lookup that found the socket has just read (its cache line is warm,
    /// unlike `tcp_sock`'s).
    pub const TCP_PROBE_RAW: &[(u8, u32)] = &[
        (slot::DPORT, off::SKC_DPORT),
        (p::SND_NXT, off::TP_SND_NXT),
        (p::SND_UNA, off::TP_SND_UNA),
        (p::SND_CWND, off::TP_SND_CWND),
        (p::SSTHRESH, off::TP_SND_SSTHRESH),
        (p::SND_WND, off::TP_SND_WND),
        (p::RCV_WND, off::TP_RCV_WND),
    ];

    /// A classic tracepoint's record is read straight from the program's
    /// context, at a constant offset: only an aligned field this close to
    /// the start qualifies (see `ctx_load` in the templates, and
    /// [`readable`]).
    pub const RECORD_LIMIT: u32 = 256;

    /// An entry's `OFFSETS` index for a value the program computes (see
    /// [`Quick::COMPUTED`]).
    pub const COMPUTED: u32 = u32::MAX;

    /// `tcp_select_window` on `net_dev_queue`: the window in the TCP
    /// header, read with the skb's head and header offset, before the
    /// record is begun (on kernels with plain kernel loads).
    pub const SELECT_WINDOW_NDQ: &[(u8, u32)] = &[(slot::select_window::WIN, COMPUTED)];

    /// The table of the program named `program` (empty for a program that
    /// makes no quick step), and whether its values lie in the classic
    /// tracepoint's record (else in kernel memory it reads).
    pub fn tables(program: &str) -> (&'static [(u8, u32)], bool) {
        use crate::programs as p;
        match program {
            p::PROBE_TP => (TCP_PROBE_TP_QUICK, true),
            p::PROBE_RTP => (TCP_PROBE_RAW, false),
            p::SELWIN_NDQ => (SELECT_WINDOW_NDQ, false),
            _ => (&[], false),
        }
    }

    /// Can a quick step read `size` bytes at `off`? From a record, an
    /// aligned field of 2, 4 or 8 bytes below [`RECORD_LIMIT`] (the templates
    /// carry a load for each such place); from kernel memory, any field of
    /// 1, 2, 4 or 8 bytes.
    pub fn readable(record: bool, off: u32, size: u8) -> bool {
        if record {
            matches!(size, 2 | 4 | 8)
                && off.is_multiple_of(size as u32)
                && off + size as u32 <= RECORD_LIMIT
        } else {
            matches!(size, 1 | 2 | 4 | 8)
        }
    }
}

impl TemplateConfig {
    /// [`TemplateConfig::default`], as a constant: what a template holds
    /// until the runtime sets its configuration (action 0: do nothing).
    pub const EMPTY: TemplateConfig = TemplateConfig {
        action: 0,
        n_insns: 0,
        quick: Quick::NONE,
        n_key_slots: 0,
        n_loads: 0,
        key_slots: [0; MAX_KEY_SLOTS],
        agg_slot: 0,
        bucket: bucket::NONE,
        filter_early: 0,
        agg_signed: 0,
        early_probe: 0,
        owner: 0,
        _pad: [0; 1],
        lin_min: 0,
        lin_max: 0,
        lin_step: 1,
        loads: [Load::EMPTY; MAX_LOADS],
        insns: [FilterInsn::EMPTY; MAX_INSNS],
        common: 0,
        probe: 0,
        probe_before: 0,
        probe_after: 0,
        n_clear_probe: 0,
        n_clear: 0,
        clear: [0; N_SLOTS],
    };
}

impl Default for TemplateConfig {
    fn default() -> Self {
        TemplateConfig::EMPTY
    }
}

/// The [`TemplateConfig::early_probe`] bit of a probe slot (16..32); 0 for
/// any other slot.
pub const fn probe_bit(slot: u8) -> u16 {
    if slot >= slot::PROBE_FIRST && slot < slot::LOADED {
        1 << (slot - slot::PROBE_FIRST)
    } else {
        0
    }
}

/// The log2 bucket of `v` (see [`bucket::LOG2`]); the templates compute the
/// same.
pub fn log2_bucket(v: u64) -> u64 {
    64 - v.leading_zeros() as u64
}

/// The log2 bucket of a signed `v` (see [`bucket::LOG2`]): 0 for a
/// negative value, `1 + log2_bucket(v)` otherwise.
pub fn signed_log2_bucket(v: i64) -> u64 {
    if v < 0 {
        0
    } else {
        1 + log2_bucket(v as u64)
    }
}

/// The linear bucket of `v` (see [`bucket::LINEAR`]).
pub fn linear_bucket(v: u64, min: u64, max: u64, step: u64) -> u64 {
    let step = if step == 0 { 1 } else { step };
    if v < min {
        0
    } else if v >= max {
        1 + (max.saturating_sub(min)) / step
    } else {
        1 + (v - min) / step
    }
}

/// The linear bucket of a signed `v` (see [`bucket::LINEAR`]); the
/// templates compute the same from the bounds' bits.
pub fn signed_linear_bucket(v: i64, min: i64, max: i64, step: u64) -> u64 {
    let step = if step == 0 { 1 } else { step };
    if v < min {
        0
    } else if v >= max {
        1 + (max.wrapping_sub(min) as u64) / step
    } else {
        1 + (v.wrapping_sub(min) as u64) / step
    }
}

/// Where a value lives in a kernel object: `size` bytes (1, 2, 4 or 8) at
/// byte `off`, or, when `bit_size` is non-zero, the bitfield of `bit_size`
/// bits starting `bit_off` bits into the little-endian word at `off`.
/// `size == 0` marks an entry the runtime could not resolve on this kernel.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FieldLoc {
    pub off: u32,
    pub size: u8,
    pub bit_off: u8,
    pub bit_size: u8,
    pub _pad: u8,
}

impl FieldLoc {
    /// An unresolved entry, as a constant.
    pub const EMPTY: FieldLoc = FieldLoc {
        off: 0,
        size: 0,
        bit_off: 0,
        bit_size: 0,
        _pad: 0,
    };
}

/// Indices into the `OFFSETS` map. Struct members come from the kernel's
/// BTF, tracepoint fields from the tracepoint's `format` file.
pub mod off {
    // struct sock_common / struct sock
    pub const SKC_FAMILY: u32 = 0;
    pub const SKC_STATE: u32 = 1;
    pub const SKC_NUM: u32 = 2;
    pub const SKC_DPORT: u32 = 3;
    pub const SKC_DADDR: u32 = 4;
    pub const SKC_RCV_SADDR: u32 = 5;
    pub const SKC_V6_DADDR: u32 = 6;
    pub const SKC_V6_RCV_SADDR: u32 = 7;
    /// `sock_common.skc_net` (a `struct net *`).
    pub const SKC_NET: u32 = 8;
    /// `net.ns.inum`.
    pub const NET_INUM: u32 = 9;
    pub const SKC_COOKIE: u32 = 10;
    pub const SK_PROTOCOL: u32 = 11;
    pub const SK_TYPE: u32 = 12;
    // struct tcp_sock
    pub const TP_RCV_WND: u32 = 13;
    pub const TP_SND_WND: u32 = 14;
    pub const TP_WSCALE_OK: u32 = 15;
    pub const TP_SND_WSCALE: u32 = 16;
    pub const TP_RCV_WSCALE: u32 = 17;
    // struct sk_buff
    pub const SKB_SK: u32 = 18;
    pub const SKB_HEAD: u32 = 19;
    pub const SKB_TRANSPORT_HEADER: u32 = 20;
    pub const SKB_CB: u32 = 21;
    /// `tcp_skb_cb.tcp_gso_segs`, relative to `sk_buff.cb`.
    pub const TCB_GSO_SEGS: u32 = 22;
    // task_struct -> files -> fdt -> fd[] -> file -> private_data (socket) -> sk
    pub const TASK_FILES: u32 = 23;
    pub const FILES_FDT: u32 = 24;
    pub const FDT_FD: u32 = 25;
    pub const FDT_MAX_FDS: u32 = 26;
    pub const FILE_PRIVATE_DATA: u32 = 27;
    pub const SOCKET_SK: u32 = 28;
    // Tracepoint arguments. For a classic tracepoint: the field's offset in
    // the record (from its format file). For a raw tracepoint: the
    // `TP_PROTO` argument at `off = 8 * position` (positions checked against
    // the kernel's `btf_trace_<name>` prototype).
    /// raw `net_dev_queue(skb)`.
    pub const TP_NET_DEV_QUEUE_SKB: u32 = 32;
    /// raw `inet_sock_set_state(sk, oldstate, newstate)`.
    pub const TP_SET_STATE_SK: u32 = 33;
    pub const TP_SET_STATE_NEWSTATE: u32 = 34;
    /// raw `sock_send_length(sk, ret, flags)` and `sock_recv_length` (same
    /// prototype).
    pub const TP_SOCK_LENGTH_SK: u32 = 36;
    /// raw `tcp_retransmit_skb(sk, skb[, err])`; `err` only on kernels whose
    /// tracepoint also reports failed attempts (size 0 elsewhere).
    pub const TP_RETRANS_SKB: u32 = 39;
    pub const TP_RETRANS_SK: u32 = 40;
    pub const TP_RETRANS_ERR: u32 = 42;
    /// raw `tcp_destroy_sock(sk)`.
    pub const TP_DESTROY_SOCK_SK: u32 = 53;
    /// raw `inet_sock_set_state(sk, oldstate, newstate)` `oldstate`.
    pub const TP_SET_STATE_OLDSTATE: u32 = 83;
    /// raw `tcp_send_reset(sk, skb[, reason])`.
    pub const TP_SEND_RESET_SK: u32 = 84;
    pub const TP_SEND_RESET_SKB: u32 = 85;
    pub const TP_SEND_RESET_REASON: u32 = 86;
    /// raw `tcp_receive_reset(sk)`.
    pub const TP_RECV_RESET_SK: u32 = 87;
    /// raw `kfree_skb(skb, location, reason[, rx_sk])`.
    pub const TP_KFREE_SKB_SKB: u32 = 88;
    pub const TP_KFREE_SKB_LOCATION: u32 = 89;
    pub const TP_KFREE_SKB_REASON: u32 = 90;
    pub const TP_KFREE_SKB_RX_SK: u32 = 91;
    /// raw `tcp_rcv_space_adjust(sk)` (any sk-only raw tracepoint uses
    /// argument 0 the same way).
    pub const TP_SK_ARG0: u32 = 92;
    /// `sk_buff.network_header` (u16 offset from `head`).
    pub const SKB_NETWORK_HEADER: u32 = 93;
    /// `inet_sock.inet_sport` (big-endian): the local port, still set after
    /// close() gave the port back (`skc_num` = 0).
    pub const INET_SPORT: u32 = 94;
    /// classic `syscalls:sys_enter_*`: `fd`, the second and the third
    /// argument (read/write/sendto/recvfrom: buffer, length;
    /// sendmsg/recvmsg: msghdr, flags; readv/writev: iovec, count). Their
    /// offsets are the same in every one of these events (checked).
    pub const TP_SYS_FD: u32 = 95;
    pub const TP_SYS_ARG1: u32 = 96;
    pub const TP_SYS_ARG2: u32 = 97;
    /// raw `sock_send_length(sk, ret, flags)` / `sock_recv_length`.
    pub const TP_SOCK_LENGTH_RET: u32 = 98;
    pub const TP_SOCK_LENGTH_FLAGS: u32 = 99;
    /// `socket.file`: a socket's file, to recognise a socket behind an fd.
    pub const SOCKET_FILE: u32 = 100;
    /// `user_msghdr.msg_iov`, `.msg_iovlen`, `iovec.iov_len`.
    pub const MSGHDR_IOV: u32 = 101;
    pub const MSGHDR_IOVLEN: u32 = 102;
    pub const IOVEC_LEN: u32 = 103;
    /// `sizeof(struct iovec)`, in `FieldLoc::off`.
    pub const IOVEC_SIZE: u32 = 104;
    /// `sk_buff.dev` and `net_device.nd_net.net`: the namespace of a
    /// segment that has no socket.
    pub const SKB_DEV: u32 = 105;
    pub const NETDEV_NET: u32 = 106;
    /// For `tcp_probe` from its raw tracepoint `tcp_probe(sk, skb)`: what
    /// the classic tracepoint copies, read from the socket and the skb.
    pub const TP_SND_NXT: u32 = 107;
    pub const TP_SND_UNA: u32 = 108;
    pub const SKB_LEN: u32 = 109;
    pub const SKB_MARK: u32 = 110;
    pub const TP_PROBE_RAW_SK: u32 = 111;
    pub const TP_PROBE_RAW_SKB: u32 = 112;
    /// kprobe strategy of `tcp_sendmsg`/`tcp_recvmsg`: the position of
    /// each parameter in the function's prototype (from BTF), in
    /// `FieldLoc::off`.
    pub const KP_SEND_SK: u32 = 113;
    pub const KP_SEND_SIZE: u32 = 114;
    pub const KP_RECV_SK: u32 = 115;
    pub const KP_RECV_LEN: u32 = 116;
    pub const KP_RECV_FLAGS: u32 = 117;
    /// `struct pt_regs` members holding a kprobe'd function's first six
    /// arguments (x86-64: di, si, dx, cx, r8, r9) and its return value
    /// (ax), from BTF: a kprobe reads its arguments through these.
    pub const PT_REGS_ARG0: u32 = 118;
    pub const PT_REGS_RET: u32 = 124;
    /// fexit strategy of `tcp_sendmsg`/`tcp_recvmsg`: where the return
    /// value sits in the program's context (`8 * number of parameters`,
    /// from the function's BTF prototype), in `FieldLoc::off`. The
    /// parameters themselves are at `8 * KP_*` (their positions).
    pub const FX_SEND_RET: u32 = 125;
    pub const FX_RECV_RET: u32 = 126;
    // Socket fields for `Load`s (tcp_sock and its embedded structs).
    pub const TP_MSS_CACHE: u32 = 64;
    pub const TP_SRTT_US: u32 = 65;
    pub const TP_MDEV_US: u32 = 66;
    pub const TP_SND_CWND: u32 = 67;
    pub const TP_SND_SSTHRESH: u32 = 68;
    pub const TP_BYTES_ACKED: u32 = 69;
    pub const TP_BYTES_RECEIVED: u32 = 70;
    pub const TP_TOTAL_RETRANS: u32 = 71;
    pub const SK_UID: u32 = 72;
    pub const SK_RCVBUF: u32 = 73;
    pub const SK_SNDBUF: u32 = 74;
    pub const TP_RTTVAR_US: u32 = 75;
    pub const ICSK_CA_STATE: u32 = 76;
    pub const TP_RCVQ_SPACE: u32 = 77;
    pub const TP_SEGS_OUT: u32 = 78;
    pub const TP_SEGS_IN: u32 = 79;
    // sk->sk_cgrp_data.cgroup->kn->id: `SK_CGROUP` and `CGROUP_KN` are
    // pointers followed by a `Load`'s `via`.
    pub const SK_CGROUP: u32 = 80;
    pub const CGROUP_KN: u32 = 81;
    pub const KN_ID: u32 = 82;
    /// `tcp:tcp_probe` fields.
    pub const TP_PROBE_SK: u32 = 43;
    pub const TP_PROBE_SND_NXT: u32 = 44;
    pub const TP_PROBE_SND_UNA: u32 = 45;
    pub const TP_PROBE_SND_CWND: u32 = 46;
    pub const TP_PROBE_SSTHRESH: u32 = 47;
    pub const TP_PROBE_SND_WND: u32 = 48;
    pub const TP_PROBE_SRTT: u32 = 49;
    pub const TP_PROBE_RCV_WND: u32 = 50;
    pub const TP_PROBE_DATA_LEN: u32 = 51;
    pub const TP_PROBE_MARK: u32 = 52;
    /// Its ports (host order), which the template otherwise reads from the
    /// socket: for the quick first step ([`crate::Quick`]) only.
    pub const TP_PROBE_SPORT: u32 = 127;
    pub const TP_PROBE_DPORT: u32 = 128;
    /// `sock.sk_ack_backlog`, `sock.sk_max_ack_backlog`: a listener's
    /// accept queue and its limit (a new child copies them at the
    /// handshake).
    pub const SK_ACK_BACKLOG: u32 = 54;
    pub const SK_MAX_ACK_BACKLOG: u32 = 55;
    /// `inet_connection_sock.icsk_rto`, in jiffies.
    pub const ICSK_RTO: u32 = 56;
    /// The kernel's HZ (jiffies per second), in `FieldLoc::off`: found by
    /// the runtime, for [`crate::scale::JIFFIES_TO_US`].
    pub const HZ: u32 = 57;
    /// `sock.sk_err`: the socket's pending error, a positive errno (set
    /// before the move to CLOSE when a connection fails: ECONNREFUSED,
    /// ETIMEDOUT, EHOSTUNREACH, ECONNRESET, ...).
    pub const SK_ERR: u32 = 129;
    /// `inet_connection_sock.icsk_pending`: which timer `icsk_retransmit_timer`
    /// is armed for (`ICSK_TIME_*`; see [`crate::retransmit::tail_loss_probe`]).
    pub const ICSK_PENDING: u32 = 130;
    /// `inet_connection_sock.icsk_retransmit_timer.entry.pprev`: NULL while
    /// that timer is not queued (it fired, or was never armed).
    pub const ICSK_RTX_TIMER_PPREV: u32 = 131;
    /// `tcp_sock.tlp_high_seq`: `snd_nxt` when the outstanding tail loss
    /// probe was sent, 0 when none is outstanding.
    pub const TP_TLP_HIGH_SEQ: u32 = 132;
    /// `tcp_skb_cb.end_seq`, relative to `sk_buff.cb`.
    pub const TCB_END_SEQ: u32 = 133;
}

/// Value slots of an [`Event`]. Slots 0..16 mean the same in every template;
/// 16..32 are the probe slots, the fields a probe defines itself, which mean
/// something else in each (see the per-template modules); 32..64 are filled
/// by the configured [`Load`]s (socket fields, see [`slot::sock`]).
pub mod slot {
    /// First probe slot (16..32): the fields a probe defines itself, which
    /// its template fills (not a [`crate::Load`]).
    pub const PROBE_FIRST: u8 = 16;
    /// First slot filled by [`crate::Load`]s.
    pub const LOADED: u8 = 32;

    /// Socket fields every probe with a socket can read, at fixed slots so
    /// that a field means the same slot in every template.
    pub mod sock {
        pub const RCV_WND: u8 = 40;
        pub const SND_WND: u8 = 41;
        pub const WSCALE_OK: u8 = 42;
        pub const SND_WSCALE: u8 = 43;
        pub const RCV_WSCALE: u8 = 44;
        pub const MSS: u8 = 45;
        pub const SRTT: u8 = 46;
        pub const MDEV: u8 = 47;
        pub const SND_CWND: u8 = 48;
        pub const SSTHRESH: u8 = 49;
        pub const BYTES_ACKED: u8 = 50;
        pub const BYTES_RECEIVED: u8 = 51;
        pub const TOTAL_RETRANS: u8 = 52;
        pub const UID: u8 = 53;
        pub const CGROUP: u8 = 54;
        pub const RCVBUF: u8 = 55;
        pub const SNDBUF: u8 = 56;
        pub const RTTVAR: u8 = 57;
        pub const CA_STATE: u8 = 58;
        pub const RCV_SPACE: u8 = 59;
        pub const SEGS_OUT: u8 = 60;
        pub const SEGS_IN: u8 = 61;
        pub const BACKLOG: u8 = 62;
        pub const BACKLOG_MAX: u8 = 63;
        pub const RTO: u8 = 32;
        /// The socket's kernel address, written by the template itself
        /// (not a load) when it reads the socket.
        pub const SKADDR: u8 = 33;
    }

    /// Process (thread group) id of the socket's owner; 0 when unknown.
    pub const PID: u8 = 0;
    /// The owner's `comm`, 16 bytes as two little-endian words.
    pub const COMM_0: u8 = 1;
    pub const COMM_1: u8 = 2;
    /// The task on the CPU when the probe fired.
    pub const TASK_PID: u8 = 3;
    pub const TASK_COMM_0: u8 = 4;
    pub const TASK_COMM_1: u8 = 5;
    pub const FAMILY: u8 = 6;
    /// Addresses as 16 bytes (IPv4 as `::ffff:a.b.c.d`), each split into two
    /// big-endian words so that comparisons and CIDR masks work on words.
    pub const SADDR_HI: u8 = 7;
    pub const SADDR_LO: u8 = 8;
    pub const DADDR_HI: u8 = 9;
    pub const DADDR_LO: u8 = 10;
    /// Local and remote port, host order.
    pub const SPORT: u8 = 11;
    pub const DPORT: u8 = 12;
    /// Network namespace inode number.
    pub const NETNS: u8 = 13;
    /// `sk_state` (TCP_ESTABLISHED = 1, ...).
    pub const STATE: u8 = 14;
    pub const SOCK_COOKIE: u8 = 15;

    /// `tcp_select_window`.
    pub mod select_window {
        pub const WIN: u8 = 16;
        pub const WIN_BYTES: u8 = 17;
        pub const RCV_WND: u8 = 18;
        pub const RCV_WSCALE: u8 = 19;
        pub const SND_WSCALE: u8 = 20;
        pub const WSCALE_OK: u8 = 21;
        pub const SND_WND: u8 = 22;
        /// TCP header flags byte (FIN=1, SYN=2, RST=4, PSH=8, ACK=16).
        pub const TCP_FLAGS: u8 = 23;
        pub const SEQ: u8 = 24;
        pub const ACK_SEQ: u8 = 25;
    }

    /// `tcp_probe` (the `tcp:tcp_probe` tracepoint).
    pub mod probe {
        pub const SND_NXT: u8 = 16;
        pub const SND_UNA: u8 = 17;
        pub const SND_CWND: u8 = 18;
        pub const SSTHRESH: u8 = 19;
        pub const SND_WND: u8 = 20;
        pub const SRTT: u8 = 21;
        pub const RCV_WND: u8 = 22;
        pub const DATA_LEN: u8 = 23;
        pub const MARK: u8 = 24;
    }

    /// `tcp_state` and its views (`tcp_connect`, `tcp_accept`,
    /// `tcp_close`): `inet_sock_set_state`.
    pub mod state {
        pub const OLDSTATE: u8 = 16;
        pub const NEWSTATE: u8 = 17;
        /// Microseconds since the socket's birth (its move to SYN_SENT or
        /// SYN_RECV while tcpq was attached), 0 when unknown.
        pub const DURATION: u8 = 18;
        /// `-sk->sk_err` at the move (0, or a negative errno like
        /// `tcp_retransmit`'s `err`), read only for a clause that uses it.
        pub const ERR: u8 = 19;
    }

    /// `tcp_syn`: a SYN or SYN-ACK this host sends (`net_dev_queue`, the
    /// `tcp_select_window` template's second program), with the options
    /// in its TCP header.
    pub mod syn {
        /// The 16-bit window field (never scaled in a SYN).
        pub const WIN: u8 = 16;
        /// TCP header flags byte.
        pub const TCP_FLAGS: u8 = 17;
        pub const SEQ: u8 = 18;
        pub const ACK_SEQ: u8 = 19;
        /// 1: a SYN-ACK; 0: a SYN.
        pub const ACK: u8 = 20;
        /// MSS option (kind 2), 0 when absent.
        pub const OPT_MSS: u8 = 21;
        /// 1 when the window-scale option (kind 3) is present.
        pub const OPT_WSCALE_OK: u8 = 22;
        /// Its shift count (0 when absent).
        pub const OPT_WSCALE: u8 = 23;
        /// 1 when SACK-permitted (kind 4) is present.
        pub const OPT_SACK_OK: u8 = 24;
        /// 1 when the timestamps option (kind 8) is present.
        pub const OPT_TS: u8 = 25;
    }

    /// `tcp_reset`: `tcp_send_reset` and `tcp_receive_reset`.
    pub mod reset {
        /// 0: this host sent the reset; 1: it received one.
        pub const RECEIVED: u8 = 16;
        /// `enum sk_rst_reason` of a sent reset (0 where the kernel has none).
        pub const REASON: u8 = 17;
    }

    /// `tcp_drop`: `kfree_skb` for TCP segments.
    pub mod drop {
        /// `enum skb_drop_reason`.
        pub const REASON: u8 = 16;
        /// Kernel address of the function that dropped the skb.
        pub const LOCATION: u8 = 17;
        /// 1 when the segment was on its way in (addresses then come from
        /// its headers, local = destination).
        pub const INBOUND: u8 = 18;
    }

    /// Socket-only probes (`tcp_rcv_space`, ...): the raw tracepoint's
    /// `struct sock *`, nothing else.
    pub mod sock_event {}

    /// `tcp_sendmsg` / `tcp_recvmsg`: a send or receive call on a TCP
    /// socket, in the calling process.
    pub mod io {
        /// Bytes the caller asked to move (the syscall's length, or the sum
        /// of its iovec); 0 when the call did not come through a traced
        /// syscall (io_uring, sendfile, in-kernel users).
        pub const SIZE: u8 = 16;
        /// Bytes moved, or a negative errno (`sock_sendmsg`'s return).
        pub const RET: u8 = 17;
        /// `MSG_*` flags of the call.
        pub const FLAGS: u8 = 18;
    }

    /// `tcp_retransmit` (the `tcp:tcp_retransmit_skb` tracepoint).
    pub mod retransmit {
        /// Segments carried by the retransmitted skb (`tcp_skb_pcount`).
        pub const SEGS: u8 = 16;
        /// The tracepoint's `err`, sign-extended: 0, a negative errno, or
        /// `NET_XMIT_DROP` (1); 0 on kernels whose tracepoint has none.
        /// Never one of [`crate::retransmit::NOT_COUNTED`].
        pub const ERR: u8 = 17;
        /// 1 when the retransmission is a tail loss probe (the kernel's
        /// `tcp_send_loss_probe()` resending the last segment), 0 otherwise:
        /// see [`crate::retransmit::tail_loss_probe`].
        pub const TLP: u8 = 18;
    }
}

/// The kernel locations (`off::*`) a template reads for one of its probe
/// slots, by template and slot: a clause that uses the slot cannot run on a
/// kernel where one of them is unresolved (it would read zeros and answer
/// wrongly). Slots not listed read nothing the offsets table may lack, or
/// have a fallback (`tcp_gso_segs`).
pub const PROBE_SLOT_OFFSETS: &[(&str, u8, &[u32])] = &[
    ("tcp_state", slot::state::ERR, &[off::SK_ERR]),
    (
        "tcp_retransmit",
        slot::retransmit::TLP,
        &[
            off::ICSK_PENDING,
            off::ICSK_RTX_TIMER_PPREV,
            off::TP_TLP_HIGH_SEQ,
            off::TP_SND_NXT,
            off::SKB_CB,
            off::TCB_END_SEQ,
        ],
    ),
];

/// Which `tcp_retransmit_skb` events are retransmissions.
///
/// Since Linux 6.17 (commit ad892e912b84, "tcp: trace retransmit failures
/// in tcp_retransmit_skb") the tracepoint sits at the `out:` label of
/// `__tcp_retransmit_skb()` (net/ipv4/tcp_output.c) and receives `err`.
/// Every attempt reaches it, but the kernel counts an attempt in
/// `TcpRetransSegs` (`TCP_ADD_STATS(..., TCP_MIB_RETRANSSEGS, segs)`, the
/// "Update global and local TCP statistics" block) only once it got past
/// the early exits that `goto out` before that block:
///
/// - `-EBUSY`: `skb_still_in_host_queue()`, the original is still queued
///   in a qdisc or the device (the retransmission is deferred);
/// - `-EINVAL`: the skb lies wholly below `snd_una` (a `WARN_ON_ONCE`);
/// - `-ENOMEM`: `tcp_trim_head()`, `tcp_fragment()` or
///   `skb_unclone_keeptruesize()` found no memory;
/// - `-EHOSTUNREACH`: `icsk_af_ops->rebuild_header()` found no route;
/// - `-EAGAIN`: the skb starts beyond the peer's window (and is not the
///   zero-window probe at `snd_una`).
///
/// Everything after the count is a retransmission for the kernel, sent or
/// not: `err` is then 0 or what `tcp_transmit_skb()` returned (`-EPERM`
/// from a netfilter drop, `NET_XMIT_DROP` = 1 from a qdisc or device drop,
/// `-ENOBUFS` when the skb could not be cloned or copied, ...), and
/// `TCPRetransFail` adds `segs` when `err != 0 && err != -EBUSY` (the
/// early exits skip that too). So an event is counted exactly when `err`
/// is not in [`NOT_COUNTED`].
///
/// The blur: two of these errors can also come from after the count, where
/// the kernel does count the attempt. `-EHOSTUNREACH` from
/// `ip_queue_xmit()`'s own route lookup (the socket's cached route went
/// stale between `rebuild_header()` and the send) and `-ENOMEM` from TCP-AO
/// signing (`tcp_ao_transmit_skb()`) in `__tcp_transmit_skb()`. The
/// tracepoint cannot tell those apart from the early ones; they are taken
/// as not counted, and then TcpRetransSegs (and TCPRetransFail) exceed
/// what tcpq reports by their `segs`. (An `-EBUSY` from the send path would
/// blur the same way, counted in TcpRetransSegs only; no send path known
/// to us returns it.)
///
/// Before 6.17 the tracepoint has no `err` and fires only for `err == 0`,
/// after the send: a retransmission that the kernel counted but that failed
/// (`-EPERM`, ...) is not seen at all. There the sum of `segs` is
/// `TcpRetransSegs - TCPRetransFail`.
pub mod retransmit {
    /// `ICSK_TIME_LOSS_PROBE` (include/net/inet_connection_sock.h): the
    /// retransmit timer is armed for a tail loss probe.
    pub const ICSK_TIME_LOSS_PROBE: u64 = 5;

    /// Is a retransmission a tail loss probe (TLP, RFC 8985)?
    ///
    /// No tracepoint says so: the kernel sends a probe from
    /// `tcp_send_loss_probe()` (net/ipv4/tcp_output.c), which
    /// `tcp_write_timer_handler()` calls when the retransmit timer fires
    /// armed for `ICSK_TIME_LOSS_PROBE`; with no new data to send it
    /// retransmits the last skb of the retransmit queue with
    /// `__tcp_retransmit_skb(sk, skb, 1)`, and `tcp_retransmit_skb` fires
    /// inside that call. At that moment, and at no other retransmission:
    ///
    /// - `icsk_pending == ICSK_TIME_LOSS_PROBE`: the handler switches on it
    ///   and `tcp_send_loss_probe()` clears it only after the probe is sent
    ///   (the RTO path clears it before `tcp_retransmit_timer()`);
    /// - the timer is not queued (`timer_pending()` false): it fired, and
    ///   the handler (run at once, or deferred to `tcp_release_cb()` while
    ///   a process owned the socket) has not armed it again. A fast
    ///   retransmission on an ACK while the probe timer is merely armed
    ///   sees it queued;
    /// - `tlp_high_seq == 0`: at most one probe is outstanding, checked
    ///   before the probe is built;
    /// - the skb ends at `snd_nxt`: it is the last one sent.
    ///
    /// The one blur: a timer that fired while a process owned the socket
    /// and an ACK from the backlog, processed before the deferred handler,
    /// fast-retransmitting exactly the last segment, would count as a
    /// probe. A probe that sends new data instead (`tcp_write_xmit()`) is
    /// no retransmission and never reaches the tracepoint, so the events
    /// with `tlp` are `TCPLossProbes` minus the probes of new data.
    pub const fn tail_loss_probe(
        icsk_pending: u64,
        timer_pprev: u64,
        tlp_high_seq: u64,
        end_seq: u64,
        snd_nxt: u64,
    ) -> bool {
        icsk_pending == ICSK_TIME_LOSS_PROBE
            && timer_pprev == 0
            && tlp_high_seq == 0
            && end_seq == snd_nxt
    }

    /// `err` values of attempts the kernel does not count as
    /// retransmissions (see the module): `-EBUSY`, `-EINVAL`, `-ENOMEM`,
    /// `-EHOSTUNREACH`, `-EAGAIN` (asm-generic numbering, as on x86-64 and
    /// arm64).
    pub const NOT_COUNTED: [i64; 5] = [-16, -22, -12, -113, -11];

    /// Is an event with this `err` a retransmission the kernel counted?
    pub const fn counted(err: i64) -> bool {
        err == 0
            || !(err == NOT_COUNTED[0]
                || err == NOT_COUNTED[1]
                || err == NOT_COUNTED[2]
                || err == NOT_COUNTED[3]
                || err == NOT_COUNTED[4])
    }
}

/// One record in the `EVENTS` ring buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Event {
    pub ktime_ns: u64,
    pub cpu: u32,
    pub _pad: u32,
    pub vals: [u64; N_SLOTS],
}

/// Key of the `AGG` map: the key slots' values in order, zero-padded.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AggKey {
    pub vals: [u64; MAX_KEY_SLOTS],
}

/// Key of the `AGG_SMALL` map: [`AggKey`]'s first two words, for a key of
/// at most two slots (the bucket included). The kernel hashes and compares
/// a map's whole key on every lookup; for `count by comm`, 16 bytes
/// instead of 64 cost 12 ns less an event (sockperf on loopback).
pub type SmallAggKey = [u64; 2];

/// Does a clause with `n_key_slots` key slots, and a bucket or not,
/// aggregate into `AGG_SMALL` (else `AGG`)?
pub const fn small_key(n_key_slots: u32, bucket: u8) -> bool {
    n_key_slots as usize + (bucket != bucket::NONE) as usize <= 2
}

/// Value of the `AGG` map (per CPU; userspace adds counts and sums, and
/// takes the least `min` and greatest `max` over CPUs that counted).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AggValue {
    pub count: u64,
    pub sum: u64,
    pub min: u64,
    pub max: u64,
}

/// Who owns a socket: the process that last created, connected, listened,
/// accepted, sent or received on it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub tid: u32,
    pub comm: [u8; 16],
}

/// Key of the `TUPLES` map: a connection as the record holds it (the
/// `NETNS`, `SPORT`, `DPORT` and address slots; IPv4 as `::ffff:a.b.c.d`,
/// each address as two big-endian halves).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TupleKey {
    pub netns: u32,
    pub sport: u16,
    pub dport: u16,
    pub saddr: [u64; 2],
    pub daddr: [u64; 2],
}

/// Key of the `LISTENERS` map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListenKey {
    pub netns: u32,
    pub port: u16,
    pub _pad: u16,
}

/// Encode 16 bytes of `comm` into the two words the templates store.
pub fn comm_words(comm: &[u8; 16]) -> [u64; 2] {
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&comm[..8]);
    b.copy_from_slice(&comm[8..]);
    [u64::from_le_bytes(a), u64::from_le_bytes(b)]
}

/// Decode two `comm` words back into bytes.
pub fn comm_bytes(words: [u64; 2]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&words[0].to_le_bytes());
    out[8..].copy_from_slice(&words[1].to_le_bytes());
    out
}

/// Encode a 16-byte address (IPv4 already mapped to `::ffff:a.b.c.d`) into
/// the (hi, lo) words the templates store.
pub fn addr_words(addr: &[u8; 16]) -> [u64; 2] {
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&addr[..8]);
    b.copy_from_slice(&addr[8..]);
    [u64::from_be_bytes(a), u64::from_be_bytes(b)]
}

/// Decode (hi, lo) words back into 16 address bytes.
pub fn addr_bytes(words: [u64; 2]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&words[0].to_be_bytes());
    out[8..].copy_from_slice(&words[1].to_be_bytes());
    out
}

/// The low word of an IPv4-mapped address for an IPv4 address given as its
/// four bytes in network order.
pub fn v4_mapped_lo(octets: [u8; 4]) -> u64 {
    0x0000_ffff_0000_0000 | u32::from_be_bytes(octets) as u64
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn a_tail_loss_probe_needs_every_part_of_the_timer_state() {
        use retransmit::{tail_loss_probe as tlp, ICSK_TIME_LOSS_PROBE as LP};
        // The probe: armed for it, fired (not queued), none outstanding,
        // the last segment.
        assert!(tlp(LP, 0, 0, 1000, 1000));
        // An RTO: the handler cleared icsk_pending first.
        assert!(!tlp(0, 0, 0, 1000, 1000));
        // A fast retransmission while the probe timer is still queued.
        assert!(!tlp(LP, 0xffff_8880_0000_1000, 0, 1000, 1000));
        // A probe is outstanding already.
        assert!(!tlp(LP, 0, 900, 1000, 1000));
        // Not the last segment sent.
        assert!(!tlp(LP, 0, 0, 800, 1000));
        // Other timers.
        for t in [1, 2, 3, 4, 6] {
            assert!(!tlp(t, 0, 0, 1000, 1000));
        }
    }

    #[test]
    fn every_probe_slot_offset_is_a_real_index() {
        for (template, slot, offsets) in PROBE_SLOT_OFFSETS {
            assert!(
                probe_bit(*slot) != 0,
                "{template} slot {slot} is not a probe slot"
            );
            for o in *offsets {
                assert!((*o as usize) < N_OFFSETS, "{template}: offset {o}");
            }
        }
    }

    #[test]
    fn layouts_are_stable() {
        assert_eq!(core::mem::size_of::<FilterInsn>(), 24);
        assert_eq!(core::mem::size_of::<FieldLoc>(), 8);
        assert_eq!(core::mem::size_of::<Event>(), 16 + 8 * N_SLOTS);
        assert_eq!(core::mem::size_of::<Owner>(), 24);
        assert_eq!(core::mem::size_of::<ListenKey>(), 8);
        assert_eq!(core::mem::size_of::<TupleKey>(), 40);
        assert_eq!(core::mem::size_of::<Load>(), 8);
        assert_eq!(core::mem::size_of::<AggValue>(), 32);
        // 16 (counts) + 32 (quick) + key slots + 8 (agg_slot, bucket,
        // filter_early, agg_signed, early_probe, owner, pad) + 24 (lin_*) +
        // loads + insns + 8 (common, probe, probe_before, probe_after) + 2
        // (n_clear_probe, n_clear) + clear, padded to 8.
        assert_eq!(core::mem::size_of::<Quick>(), 32);
        assert_eq!(
            core::mem::size_of::<TemplateConfig>(),
            (16 + 32 + MAX_KEY_SLOTS + 8 + 24 + 8 * MAX_LOADS + 24 * MAX_INSNS + 8 + 2 + N_SLOTS)
                .next_multiple_of(8)
        );
        // `action` and `quick` share a cache line in the `.rodata` value
        // (the configuration lies 8 bytes in, after `TCPQ_FAST_READ`).
        assert_eq!(core::mem::offset_of!(TemplateConfig, quick), 8);
        assert_eq!(core::mem::offset_of!(TemplateConfig, early_probe), 60);
        assert_eq!(core::mem::offset_of!(TemplateConfig, lin_min), 64);
    }

    /// The range form of every comparison agrees with the comparison, at
    /// the edges of both orders.
    #[test]
    fn quick_ranges_compare_like_the_filter() {
        let edges = [
            0u64,
            1,
            2,
            5,
            6,
            7,
            0x7fff_ffff,
            0x8000_0000,
            u64::MAX / 2,
            u64::MAX / 2 + 1,
            u64::MAX / 2 + 2,
            u64::MAX - 1,
            u64::MAX,
            (-5i64) as u64,
            (-6i64) as u64,
        ];
        for op in [op::EQ, op::NE, op::LT, op::LE, op::GT, op::GE] {
            for signed in [false, true] {
                for &value in &edges {
                    let pass_when_true = Quick::rejecting(op, signed, u64::MAX, value, false);
                    let pass_when_false = Quick::rejecting(op, signed, u64::MAX, value, true);
                    for &v in &edges {
                        let want = if signed {
                            let (a, b) = (v as i64, value as i64);
                            match op {
                                op::EQ => a == b,
                                op::NE => a != b,
                                op::LT => a < b,
                                op::LE => a <= b,
                                op::GT => a > b,
                                _ => a >= b,
                            }
                        } else {
                            match op {
                                op::EQ => v == value,
                                op::NE => v != value,
                                op::LT => v < value,
                                op::LE => v <= value,
                                op::GT => v > value,
                                _ => v >= value,
                            }
                        };
                        // `None` rejects nothing: every value passes.
                        let passes = |q: Option<Quick>| q.is_none_or(|q| q.passes(v));
                        assert_eq!(
                            passes(pass_when_true),
                            want,
                            "op {op} signed {signed} {v} vs {value}"
                        );
                        assert_eq!(
                            passes(pass_when_false),
                            !want,
                            "op {op} signed {signed} {v} vs {value}, negated"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn quick_tables_name_each_slot_once_and_the_record_part_is_probe_slots() {
        for table in [
            quick::TCP_PROBE_TP_QUICK,
            quick::TCP_PROBE_RAW,
            quick::SELECT_WINDOW_NDQ,
        ] {
            for (i, (slot, _)) in table.iter().enumerate() {
                assert!(
                    table[..i].iter().all(|(s, _)| s != slot),
                    "slot {slot} twice"
                );
            }
        }
        // The probe slots' part is what the template fills from the record.
        for &(slot, index) in quick::TCP_PROBE_TP {
            assert!(probe_bit(slot) != 0);
            assert!(quick::TCP_PROBE_TP_QUICK.contains(&(slot, index)));
        }
    }

    #[test]
    fn retransmit_counted_is_the_complement_of_not_counted() {
        for err in -200i64..=2 {
            assert_eq!(
                retransmit::counted(err),
                !retransmit::NOT_COUNTED.contains(&err),
                "{err}"
            );
        }
    }

    #[test]
    fn buckets() {
        let l: std::vec::Vec<u64> = [0, 1, 2, 3, 4, 7, 8, u64::MAX]
            .iter()
            .map(|&v| log2_bucket(v))
            .collect();
        assert_eq!(l, [0, 1, 2, 2, 3, 3, 4, 64]);
        assert_eq!(linear_bucket(5, 10, 100, 10), 0);
        assert_eq!(linear_bucket(10, 10, 100, 10), 1);
        assert_eq!(linear_bucket(19, 10, 100, 10), 1);
        assert_eq!(linear_bucket(20, 10, 100, 10), 2);
        assert_eq!(linear_bucket(99, 10, 100, 10), 9);
        assert_eq!(linear_bucket(100, 10, 100, 10), 10);
        assert_eq!(linear_bucket(1 << 40, 10, 100, 10), 10);
    }

    #[test]
    fn signed_buckets() {
        let l: std::vec::Vec<u64> = [i64::MIN, -5, -1, 0, 1, 2, 3, 4, i64::MAX]
            .iter()
            .map(|&v| signed_log2_bucket(v))
            .collect();
        assert_eq!(l, [0, 0, 0, 1, 2, 3, 3, 4, 64]);
        // lhist ret, -100, 100, 50: below, [-100, -50), ..., [50, 100), above.
        let b = |v| signed_linear_bucket(v, -100, 100, 50);
        assert_eq!(b(i64::MIN), 0);
        assert_eq!(b(-101), 0);
        assert_eq!(b(-100), 1);
        assert_eq!(b(-51), 1);
        assert_eq!(b(-50), 2);
        assert_eq!(b(-1), 2);
        assert_eq!(b(0), 3);
        assert_eq!(b(99), 4);
        assert_eq!(b(100), 5);
        assert_eq!(b(i64::MAX), 5);
        // Non-negative bounds: a negative value is below MIN, not huge.
        assert_eq!(signed_linear_bucket(-11, 0, 100, 10), 0);
    }

    #[test]
    fn words_round_trip() {
        let comm = *b"reader\0\0\0\0\0\0\0\0\0\0";
        assert_eq!(comm_bytes(comm_words(&comm)), comm);
        let mut a = [0u8; 16];
        a[10] = 0xff;
        a[11] = 0xff;
        a[12..].copy_from_slice(&[10, 0, 0, 1]);
        let w = addr_words(&a);
        assert_eq!(w, [0, v4_mapped_lo([10, 0, 0, 1])]);
        assert_eq!(addr_bytes(w), a);
    }
}
