//! The one place diagnostics become text: rustc's layout (code, message,
//! `--> origin:line:col`, the source line, carets under the span, label,
//! help), colour only when the caller asks.
use unicode_width::UnicodeWidthChar;

use super::{Diagnostic, Severity};

const RED: &str = "\x1b[1;31m";
const YELLOW: &str = "\x1b[1;33m";
const BLUE: &str = "\x1b[1;34m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// Tab stops used when showing a source line, so carets line up.
const TAB_WIDTH: usize = 4;

/// Render one diagnostic rustc-style. `origin` names the source
/// (`<command line>`, a file path). Colour only when `color` is true: the
/// caller decides (TTY, `NO_COLOR`).
///
/// Never panics, whatever the span: out-of-range or mid-character offsets
/// are clamped to the source.
pub fn render(diag: &Diagnostic, source: &str, origin: &str, color: bool) -> String {
    let paint = |style: &str, text: &str| -> String {
        if color {
            format!("{style}{text}{RESET}")
        } else {
            text.to_string()
        }
    };
    let (sev_word, sev_style) = match diag.severity {
        Severity::Error => ("error", RED),
        Severity::Warning => ("warning", YELLOW),
    };
    let mut out = String::new();
    out.push_str(&paint(sev_style, &format!("{sev_word}[{}]", diag.code)));
    out.push_str(&paint(BOLD, &format!(": {}", diag.message)));
    out.push('\n');

    if diag.is_located() {
        let start = clamp_to_char(source, diag.span.start);
        let end = clamp_to_char(source, diag.span.end.max(diag.span.start)).max(start);
        let (line_no, line_start) = line_of(source, start);
        let line_end = source[line_start..]
            .find('\n')
            .map_or(source.len(), |i| line_start + i);
        let line_text = source[line_start..line_end].trim_end_matches('\r');
        let col = source[line_start..start].chars().count() + 1;
        let gutter = line_no.to_string().len();
        let pad = " ".repeat(gutter);

        out.push_str(&format!(
            "{pad}{} {origin}:{line_no}:{col}\n",
            paint(BLUE, "-->")
        ));
        out.push_str(&format!("{pad} {}\n", paint(BLUE, "|")));
        let shown = expand_tabs(line_text);
        out.push_str(&format!(
            "{} {} {}\n",
            paint(BLUE, &line_no.to_string()),
            paint(BLUE, "|"),
            shown
        ));
        // Caret columns are display widths of the text before and inside
        // the span, on this line only (a multi-line span is underlined to
        // the end of its first line).
        let caret_start = (start - line_start).min(line_text.len());
        let caret_end = (end.min(line_start + line_text.len()) - line_start).max(caret_start);
        let before = display_width(&line_text[..caret_start]);
        let inside = display_width(&line_text[..caret_end]) - before;
        let carets = "^".repeat(inside.max(1));
        let mut marker = format!("{}{}", " ".repeat(before), paint(sev_style, &carets));
        if !diag.label.is_empty() {
            marker.push(' ');
            marker.push_str(&paint(sev_style, &diag.label));
        }
        out.push_str(&format!("{pad} {} {marker}\n", paint(BLUE, "|")));
        if let Some(help) = &diag.help {
            out.push_str(&format!("{pad} {}\n", paint(BLUE, "|")));
            out.push_str(&format!(
                "{pad} {} {}: {help}\n",
                paint(BLUE, "="),
                paint(BOLD, "help")
            ));
        }
    } else if let Some(help) = &diag.help {
        out.push_str(&format!(
            "  {} {}: {help}\n",
            paint(BLUE, "="),
            paint(BOLD, "help")
        ));
    }
    out
}

/// Render several diagnostics, separated by blank lines, with a summary.
pub fn render_all(diags: &[Diagnostic], source: &str, origin: &str, color: bool) -> String {
    let mut out = String::new();
    for d in diags {
        out.push_str(&render(d, source, origin, color));
        out.push('\n');
    }
    let n = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    if n > 1 {
        let text = format!("error: aborting due to {n} errors");
        if color {
            out.push_str(&format!(
                "{RED}error{RESET}{BOLD}: aborting due to {n} errors{RESET}\n"
            ));
        } else {
            out.push_str(&text);
            out.push('\n');
        }
    }
    out
}

/// Largest char boundary `<= i` inside `s`.
fn clamp_to_char(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// 1-based line number of byte `at`, and the byte where that line starts.
fn line_of(source: &str, at: usize) -> (usize, usize) {
    let before = &source[..at];
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line_no, line_start)
}

fn expand_tabs(s: &str) -> String {
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        if c == '\t' {
            let n = TAB_WIDTH - w % TAB_WIDTH;
            out.push_str(&" ".repeat(n));
            w += n;
        } else if c.is_control() {
            // Control characters would garble the terminal: show a
            // placeholder of the same width as `display_width` counts.
            out.push('\u{fffd}');
            w += 1;
        } else {
            out.push(c);
            w += c.width().unwrap_or(0);
        }
    }
    out
}

fn display_width(s: &str) -> usize {
    let mut w = 0;
    for c in s.chars() {
        if c == '\t' {
            w += TAB_WIDTH - w % TAB_WIDTH;
        } else if c.is_control() {
            w += 1;
        } else {
            w += c.width().unwrap_or(0);
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Code;
    use std::ops::Range;

    fn diag(span: Range<usize>) -> Diagnostic {
        Diagnostic::error(Code::UnknownField, "m", span, "here")
    }

    #[test]
    fn seed_example_renders_like_rustc() {
        let src = "on tcp_select_window where wn == 0 print pid, comm";
        let d = Diagnostic::error(
            Code::UnknownField,
            "unknown field `wn` on probe `tcp_select_window`",
            27..29,
            "not a field of `tcp_select_window`",
        )
        .with_help("did you mean `win`?");
        let want = "error[E0102]: unknown field `wn` on probe `tcp_select_window`
 --> <command line>:1:28
  |
1 | on tcp_select_window where wn == 0 print pid, comm
  |                            ^^ not a field of `tcp_select_window`
  |
  = help: did you mean `win`?
";
        assert_eq!(render(&d, src, "<command line>", false), want);
    }

    #[test]
    fn second_line_tabs_and_wide_chars() {
        let src = "a\n\t\"日本\" x";
        let at = src.find('x').unwrap();
        let r = render(&diag(at..at + 1), src, "f", false);
        assert!(r.contains(" --> f:2:7\n"), "{r}");
        // tab = 4 columns, quote 1, two wide chars 4, quote 1, space 1
        assert!(r.contains(&format!("  | {}^ here", " ".repeat(11))), "{r}");
    }

    #[test]
    fn never_panics_on_odd_spans() {
        let src = "é\n";
        // (start, end) pairs, including a reversed one.
        for (a, b) in [(0, 1), (1, 0), (5, 9), (0, 100), (3, 3), (2, 2)] {
            let span = a..b;
            let _ = render(&diag(span.clone()), src, "f", true);
            let _ = render(&diag(span), "", "f", false);
        }
    }

    #[test]
    fn colour_only_when_asked() {
        assert!(!render(&diag(0..1), "x", "f", false).contains('\x1b'));
        assert!(render(&diag(0..1), "x", "f", true).contains('\x1b'));
    }
}
