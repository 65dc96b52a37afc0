//! `tcpq -l [PROBE]`, `tcpq -l --markdown` (docs/probes.md) and
//! `tcpq FILE --help`: the catalog and recipe headers, in words.
use std::fmt::Write as _;
use std::process::ExitCode;

use tcpq_dsl::catalog::{
    self, FieldDef, ProbeDef, COMMON_FIELDS, EVENT_FIELDS, PROBES, SOCKET_FIELDS,
};
use tcpq_dsl::plan::{FieldType, Unit};
use tcpq_runtime::{features::Privilege, Kernel};

/// `tcpq -l` (`probe` empty) or `tcpq -l PROBE`; `--markdown` prints the
/// whole reference as docs/probes.md; `json` (`--format json`): one JSON
/// object per probe and line, or the one probe's.
pub fn run(probe: &str, markdown: bool, json: bool) -> ExitCode {
    if markdown {
        out(&probes_markdown());
        return ExitCode::SUCCESS;
    }
    if json {
        return run_json(probe);
    }
    if probe.is_empty() {
        let width = PROBES.iter().map(|p| p.name.len()).max().unwrap_or(0);
        let mut s = String::new();
        for p in PROBES {
            let _ = writeln!(s, "{:<width$}  {}", p.name, p.summary);
        }
        s.push_str(
            "\n`tcpq -l PROBE` explains one: the kernel moment, every field, how it attaches.\n\
             `tcpq -l sockets`: the fields of `tcpq sockets`, the sockets that exist now.\n",
        );
        out(&s);
        return ExitCode::SUCCESS;
    }
    if let Some(p) = tcpq_dsl::sockets::entry(probe) {
        out(&explain_sockets(p));
        return ExitCode::SUCCESS;
    }
    let Some(p) = catalog::probe(probe) else {
        return unknown_probe(probe);
    };
    out(&format!(
        "{}\nOn this kernel:\n  {}\n",
        explain_probe(p),
        this_kernel(p)
    ));
    ExitCode::SUCCESS
}

/// `tcpq -l [PROBE] --format json`.
fn run_json(probe: &str) -> ExitCode {
    if probe.is_empty() {
        let mut s = String::new();
        for p in PROBES {
            let _ = writeln!(s, "{}", probe_json(p, false));
        }
        out(&s);
        return ExitCode::SUCCESS;
    }
    let p = match tcpq_dsl::sockets::entry(probe).or_else(|| catalog::probe(probe)) {
        Some(p) => p,
        None => return unknown_probe(probe),
    };
    let mut v = probe_json(p, true);
    if !p.is_userspace() {
        v["this_kernel"] = this_kernel_json(p);
    }
    out(&format!("{v}\n"));
    ExitCode::SUCCESS
}

/// A probe as JSON: name, summary, template, strategies and every field
/// with its type, bits, unit and group (`probe`, `common`, `event`,
/// `socket`);
/// `full` adds the kernel moment in words and each strategy's how.
pub fn probe_json(p: &ProbeDef, full: bool) -> serde_json::Value {
    use serde_json::json;
    let group = |f: &FieldDef| {
        if p.fields.iter().any(|o| std::ptr::eq(o, f)) {
            "probe"
        } else if COMMON_FIELDS.iter().any(|o| std::ptr::eq(o, f)) {
            "common"
        } else if tcpq_dsl::catalog::EVENT_FIELDS
            .iter()
            .any(|o| std::ptr::eq(o, f))
        {
            "event"
        } else {
            "socket"
        }
    };
    let fields: Vec<serde_json::Value> = p
        .all_fields()
        .map(|f| {
            let (ty, unit) = match f.ty {
                FieldType::Uint(u) => ("uint", Some(u)),
                FieldType::Int(u) => ("int", Some(u)),
                FieldType::Bool => ("bool", None),
                FieldType::Addr => ("addr", None),
                FieldType::Port => ("port", None),
                FieldType::Comm => ("comm", None),
                FieldType::TcpState => ("state", None),
                FieldType::Family => ("family", None),
                FieldType::Time => ("time", None),
            };
            json!({
                "name": f.name,
                "type": ty,
                "bits": f.bits,
                "unit": unit.filter(|u| *u != Unit::None),
                "group": group(f),
                "doc": f.doc.split_whitespace().collect::<Vec<_>>().join(" "),
            })
        })
        .collect();
    let strategies: Vec<serde_json::Value> = p
        .strategies
        .iter()
        .map(|st| {
            let attach = st.to_plan().attach;
            let mut v = json!({
                "name": st.abi.name,
                "kind": attach.kind(),
                "point": attach.point(),
                "program": st.abi.program,
            });
            if full {
                v["how"] = st
                    .how
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .into();
            }
            v
        })
        .collect();
    let mut v = json!({
        "name": p.name,
        "summary": p.summary,
        "template": p.template,
        "strategies": strategies,
        "fields": fields,
    });
    if full {
        v["doc"] = p
            .doc
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .into();
    }
    v
}

