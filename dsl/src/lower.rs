//! Pass 4, lowering: a checked program → its [`Plan`], final. Every
//! decision about what the kernel will run is made here, once, and written
//! into the plan with why:
//!
//! - each clause's `CONFIG` entry ([`ClausePlan::config`], the ABI struct
//!   the template reads): filter steps, the slot words (which slots to
//!   read, clear, fill before and after the filter), the socket fields to
//!   load, the aggregation's key, value and buckets;
//! - the order of its strategies (the catalog's);
//! - per strategy, the quick first step its program can take
//!   ([`Strategy::quick`]), all but where the value lies in this kernel's
//!   memory;
//! - the aggregation map ([`ClausePlan::agg_map`]), the ring buffers'
//!   size ([`Plan::ring_bytes`]) and when the owner programs attach
//!   ([`Plan::owner_io`]);
//! - the kernel locations each field needs ([`ClausePlan::needs`]).
//!
//! The runtime then only binds: it takes the first strategy this kernel
//! supports, fills in offsets from BTF (and HZ) and the numbers of named
//! kernel constants, and loads. The template and strategies depend only
//! on the probe; a `where` clause only changes filter steps, which are
//! data. Limits are checked once, by `check`: lowering a checked clause
//! cannot fail.
use crate::catalog::ProbeDef;
use crate::check::{CClause, Checked};
use crate::plan::{
    Action, AggFunc, AggMap, ClausePlan, FieldNeeds, Insn, LoadSpec, Metric, OwnerIo, Plan,
    QuickPlan, Strategy,
};
use tcpq_abi::{action, bucket, Quick, TemplateConfig, JUMP_REJECT};

/// Ring buffer bytes in all when `--buffer-size` is not given: what one
/// printing clause gets (the size built into the templates), and what
/// several share.
pub const RING_BUDGET: u32 = 1 << 20;
/// The least a printing clause gets from [`RING_BUDGET`].
pub const RING_MIN: u32 = 128 << 10;

/// Lower a checked program.
pub fn plan(checked: &Checked) -> Plan {
    let clauses: Vec<ClausePlan> = checked.clauses.iter().map(clause).collect();
    let printing = clauses.iter().filter(|c| c.action.is_print()).count();
    Plan {
        ring_bytes: default_ring_bytes(printing),
        owner_io: owner_io(&clauses),
        clauses,
        left_out: Vec::new(),
    }
}

fn clause(c: &CClause) -> ClausePlan {
    let probe = c.probe;
    let filter = c.compiled.insns.clone();
    let loads = c.loads.clone();
    let fields = fields_used(probe, &filter, &c.action);
    let used = slots_used(&filter, &c.action);
    let config = template_config(&filter, &loads, &c.action, used, uses_owner(&fields));
    // A step whose value is a kernel constant's number is 0 until the
    // runtime binds it: no quick step is made from it.
    let first_bound = c.compiled.binds.iter().any(|b| b.insn == 0);
    let strategies: Vec<Strategy> = probe
        .strategies
        .iter()
        .map(|s| {
            let mut s = s.to_plan();
            // Further programs only for a clause that uses what they are
            // there for.
            s.also
                .retain(|x| x.only_for.is_empty() || x.only_for.iter().any(|f| fields.contains(f)));
            s.quick = match first_bound {
                true => None,
                false => quick_step(&config, &s.program),
            };
            s
        })
        .collect();
    let agg_map = match c.action {
        Action::Print { .. } => None,
        _ if tcpq_abi::small_key(config.n_key_slots, config.bucket) => Some(AggMap::Small),
        _ => Some(AggMap::Large),
    };
    ClausePlan {
        probe: probe.name.to_string(),
        template: probe.template.to_string(),
        strategies,
        where_source: c.where_source.clone(),
        where_words: c.where_words.clone(),
        where_omitted: c.where_omitted.clone(),
        needs: kernel_needs(probe, &loads, used),
        filter,
        binds: c.compiled.binds.clone(),
        field_spans: c.field_spans.clone(),
        probe_span: c.probe_span,
        fields,
        action: c.action.clone(),
        loads,
        config,
        agg_map,
        output: c.output.clone(),
        metric: metric(probe.name, &c.action, c.metric.as_ref()),
        action_span: c.action_span,
        modifier_spans: c.modifier_spans.clone(),
    }
}

