//! The contract between the catalog's strategies, the ABI's program list
//! (`tcpq_abi::programs`) and the prebuilt template objects, checked
//! without loading anything (no root): every program a strategy or the
//! owner tracking names is a function in its template's object, in a
//! section that aya loads as that kind of program and, where the section
//! names an attach point, one of the program's; and every program in an
//! object is named. aya-ebpf's macros take literal names, so this is what
//! keeps the templates' spelling equal to the ABI's.
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};
use tcpq_abi::programs::{Attach, Program, OWNER_PROGRAMS};
use tcpq_dsl::catalog::PROBES;

fn prebuilt() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../probe-templates/prebuilt")
}

/// The programs in a template object: each function symbol in an
/// executable section other than `.text` (which holds the functions the
/// programs call), with that section's name. This is how aya's loader
/// finds them.
fn programs_in(template: &str) -> BTreeMap<String, String> {
    let path = prebuilt().join(format!("{template}.bpfel.o"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = object::File::parse(&*bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = BTreeMap::new();
    for sym in file.symbols().filter(|s| s.kind() == SymbolKind::Text) {
        let Some(index) = sym.section_index() else {
            continue;
        };
        let section = file.section_by_index(index).expect("symbol's section");
        let name = section.name().expect("section name");
        if section.kind() != SectionKind::Text || name == ".text" {
            continue;
        }
        let program = sym.name().expect("symbol name").to_string();
        let before = out.insert(program.clone(), name.to_string());
        assert!(before.is_none(), "{template}: two programs {program}");
    }
    out
}

/// Every program the catalog and the owner tracking attach from
/// `template`'s object, with all its attach points.
fn named_in(template: &str) -> BTreeMap<&'static str, Vec<Attach>> {
    let mut out: BTreeMap<&'static str, Vec<Attach>> = BTreeMap::new();
    let mut add = |program: &'static str, attach: Attach| {
        let points = out.entry(program).or_default();
        if !points.contains(&attach) {
            points.push(attach);
        }
    };
    for probe in PROBES.iter().filter(|p| p.template == template) {
        for st in probe.strategies {
            add(st.abi.program, st.abi.attach);
            for Program { name, attach } in st.abi.also {
                for a in *attach {
                    add(name, *a);
                }
            }
        }
    }
    for Program { name, attach } in OWNER_PROGRAMS {
        for a in *attach {
            add(name, *a);
        }
    }
    out
}

/// The section kinds aya-obj 0.3 loads as this kind of program
/// (`ProgramSection::from_str`), and what the rest of the section's name
/// would name.
fn kinds(attach: &Attach) -> (&'static [&'static str], String) {
    match *attach {
        Attach::Tracepoint { category, name } => {
            (&["tracepoint", "tp"], format!("{category}/{name}"))
        }
        Attach::RawTracepoint { name, .. } => (&["raw_tp", "raw_tracepoint"], name.to_string()),
        Attach::Kprobe { function } => (&["kprobe"], function.to_string()),
        Attach::Kretprobe { function } => (&["kretprobe"], function.to_string()),
        Attach::Fentry { function } => (&["fentry"], function.to_string()),
        Attach::Fexit { function } => (&["fexit"], function.to_string()),
    }
}

fn templates() -> BTreeSet<&'static str> {
    PROBES.iter().map(|p| p.template).collect()
}

#[test]
fn every_program_the_catalog_names_is_in_its_template_where_it_attaches() {
    for template in templates() {
        let found = programs_in(template);
        for (program, points) in named_in(template) {
            let section = found
                .get(program)
                .unwrap_or_else(|| panic!("{template}: no program {program} in the object"));
            let (kind, rest) = section.split_once('/').unwrap_or((section, ""));
            for attach in &points {
                let (kinds, _) = kinds(attach);
                assert!(
                    kinds.contains(&kind),
                    "{template}/{program}: section {section} does not load as {attach:?}"
                );
            }
            // A section that names an attach point names one of the
            // program's (the runtime attaches where the catalog says).
            if !rest.is_empty() {
                assert!(
                    points.iter().any(|a| kinds(a).1 == rest),
                    "{template}/{program}: section {section} names none of {points:?}"
                );
            }
        }
    }
}

#[test]
fn every_program_in_a_template_is_named() {
    let objects: BTreeSet<String> = std::fs::read_dir(prebuilt())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".bpfel.o").map(str::to_string)
        })
        .collect();
    let named: BTreeSet<String> = templates().into_iter().map(str::to_string).collect();
    assert_eq!(
        objects, named,
        "objects without a probe, or probes without an object"
    );
    for template in templates() {
        let named = named_in(template);
        for (program, section) in programs_in(template) {
            assert!(
                named.contains_key(program.as_str()),
                "{template}: program {program} ({section}) is in no strategy and not owner tracking"
            );
        }
    }
}

#[test]
fn a_program_attaches_one_way() {
    for template in templates() {
        for (program, points) in named_in(template) {
            let kinds: std::collections::HashSet<_> =
                points.iter().map(std::mem::discriminant).collect();
            assert_eq!(kinds.len(), 1, "{template}/{program}: {points:?}");
        }
    }
}
