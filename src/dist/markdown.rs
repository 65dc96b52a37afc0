//! A small Markdown to man(7) converter, for the Markdown our docs use
//! (docs/language.md becomes tcpq-language(7)): headings, paragraphs,
//! fenced code, `-` and `1.` lists, tables, and inline code, emphasis and
//! links. The output is plain ASCII roff needing no preprocessor (groff
//! `-ww` without `-t` or `-k`): every other character is a `\[uXXXX]`
//! escape, and a table becomes one tagged paragraph per row (first cell
//! as the tag, the others below it, each named by its column), which
//! reads well in 80 columns where a tbl table of long cells would not.
//!
//! Anything else (HTML, nested lists, block quotes) is not in our docs; a
//! test converts docs/language.md and groff checks the result in CI.

/// The roff of `md`'s body (everything after its first `# Title`), to
/// follow a page's `.TH` and NAME section. The text before the first `##`
/// heading goes under `first_section`.
pub fn to_roff(md: &str, first_section: &str) -> String {
    let mut out = String::new();
    let mut lines = md.lines().peekable();
    let mut started = false;
    while let Some(line) = lines.next() {
        if let Some(title) = line.strip_prefix("# ") {
            // The page's title is in its NAME section.
            let _ = title;
            continue;
        }
        if !started && !line.trim().is_empty() && !line.starts_with("## ") {
            out.push_str(&format!(".SH {}\n", first_section));
        }
        if !line.trim().is_empty() {
            started = true;
        }
        if let Some(h) = line.strip_prefix("## ") {
            out.push_str(&format!(".SH {}\n", quote_arg(&inline(h).to_uppercase())));
        } else if let Some(h) = line.strip_prefix("### ") {
            out.push_str(&format!(".SS {}\n", quote_arg(&inline(h))));
        } else if line.starts_with("```") {
            out.push_str(".PP\n.RS 4\n.nf\n");
            for l in lines.by_ref() {
                if l.starts_with("```") {
                    break;
                }
                out.push_str(&code_line(l));
                out.push('\n');
            }
            out.push_str(".fi\n.RE\n");
        } else if line.starts_with('|') {
            let mut rows = vec![line.to_owned()];
            while let Some(l) = lines.next_if(|l| l.starts_with('|')) {
                rows.push(l.to_owned());
            }
            table(&rows, &mut out);
        } else if let Some((marker, rest)) = list_item(line) {
            let mut item = rest.to_owned();
            // Continuation lines are indented.
            while let Some(l) = lines.next_if(|l| l.starts_with("  ") && !l.trim().is_empty()) {
                item.push(' ');
                item.push_str(l.trim());
            }
            match marker {
                None => out.push_str(".IP \\(bu 2\n"),
                Some(n) => out.push_str(&format!(".IP {n}. 4\n")),
            }
            out.push_str(&text_line(&inline(&item)));
        } else if line.trim().is_empty() {
            continue;
        } else {
            let mut para = line.trim().to_owned();
            while let Some(l) = lines.next_if(|l| is_paragraph_line(l)) {
                para.push(' ');
                para.push_str(l.trim());
            }
            out.push_str(".PP\n");
            out.push_str(&text_line(&inline(&para)));
        }
    }
    out
}

fn is_paragraph_line(l: &str) -> bool {
    !l.trim().is_empty()
        && !l.starts_with('#')
        && !l.starts_with("```")
        && !l.starts_with('|')
        && list_item(l).is_none()
}

/// `- text` (None) or `12. text` (Some(12)).
fn list_item(line: &str) -> Option<(Option<u32>, &str)> {
    if let Some(rest) = line.strip_prefix("- ") {
        return Some((None, rest));
    }
    let (num, rest) = line.split_once(". ")?;
    num.parse().ok().map(|n| (Some(n), rest))
}

/// A table: a tagged paragraph per row.
fn table(rows: &[String], out: &mut String) {
    let cells = |r: &str| -> Vec<String> {
        // `\|` is a `|` inside a cell.
        let r = r.trim().trim_start_matches('|').trim_end_matches('|');
        let mut cells = vec![String::new()];
        let mut chars = r.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&'|') => {
                    cells.last_mut().unwrap().push('|');
                    chars.next();
                }
                '|' => cells.push(String::new()),
                _ => cells.last_mut().unwrap().push(c),
            }
        }
        cells.into_iter().map(|c| c.trim().to_owned()).collect()
    };
    let header = cells(&rows[0]);
    for row in rows.iter().skip(1).filter(|r| !r.contains("---")) {
        let row = cells(row);
        out.push_str(".TP\n");
        out.push_str(&text_line(&inline(&row[0])));
        for (i, cell) in row.iter().enumerate().skip(1) {
            if i > 1 {
                out.push_str(".br\n");
            }
            let text = if row.len() == 2 {
                inline(cell)
            } else {
                let name = header.get(i).map_or("", String::as_str);
                format!("\\fI{}\\fR: {}", escape(name), inline(cell))
            };
            out.push_str(&text_line(&text));
        }
    }
}