/// The aggregation's metric: the name `as` gives, else the derived one
/// ([`crate::metrics::derived_name`]); none for `print`.
fn metric(probe: &str, act: &Action, given: Option<&(String, (usize, usize))>) -> Option<Metric> {
    if act.is_print() {
        return None;
    }
    Some(match given {
        Some((name, span)) => Metric {
            name: name.clone(),
            given: true,
            span: Some(*span),
        },
        None => Metric {
            name: crate::metrics::derived_name(probe, act)?,
            given: false,
            span: None,
        },
    })
}

/// Each printing clause's ring buffer: [`RING_BUDGET`] shared out (rounded
/// down to a power of two, at least [`RING_MIN`]), `None` (the templates'
/// own 1 MiB) for one clause. The kernel maps every ring buffer into tcpq
/// whole (twice its data), so ten printing clauses of 1 MiB each would
/// cost 20 MiB of resident memory.
pub fn default_ring_bytes(printing: usize) -> Option<u32> {
    if printing <= 1 {
        return None;
    }
    let share = RING_BUDGET / printing as u32;
    let pow2 = 1u32 << (31 - share.leading_zeros());
    Some(pow2.max(RING_MIN))
}

/// Whether the clause shows or tests the socket's owner.
fn uses_owner(fields: &[String]) -> bool {
    fields.iter().any(|f| f == "pid" || f == "comm")
}

/// When the owner programs must attach: not at all when no clause shows
/// or tests the owner; at the first event when every clause that does
/// only prints it. Until then a socket's owner comes from the other owner
/// programs (connect and listen), the listener that accepted it, or /proc
/// at start; a filter or an aggregation over `pid` or `comm` in the kernel
/// needs it from the start (its events may never reach tcpq otherwise). A
/// one-liner that matches nothing then costs the host no program on its
/// sends and receives (measured in docs/benchmarks.md).
fn owner_io(clauses: &[ClausePlan]) -> Option<OwnerIo> {
    use tcpq_abi::slot;
    let owner_slots = [slot::PID, slot::COMM_0, slot::COMM_1];
    let mut users = clauses.iter().filter(|c| c.uses_owner()).peekable();
    users.peek()?;
    let print_only = users
        .all(|c| c.action.is_print() && !c.filter.iter().any(|i| owner_slots.contains(&i.slot)));
    Some(match print_only {
        true => OwnerIo::AtFirstEvent,
        false => OwnerIo::AtStart,
    })
}

/// The record slots the clause reads (bit `i` for slot `i`): its
/// filter's and its columns'.
fn slots_used(filter: &[Insn], action: &Action) -> u64 {
    let filter = filter.iter().map(|i| i.slot);
    let columns = action.columns().flat_map(|c| c.slots.iter().copied());
    filter
        .chain(columns)
        .fold(0, |m, s| m | 1u64.checked_shl(u32::from(s)).unwrap_or(0))
}

/// The probe fields the clause reads: printed or counted columns (under
/// the field's name, whatever `as` calls the column) and the fields its
/// filter tests, each once, in first-use order. Header columns (`time`,
/// `ktime`, `cpu`) are not among them: every template stamps them, so
/// they never decide a strategy.
fn fields_used(probe: &ProbeDef, filter: &[Insn], action: &Action) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |name: &str| {
        if !out.iter().any(|n| n == name) {
            out.push(name.to_owned());
        }
    };
    for insn in filter {
        if let Some(f) = probe.field_at_slot(insn.slot) {
            add(f.name);
        }
    }
    // By slot, not by column name: `print comm as who` uses `comm`.
    for c in action.columns().filter(|c| c.source.is_slots()) {
        match c.slots.first().and_then(|&s| probe.field_at_slot(s)) {
            Some(f) => add(f.name),
            None => add(&c.name),
        }
    }
    out
}

