//! Names for numbers the kernel reports: drop and reset reasons (enum values
//! from BTF) and function addresses (kallsyms). Read only when a program
//! shows such a field.
use std::collections::HashMap;

use tcpq_dsl::plan::{Action, FieldType, Plan, Unit};

use crate::{render::Names, Kernel};

fn uses(plan: &Plan, unit: Unit) -> bool {
    plan.clauses.iter().any(|c| {
        let cols: Vec<_> = match &c.action {
            Action::Print { columns } => columns.iter().collect(),
            other => other.columns().collect(),
        };
        cols.iter().any(|col| col.ty == FieldType::Uint(unit))
    })
}

/// An enum of `kernel`'s BTF as value → constant without `prefix`.
fn enum_names(kernel: &Kernel, name: &str, prefix: &str) -> HashMap<u64, String> {
    kernel
        .enums
        .get(name)
        .into_iter()
        .flatten()
        .map(|(v, n)| (*v, n.strip_prefix(prefix).unwrap_or(n).to_owned()))
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

/// The names `plan` shows (none when it shows no reason or kernel
/// address). Reasons come from the BTF `kernel` was opened with (`--btf`
/// too), read once there.
pub fn load_for(plan: &Plan, kernel: &Kernel) -> Names {
    let reasons = uses(plan, Unit::DropReason) || uses(plan, Unit::RstReason);
    let symbols = uses(plan, Unit::KernelSymbol);
    let mut names = Names::default();
    if reasons {
        names.drop_reasons = enum_names(kernel, "skb_drop_reason", "SKB_DROP_REASON_");
        names.rst_reasons = enum_names(kernel, "sk_rst_reason", "SK_RST_REASON_");
    }
    if symbols {
        names.symbols = kallsyms();
    }
    names
}

#[cfg(test)]
mod tests {
    use crate::btf::Btf;

    /// tcpq's tables of reason names (what the checker accepts) hold
    /// every reason of the kernel the tests run on: a name this kernel
    /// prints can always be written in a filter.
    #[test]
    fn the_reason_tables_know_every_reason_of_this_kernel() {
        let Ok(btf) = Btf::from_sys_fs() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but /sys/kernel/btf/vmlinux cannot be read"
            );
            eprintln!("SKIP: no /sys/kernel/btf/vmlinux to compare the reason tables with");
            return;
        };
        for unit in [
            tcpq_dsl::plan::Unit::DropReason,
            tcpq_dsl::plan::Unit::RstReason,
        ] {
            let (name, prefix, _) = tcpq_dsl::reasons::enum_of(unit).unwrap();
            let values = btf.enum_values(name).expect("enum in BTF");
            for (_, constant) in values {
                // SKB_NOT_DROPPED_YET, SKB_CONSUMED: not drops, no prefix.
                let Some(short) = constant.strip_prefix(prefix) else {
                    continue;
                };
                if matches!(short, "MAX" | "SUBSYS_MASK") {
                    continue;
                }
                assert!(
                    tcpq_dsl::reasons::known(unit, &constant).is_some(),
                    "{constant} of enum {name} is missing from tcpq_dsl::reasons"
                );
            }
        }
    }
}
