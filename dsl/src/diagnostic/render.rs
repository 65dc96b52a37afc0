//! The one place diagnostics become text, drawn by `ariadne`: the header
//! `error[E0102]: message`, then a box headed `origin:line:col` with the
//! source line, the span underlined in `^` and its label, and the help.
//! Colour only when the caller asks.
//!
//! `ariadne` (0.6) rather than `miette` (7.6): ariadne keeps the
//! `error[E0102]` header and counts columns in characters, as tcpq did
//! before, and adds one crate (`yansi`; tcpq-dsl had `unicode-width`); miette's
//! graphical handler writes the code on a line of its own and a symbol
//! (`x`, `!`) for error or warning, counts columns in bytes, and brings 55
//! crates with `fancy-no-backtrace`.
use std::fmt::Write as _;

use ariadne::{CharSet, Color, Config, Fmt, Label, LabelAttach, Report, ReportKind, Source};

use super::{Diagnostic, Severity};

/// Tab stops used when showing a source line. ariadne places them by
/// counting characters, not columns (after a CJK character a tab is one
/// column narrower than a terminal's); the source line and the underline
/// follow the same rule, so the underline still lines up.
const TAB_WIDTH: usize = 4;

/// Render one diagnostic. `origin` names the source (`<command line>`, a
/// file path). Colour only when `color` is true: the caller decides (TTY,
/// `NO_COLOR`); without it the text has no escape code at all.
///
/// Never panics, whatever the span: out-of-range or mid-character offsets
/// are clamped to the source.
pub fn render(diag: &Diagnostic, source: &str, origin: &str, color: bool) -> String {
    let (word, colour) = match diag.severity {
        Severity::Error => ("error", Color::Red),
        Severity::Warning => ("warning", Color::Yellow),
    };
    let paint = |c: Color| Some(c).filter(|_| color);
    // The header is written here, as ariadne writes its own (kind in
    // colour, message plain): ariadne 0.6 paints a custom kind even with
    // colour off (zesterer/ariadne#120), and its built-in kinds read
    // `[E0102] Error:`.
    let mut out = format!(
        "{}: {}\n",
        format!("{word}[{}]", diag.code).fg(paint(colour)),
        diag.message
    );
    if diag.is_located() {
        out.push_str(&snippet(diag, source, origin, color, colour));
    } else if let Some(help) = &diag.help {
        let _ = writeln!(out, "  {}: {help}", "Help".fg(paint(Color::Fixed(115))));
    }
    out
}