/// The kernel locations (`OFFSETS` entries) each field the clause uses
/// needs: a loaded field's (and the pointers to it, and HZ for one in
/// jiffies), and a probe slot's the template computes from several
/// (`tcpq_abi::PROBE_SLOT_OFFSETS`). The runtime refuses a clause whose
/// field needs one this kernel lacks, rather than read zeros.
fn kernel_needs(probe: &ProbeDef, loads: &[LoadSpec], used: u64) -> Vec<FieldNeeds> {
    let mut out: Vec<FieldNeeds> = loads
        .iter()
        .map(|l| FieldNeeds {
            field: l.field.clone(),
            offsets: l
                .via
                .iter()
                .chain(std::iter::once(&l.off))
                .chain(l.jiffies.then_some(&tcpq_abi::off::HZ))
                .copied()
                .collect(),
        })
        .collect();
    for (_, slot, offsets) in tcpq_abi::PROBE_SLOT_OFFSETS
        .iter()
        .filter(|(t, slot, _)| *t == probe.template && used & (1u64 << slot) != 0)
    {
        let field = probe
            .field_at_slot(*slot)
            .map_or_else(|| format!("slot {slot}"), |f| f.name.to_owned());
        out.push(FieldNeeds {
            field,
            offsets: offsets.to_vec(),
        });
    }
    out
}

/// The `CONFIG` entry of a checked clause, quick step aside (that is per
/// program and kernel: [`quick_step`]). `check` has kept every count
/// within the ABI's arrays (filter steps, key slots, socket loads).
fn template_config(
    filter: &[Insn],
    loads: &[LoadSpec],
    act: &Action,
    used: u64,
    owner: bool,
) -> TemplateConfig {
    debug_assert!(filter.len() <= tcpq_abi::MAX_INSNS && loads.len() <= tcpq_abi::MAX_LOADS);
    let mut cfg = TemplateConfig::default();
    for (dst, insn) in cfg.insns.iter_mut().zip(filter) {
        *dst = insn.to_abi();
    }
    cfg.n_insns = filter.len().min(tcpq_abi::MAX_INSNS) as u32;
    // A filter over the probe slots only runs before the socket is read:
    // a non-matching event then costs only what the filter needs.
    let probe_slots = tcpq_abi::slot::PROBE_FIRST..tcpq_abi::slot::LOADED;
    cfg.filter_early =
        (!filter.is_empty() && filter.iter().all(|i| probe_slots.contains(&i.slot))) as u8;
    // ... and then needs only the probe slots it reads: the template fills
    // the others after the filter, for the events that pass.
    if cfg.filter_early != 0 {
        cfg.early_probe = filter
            .iter()
            .fold(0, |m, i| m | tcpq_abi::probe_bit(i.slot));
    }
    cfg.owner = u8::from(owner);
    cfg.common = (used & 0xffff) as u16;
    cfg.probe = ((used >> tcpq_abi::slot::PROBE_FIRST) & 0xffff) as u16;
    // The slots the clause reads, probe slots first: what each record
    // starts with zeroed.
    let (probe_used, shared_used): (Vec<u8>, Vec<u8>) = (0..tcpq_abi::N_SLOTS as u8)
        .filter(|&s| used & (1 << s) != 0)
        .partition(|s| probe_slots.contains(s));
    cfg.n_clear_probe = probe_used.len() as u8;
    cfg.n_clear = (probe_used.len() + shared_used.len()) as u8;
    for (dst, s) in cfg
        .clear
        .iter_mut()
        .zip(probe_used.iter().chain(&shared_used))
    {
        *dst = *s;
    }
    (cfg.probe_before, cfg.probe_after) = match cfg.filter_early {
        0 => (cfg.probe, 0),
        _ => (cfg.probe & cfg.early_probe, cfg.probe & !cfg.early_probe),
    };
    for (dst, load) in cfg.loads.iter_mut().zip(loads) {
        *dst = load.to_abi();
    }
    cfg.n_loads = loads.len().min(tcpq_abi::MAX_LOADS) as u32;
    let key_slots = |cfg: &mut TemplateConfig| {
        let slots = act.keys().iter().flat_map(|k| k.slots.iter().copied());
        let mut n = 0;
        for (dst, s) in cfg.key_slots.iter_mut().zip(slots) {
            *dst = s;
            n += 1;
        }
        cfg.n_key_slots = n;
    };
    match act {
        Action::Print { .. } => cfg.action = action::PRINT,
        Action::Count { .. } => {
            cfg.action = action::COUNT;
            key_slots(&mut cfg);
        }
        Action::Aggregate { func, value, .. } => {
            cfg.action = action::COUNT;
            key_slots(&mut cfg);
            cfg.agg_slot = value.slots.first().copied().unwrap_or_default();
            match *func {
                AggFunc::Hist => cfg.bucket = bucket::LOG2,
                AggFunc::Lhist { min, max, step } => {
                    cfg.bucket = bucket::LINEAR;
                    // A signed value's bounds as their i64 bits
                    // (`agg_signed` makes the template compare them so).
                    cfg.lin_min = min as u64;
                    cfg.lin_max = max as u64;
                    cfg.lin_step = step;
                }
                _ => {}
            }
            cfg.agg_signed = u8::from(act.aggregates_signed());
        }
    }
    cfg
}