/// [`this_kernel`] as JSON: `{"strategy":..,"attach":..,"program":..}`,
/// `{"unavailable": why}` or `{"not_checked": why}`.
fn this_kernel_json(p: &ProbeDef) -> serde_json::Value {
    use serde_json::json;
    if !Privilege::current().sufficient() {
        return json!({"not_checked": "reading tracefs needs root or CAP_BPF+CAP_PERFMON"});
    }
    let kernel = match Kernel::open() {
        Ok(k) => k,
        Err(e) => return json!({"not_checked": e.to_string()}),
    };
    let plan = match tcpq_dsl::compile(&format!("on {} print pid", p.name), "-l", &[]) {
        Ok(plan) => plan,
        Err(_) => return json!({"not_checked": "the catalog entry does not compile"}),
    };
    let Some(clause) = plan.clauses.first() else {
        return json!({"not_checked": "no clause"});
    };
    match kernel.choose(clause) {
        Ok(st) => json!({
            "strategy": st.strategy.name,
            "attach": tcpq_dsl::plan::Attach::describe(&st.strategy.attach),
            "program": st.strategy.program,
        }),
        Err(e) => json!({"unavailable": e.to_string()}),
    }
}

fn unknown_probe(probe: &str) -> ExitCode {
    let names: Vec<&str> = PROBES.iter().map(|p| p.name).collect();
    let hint = match tcpq_dsl::diagnostic::suggest(probe, names.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("probes are {}", names.join(", ")),
    };
    eprintln!("tcpq: error: unknown probe `{probe}`; {hint}");
    ExitCode::from(2)
}

/// Print to stdout, ignoring a closed pipe (`tcpq -l | head`).
pub fn out(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Units as a learner says them.
fn unit_words(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Uint(u) | FieldType::Int(u) => match u {
            Unit::None => "-",
            Unit::Bytes => "bytes",
            Unit::Micros => "microseconds",
            Unit::Millis => "milliseconds",
            Unit::Nanos => "nanoseconds",
            Unit::Segments => "segments",
            Unit::DropReason => "drop reason (by name)",
            Unit::RstReason => "reset reason (by name)",
            Unit::KernelSymbol => "kernel function",
            Unit::Address => "kernel address (hex)",
            Unit::Errno => "errno (by name)",
        },
        _ => "-",
    }
}

/// The type without its unit (the unit has its own column).
fn type_only(ty: FieldType) -> String {
    let w = catalog::type_words(ty);
    match w.find(" (") {
        Some(i) => w[..i].to_string(),
        None => w,
    }
}

fn wrap(out: &mut String, text: &str, indent: &str, width: usize) {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent.len() + line.len() + 1 + word.len() > width {
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

/// One probe in words, for a terminal.
pub fn explain_probe(p: &ProbeDef) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{} — {}", p.name, p.summary);
    let _ = writeln!(s);
    let _ = writeln!(s, "The kernel moment:");
    wrap(&mut s, p.doc, "  ", 78);
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "How it attaches (template {}; the first strategy this kernel supports wins):",
        p.template
    );
    for (i, st) in p.strategies.iter().enumerate() {
        let _ = writeln!(
            s,
            "  {}. {}: {}, program {}",
            i + 1,
            st.abi.name,
            st.to_plan().attach.describe(),
            st.abi.program
        );
        wrap(&mut s, st.how, "     ", 78);
    }
    let _ = writeln!(s);
    let rows: Vec<&FieldDef> = p.fields.iter().collect();
    field_table(&mut s, &format!("Fields of {}:", p.name), &rows);
    reason_names(&mut s, &rows);
    let _ = writeln!(s);
    let common: Vec<&FieldDef> = COMMON_FIELDS.iter().collect();
    field_table(&mut s, "Fields every probe has:", &common);
    let _ = writeln!(s);
    let event: Vec<&FieldDef> = EVENT_FIELDS.iter().collect();
    field_table(
        &mut s,
        "Fields of every printed event (print only):",
        &event,
    );
    let _ = writeln!(s);
    let sock: Vec<&FieldDef> = SOCKET_FIELDS
        .iter()
        .filter(|f| !p.fields.iter().any(|o| o.name == f.name))
        .collect();
    field_table(
        &mut s,
        "Socket fields (read from the socket when a program uses them):",
        &sock,
    );
    s
}

