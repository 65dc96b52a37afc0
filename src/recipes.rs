//! The recipes built into the binary (`recipes/*.tcpq`, embedded with
//! `include_str!`), how a command line names one, and `tcpq recipes`.
//!
//! Name resolution, for `tcpq RECIPE` and `tcpq run RECIPE`:
//! 1. an argument with a `/` is a file path (`./zero-window`,
//!    `recipes/zero-window.tcpq`);
//! 2. otherwise, the name of a built-in recipe is that recipe, whatever
//!    files the current directory holds: what `sudo tcpq tcplife` runs
//!    never depends on where it is typed;
//! 3. otherwise it is a file path (`my.tcpq` in the current directory).
use std::fmt::Write as _;
use std::path::PathBuf;

use tcpq_dsl::recipe::{param_text, ParamDecl};
use tcpq_dsl::Recipe;

/// Every file of `recipes/`, by name (the file name without `.tcpq`). The
/// test `every_recipe_file_is_embedded` keeps this list and the directory
/// equal.
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "pod-retransmit-metrics",
        include_str!("../recipes/pod-retransmit-metrics.tcpq"),
    ),
    ("recv-sizes", include_str!("../recipes/recv-sizes.tcpq")),
    (
        "retransmit-metrics",
        include_str!("../recipes/retransmit-metrics.tcpq"),
    ),
    ("retransmits", include_str!("../recipes/retransmits.tcpq")),
    ("rtt-metrics", include_str!("../recipes/rtt-metrics.tcpq")),
    ("send-sizes", include_str!("../recipes/send-sizes.tcpq")),
    (
        "socket-summary",
        include_str!("../recipes/socket-summary.tcpq"),
    ),
    ("tcpaccept", include_str!("../recipes/tcpaccept.tcpq")),
    ("tcpconnect", include_str!("../recipes/tcpconnect.tcpq")),
    ("tcpdrop", include_str!("../recipes/tcpdrop.tcpq")),
    ("tcplife", include_str!("../recipes/tcplife.tcpq")),
    ("tcpretrans", include_str!("../recipes/tcpretrans.tcpq")),
    ("tcprtt", include_str!("../recipes/tcprtt.tcpq")),
    ("tcpstates", include_str!("../recipes/tcpstates.tcpq")),
    ("tcpsynbl", include_str!("../recipes/tcpsynbl.tcpq")),
    (
        "window-scaling",
        include_str!("../recipes/window-scaling.tcpq"),
    ),
    (
        "window-scaling-metrics",
        include_str!("../recipes/window-scaling-metrics.tcpq"),
    ),
    (
        "windows-on-read",
        include_str!("../recipes/windows-on-read.tcpq"),
    ),
    (
        "wscale-negotiation",
        include_str!("../recipes/wscale-negotiation.tcpq"),
    ),
    ("zero-window", include_str!("../recipes/zero-window.tcpq")),
    (
        "zero-window-metrics",
        include_str!("../recipes/zero-window-metrics.tcpq"),
    ),
];

/// The source of a built-in recipe.
pub fn embedded(name: &str) -> Option<&'static str> {
    EMBEDDED.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// Where a recipe comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Embedded(&'static str),
    File(PathBuf),
}

/// A recipe's text and how diagnostics and help name it.
pub struct Loaded {
    pub source: String,
    /// For diagnostics: `<recipe zero-window>` or the path.
    pub origin: String,
    /// For help and usage lines: `zero-window` or the path.
    pub name: String,
}

/// Resolve a command line's `RECIPE` (see the module's rules).
pub fn resolve(arg: &str) -> Source {
    if !arg.contains('/') && embedded(arg).is_some() {
        Source::Embedded(EMBEDDED.iter().find(|(n, _)| *n == arg).unwrap().0)
    } else {
        Source::File(PathBuf::from(arg))
    }
}

/// Read the recipe `arg` names. The error says what was tried and, for a
/// near miss, which built-in recipe was probably meant.
pub fn load(arg: &str) -> Result<Loaded, String> {
    match resolve(arg) {
        Source::Embedded(name) => Ok(Loaded {
            source: embedded(name).unwrap_or_default().to_owned(),
            origin: format!("<recipe {name}>"),
            name: name.to_owned(),
        }),
        Source::File(path) => match std::fs::read_to_string(&path) {
            Ok(source) => Ok(Loaded {
                source,
                origin: path.display().to_string(),
                name: path.display().to_string(),
            }),
            Err(e) => Err(not_found(arg, &e)),
        },
    }
}

fn not_found(arg: &str, e: &std::io::Error) -> String {
    let stem = arg
        .rsplit('/')
        .next()
        .unwrap_or(arg)
        .trim_end_matches(".tcpq");
    let hint = if embedded(stem).is_some() {
        format!("; the built-in recipe is `tcpq {stem}`")
    } else if !arg.contains('/') {
        let names = EMBEDDED.iter().map(|(n, _)| *n);
        match tcpq_dsl::diagnostic::suggest(stem, names) {
            Some(s) => format!("; did you mean the recipe `{s}`? (`tcpq recipes` lists them)"),
            None => "; it is no built-in recipe either (`tcpq recipes` lists them)".into(),
        }
    } else {
        String::new()
    };
    if e.kind() == std::io::ErrorKind::NotFound && !arg.contains('/') {
        format!("no recipe or file named `{arg}`{hint}")
    } else {
        format!("cannot read recipe {arg}: {e}{hint}")
    }
}

