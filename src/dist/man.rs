//! The man pages, from the clap definitions (clap_mangen): tcpq(8) and
//! one page per visible subcommand at every depth (tcpq-doctor(8),
//! tcpq-lab-start(8), ...), plus tcpq-language(7) from docs/language.md.
//! Section 8, as Debian files bpftrace's and bpfcc-tools' tools: they
//! need root.
//!
//! Each page is clap_mangen's sections (NAME, SYNOPSIS, DESCRIPTION,
//! OPTIONS, SUBCOMMANDS) and ours: the `after_help` text (its `Examples:`
//! as EXAMPLES), and on tcpq(8) the built-in recipes, exit status, files,
//! environment. Dated with the commit's date (build.rs), never the clock,
//! so two builds of one commit write the same pages.
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use clap_mangen::Man;

use super::markdown::{escape, inline, to_roff};

const LANGUAGE_MD: &str = include_str!("../../docs/language.md");
const DATE: &str = env!("TCPQ_COMMIT_DATE");
const MANUAL: &str = "tcpq manual";

fn source() -> String {
    format!("tcpq {}", env!("TCPQ_VERSION"))
}

/// Write every page into `dir`; the paths written, in order.
pub fn write_all(dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = super::complete::command();
    cmd.build();
    let mut pages = Vec::new();
    pages_of(&cmd, &mut pages);
    let names: Vec<String> = pages.iter().map(|(n, _)| n.clone()).collect();
    let mut written = Vec::new();
    for (name, page) in pages {
        let path = dir.join(format!("{name}.8"));
        let mut text = page;
        text.push_str(&see_also(&name, &names));
        std::fs::write(&path, text)?;
        written.push(path);
    }
    let path = dir.join("tcpq-language.7");
    std::fs::write(&path, language_page())?;
    written.push(path);
    Ok(written)
}

/// `cmd`'s page and those of its visible subcommands: (name, roff).
fn pages_of(cmd: &clap::Command, out: &mut Vec<(String, String)>) {
    let name = cmd
        .get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_owned();
    let top = out.is_empty();
    out.push((name, page(cmd, top)));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages_of(sub, out);
    }
}

fn page(cmd: &clap::Command, top: bool) -> String {
    let man = Man::new(cmd.clone())
        .section("8")
        .date(DATE)
        .source(source())
        .manual(MANUAL);
    let mut buf: Vec<u8> = Vec::new();
    let has_args = cmd.get_arguments().any(|a| !a.is_hide_set());
    let has_subs = cmd.get_subcommands().any(|s| !s.is_hide_set());
    // The sections clap_mangen renders; `render` would also print
    // `after_help` line by line as one filled paragraph, which runs the
    // examples together: ours below keeps them apart.
    let r: io::Result<()> = (|| {
        man.render_title(&mut buf)?;
        man.render_name_section(&mut buf)?;
        man.render_synopsis_section(&mut buf)?;
        man.render_description_section(&mut buf)?;
        Ok(())
    })();
    r.expect("writing to memory");
    let (notes, examples) = after_help(cmd);
    for p in notes {
        let _ = writeln!(buf, ".PP\n{}", inline(&p));
    }
    if has_args {
        let _ = man.render_options_section(&mut buf);
    }
    if has_subs {
        let _ = man.render_subcommands_section(&mut buf);
    }
    if !examples.is_empty() {
        let _ = writeln!(buf, ".SH EXAMPLES\n.PP\n.RS 4\n.nf");
        for e in examples {
            let _ = writeln!(buf, "{}", escape(&e).replace('-', "\\-"));
        }
        let _ = writeln!(buf, ".fi\n.RE");
    }
    if top {
        buf.extend(top_sections().as_bytes());
    }
    // Every page names the build it documents (clap_mangen's VERSION
    // section is only for a command with a version of its own).
    let _ = writeln!(buf, ".SH VERSION\n{}", escape(&source()));
    // clap_mangen writes help text as is: ASCII escapes for the rest, so
    // groff reads the page without a preprocessor (`-k`).
    escape_non_ascii(&String::from_utf8(buf).expect("roff is text"))
}

fn escape_non_ascii(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                format!("\\[u{:04X}]", c as u32)
            }
        })
        .collect()
}

/// `after_help` split into paragraphs, and its `Examples:` lines.
fn after_help(cmd: &clap::Command) -> (Vec<String>, Vec<String>) {
    let Some(text) = cmd.get_after_long_help().or_else(|| cmd.get_after_help()) else {
        return (Vec::new(), Vec::new());
    };
    let text = text.to_string();
    let (mut notes, mut examples) = (Vec::new(), Vec::new());
    for para in text.split("\n\n") {
        match para.strip_prefix("Examples:\n") {
            Some(ex) => examples.extend(ex.lines().map(|l| l.trim().to_owned())),
            None => notes.push(para.split_whitespace().collect::<Vec<_>>().join(" ")),
        }
    }
    (notes, examples)
}

