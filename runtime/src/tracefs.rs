//! tracefs: where it is, which tracepoints exist, and their record layouts.
use std::{
    collections::HashMap,
    ffi::CString,
    path::{Path, PathBuf},
};

/// Where tracefs is looked for, in order.
pub const CANDIDATES: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// Errors finding tracefs or reading a tracepoint's format.
#[derive(Debug, thiserror::Error)]
pub enum TracefsError {
    /// Not mounted, and mounting it was not possible.
    #[error("tracefs is not mounted and could not be mounted ({reason}); mount it with `mount -t tracefs tracefs /sys/kernel/tracing` as root")]
    NotMounted { reason: String },
    /// The tracepoint does not exist on this kernel.
    #[error("tracepoint {category}:{name} does not exist on this kernel")]
    NoTracepoint { category: String, name: String },
    /// A format file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A format file line could not be understood.
    #[error("{path}: cannot parse field line `{line}`")]
    BadFormat { path: PathBuf, line: String },
    /// The tracepoint lacks a field the templates need.
    #[error("tracepoint {event} has no field `{field}` on this kernel")]
    NoField { event: String, field: String },
}

/// One field of a tracepoint record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub offset: u32,
    pub size: u32,
    pub signed: bool,
}

/// A tracepoint's record layout, from its `format` file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Format {
    pub fields: HashMap<String, Field>,
}

impl Format {
    /// Parse the text of a `format` file.
    pub fn parse(path: &Path, text: &str) -> Result<Format, TracefsError> {
        let mut fields = HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            let Some(rest) = line.strip_prefix("field:") else {
                continue;
            };
            let bad = || TracefsError::BadFormat {
                path: path.to_owned(),
                line: line.to_owned(),
            };
            let mut decl = None;
            let (mut offset, mut size, mut signed) = (None, None, None);
            for (i, part) in rest.split(';').enumerate() {
                let part = part.trim();
                if i == 0 {
                    decl = Some(part);
                } else if let Some(v) = part.strip_prefix("offset:") {
                    offset = v.trim().parse::<u32>().ok();
                } else if let Some(v) = part.strip_prefix("size:") {
                    size = v.trim().parse::<u32>().ok();
                } else if let Some(v) = part.strip_prefix("signed:") {
                    signed = Some(v.trim() == "1");
                }
            }
            let decl = decl.ok_or_else(bad)?;
            let name = field_name(decl).ok_or_else(bad)?;
            fields.insert(
                name.to_owned(),
                Field {
                    offset: offset.ok_or_else(bad)?,
                    size: size.ok_or_else(bad)?,
                    signed: signed.unwrap_or(false),
                },
            );
        }
        Ok(Format { fields })
    }

    /// A field that must be there.
    pub fn field(&self, event: &str, name: &str) -> Result<Field, TracefsError> {
        self.fields
            .get(name)
            .copied()
            .ok_or_else(|| TracefsError::NoField {
                event: event.to_owned(),
                field: name.to_owned(),
            })
    }
}

/// The declared name in `unsigned int len`, `__u8 saddr[4]`,
/// `__data_loc char[] name`, `const void * skaddr`.
fn field_name(decl: &str) -> Option<&str> {
    let last = decl
        .rsplit(|c: char| c.is_whitespace() || c == '*')
        .find(|s| !s.is_empty())?;
    let name = match last.find('[') {
        Some(i) => &last[..i],
        None => last,
    };
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then_some(name)
}

/// A located tracefs.
#[derive(Clone, Debug)]
pub struct Tracefs {
    root: PathBuf,
    /// tcpq mounted it itself.
    pub mounted_by_us: bool,
}

impl Tracefs {
    /// Find tracefs; if absent and we may, mount it at
    /// `/sys/kernel/tracing`.
    pub fn locate() -> Result<Tracefs, TracefsError> {
        if let Some(t) = Tracefs::find() {
            return Ok(t);
        }
        let target = CANDIDATES[0];
        mount_tracefs(target)?;
        let t = Tracefs::at(target);
        if t.is_mounted() {
            Ok(Tracefs {
                mounted_by_us: true,
                ..t
            })
        } else {
            Err(TracefsError::NotMounted {
                reason: format!("mounted at {target} but it has no events/"),
            })
        }
    }

    /// Find a mounted tracefs without trying to mount one.
    pub fn find() -> Option<Tracefs> {
        CANDIDATES.iter().map(Tracefs::at).find(Tracefs::is_mounted)
    }

