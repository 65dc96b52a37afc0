//! `tcpq --explain`: what a plan will do, in plain words, then the plan's
//! raw contents (template, strategies, filter instructions, columns).
use crate::catalog::{self, type_words};
use crate::plan::{Action, AggFunc, ClausePlan, CmpOp, Column, FieldType, Insn, Jump, Plan};
use std::fmt::Write;

/// Width text is wrapped to.
const WIDTH: usize = 78;

/// Explain a plan for people: one section per clause.
pub fn explain(plan: &Plan) -> String {
    let mut out = String::new();
    let n = plan.clauses.len();
    let _ = writeln!(
        out,
        "{n} clause{}; each attaches its own template.",
        if n == 1 { "" } else { "s" }
    );
    for l in &plan.left_out {
        wrap(&mut out, &format!("left out: {l}; it attaches nothing"), "");
    }
    if let Some(bytes) = plan.ring_bytes {
        wrap(
            &mut out,
            &format!("ring buffers: {} KiB for each printing clause", bytes >> 10),
            "",
        );
    }
    match plan.owner_io {
        None => {}
        Some(crate::plan::OwnerIo::AtStart) => wrap(
            &mut out,
            "owners: the owner programs attach before the probes (a filter or an aggregation \
             over pid or comm needs every socket's owner)",
            "",
        ),
        Some(crate::plan::OwnerIo::AtFirstEvent) => wrap(
            &mut out,
            "owners: the program on every send and receive attaches at the first event (pid \
             and comm are only printed)",
            "",
        ),
    }
    for (i, c) in plan.clauses.iter().enumerate() {
        out.push('\n');
        clause(&mut out, i + 1, c);
    }
    out
}