/// The filter's first step as `program` can run it before anything else
/// ([`Quick`]): when that step can reject, and the program reads its slot
/// in one load ([`tcpq_abi::quick::tables`]). The quick step passes what
/// the filter step sends on and rejects what it rejects. Where the value
/// lies (and whether it is a whole field of 1, 2, 4 or 8 bytes) is this
/// kernel's: the runtime places it ([`QuickPlan::place`]).
fn quick_step(cfg: &TemplateConfig, program: &str) -> Option<QuickPlan> {
    if cfg.n_insns == 0 {
        return None;
    }
    // Step 0 runs first whatever the filter reads after it.
    let insn = &cfg.insns[0];
    let (table, record) = tcpq_abi::quick::tables(program);
    let &(_, index) = table.iter().find(|(slot, _)| *slot == insn.slot)?;
    // The step rejects when its test comes out `when`.
    let when = match (insn.jt == JUMP_REJECT, insn.jf == JUMP_REJECT) {
        (false, true) => false,
        (true, false) => true,
        // Rejects both ways (or neither): nothing to gain.
        _ => return None,
    };
    let signed = insn.flags & tcpq_abi::INSN_SIGNED != 0;
    let step = Quick::rejecting(insn.op, signed, insn.mask, insn.value, when)?;
    Some(QuickPlan {
        entry: (index != tcpq_abi::quick::COMPUTED).then_some(index),
        record,
        slot: insn.slot,
        flags: match tcpq_abi::quick::BIG_ENDIAN_16.contains(&index) {
            true => Quick::BE16,
            false => 0,
        },
        mask: step.mask,
        base: step.base,
        span: step.span,
    })
}

#[cfg(test)]
mod tests {
    use crate::plan::{ClausePlan, OwnerIo};
    use tcpq_abi::{action, bucket, programs, slot, FieldLoc, Quick, TemplateConfig};

    fn plan(src: &str) -> crate::plan::Plan {
        crate::compile(src, "<test>", &[]).unwrap_or_else(|e| panic!("{src}: {e:?}"))
    }

    fn clause(src: &str) -> ClausePlan {
        plan(src).clauses.remove(0)
    }

    fn cfg(src: &str) -> TemplateConfig {
        clause(src).config
    }

    /// The slots a clause's filter and columns read, from the plan's own
    /// steps and columns (not from the words lowering derived).
    fn read_slots(c: &ClausePlan) -> u64 {
        let filter = c.filter.iter().map(|i| i.slot);
        let columns = c.action.columns().flat_map(|c| c.slots.iter().copied());
        filter.chain(columns).fold(0, |m, s| m | 1 << s)
    }