pub use tcpq_dsl::recipe::summary;

/// One parameter as `tcpq recipes` shows it: `port: port (optional)`,
/// `bytes: bool = false`, `port: port (required)`.
pub fn param_words(p: &ParamDecl) -> String {
    match &p.default {
        Some(v) => format!("{}: {} = {}", p.name, p.ty, param_text(v)),
        None if p.optional => format!("{}: {} (optional)", p.name, p.ty),
        None => format!("{}: {} (required)", p.name, p.ty),
    }
}

/// Every built-in recipe, parsed (they are tested to parse).
fn all() -> Vec<(&'static str, Recipe)> {
    EMBEDDED
        .iter()
        .filter_map(|(n, s)| tcpq_dsl::parse_recipe(s).ok().map(|r| (*n, r)))
        .collect()
}

/// `tcpq recipes`: name, purpose and parameters of each.
pub fn list_text() -> String {
    let recipes = all();
    let width = recipes.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut s = String::new();
    for (name, r) in &recipes {
        let _ = writeln!(s, "{name:<width$}  {}", summary(&r.description));
        let params = if r.params.is_empty() {
            "none".to_string()
        } else {
            r.params
                .iter()
                .map(param_words)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(s, "{:<width$}  parameters: {params}", "");
    }
    s.push_str(
        "\n`tcpq NAME --help` describes one; `tcpq NAME [--param NAME=VALUE]...` (or `tcpq run NAME`) runs it.\n",
    );
    s
}

/// `tcpq recipes --format json`: one object per recipe and line.
pub fn list_json() -> String {
    let mut s = String::new();
    for (name, r) in all() {
        let params: Vec<serde_json::Value> = r
            .params
            .iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.name,
                    "type": p.ty.name(),
                    "required": p.default.is_none() && !p.optional,
                    "optional": p.optional,
                    "default": p.default.as_ref().map(param_text),
                    "help": p.help,
                })
            })
            .collect();
        let v = serde_json::json!({
            "name": name,
            "summary": summary(&r.description),
            "description": r.description,
            "params": params,
            "examples": r.examples,
        });
        let _ = writeln!(s, "{v}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `EMBEDDED` is exactly the directory `recipes/`, and each entry is
    /// that file's current text.
    #[test]
    fn every_recipe_file_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes");
        let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "tcpq"))
            .map(|p| {
                let name = p.file_stem().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        files.sort();
        let embedded: Vec<(String, String)> = EMBEDDED
            .iter()
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect();
        let names = |v: &[(String, String)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&embedded),
            names(&files),
            "src/recipes.rs EMBEDDED must list every recipes/*.tcpq, sorted"
        );
        assert_eq!(embedded, files);
    }

    /// Every built-in recipe parses, has a one-line purpose, and compiles
    /// without parameters when none is required.
    #[test]
    fn every_recipe_has_a_purpose_and_compiles() {
        for (name, src) in EMBEDDED {
            let r = tcpq_dsl::parse_recipe(src).unwrap_or_else(|d| panic!("{name}: {d:?}"));
            let s = summary(&r.description);
            assert!(s.ends_with('.'), "{name}: {s}");
            assert!(
                s.len() <= 100,
                "{name}: purpose too long ({}): {s}",
                s.len()
            );
            if r.params.iter().all(|p| p.default.is_some() || p.optional) {
                let origin = format!("<recipe {name}>");
                if let Err(d) = tcpq_dsl::compile(src, &origin, &[]) {
                    panic!("{}", tcpq_dsl::render_all(&d, src, &origin, false));
                }
            }
        }
    }

    #[test]
    fn names_and_paths() {
        assert_eq!(resolve("zero-window"), Source::Embedded("zero-window"));
        assert_eq!(
            resolve("./zero-window"),
            Source::File(PathBuf::from("./zero-window"))
        );
        assert_eq!(
            resolve("recipes/zero-window.tcpq"),
            Source::File(PathBuf::from("recipes/zero-window.tcpq"))
        );
        assert_eq!(
            resolve("zero-window.tcpq"),
            Source::File(PathBuf::from("zero-window.tcpq"))
        );
        let e = load("zero-windw").err().unwrap();
        assert!(e.contains("did you mean the recipe `zero-window`?"), "{e}");
        let e = load("/nonexistent/zero-window.tcpq").err().unwrap();
        assert!(
            e.contains("the built-in recipe is `tcpq zero-window`"),
            "{e}"
        );
    }

    #[test]
    fn summaries() {
        assert_eq!(summary("One. Two."), "One.");
        assert_eq!(summary("Like ss, e.g. this. Then."), "Like ss, e.g. this.");
        assert_eq!(summary("No full stop"), "No full stop");
    }
}