/// `tcpq -l sockets`: what `tcpq sockets` lists and every field.
pub fn explain_sockets(p: &ProbeDef) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "tcpq sockets — {}", p.summary);
    let _ = writeln!(s);
    wrap(&mut s, p.doc, "  ", 78);
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Usage: tcpq sockets [where EXPR] [print FIELD, ...] [--netns NS]... [--format text|json]"
    );
    let _ = writeln!(s);
    let rows: Vec<&FieldDef> = p.fields.iter().collect();
    field_table(&mut s, "Fields of tcpq sockets:", &rows);
    s
}

/// The names a reason field takes in a filter (`reason == NETFILTER_DROP`).
fn reason_names(s: &mut String, fields: &[&FieldDef]) {
    for f in fields {
        let tcpq_dsl::plan::FieldType::Uint(unit) = f.ty else {
            continue;
        };
        let Some((enum_name, _, names)) = tcpq_dsl::reasons::enum_of(unit) else {
            continue;
        };
        let _ = writeln!(s);
        wrap(
            s,
            &format!(
                "`{}` by name in a filter (`{} == {}`): the constants of `enum {enum_name}` \
                 (Linux 6.18), each bound to this kernel's number from its BTF when tcpq \
                 starts: {}.",
                f.name,
                f.name,
                names.get(1).unwrap_or(&"NO_SOCKET"),
                names.join(", ")
            ),
            "  ",
            78,
        );
    }
}

fn field_table(s: &mut String, title: &str, fields: &[&FieldDef]) {
    let _ = writeln!(s, "{title}");
    let nw = fields.iter().map(|f| f.name.len()).max().unwrap_or(0);
    let tw = fields
        .iter()
        .map(|f| type_only(f.ty).len())
        .max()
        .unwrap_or(0);
    let uw = fields
        .iter()
        .map(|f| unit_words(f.ty).len())
        .max()
        .unwrap_or(0);
    for f in fields {
        let head = format!(
            "  {:<nw$}  {:<tw$}  {:<uw$}  ",
            f.name,
            type_only(f.ty),
            unit_words(f.ty)
        );
        let mut body = String::new();
        wrap(
            &mut body,
            f.doc,
            "",
            78usize.saturating_sub(head.len()).max(30),
        );
        let pad = " ".repeat(head.len());
        for (i, l) in body.lines().enumerate() {
            if i == 0 {
                let _ = writeln!(s, "{head}{l}");
            } else {
                let _ = writeln!(s, "{pad}{l}");
            }
        }
    }
}

/// Which strategy this kernel would use for `p`, or why that is unknown.
fn this_kernel(p: &ProbeDef) -> String {
    if !Privilege::current().sufficient() {
        return "not checked: reading tracefs needs root or CAP_BPF+CAP_PERFMON".into();
    }
    let kernel = match Kernel::open() {
        Ok(k) => k,
        Err(e) => return format!("not checked: {e}"),
    };
    let plan = match tcpq_dsl::compile(&format!("on {} print pid", p.name), "-l", &[]) {
        Ok(plan) => plan,
        Err(_) => return "not checked: the catalog entry does not compile".into(),
    };
    let Some(clause) = plan.clauses.first() else {
        return "not checked".into();
    };
    match kernel.choose(clause) {
        Ok(st) => format!(
            "strategy {} ({}), program {}",
            st.strategy.name,
            tcpq_dsl::plan::Attach::describe(&st.strategy.attach),
            st.strategy.program
        ),
        Err(e) => format!("unavailable: {e}"),
    }
}