fn clause(out: &mut String, number: usize, c: &ClausePlan) {
    let probe = catalog::probe(&c.probe);
    let _ = writeln!(out, "clause {number}: on {}", c.probe);
    match probe {
        Some(p) => {
            let _ = writeln!(out, "  probe:    {} — {}", p.name, p.summary);
            wrap(out, p.doc, "            ");
        }
        None => {
            let _ = writeln!(out, "  probe:    {} (not in this catalog)", c.probe);
        }
    }
    let _ = writeln!(
        out,
        "  template: {} (probe-templates/prebuilt/{}.bpfel.o)",
        c.template, c.template
    );
    let _ = writeln!(
        out,
        "  attach:   {} strateg{} in order; the runtime uses the first this kernel supports",
        c.strategies.len(),
        if c.strategies.len() == 1 { "y" } else { "ies" }
    );
    for (k, s) in c.strategies.iter().enumerate() {
        let target = s.attach.describe();
        let _ = writeln!(
            out,
            "            {}. {}: {target}, program `{}`",
            k + 1,
            s.name,
            s.program
        );
        wrap(out, &s.how, "               ");
        if let Some(q) = &s.quick {
            let on = match (q.entry, q.record) {
                (None, _) => "the value it computes",
                (Some(_), true) => "its record's field, in one load (at this kernel's offset)",
                (Some(_), false) => "the socket's field, in one load (at this kernel's offset)",
            };
            wrap(
                out,
                &format!(
                    "quick first step: before anything else, the program runs the filter's \
                     first step on {on}"
                ),
                "               ",
            );
        }
    }
    let own_words = probe
        .filter(|p| !p.implicit.is_empty())
        .map(|p| p.implicit_words);
    match &c.where_source {
        None if c.filter.is_empty() => {
            let _ = writeln!(
                out,
                "  where:    (none) every event passes; no filter instructions"
            );
        }
        None => {
            // A view (`tcp_connect`) keeps its own condition.
            let _ = writeln!(out, "  where:    (none written)");
            wrap(
                out,
                &format!(
                    "the probe's own condition: {}",
                    own_words.unwrap_or("(not in this catalog)")
                ),
                "            ",
            );
            filter_text(out, probe, c);
        }
        Some(src) => {
            let _ = writeln!(out, "  where:    {src}");
            if !c.where_omitted.is_empty() {
                let list = c
                    .where_omitted
                    .iter()
                    .map(|t| format!("`{t}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                wrap(
                    out,
                    &format!(
                        "left out (optional parameter not given): {list}{}",
                        match (&c.where_words, c.filter.is_empty()) {
                            (Some(_), _) => "",
                            (None, true) => "; every event passes",
                            // A view (`tcp_connect`): its own condition stays.
                            (None, false) => "; only the probe's own condition remains",
                        }
                    ),
                    "            ",
                );
            }
            if let Some(w) = &c.where_words {
                wrap(
                    out,
                    &format!("in words: keep an event when {w}"),
                    "            ",
                );
            }
            if let Some(w) = own_words {
                wrap(
                    out,
                    &format!("and the probe's own condition, tested first: {w}"),
                    "            ",
                );
            }
            filter_text(out, probe, c);
        }
    }
    match &c.action {
        Action::Print { columns } => {
            let _ = writeln!(out, "  action:   print each matching event, columns:");
            columns_text(out, columns);
        }
        Action::Count { keys } if keys.is_empty() => {
            let _ = writeln!(
                out,
                "  action:   count matching events in the kernel (one total)"
            );
        }
        Action::Count { keys } => {
            let _ = writeln!(
                out,
                "  action:   count matching events in the kernel, by key:"
            );
            columns_text(out, keys);
        }
        Action::Aggregate { func, value, keys } => {
            let what = match func {
                AggFunc::Sum => format!("the sum of `{}`", value.name),
                AggFunc::Avg => format!(
                    "the average of `{}` (sum / count, rounded down)",
                    value.name
                ),
                AggFunc::Min => format!("the least `{}`", value.name),
                AggFunc::Max => format!("the greatest `{}`", value.name),
                AggFunc::Stats => format!("count, average, least and greatest `{}`", value.name),
                AggFunc::Hist => format!("a histogram of `{}` in power-of-two buckets", value.name),
                AggFunc::Lhist { min, max, step } => format!(
                    "a histogram of `{}` in linear buckets of {step} from {min} to {max}{}",
                    value.name,
                    match value.ty {
                        FieldType::Uint(u) if u != crate::plan::Unit::None =>
                            type_words(value.ty).replace("unsigned integer", ""),
                        _ => String::new(),
                    }
                ),
            };
            let by = if keys.is_empty() { "" } else { ", by key" };
            let _ = writeln!(out, "  action:   {what} over matching events{by}");
            let slots = value
                .slots
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>();
            wrap(
                out,
                &format!(
                    "the kernel keeps count, sum, min and max per key and CPU in a per-CPU hash \
                     map (value slot {}{}{}); tcpq combines the CPUs when it prints",
                    slots.join(", "),
                    if matches!(value.ty, FieldType::Int(_)) {
                        ", compared as signed 64-bit numbers"
                    } else {
                        ""
                    },
                    if func.is_histogram() {
                        "; the bucket is the last key slot"
                    } else {
                        ""
                    }
                ),
                "            ",
            );
            if !keys.is_empty() {
                columns_text(out, keys);
            }
        }
    }
    if let Some(m) = c.agg_map {
        let words = c.config.n_key_slots + u32::from(c.config.bucket != tcpq_abi::bucket::NONE);
        let key = match words {
            0 => "no key: one total".to_string(),
            1 => "a key of 1 word".to_string(),
            n => format!("a key of {n} words"),
        };
        let _ = writeln!(out, "  map:      {} ({key})", m.map_name());
    }
    if let Some(m) = &c.metric {
        let how = match m.given {
            true => "named by `as`",
            false => "derived",
        };
        let _ = writeln!(out, "  metric:   {} (tcpq serve; {how})", m.name);
    }
    let o = &c.output;
    if let Some(n) = o.top {
        let _ = writeln!(out, "  top:      print only the {n} largest keys");
    }
    if let Some(ms) = o.every_ms {
        let _ = writeln!(
            out,
            "  every:    print, then clear the kernel map, every {ms} ms"
        );
    }
    if let Some(n) = o.limit {
        let _ = writeln!(
            out,
            "  limit:    stop (and detach) after {n} printed event{}",
            if n == 1 { "" } else { "s" }
        );
    }
}

/// Every instruction of the filter, as the template runs them.
fn filter_text(out: &mut String, probe: Option<&catalog::ProbeDef>, c: &ClausePlan) {
    let filter = &c.filter;
    let _ = writeln!(
        out,
        "            filter: {} instruction{} (of at most {}); jumps only go forward",
        filter.len(),
        if filter.len() == 1 { "" } else { "s" },
        tcpq_abi::MAX_INSNS
    );
    for (k, insn) in filter.iter().enumerate() {
        let bind = c.binds.iter().find(|b| usize::from(b.insn) == k);
        let _ = writeln!(
            out,
            "              {k:>2}: {}",
            insn_text(probe, insn, bind.map(|b| &b.bind))
        );
    }
    if c.config.filter_early != 0 {
        wrap(
            out,
            "the filter reads only the probe's own fields: it runs before the socket is read",
            "            ",
        );
    }
    if !c.binds.is_empty() {
        wrap(
            out,
            "a named constant's number is this kernel's: the runtime reads it from the \
             kernel's BTF before loading (the numbers change between kernel versions)",
            "            ",
        );
    }
}

fn columns_text(out: &mut String, cols: &[Column]) {
    let width = cols.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in cols {
        let slots: Vec<String> = c.slots.iter().map(|s| s.to_string()).collect();
        if let Some(sc) = &c.scale {
            let _ = writeln!(
                out,
                "            {:width$}  computed in userspace: value {} {}",
                c.name,
                sc.op.symbol(),
                sc.by
            );
        }
        let _ = writeln!(
            out,
            "            {:width$}  {:<22} {}",
            c.name,
            match &c.labels {
                Some([no, yes]) => format!("{} ({no}/{yes})", type_words(c.ty)),
                None => type_words(c.ty),
            },
            match c.source {
                crate::plan::Source::Slots => format!(
                    "slot{} {}",
                    if c.slots.len() == 1 { "" } else { "s" },
                    slots.join(", ")
                ),
                crate::plan::Source::Header(_) => {
                    "event header (stamped on printed events)".to_string()
                }
            },
        );
    }
}

fn insn_text(
    probe: Option<&catalog::ProbeDef>,
    insn: &Insn,
    bind: Option<&crate::plan::EnumBind>,
) -> String {
    let field = probe.and_then(|p| p.field_at_slot(insn.slot));
    let name = match field {
        Some(f) if f.slots.len() > 1 => {
            let part = f.slots.iter().position(|s| *s == insn.slot).unwrap_or(0);
            format!("{}[{part}]", f.name)
        }
        Some(f) => f.name.to_string(),
        None => "?".into(),
    };
    let op = match insn.op {
        CmpOp::Eq => "==",
        CmpOp::Ne => "!=",
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
    };
    let value = match field.map(|f| f.ty) {
        _ if bind.is_some() => bind.map_or(String::new(), |b| b.constant.clone()),
        Some(FieldType::Addr | FieldType::Comm) => format!("{:#018x}", insn.value),
        _ if insn.signed => format!("{}", insn.value as i64),
        _ => insn.value.to_string(),
    };
    let mask = if insn.mask == u64::MAX {
        String::new()
    } else {
        format!(" & {:#x}", insn.mask)
    };
    let jump = |j: Jump| match j {
        Jump::To(i) => format!("go to {i}"),
        Jump::Accept => "accept".into(),
        Jump::Reject => "reject".into(),
    };
    format!(
        "slot {:>2} ({name}){mask} {op} {value}{}  → true: {}, false: {}",
        insn.slot,
        if insn.signed { " (signed)" } else { "" },
        jump(insn.jt),
        jump(insn.jf)
    )
}

/// Word-wrap `text` to [`WIDTH`], each line prefixed by `indent`.
fn wrap(out: &mut String, text: &str, indent: &str) {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent.len() + line.len() + 1 + word.len() > WIDTH {
            let _ = writeln!(out, "{indent}{line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{indent}{line}");
    }
}
