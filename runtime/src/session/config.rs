//! A clause's template configuration: the `CONFIG` entry its template
//! reads (filter steps, the slots to read and clear, the socket fields to
//! load, the aggregation's key and buckets) and the quick first step the
//! chosen program can run before anything else. Pure functions of the
//! plan (and, for the quick step, the offsets); writing the entry into
//! the kernel is `attach.rs`.
use tcpq_abi::{
    action, bucket, Quick, TemplateConfig, INSN_SIGNED, JUMP_REJECT, MAX_INSNS, MAX_KEY_SLOTS,
    MAX_LOADS,
};
use tcpq_dsl::plan::{Action, AggFunc, ClausePlan};

use super::SessionError;
use crate::offsets::Offsets;

/// The filter's first step as `program` can run it before anything else
/// ([`Quick`]): when that step can reject, and the program reads its slot
/// in one load ([`tcpq_abi::quick::tables`]) of a whole field of 1, 2, 4
/// or 8 bytes (`quick::readable`). Otherwise none. The quick step passes
/// what the filter step sends on and rejects what it rejects.
pub fn quick_step(cfg: &TemplateConfig, program: &str, offsets: &Offsets) -> Quick {
    if cfg.n_insns == 0 {
        return Quick::NONE;
    }
    // Step 0 runs first whatever the filter reads after it.
    let insn = &cfg.insns[0];
    let (table, record) = tcpq_abi::quick::tables(program);
    let index = table
        .iter()
        .find(|(slot, _)| *slot == insn.slot)
        .map(|&(_, index)| index);
    // Where the value is: `(off, size)`, or computed by the program.
    let (off, size) = match index {
        None => return Quick::NONE,
        Some(tcpq_abi::quick::COMPUTED) => (0, Quick::COMPUTED),
        Some(i) => {
            if !offsets.has(i) {
                return Quick::NONE;
            }
            let l = offsets.locs[i as usize];
            if l.bit_size != 0 || !tcpq_abi::quick::readable(record, l.off, l.size) {
                return Quick::NONE;
            }
            (l.off, l.size)
        }
    };
    // The step rejects when its test comes out `when`.
    let when = match (insn.jt == JUMP_REJECT, insn.jf == JUMP_REJECT) {
        (false, true) => false,
        (true, false) => true,
        // Rejects both ways (or neither): nothing to gain.
        _ => return Quick::NONE,
    };
    let signed = insn.flags & INSN_SIGNED != 0;
    let Some(step) = Quick::rejecting(insn.op, signed, insn.mask, insn.value, when) else {
        return Quick::NONE;
    };
    let flags = match index {
        Some(i) if tcpq_abi::quick::BIG_ENDIAN_16.contains(&i) => Quick::BE16,
        _ => 0,
    };
    Quick {
        off,
        size,
        slot: insn.slot,
        flags,
        ..step
    }
}