    /// Each record starts with the slots the clause reads zeroed, probe
    /// slots first (zeroed before the early filter), and no others; a key
    /// of two words or fewer goes to the small aggregation map.
    #[test]
    fn config_lists_the_slots_to_clear_and_picks_the_aggregation_map() {
        let cleared = |cfg: &TemplateConfig| {
            let probe = cfg.clear[..cfg.n_clear_probe as usize].to_vec();
            let shared = cfg.clear[cfg.n_clear_probe as usize..cfg.n_clear as usize].to_vec();
            (probe, shared)
        };
        let c = clause("on tcp_probe where snd_cwnd < 10 print pid, comm, srtt");
        let (probe, shared) = cleared(&c.config);
        assert!(probe.iter().all(|s| (16..32).contains(s)), "{probe:?}");
        assert!(shared.iter().all(|s| !(16..32).contains(s)), "{shared:?}");
        let listed = probe.iter().chain(&shared).fold(0u64, |m, s| m | 1 << s);
        assert_eq!(listed, read_slots(&c));
        // pid and comm (0, 1, 2) are shared; snd_cwnd and srtt probe slots.
        assert_eq!(&shared[..3], &[slot::PID, slot::COMM_0, slot::COMM_1]);
        assert_eq!(probe.len(), 2);
        assert_eq!(c.agg_map, None);

        let c = clause("on tcp_probe count by comm");
        assert_eq!(
            cleared(&c.config),
            (vec![], vec![slot::COMM_0, slot::COMM_1])
        );
        let small = |src: &str| {
            let c = clause(src);
            let small = tcpq_abi::small_key(c.config.n_key_slots, c.config.bucket);
            assert_eq!(
                c.agg_map == Some(crate::plan::AggMap::Small),
                small,
                "{src}"
            );
            small
        };
        assert!(small("on tcp_probe count by comm"));
        assert!(!small("on tcp_probe count by comm, dport"));
        assert!(small("on tcp_probe count by dport"));
        // A histogram's bucket is a key word too.
        assert!(small("on tcp_probe hist srtt by dport"));
        assert!(!small("on tcp_probe hist srtt by comm"));
    }

    #[test]
    fn config_concatenates_key_slots_and_lays_out_the_aggregation() {
        let c = cfg("on tcp_retransmit where dport == 443 count by comm, dport");
        assert_eq!(c.action, action::COUNT);
        assert_eq!(c.n_key_slots, 3);
        assert_eq!(
            &c.key_slots[..3],
            &[slot::COMM_0, slot::COMM_1, slot::DPORT]
        );
        assert_eq!(c.n_insns, 1);
        assert_eq!(c.insns[0].jt, tcpq_abi::JUMP_ACCEPT);
        assert_eq!(c.insns[0].value, 443);
        let c = cfg("on tcp_probe lhist srtt, 0, 100, 10 by comm, dport");
        assert_eq!((c.action, c.n_key_slots), (action::COUNT, 3));
        assert_eq!(c.agg_slot, slot::probe::SRTT);
        assert_eq!(c.bucket, bucket::LINEAR);
        assert_eq!((c.lin_min, c.lin_max, c.lin_step), (0, 100, 10));
        assert_eq!(cfg("on tcp_probe hist srtt").bucket, bucket::LOG2);
        assert_eq!(cfg("on tcp_probe print srtt").action, action::PRINT);
    }

    #[test]
    fn an_early_filter_names_the_probe_slots_it_reads() {
        use tcpq_abi::slot::probe as p;
        // dport (a socket slot): filtered late, every probe slot first.
        let c = cfg("on tcp_probe where dport == 443 print srtt");
        assert_eq!((c.filter_early, c.early_probe), (0, 0));
        assert_eq!(c.probe_before, c.probe);
        let c = cfg("on tcp_probe where snd_cwnd > 1 and snd_nxt > 1 print srtt");
        let early = tcpq_abi::probe_bit(p::SND_CWND) | tcpq_abi::probe_bit(p::SND_NXT);
        assert_eq!((c.filter_early, c.early_probe), (1, early));
        assert_eq!(c.probe_before, early);
        assert_eq!(c.probe_after, tcpq_abi::probe_bit(p::SRTT));
    }

    #[test]
    fn the_template_reads_only_the_slots_a_clause_uses() {
        use tcpq_abi::slot::probe as p;
        let c = cfg("on tcp_probe count by comm");
        assert_eq!(
            (c.common, c.probe),
            (1 << slot::COMM_0 | 1 << slot::COMM_1, 0)
        );
        let c = cfg("on tcp_probe where snd_cwnd > 10 print srtt, sport");
        assert_eq!(c.common, 1 << slot::SPORT);
        assert_eq!(
            c.probe,
            tcpq_abi::probe_bit(p::SND_CWND) | tcpq_abi::probe_bit(p::SRTT)
        );
        assert_eq!(c.early_probe, tcpq_abi::probe_bit(p::SND_CWND));
    }

    /// The quick step a program takes, placed at `locs` (this test's
    /// kernel).
    fn quick(src: &str, program: &str, locs: &[FieldLoc]) -> Quick {
        let c = clause(src);
        let s = c
            .strategies
            .iter()
            .find(|s| s.program == program)
            .unwrap_or_else(|| panic!("{src}: no strategy runs {program}"));
        match &s.quick {
            None => Quick::NONE,
            Some(q) => q.place(q.entry.map(|i| locs[i as usize]).filter(|l| l.size != 0)),
        }
    }