fn md_cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// docs/probes.md, generated from the catalog (`tcpq -l --markdown`).
pub fn probes_markdown() -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Probes");
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "<!-- Generated from dsl/src/catalog.rs by `tcpq -l --markdown`; do not edit. \
         Refresh: `cargo run -q -- -l --markdown > docs/probes.md` -->"
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Each probe is a kernel moment you can ask about with `on PROBE`. \
         `tcpq -l PROBE` shows the same on a terminal, plus the strategy this kernel uses."
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "| probe | what it observes |");
    let _ = writeln!(s, "| --- | --- |");
    for p in PROBES {
        let _ = writeln!(
            s,
            "| [`{}`](#{}) | {} |",
            p.name,
            p.name,
            md_cell(p.summary)
        );
    }
    let _ = writeln!(s);
    for p in PROBES {
        let _ = writeln!(s, "## {}", p.name);
        let _ = writeln!(s);
        let _ = writeln!(s, "{}", md_cell(p.doc));
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "Template `{}`. Strategies, best first (the runtime uses the first this kernel supports):",
            p.template
        );
        let _ = writeln!(s);
        for (i, st) in p.strategies.iter().enumerate() {
            let attach = st.to_plan().attach;
            let _ = writeln!(
                s,
                "{}. `{}`: {} `{}`, program `{}`. {}",
                i + 1,
                st.abi.name,
                attach.kind(),
                attach.point(),
                st.abi.program,
                md_cell(st.how)
            );
        }
        let _ = writeln!(s);
        md_fields(&mut s, p.fields.iter());
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "Plus [the fields every probe has](#fields-every-probe-has), \
             [the fields of every printed event](#fields-of-every-printed-event) and \
             [the socket fields](#socket-fields)."
        );
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "## Fields every probe has");
    let _ = writeln!(s);
    md_fields(&mut s, COMMON_FIELDS.iter());
    let _ = writeln!(s);
    let _ = writeln!(s, "## Fields of every printed event");
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Stamped by the template on each event it sends to userspace, after the filter: \
         `print` shows them; `where`, `count by` and aggregations cannot use them (E0213)."
    );
    let _ = writeln!(s);
    md_fields(&mut s, EVENT_FIELDS.iter());
    let _ = writeln!(s);
    let _ = writeln!(s, "## Socket fields");
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Read from the probe's socket (`struct tcp_sock`, at offsets from the kernel's BTF) \
         only when a program uses them. A probe's own field of the same name wins."
    );
    let _ = writeln!(s);
    md_fields(&mut s, SOCKET_FIELDS.iter());
    let p = &tcpq_dsl::sockets::SOCKETS;
    let _ = writeln!(s);
    let _ = writeln!(s, "## tcpq sockets");
    let _ = writeln!(s);
    let _ = writeln!(s, "{}", md_cell(p.doc));
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "`tcpq sockets [where EXPR] [print FIELD, ...] [--netns NS]... [--format text|json]`. \
         Without `print`: {}.",
        tcpq_dsl::sockets::DEFAULT_COLUMNS
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(s);
    md_fields(&mut s, p.fields.iter());
    s
}

fn md_fields<'a>(s: &mut String, fields: impl Iterator<Item = &'a FieldDef>) {
    let _ = writeln!(s, "| field | type | unit | meaning |");
    let _ = writeln!(s, "| --- | --- | --- | --- |");
    for f in fields {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} |",
            f.name,
            type_only(f.ty),
            unit_words(f.ty),
            md_cell(f.doc)
        );
    }
}

/// `tcpq RECIPE --help`: the recipe's description, parameters and
/// examples (RECIPE: a built-in recipe's name or a file, as for a run).
pub fn recipe_help(arg: &str) -> ExitCode {
    let loaded = match crate::recipes::load(arg) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tcpq: error: {e}");
            return ExitCode::from(2);
        }
    };
    let recipe = match tcpq_dsl::parse_recipe(&loaded.source) {
        Ok(r) => r,
        Err(diags) => {
            eprint!(
                "{}",
                tcpq_dsl::render_all(&diags, &loaded.source, &loaded.origin, false)
            );
            return ExitCode::from(2);
        }
    };
    out(&recipe_text(&loaded.name, &recipe));
    ExitCode::SUCCESS
}

pub fn recipe_text(origin: &str, r: &tcpq_dsl::Recipe) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{origin}");
    if r.description.is_empty() {
        let _ = writeln!(s, "  (no description)");
    } else {
        wrap(&mut s, &r.description, "  ", 78);
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Usage: tcpq {origin}{} [--duration DUR] [--format text|json]",
        r.params
            .iter()
            .map(|p| if p.default.is_some() || p.optional {
                format!(" [--param {}=VALUE]", p.name)
            } else {
                format!(" --param {}=VALUE", p.name)
            })
            .collect::<String>()
    );
    let _ = writeln!(s);
    if r.params.is_empty() {
        let _ = writeln!(s, "Parameters: none");
    } else {
        let _ = writeln!(s, "Parameters:");
        let nw = r.params.iter().map(|p| p.name.len()).max().unwrap_or(0);
        let tw = r
            .params
            .iter()
            .map(|p| p.ty.name().len())
            .max()
            .unwrap_or(0);
        for p in &r.params {
            let default = match &p.default {
                Some(v) => format!("default {v}"),
                None if p.optional => "optional".into(),
                None => "required".to_string(),
            };
            let _ = writeln!(
                s,
                "  {:<nw$}  {:<tw$}  {default}{}{}",
                p.name,
                p.ty.name(),
                if p.help.is_empty() { "" } else { "; " },
                p.help
            );
        }
    }
    if !r.examples.is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(s, "Examples:");
        for e in &r.examples {
            let _ = writeln!(s, "  {e}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_probe_and_field_is_in_the_reference() {
        let md = probes_markdown();
        for p in PROBES {
            assert!(md.contains(&format!("## {}", p.name)));
            for f in p.all_fields() {
                assert!(md.contains(&format!("| `{}` |", f.name)), "{}", f.name);
            }
            let text = explain_probe(p);
            for f in p.all_fields() {
                assert!(text.contains(f.name), "{}", f.name);
            }
        }
    }
}