/// The `CONFIG` entry for a clause.
pub fn template_config(clause: &ClausePlan) -> Result<TemplateConfig, SessionError> {
    let too_big = |what: String| SessionError::PlanTooBig {
        probe: clause.probe.clone(),
        what,
    };
    let mut cfg = TemplateConfig::default();
    if clause.filter.len() > MAX_INSNS {
        return Err(too_big(format!(
            "{} filter steps, the most is {MAX_INSNS}",
            clause.filter.len()
        )));
    }
    for (dst, insn) in cfg.insns.iter_mut().zip(&clause.filter) {
        *dst = insn.to_abi();
    }
    cfg.n_insns = clause.filter.len() as u32;
    // A filter over the probe slots only runs before the socket is read:
    // a non-matching event then costs only what the filter needs.
    let probe_slots = tcpq_abi::slot::PROBE_FIRST..tcpq_abi::slot::LOADED;
    cfg.filter_early = (!clause.filter.is_empty()
        && clause.filter.iter().all(|i| probe_slots.contains(&i.slot)))
        as u8;
    // ... and then needs only the probe slots it reads: the template fills
    // the others after the filter, for the events that pass.
    if cfg.filter_early != 0 {
        cfg.early_probe = clause
            .filter
            .iter()
            .fold(0, |m, i| m | tcpq_abi::probe_bit(i.slot));
    }
    cfg.owner = u8::from(clause.uses_owner());
    cfg.common = (clause.slots_used() & 0xffff) as u16;
    cfg.probe = ((clause.slots_used() >> tcpq_abi::slot::PROBE_FIRST) & 0xffff) as u16;
    // The slots the clause reads, probe slots first: what each record
    // starts with zeroed.
    let used = clause.slots_used();
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
    if clause.loads.len() > MAX_LOADS {
        return Err(too_big(format!(
            "{} socket fields, the most is {MAX_LOADS}",
            clause.loads.len()
        )));
    }
    for (dst, load) in cfg.loads.iter_mut().zip(&clause.loads) {
        *dst = load.to_abi();
    }
    cfg.n_loads = clause.loads.len() as u32;
    match &clause.action {
        Action::Print { .. } => cfg.action = action::PRINT,
        Action::Count { keys } => {
            cfg.action = action::COUNT;
            let slots: Vec<u8> = keys.iter().flat_map(|k| k.slots.iter().copied()).collect();
            if slots.len() > MAX_KEY_SLOTS {
                return Err(too_big(format!(
                    "{} key slots, the most is {MAX_KEY_SLOTS}",
                    slots.len()
                )));
            }
            cfg.key_slots[..slots.len()].copy_from_slice(&slots);
            cfg.n_key_slots = slots.len() as u32;
        }
        Action::Aggregate { func, value, keys } => {
            cfg.action = action::COUNT;
            let slots: Vec<u8> = keys.iter().flat_map(|k| k.slots.iter().copied()).collect();
            let need = slots.len() + usize::from(func.is_histogram());
            if need > MAX_KEY_SLOTS {
                return Err(too_big(format!(
                    "{need} key slots (with the bucket), the most is {MAX_KEY_SLOTS}"
                )));
            }
            cfg.key_slots[..slots.len()].copy_from_slice(&slots);
            cfg.n_key_slots = slots.len() as u32;
            cfg.agg_slot = value.slots.first().copied().ok_or_else(|| {
                too_big(format!(
                    "the aggregated column `{}` has no slot",
                    value.name
                ))
            })?;
            match *func {
                AggFunc::Hist => cfg.bucket = bucket::LOG2,
                AggFunc::Lhist { min, max, step } => {
                    if step == 0 || min >= max {
                        return Err(too_big(format!(
                            "lhist bounds {min}, {max}, {step} make no buckets"
                        )));
                    }
                    cfg.bucket = bucket::LINEAR;
                    // A signed value's bounds as their i64 bits
                    // (`agg_signed` makes the template compare them so).
                    cfg.lin_min = min as u64;
                    cfg.lin_max = max as u64;
                    cfg.lin_step = step;
                }
                _ => {}
            }
            cfg.agg_signed = u8::from(clause.action.aggregates_signed());
        }
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcpq_abi::{programs, FieldLoc};
    use tcpq_dsl::plan::{Attach, Strategy};

    use tcpq_dsl::plan::{CmpOp, Column, FieldType, Insn, Jump, Output, Unit};

    pub(crate) fn clause(action: Action) -> ClausePlan {
        ClausePlan {
            probe: "tcp_retransmit".into(),
            template: "tcp_retransmit".into(),
            strategies: vec![Strategy {
                name: "tcp_retransmit_skb".into(),
                program: programs::RETRANS_TP.into(),
                attach: Attach::Tracepoint {
                    category: "tcp".into(),
                    name: "tcp_retransmit_skb".into(),
                },
                how: "tracepoint".into(),
                also: Vec::new(),
                requires: vec![],
                provides: vec![],
                field_requires: vec![],
            }],
            where_source: None,
            where_words: None,
            where_omitted: Vec::new(),
            loads: Vec::new(),
            field_spans: Vec::new(),
            filter: vec![Insn {
                slot: 12,
                op: CmpOp::Eq,
                signed: false,
                mask: u64::MAX,
                value: 443,
                jt: Jump::Accept,
                jf: Jump::Reject,
            }],
            binds: Vec::new(),
            action,
            output: Output::default(),
        }
    }

    /// Each record starts with the slots the clause reads zeroed, probe
    /// slots first (zeroed before the early filter), and no others; a key
    /// of two words or fewer goes to the small aggregation map.
    #[test]
    fn config_lists_the_slots_to_clear_and_picks_the_aggregation_map() {
        let cfg_of = |src: &str| {
            let plan = tcpq_dsl::compile(src, "<test>", &[]).unwrap();
            template_config(&plan.clauses[0]).unwrap()
        };
        let cleared = |cfg: &TemplateConfig| {
            let probe = cfg.clear[..cfg.n_clear_probe as usize].to_vec();
            let shared = cfg.clear[cfg.n_clear_probe as usize..cfg.n_clear as usize].to_vec();
            (probe, shared)
        };
        let plan = tcpq_dsl::compile(
            "on tcp_probe where snd_cwnd < 10 print pid, comm, srtt",
            "<test>",
            &[],
        )
        .unwrap();
        let used = plan.clauses[0].slots_used();
        let cfg = template_config(&plan.clauses[0]).unwrap();
        let (probe, shared) = cleared(&cfg);
        assert!(probe.iter().all(|s| (16..32).contains(s)), "{probe:?}");
        assert!(shared.iter().all(|s| !(16..32).contains(s)), "{shared:?}");
        let listed = probe.iter().chain(&shared).fold(0u64, |m, s| m | 1 << s);
        assert_eq!(listed, used);
        // pid and comm (0, 1, 2) are shared; snd_cwnd and srtt probe slots.
        assert_eq!(
            &shared[..3],
            &[
                tcpq_abi::slot::PID,
                tcpq_abi::slot::COMM_0,
                tcpq_abi::slot::COMM_1
            ]
        );
        assert_eq!(probe.len(), 2);

        let cfg = cfg_of("on tcp_probe count by comm");
        assert_eq!(
            cleared(&cfg),
            (vec![], vec![tcpq_abi::slot::COMM_0, tcpq_abi::slot::COMM_1])
        );
        assert!(tcpq_abi::small_key(cfg.n_key_slots, cfg.bucket));
        let cfg = cfg_of("on tcp_probe count by comm, dport");
        assert!(!tcpq_abi::small_key(cfg.n_key_slots, cfg.bucket));
        let cfg = cfg_of("on tcp_probe count by dport");
        assert!(tcpq_abi::small_key(cfg.n_key_slots, cfg.bucket));
        // A histogram's bucket is a key word too.
        let cfg = cfg_of("on tcp_probe hist srtt by dport");
        assert!(tcpq_abi::small_key(cfg.n_key_slots, cfg.bucket));
        let cfg = cfg_of("on tcp_probe hist srtt by comm");
        assert!(!tcpq_abi::small_key(cfg.n_key_slots, cfg.bucket));
    }

    #[test]
    fn config_concatenates_key_slots() {
        let keys = vec![
            Column {
                name: "comm".into(),
                ty: FieldType::Comm,
                slots: vec![1, 2],
                source: Default::default(),
                scale: None,
                labels: None,
            },
            Column {
                name: "dport".into(),
                ty: FieldType::Uint(Unit::None),
                slots: vec![12],
                source: Default::default(),
                scale: None,
                labels: None,
            },
        ];
        let cfg = template_config(&clause(Action::Count { keys: keys.clone() })).unwrap();
        assert_eq!(cfg.action, action::COUNT);
        assert_eq!(cfg.n_key_slots, 3);
        assert_eq!(&cfg.key_slots[..3], &[1, 2, 12]);
        assert_eq!(cfg.n_insns, 1);
        assert_eq!(cfg.insns[0].jt, tcpq_abi::JUMP_ACCEPT);
        assert_eq!(cfg.insns[0].value, 443);

        let value = Column {
            name: "srtt".into(),
            ty: FieldType::Uint(Unit::Micros),
            slots: vec![46],
            source: Default::default(),
            scale: None,
            labels: None,
        };
        let lhist = AggFunc::Lhist {
            min: 0,
            max: 100,
            step: 10,
        };
        let cfg = template_config(&clause(Action::Aggregate {
            func: lhist,
            value: value.clone(),
            keys: keys.clone(),
        }))
        .unwrap();
        assert_eq!(cfg.action, action::COUNT);
        assert_eq!(cfg.n_key_slots, 3);
        assert_eq!(cfg.agg_slot, 46);
        assert_eq!(cfg.bucket, bucket::LINEAR);
        assert_eq!((cfg.lin_min, cfg.lin_max, cfg.lin_step), (0, 100, 10));
        let mut seven = keys.clone();
        seven.extend(keys.iter().cloned());
        seven.push(keys[1].clone());
        // 7 key slots + the bucket = 8: fits; one more does not.
        let hist = |keys| {
            template_config(&clause(Action::Aggregate {
                func: AggFunc::Hist,
                value: value.clone(),
                keys,
            }))
        };
        assert_eq!(hist(seven.clone()).unwrap().bucket, bucket::LOG2);
        seven.push(keys[1].clone());
        assert!(matches!(hist(seven), Err(SessionError::PlanTooBig { .. })));
    }

    #[test]
    fn oversized_plans_are_refused() {
        let mut c = clause(Action::Print { columns: vec![] });
        c.filter = vec![c.filter[0]; MAX_INSNS + 1];
        assert!(matches!(
            template_config(&c),
            Err(SessionError::PlanTooBig { .. })
        ));
    }

    #[test]
    fn an_early_filter_names_the_probe_slots_it_reads() {
        let mut c = clause(Action::Print { columns: vec![] });
        // dport (a socket slot): filtered late, every probe slot first.
        let cfg = template_config(&c).unwrap();
        assert_eq!((cfg.filter_early, cfg.early_probe), (0, 0));
        c.filter[0].slot = 18;
        let mut second = c.filter[0];
        second.slot = 16;
        c.filter.push(second);
        let cfg = template_config(&c).unwrap();
        assert_eq!((cfg.filter_early, cfg.early_probe), (1, 0b101));
    }

    #[test]
    fn the_template_reads_only_the_slots_a_clause_uses() {
        use tcpq_abi::slot::{self, probe as p};
        let cfg = |src: &str| {
            let plan = tcpq_dsl::compile(src, "<test>", &[]).unwrap();
            template_config(&plan.clauses[0]).unwrap()
        };
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

    #[test]
    fn the_quick_step_rejects_exactly_what_the_first_filter_step_rejects() {
        use tcpq_abi::off;
        let mut offsets = Offsets {
            locs: [FieldLoc::EMPTY; tcpq_abi::N_OFFSETS],
            missing: Vec::new(),
            notes: Vec::new(),
            btf_resolve_time: Default::default(),
            tracefs_time: Default::default(),
        };
        let at = |off: u32, size: u8| FieldLoc {
            off,
            size,
            ..FieldLoc::EMPTY
        };
        offsets.locs[off::TP_PROBE_SND_CWND as usize] = at(88, 4);
        offsets.locs[off::TP_PROBE_DPORT as usize] = at(66, 2);
        offsets.locs[off::TP_SND_CWND as usize] = at(1444, 4);
        let quick = |src: &str, program: &str, offsets: &Offsets| {
            let plan = tcpq_dsl::compile(src, "<test>", &[]).unwrap();
            quick_step(
                &template_config(&plan.clauses[0]).unwrap(),
                program,
                offsets,
            )
        };
        let tp = programs::PROBE_TP;
        let q = quick("on tcp_probe where snd_cwnd == 5 print pid", tp, &offsets);
        assert_eq!((q.off, q.size), (88, 4));
        assert!(q.passes(5) && !q.passes(4) && !q.passes(6));
        let q = quick("on tcp_probe where snd_cwnd != 5 print pid", tp, &offsets);
        assert!(!q.passes(5) && q.passes(4) && q.passes(6));
        let q = quick(
            "on tcp_probe where not snd_cwnd < 5 print pid",
            tp,
            &offsets,
        );
        assert!(!q.passes(4) && q.passes(5));
        // A later step reading the socket does not matter: step 0 runs first.
        let q = quick(
            "on tcp_probe where dport == 443 and srtt > 1ms print pid",
            tp,
            &offsets,
        );
        assert_eq!((q.off, q.size), (66, 2));
        assert!(q.passes(443) && !q.passes(80));
        // The raw program reads the socket: its own table.
        let q = quick(
            "on tcp_probe where snd_cwnd > 10 print pid",
            programs::PROBE_RTP,
            &offsets,
        );
        assert_eq!((q.off, q.size), (1444, 4));
        assert!(q.passes(11) && !q.passes(10));
        // The window the seed's program computes from the TCP header.
        let q = quick(
            "on tcp_select_window where win == 0 print pid",
            programs::SELWIN_NDQ,
            &offsets,
        );
        assert_eq!(
            (q.size, q.slot),
            (Quick::COMPUTED, tcpq_abi::slot::select_window::WIN)
        );
        assert!(q.passes(0) && !q.passes(1));
        // The raw program's peer port: big-endian in the socket.
        offsets.locs[off::SKC_DPORT as usize] = at(12, 2);
        let q = quick(
            "on tcp_probe where dport == 443 print pid",
            programs::PROBE_RTP,
            &offsets,
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
            assert_eq!(quick(src, program, &offsets), Quick::NONE, "{src}");
        }
        // A record field past the limit or unaligned is not read so.
        offsets.locs[off::TP_PROBE_SND_CWND as usize] = at(300, 4);
        let q = quick("on tcp_probe where snd_cwnd == 5 print pid", tp, &offsets);
        assert_eq!(q, Quick::NONE);
        offsets.locs[off::TP_PROBE_SND_CWND as usize] = at(90, 4);
        let q = quick("on tcp_probe where snd_cwnd == 5 print pid", tp, &offsets);
        assert_eq!(q, Quick::NONE);
    }

    #[test]
    fn only_a_clause_showing_or_testing_the_owner_looks_it_up() {
        let owner = |src: &str| {
            let plan = tcpq_dsl::compile(src, "<test>", &[]).unwrap();
            template_config(&plan.clauses[0]).unwrap().owner
        };
        assert_eq!(owner("on tcp_retransmit print sport, task_comm"), 0);
        assert_eq!(owner("on tcp_retransmit count by dport"), 0);
        assert_eq!(owner("on tcp_retransmit print pid"), 1);
        assert_eq!(owner("on tcp_retransmit count by comm"), 1);
        assert_eq!(owner("on tcp_retransmit where comm == \"x\" count"), 1);
    }
}