    #[test]
    fn the_quick_step_rejects_exactly_what_the_first_filter_step_rejects() {
        use tcpq_abi::off;
        let mut locs = [FieldLoc::EMPTY; tcpq_abi::N_OFFSETS];
        let at = |off: u32, size: u8| FieldLoc {
            off,
            size,
            ..FieldLoc::EMPTY
        };
        locs[off::TP_PROBE_SND_CWND as usize] = at(88, 4);
        locs[off::TP_PROBE_DPORT as usize] = at(66, 2);
        locs[off::TP_SND_CWND as usize] = at(1444, 4);
        let tp = programs::PROBE_TP;
        let q = quick("on tcp_probe where snd_cwnd == 5 print pid", tp, &locs);
        assert_eq!((q.off, q.size), (88, 4));
        assert!(q.passes(5) && !q.passes(4) && !q.passes(6));
        let q = quick("on tcp_probe where snd_cwnd != 5 print pid", tp, &locs);
        assert!(!q.passes(5) && q.passes(4) && q.passes(6));
        let q = quick("on tcp_probe where not snd_cwnd < 5 print pid", tp, &locs);
        assert!(!q.passes(4) && q.passes(5));
        // A later step reading the socket does not matter: step 0 runs first.
        let q = quick(
            "on tcp_probe where dport == 443 and srtt > 1ms print pid",
            tp,
            &locs,
        );
        assert_eq!((q.off, q.size), (66, 2));
        assert!(q.passes(443) && !q.passes(80));
        // The raw program reads the socket: its own table.
        let q = quick(
            "on tcp_probe where snd_cwnd > 10 print pid",
            programs::PROBE_RTP,
            &locs,
        );
        assert_eq!((q.off, q.size), (1444, 4));
        assert!(q.passes(11) && !q.passes(10));
        // The window the seed's program computes from the TCP header.
        let q = quick(
            "on tcp_select_window where win == 0 print pid",
            programs::SELWIN_NDQ,
            &locs,
        );
        assert_eq!(
            (q.size, q.slot),
            (Quick::COMPUTED, slot::select_window::WIN)
        );
        assert!(q.passes(0) && !q.passes(1));
        // The raw program's peer port: big-endian in the socket.
        locs[off::SKC_DPORT as usize] = at(12, 2);
        let q = quick(
            "on tcp_probe where dport == 443 print pid",
            programs::PROBE_RTP,
            &locs,
        );
        assert_eq!((q.off, q.size, q.flags), (12, 2, Quick::BE16));
        assert!(q.passes(443) && !q.passes(443u16.swap_bytes() as u64));
        // None: the first step cannot reject alone, the program cannot read
        // the slot, or has no quick step at all.
        for (src, program) in [
            (
                "on tcp_probe where snd_cwnd == 5 or dport == 1 print pid",
                tp,
            ),
            ("on tcp_probe where ssthresh == 1 print pid", tp),
            ("on tcp_probe print pid", tp),
            (
                "on tcp_probe where sport == 443 print pid",
                programs::PROBE_RTP,
            ),
            (
                "on tcp_select_window where rcv_wnd == 0 print pid",
                programs::SELWIN_NDQ,
            ),
            (
                "on tcp_retransmit where dport == 443 print pid",
                programs::RETRANS_TP,
            ),
        ] {
            assert_eq!(quick(src, program, &locs), Quick::NONE, "{src}");
        }
        // A record field past the limit or unaligned is not read so.
        locs[off::TP_PROBE_SND_CWND as usize] = at(300, 4);
        let q = quick("on tcp_probe where snd_cwnd == 5 print pid", tp, &locs);
        assert_eq!(q, Quick::NONE);
        locs[off::TP_PROBE_SND_CWND as usize] = at(90, 4);
        let q = quick("on tcp_probe where snd_cwnd == 5 print pid", tp, &locs);
        assert_eq!(q, Quick::NONE);
        // Unresolved on this kernel: none either.
        locs[off::TP_PROBE_SND_CWND as usize] = FieldLoc::EMPTY;
        let q = quick("on tcp_probe where snd_cwnd == 5 print pid", tp, &locs);
        assert_eq!(q, Quick::NONE);
    }