    /// A tracefs at a given root (tests use a directory of fixtures).
    pub fn at(root: impl Into<PathBuf>) -> Tracefs {
        Tracefs {
            root: root.into(),
            mounted_by_us: false,
        }
    }

    fn is_mounted(&self) -> bool {
        self.root.join("events").is_dir()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn event_dir(&self, category: &str, name: &str) -> PathBuf {
        self.root.join("events").join(category).join(name)
    }

    /// Whether the tracepoint `category:name` exists.
    pub fn exists(&self, category: &str, name: &str) -> bool {
        valid_component(category)
            && valid_component(name)
            && self.event_dir(category, name).join("format").is_file()
    }

    /// The tracepoint's perf event id (`events/<category>/<name>/id`).
    pub fn event_id(&self, category: &str, name: &str) -> Option<u64> {
        if !self.exists(category, name) {
            return None;
        }
        std::fs::read_to_string(self.event_dir(category, name).join("id"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Read and parse a tracepoint's format.
    pub fn format(&self, category: &str, name: &str) -> Result<Format, TracefsError> {
        if !self.exists(category, name) {
            return Err(TracefsError::NoTracepoint {
                category: category.to_owned(),
                name: name.to_owned(),
            });
        }
        let path = self.event_dir(category, name).join("format");
        let text = std::fs::read_to_string(&path).map_err(|source| TracefsError::Read {
            path: path.clone(),
            source,
        })?;
        Format::parse(&path, &text)
    }
}

/// Tracepoint names are path components; refuse anything that could walk
/// out of `events/`.
fn valid_component(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains('/') && !s.contains('\0')
}

fn mount_tracefs(target: &str) -> Result<(), TracefsError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(TracefsError::NotMounted {
            reason: "not root".to_owned(),
        });
    }
    let src = CString::new("nodev").expect("no NUL");
    let tgt = CString::new(target).expect("no NUL");
    let fstype = CString::new("tracefs").expect("no NUL");
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the
    // call; data may be NULL.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        return Err(TracefsError::NotMounted {
            reason: format!("mount({target}): {err}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETRANS: &str = "name: tcp_retransmit_skb
ID: 1234
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:const void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:const void * skaddr;\toffset:16;\tsize:8;\tsigned:0;
\tfield:int state;\toffset:24;\tsize:4;\tsigned:1;
\tfield:__u8 saddr_v6[16];\toffset:42;\tsize:16;\tsigned:0;
\tfield:__data_loc char[] name;\toffset:20;\tsize:4;\tsigned:0;
\tfield:int err;\toffset:76;\tsize:4;\tsigned:1;

print fmt: \"skbaddr=%p\", REC->skbaddr
";

    #[test]
    fn parses_format_fields() {
        let f = Format::parse(Path::new("x"), RETRANS).unwrap();
        assert_eq!(
            f.field("e", "skaddr").unwrap(),
            Field {
                offset: 16,
                size: 8,
                signed: false
            }
        );
        assert_eq!(f.field("e", "err").unwrap().offset, 76);
        assert!(f.field("e", "err").unwrap().signed);
        assert_eq!(f.field("e", "saddr_v6").unwrap().size, 16);
        assert_eq!(f.field("e", "name").unwrap().offset, 20);
        assert!(matches!(
            f.field("e", "nope"),
            Err(TracefsError::NoField { .. })
        ));
    }

    #[test]
    fn bad_lines_are_errors() {
        let e = Format::parse(Path::new("x"), "\tfield:int x;\toffset:zz;\tsize:4;\n");
        assert!(matches!(e, Err(TracefsError::BadFormat { .. })));
    }

    #[test]
    fn names_cannot_escape_events() {
        let t = Tracefs::at("/sys/kernel/tracing");
        assert!(!t.exists("..", "x"));
        assert!(!t.exists("tcp", "../tcp_probe"));
    }

    #[test]
    fn live_tracefs_has_tcp_probe() {
        let Some(t) = Tracefs::find() else {
            eprintln!("tracefs not mounted; skipping");
            return;
        };
        if !t.exists("tcp", "tcp_probe") {
            return;
        }
        let f = t.format("tcp", "tcp_probe").unwrap();
        assert!(f.fields.contains_key("skaddr"));
        assert!(f.fields.contains_key("snd_cwnd"));
    }
}