/// The source box of a located diagnostic: everything ariadne writes after
/// its header line.
fn snippet(diag: &Diagnostic, source: &str, origin: &str, color: bool, colour: Color) -> String {
    let mut start = clamp_to_char(source, diag.span.start);
    let mut end = clamp_to_char(source, diag.span.end.max(diag.span.start)).max(start);
    // The end of input, after the last line break, is shown at the end of
    // the last line (ariadne would put it one column past the break).
    let last = source
        .strip_suffix('\n')
        .map(|s| s.strip_suffix('\r').unwrap_or(s));
    if let Some(last) = last.filter(|_| start == source.len()) {
        (start, end) = (last.len(), last.len());
    }
    // ariadne counts in characters; `shown` has the same characters.
    let char_start = source[..start].chars().count();
    let char_end = char_start + source[start..end].chars().count();
    let shown = shown_source(source);

    // Always a message, even an empty one: ariadne draws no underline for
    // a label without.
    let mut label = Label::new((origin, char_start..char_end)).with_message(&diag.label);
    if color {
        label = label.with_color(colour);
    }
    let kind = match diag.severity {
        Severity::Error => ReportKind::Error,
        Severity::Warning => ReportKind::Warning,
    };
    let config = Config::new()
        .with_color(color)
        .with_char_set(CharSet::Ascii)
        .with_tab_width(TAB_WIDTH)
        // The label hangs from the end of the underline, where rustc
        // writes it.
        .with_label_attach(LabelAttach::End);
    let mut report = Report::build(kind, (origin, char_start..char_end))
        .with_config(config)
        .with_label(label);
    if let Some(help) = &diag.help {
        report = report.with_help(help);
    }
    let mut bytes = Vec::new();
    if report
        .finish()
        .write((origin, Source::from(shown)), &mut bytes)
        .is_err()
    {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut out = String::new();
    // Skip ariadne's header (written by `render`) and the spaces it leaves
    // at the ends of lines.
    for line in text.lines().skip(1) {
        out.push_str(line.trim_end_matches(' '));
        out.push('\n');
    }
    out
}

/// `source` as it can be shown on a terminal, character for character
/// (so character offsets still hold): control characters, which would
/// garble the terminal or start escape sequences, become U+FFFD, and so do
/// the line breaks ariadne knows but tcpq does not count (a lone `\r`,
/// U+2028, U+2029), so that line numbers count `\n` alone.
fn shown_source(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        let keep = match c {
            '\t' | '\n' => true,
            '\r' => chars.peek() == Some(&'\n'),
            '\u{2028}' | '\u{2029}' => false,
            c => !c.is_control(),
        };
        out.push(if keep { c } else { '\u{fffd}' });
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
        let error = "error".fg(Some(Color::Red).filter(|_| color));
        let _ = writeln!(out, "{error}: aborting due to {n} errors");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Code;
    use std::ops::Range;
    use unicode_width::UnicodeWidthStr;

    fn diag(span: Range<usize>) -> Diagnostic {
        Diagnostic::error(Code::UnknownField, "m", span, "here")
    }

    #[test]
    fn seed_example() {
        let src = "on tcp_select_window where wn == 0 print pid, comm";
        let d = Diagnostic::error(
            Code::UnknownField,
            "unknown field `wn` on probe `tcp_select_window`",
            27..29,
            "not a field of `tcp_select_window`",
        )
        .with_help("did you mean `win`?");
        let want = "error[E0102]: unknown field `wn` on probe `tcp_select_window`
   ,-[ <command line>:1:28 ]
   |
 1 | on tcp_select_window where wn == 0 print pid, comm
   |                            ^|
   |                             `-- not a field of `tcp_select_window`
   |
   | Help: did you mean `win`?
---'
";
        assert_eq!(render(&d, src, "<command line>", false), want);
    }

    /// The source line as shown and the marker line under it.
    fn shown_and_marker(out: &str, line_no: usize) -> (String, String) {
        let lines: Vec<&str> = out.lines().collect();
        let head = format!(" {line_no} | ");
        let i = lines
            .iter()
            .position(|l| l.starts_with(&head))
            .unwrap_or_else(|| panic!("no line {line_no}:\n{out}"));
        let marker = lines[i + 1]
            .strip_prefix("   | ")
            .unwrap_or_else(|| panic!("no marker:\n{out}"));
        (lines[i][head.len()..].to_string(), marker.to_string())
    }

    /// The underline starts under the span's first character and is as
    /// wide as the span, however many bytes and columns the characters
    /// before and inside it take (tabs, accents, CJK), and the column in
    /// the location counts characters.
    #[test]
    fn underline_lines_up_with_tabs_and_wide_chars() {
        // (source, the spanned text (unique in it), line, column)
        for (src, word, line, col) in [
            ("a\n\t\"日本\" x", "x", 2, 7),
            ("\t\tx == 1", "x", 1, 3),
            ("é\tàx", "x", 1, 4),
            ("日\tx", "x", 1, 3),
            ("日本\t\tab\tzq", "zq", 1, 8),
            ("on tcp_probe where comm == \"ü\u{308}日\"\twn", "wn", 1, 34),
            ("a\r\nb\r\n\t日 wn", "wn", 3, 4),
        ] {
            let at = src.find(word).unwrap();
            let out = render(&diag(at..at + word.len()), src, "f", false);
            assert!(
                out.contains(&format!(",-[ f:{line}:{col} ]")),
                "{src:?}\n{out}"
            );
            let (shown, marker) = shown_and_marker(&out, line);
            let x = shown.find(word).unwrap_or_else(|| panic!("{src:?}\n{out}"));
            let before = shown[..x].width();
            let under = marker.find(['^', '|']).unwrap();
            assert_eq!(under, before, "{src:?}\n{out}");
            let width = marker[under..].trim_end().len();
            assert_eq!(width, word.width(), "{src:?}\n{out}");
            assert!(!out.contains('\r'), "{src:?}\n{out}");
        }
    }

    /// A span without a label is still underlined.
    #[test]
    fn unlabelled_span_is_underlined() {
        let d = Diagnostic::error(Code::Syntax, "m", 3..5, "");
        let out = render(&d, "on tcp_probe", "f", false);
        assert!(out.contains(",-[ f:1:4 ]"), "{out}");
        assert!(out.contains("\n   |    ^|\n"), "{out}");
    }

    #[test]
    fn warnings_say_so() {
        let mut d = diag(0..1);
        d.severity = Severity::Warning;
        let out = render(&d, "x", "f", false);
        assert!(out.starts_with("warning[E0102]: m\n"), "{out}");
        assert!(out.contains(",-[ f:1:1 ]"), "{out}");
    }

    /// No place in the source: the header and the help, no box.
    #[test]
    fn unlocated_has_no_snippet() {
        let d = Diagnostic::unlocated(Code::UnknownParam, "no parameter `x`")
            .with_help("parameters: a, b");
        let out = render(&d, "on tcp_probe print pid", "f", false);
        assert_eq!(
            out,
            "error[E0401]: no parameter `x`\n  Help: parameters: a, b\n"
        );
    }

    #[test]
    fn several_errors_are_counted() {
        let out = render_all(&[diag(0..1), diag(1..2)], "xy", "f", false);
        assert!(
            out.ends_with("---'\n\nerror: aborting due to 2 errors\n"),
            "{out}"
        );
        assert_eq!(out.matches("error[E0102]").count(), 2, "{out}");
    }

    #[test]
    fn never_panics_on_odd_spans() {
        // (start, end) pairs, including a reversed one.
        for src in ["é\n", "", "x\n", "a\r\n", "\t"] {
            for (a, b) in [(0, 1), (1, 0), (5, 9), (0, 100), (3, 3), (2, 2), (1, 2)] {
                let out = render(&diag(a..b), src, "f", false);
                assert!(out.contains("[ f:1:"), "{src:?} {a}..{b}\n{out}");
                let _ = render(&diag(a..b), src, "f", true);
            }
        }
        // The end of input, after the last newline: the end of the last
        // line.
        for src in ["ab\ncd\n", "ab\ncd\r\n"] {
            let out = render(&diag(src.len()..src.len()), src, "f", false);
            assert!(out.contains(",-[ f:2:3 ]"), "{out}");
            assert!(out.contains("\n   |   |\n"), "{out}");
        }
    }

    /// Colour only when asked; without it no escape code at all, even when
    /// the source holds one.
    #[test]
    fn colour_only_when_asked() {
        let mut warning = diag(0..1).with_help("h");
        warning.severity = Severity::Warning;
        let diags = [
            diag(0..1).with_help("h"),
            warning,
            Diagnostic::unlocated(Code::UnknownParam, "m").with_help("h"),
        ];
        for src in ["x", "\u{1b}[31mx"] {
            let plain = render_all(&diags, src, "f", false);
            assert!(!plain.contains('\x1b'), "{plain:?}");
            for d in &diags {
                assert!(render(d, src, "f", true).contains('\x1b'));
            }
        }
    }

    /// Control characters and the line breaks tcpq does not count are
    /// shown as U+FFFD, so line numbers count `\n` alone.
    #[test]
    fn control_characters_are_replaced() {
        let src = "a\rb\u{2028}c\u{7}\nwn";
        let out = render(&diag(src.len() - 2..src.len()), src, "f", false);
        assert!(out.contains(",-[ f:2:1 ]"), "{out}");
        let out = render(&diag(2..3), src, "f", false);
        assert!(out.contains(" 1 | a\u{fffd}b\u{fffd}c\u{fffd}\n"), "{out}");
        assert!(out.contains(",-[ f:1:3 ]"), "{out}");
    }

    proptest::proptest! {
        /// Any source (control characters, tabs, wide characters, line
        /// breaks) and any span: no panic, the header, and no escape code
        /// without colour.
        #[test]
        fn any_span_of_any_source(
            src in "[a\t\n\r\u{1b}\u{0}\u{2028}é日\u{308} ]{0,30}",
            a in 0usize..40,
            b in 0usize..40,
            color: bool,
        ) {
            let out = render(&diag(a..b), &src, "f", color);
            if !color {
                proptest::prop_assert!(out.starts_with("error[E0102]: m\n"), "{}", out);
                proptest::prop_assert!(!out.contains('\x1b'), "{:?}", out);
            }
        }
    }
}
