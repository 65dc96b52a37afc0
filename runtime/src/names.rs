//! Names for numbers the kernel reports: drop and reset reasons (enum values
//! from BTF) and function addresses (kallsyms). Read only when a program
//! shows such a field.
use std::collections::HashMap;

use tcpq_dsl::plan::{Action, FieldType, Plan, Unit};

use crate::{btf::Btf, render::Names};

fn uses(plan: &Plan, unit: Unit) -> bool {
    plan.clauses.iter().any(|c| {
        let cols: Vec<_> = match &c.action {
            Action::Print { columns } => columns.iter().collect(),
            other => other.columns().collect(),
        };
        cols.iter().any(|col| col.ty == FieldType::Uint(unit))
    })
}

fn enum_names(btf: &Btf, name: &str, prefix: &str) -> HashMap<u64, String> {
    btf.enum_values(name)
        .unwrap_or_default()
        .into_iter()
        .map(|(v, n)| (v, n.strip_prefix(prefix).unwrap_or(&n).to_owned()))
        .collect()
}

/// Kernel text symbols from `/proc/kallsyms`, sorted by address (empty
/// when addresses are hidden, i.e. all zero).
fn kallsyms() -> Vec<(u64, String)> {
    let Ok(text) = std::fs::read_to_string("/proc/kallsyms") else {
        return Vec::new();
    };
    let mut out: Vec<(u64, String)> = text
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let addr = u64::from_str_radix(it.next()?, 16).ok()?;
            let kind = it.next()?;
            let name = it.next()?;
            (addr != 0 && matches!(kind, "t" | "T")).then(|| (addr, name.to_owned()))
        })
        .collect();
    out.sort_unstable_by_key(|(a, _)| *a);
    out
}

/// Fill [`crate::render::NAMES`] with what `plan` needs, once.
pub fn load_for(plan: &Plan) {
    let reasons = uses(plan, Unit::DropReason) || uses(plan, Unit::RstReason);
    let symbols = uses(plan, Unit::KernelSymbol);
    if !reasons && !symbols {
        return;
    }
    let mut names = Names::default();
    if reasons {
        if let Ok(btf) = Btf::from_sys_fs() {
            names.drop_reasons = enum_names(&btf, "skb_drop_reason", "SKB_DROP_REASON_");
            names.rst_reasons = enum_names(&btf, "sk_rst_reason", "SK_RST_REASON_");
        }
    }
    if symbols {
        names.symbols = kallsyms();
    }
    let _ = crate::render::NAMES.set(names);
}