    /// A first step whose value is a kernel constant's number (0 until the
    /// runtime binds it) makes no quick step.
    #[test]
    fn no_quick_step_from_a_value_bound_later() {
        let c = clause("on tcp_drop where reason == NO_SOCKET count");
        assert_eq!(c.binds.first().map(|b| b.insn), Some(0));
        assert!(c.strategies.iter().all(|s| s.quick.is_none()));
    }

    #[test]
    fn only_a_clause_showing_or_testing_the_owner_looks_it_up() {
        let owner = |src: &str| cfg(src).owner;
        assert_eq!(owner("on tcp_retransmit print sport, task_comm"), 0);
        assert_eq!(owner("on tcp_retransmit count by dport"), 0);
        assert_eq!(owner("on tcp_retransmit print pid"), 1);
        assert_eq!(owner("on tcp_retransmit count by comm"), 1);
        assert_eq!(owner("on tcp_retransmit where comm == \"x\" count"), 1);
    }

    #[test]
    fn owner_tracking_on_io_waits_only_when_the_owner_is_only_printed() {
        let io = |src: &str| plan(src).owner_io;
        let first = Some(OwnerIo::AtFirstEvent);
        assert_eq!(io("on tcp_retransmit print pid, comm"), first);
        assert_eq!(io("on tcp_retransmit where dport == 80 print comm"), first);
        assert_eq!(
            io("on tcp_retransmit print pid\non tcp_probe print snd_cwnd"),
            first
        );
        // Nothing to track.
        assert_eq!(io("on tcp_retransmit print task_pid"), None);
        // The kernel needs the owner before any event reaches tcpq.
        let start = Some(OwnerIo::AtStart);
        assert_eq!(io("on tcp_retransmit where pid == 1 print sport"), start);
        assert_eq!(io("on tcp_retransmit where comm == \"x\" print pid"), start);
        assert_eq!(io("on tcp_retransmit count by comm"), start);
        assert_eq!(
            io("on tcp_retransmit print pid\non tcp_probe count by comm"),
            start
        );
    }

    #[test]
    fn printing_clauses_share_the_default_ring_budget() {
        use super::default_ring_bytes;
        assert_eq!(default_ring_bytes(0), None);
        assert_eq!(default_ring_bytes(1), None);
        assert_eq!(default_ring_bytes(2), Some(512 << 10));
        assert_eq!(default_ring_bytes(3), Some(256 << 10));
        assert_eq!(default_ring_bytes(7), Some(128 << 10));
        assert_eq!(default_ring_bytes(16), Some(128 << 10));
        assert_eq!(plan("on tcp_probe print pid").ring_bytes, None);
        assert_eq!(
            plan("on tcp_probe print pid; on tcp_retransmit print pid; on tcp_drop count")
                .ring_bytes,
            Some(512 << 10)
        );
    }

    /// Further programs of a strategy stay in the plan only for a clause
    /// that uses a field they are there for.
    #[test]
    fn further_programs_only_for_the_fields_they_fill() {
        let mut checked = 0;
        for p in crate::catalog::PROBES {
            for s in p.strategies {
                let full = s.to_plan();
                let bare = clause(&format!("on {} count", p.name));
                let bare = bare
                    .strategies
                    .iter()
                    .find(|b| b.name == full.name)
                    .unwrap();
                let kept: Vec<_> = full.also.iter().filter(|x| x.only_for.is_empty()).collect();
                assert_eq!(bare.also.iter().collect::<Vec<_>>(), kept, "{}", p.name);
                for x in full.also.iter().filter(|x| !x.only_for.is_empty()) {
                    let src = format!("on {} count by {}", p.name, x.only_for[0]);
                    let Ok(plan) = crate::compile(&src, "<test>", &[]) else {
                        continue;
                    };
                    let with = &plan.clauses[0];
                    let with = with
                        .strategies
                        .iter()
                        .find(|b| b.name == full.name)
                        .unwrap();
                    assert!(with.also.contains(x), "{src}");
                    checked += 1;
                }
            }
        }
        assert!(
            checked > 0,
            "no strategy has a program only some fields need"
        );
    }
}