/// tcpq(8)'s own sections: the recipes, exit status, files, environment.
fn top_sections() -> String {
    let mut s = String::from(".SH RECIPES\n.PP\nBuilt into the binary; \\fBtcpq\\fR \\fINAME\\fR \\fB\\-\\-help\\fR describes one.\n");
    for (name, source) in crate::recipes::EMBEDDED {
        let summary = tcpq_dsl::parse_recipe(source)
            .map(|r| crate::recipes::summary(&r.description).to_owned())
            .unwrap_or_default();
        s.push_str(&format!(
            ".TP\n\\fB{}\\fR\n{}\n",
            escape(name).replace('-', "\\-"),
            inline(&summary)
        ));
    }
    s.push_str(
        ".SH \"EXIT STATUS\"\n\
         .TP\n0\nSuccess.\n\
         .TP\n1\nA runtime failure: privileges, kernel support, the verifier, no cgroup2 for \\fB\\-c\\fR.\n\
         .TP\n2\nA bad program, recipe, parameter or usage; nothing was attached.\n\
         .SH FILES\n\
         .TP\n/usr/share/tcpq/recipes/\n\
         The built-in recipes as files (installed by the Debian package), to read and to copy. \
         tcpq itself does not read them: a name runs the recipe built into the binary, and a copy runs by its path \
         (\\fBtcpq ./my.tcpq\\fR).\n\
         .TP\n/sys/kernel/btf/vmlinux\nThe kernel's BTF, where struct offsets come from (\\fB\\-\\-btf\\fR \\fIPATH\\fR reads another file).\n\
         .TP\n/sys/kernel/tracing\ntracefs, for tracepoint formats; tcpq mounts nothing.\n\
         .SH ENVIRONMENT\n\
         .TP\nNO_COLOR\nWhen set and not empty, diagnostics are never coloured (they are only on a terminal).\n\
         .TP\nTZ\nThe time zone of \\fB\\-T\\fR timestamps.\n",
    );
    s.push_str(&format!(
        ".TP\n{}\nSet by the shell completion scripts: the run answers a completion request instead.\n",
        super::complete::VAR
    ));
    s
}

fn see_also(name: &str, all: &[String]) -> String {
    let mut refs: Vec<String> = all
        .iter()
        .filter(|n| *n != name)
        .map(|n| format!("\\fB{}\\fR(8)", n.replace('-', "\\-")))
        .collect();
    refs.push("\\fBtcpq\\-language\\fR(7)".into());
    refs.push("\\fBbpftrace\\fR(8)".into());
    format!(".SH \"SEE ALSO\"\n{}\n", refs.join(",\n"))
}

/// tcpq-language(7): docs/language.md as roff.
pub fn language_page() -> String {
    let mut s = format!(
        ".TH tcpq\\-language 7 \"{DATE}\" \"{}\" \"{MANUAL}\"\n.SH NAME\n\
         tcpq\\-language \\- the language of tcpq programs: probes, fields, conditions, output\n",
        escape(&source()).replace('-', "\\-")
    );
    s.push_str(&to_roff(LANGUAGE_MD, "DESCRIPTION"));
    s.push_str(".SH \"SEE ALSO\"\n\\fBtcpq\\fR(8)\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page for the program and every visible subcommand, at every
    /// depth: found from the clap definitions, so a new subcommand gets
    /// its page without a change here.
    #[test]
    fn a_page_per_visible_subcommand() {
        let mut cmd = super::super::complete::command();
        cmd.build();
        let mut pages = Vec::new();
        pages_of(&cmd, &mut pages);
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        fn visible(c: &clap::Command, prefix: &str, out: &mut Vec<String>) {
            let name = format!("{prefix}{}", c.get_name());
            for s in c.get_subcommands().filter(|s| !s.is_hide_set()) {
                visible(s, &format!("{name}-"), out);
            }
            out.push(name);
        }
        let mut want = Vec::new();
        visible(&cmd, "", &mut want);
        for w in &want {
            assert!(names.contains(&w.as_str()), "no page for {w}: {names:?}");
        }
        assert_eq!(names.len(), want.len(), "{names:?}");
        assert!(names.contains(&"tcpq-lab-rerun"), "{names:?}");
        assert!(!names.iter().any(|n| n.contains("__")), "{names:?}");
        for (name, page) in &pages {
            assert!(page.contains(&format!("\n.TH {name} 8 ")), "{name}");
            assert!(page.is_ascii(), "{name}");
        }
    }
}