/// A roff text line: one that begins with `.` or `'` would be a request.
fn text_line(s: &str) -> String {
    let s = s.trim();
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}\n")
    } else {
        format!("{s}\n")
    }
}

/// A line of a code block, set as is (no-fill mode).
fn code_line(l: &str) -> String {
    let e = escape_code(l);
    if e.starts_with('.') || e.starts_with('\'') {
        format!("\\&{e}")
    } else {
        e
    }
}

/// An argument of `.SH`/`.SS`: quoted, as it may hold spaces.
fn quote_arg(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\\(dq"))
}

/// Escape prose: backslashes and non-ASCII characters.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\e"),
            c if c.is_ascii() => out.push(c),
            c => out.push_str(&format!("\\[u{:04X}]", c as u32)),
        }
    }
    out
}

/// Escape code: as prose, and `-` is a minus sign (an ASCII hyphen-minus
/// in the output, what a reader copies into a shell), `'` and `` ` ``
/// are the ASCII quotes.
fn escape_code(s: &str) -> String {
    escape(s)
        .replace('-', "\\-")
        .replace('\'', "\\(aq")
        .replace('`', "\\(ga")
}

/// Inline Markdown: `code` in bold, **strong** in bold, *emphasis* in
/// italics, [text](target) as its text (and the address, when absolute).
pub fn inline(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if c == '`' {
            if let Some(end) = rest[1..].find('`') {
                out.push_str(&format!("\\fB{}\\fR", escape_code(&rest[1..1 + end])));
                rest = &rest[end + 2..];
                continue;
            }
        } else if let Some(r) = rest.strip_prefix("**") {
            if let Some(end) = r.find("**") {
                out.push_str(&format!("\\fB{}\\fR", inline(&r[..end])));
                rest = &r[end + 2..];
                continue;
            }
        } else if c == '*' && rest[1..].starts_with(|d: char| d.is_alphanumeric()) {
            if let Some(end) = rest[1..].find('*') {
                out.push_str(&format!("\\fI{}\\fR", inline(&rest[1..1 + end])));
                rest = &rest[end + 2..];
                continue;
            }
        } else if c == '[' {
            if let Some((text, target, len)) = link(rest) {
                out.push_str(&inline(text));
                if target.starts_with("http://") || target.starts_with("https://") {
                    out.push_str(&format!(" <{}>", escape(target)));
                }
                rest = &rest[len..];
                continue;
            }
        }
        out.push_str(&escape(&c.to_string()));
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// `[text](target)` at the start of `s`: text, target, bytes taken.
fn link(s: &str) -> Option<(&str, &str, usize)> {
    let close = s.find("](")?;
    let end = s[close..].find(')')? + close;
    let text = &s[1..close];
    if text.contains('[') {
        return None;
    }
    Some((text, &s[close + 2..end], end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks() {
        let md = "# Title\n\nIntro *para*\nover lines.\n\n## A section\n\n- one\n  more\n- two\n\n```tcpq\non x where a == -1\n.dot\n```\n\n### Sub\n\n| a | b | c |\n|---|---|---|\n| `x` | y \\| z | w |\n";
        let r = to_roff(md, "DESCRIPTION");
        assert_eq!(
            r,
            ".SH DESCRIPTION\n.PP\nIntro \\fIpara\\fR over lines.\n\
             .SH \"A SECTION\"\n.IP \\(bu 2\none more\n.IP \\(bu 2\ntwo\n\
             .PP\n.RS 4\n.nf\non x where a == \\-1\n\\&.dot\n.fi\n.RE\n\
             .SS \"Sub\"\n.TP\n\\fBx\\fR\n\\fIb\\fR: y | z\n.br\n\\fIc\\fR: w\n"
        );
    }

    #[test]
    fn inline_markup() {
        assert_eq!(
            inline("a `b-c` **d** µs"),
            "a \\fBb\\-c\\fR \\fBd\\fR \\[u00B5]s"
        );
        assert_eq!(
            inline("see [Errors](#errors) and [x](https://e.org/)"),
            "see Errors and x <https://e.org/>"
        );
        assert_eq!(inline("2 * 3 and a\\b"), "2 * 3 and a\\eb");
    }

    /// The language page converts to ASCII roff.
    #[test]
    fn the_language_page_is_ascii() {
        let r = to_roff(include_str!("../../docs/language.md"), "DESCRIPTION");
        assert!(r.is_ascii());
        assert!(r.contains(".SH \"PROBES AND FIELDS\"\n"), "{}", &r[..400]);
        assert!(!r
            .lines()
            .any(|l| l.starts_with('.') && l.starts_with(".on")));
    }
}
