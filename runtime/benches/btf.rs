//! tcpq's own BTF index (`tcpq_runtime::btf`) against the `btf-rs` crate
//! (both of its backends), on the work a run does with the kernel's BTF:
//! open `/sys/kernel/btf/vmlinux`, then resolve every struct member path
//! of `offsets::STRUCT_MEMBERS`, the raw tracepoint prototypes, the kprobe
//! functions' parameters, `sizeof(struct iovec)`, the enums printed as
//! names (`skb_drop_reason`, `sk_rst_reason`) and the fast-read check
//! (`enum bpf_features`, `bpf_rdonly_cast`).
//!
//! Both must give the same answers (checked before timing). Each round
//! opens the BTF anew, as each run of tcpq does.
//!
//! ```text
//! cargo bench -p tcpq-runtime --bench btf             # all three, timed
//! cargo bench -p tcpq-runtime --bench btf -- tcpq     # one, for peak RSS
//! ```
//! (`-- tcpq`, `-- btf-rs-cache` or `-- btf-rs-mmap` run that one's
//! workload once, untimed, so `/usr/bin/time -f %M` on the built bench
//! binary measures its peak RSS.)
use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use btf_rs::{Backend, BtfType, Type};
use tcpq_runtime::{btf::Btf, btf::VMLINUX_BTF, offsets};

/// Everything resolved, in a form both sides produce.
#[derive(Debug, PartialEq, Eq)]
struct Answers {
    /// path → (bit offset, bitfield size, size), or missing.
    members: BTreeMap<&'static str, Option<(u64, u32, u64)>>,
    /// raw tracepoint → argument types (without the private `void *`).
    raw_args: BTreeMap<&'static str, Option<Vec<String>>>,
    /// function → parameter names.
    params: BTreeMap<&'static str, Option<Vec<String>>>,
    iovec_size: Option<u64>,
    enums: BTreeMap<&'static str, Option<Vec<(u64, String)>>>,
    rdonly_cast: bool,
}

const ENUMS: &[&str] = &["skb_drop_reason", "sk_rst_reason", "bpf_features"];

fn raw_names() -> Vec<&'static str> {
    let mut n: Vec<&str> = offsets::RAW_TRACEPOINT_ARGS.iter().map(|a| a.1).collect();
    n.extend(offsets::SAME_PROTOTYPE.iter().flat_map(|&(a, b)| [a, b]));
    n.sort_unstable();
    n.dedup();
    n
}

fn func_names() -> Vec<&'static str> {
    let mut n: Vec<&str> = offsets::FUNCTION_PARAMS
        .iter()
        .map(|p| p.1)
        .chain(offsets::FUNCTION_RETURNS.iter().map(|r| r.1))
        .collect();
    n.sort_unstable();
    n.dedup();
    n
}

// -- tcpq's index, called as offsets.rs and session.rs call it ----------

fn with_tcpq() -> Answers {
    let btf = Btf::from_sys_fs().expect("vmlinux BTF");
    let mut roots: Vec<&str> = offsets::STRUCT_MEMBERS
        .iter()
        .map(|(_, p)| p.split('.').next().unwrap_or_default())
        .collect();
    roots.sort_unstable();
    roots.dedup();
    let ids = btf.find_structs(&roots);
    let members = offsets::STRUCT_MEMBERS
        .iter()
        .map(|&(_, path)| {
            let mut parts = path.split('.');
            let root = parts.next().unwrap_or_default();
            let m = ids
                .get(root)
                .and_then(|&id| btf.resolve_in(id, root, parts).ok())
                .map(|m| (m.bit_offset, m.bitfield_size, m.size));
            (path, m)
        })
        .collect();
    let names = raw_names();
    let raw_args = btf
        .raw_tracepoint_args_many(&names)
        .into_iter()
        .map(|(n, r)| (n, r.ok().flatten()))
        .collect();
    let funcs = func_names();
    let found = btf.find_funcs(&funcs);
    let params = funcs
        .iter()
        .map(|&f| (f, found.get(f).and_then(|&id| btf.func_params(id).ok())))
        .collect();
    let iovec_size = btf.struct_id("iovec").and_then(|id| btf.type_size(id)).ok();
    let enums = ENUMS.iter().map(|&e| (e, btf.enum_values(e))).collect();
    let rdonly_cast = btf
        .find_funcs(&["bpf_rdonly_cast"])
        .contains_key("bpf_rdonly_cast");
    Answers {
        members,
        raw_args,
        params,
        iovec_size,
        enums,
        rdonly_cast,
    }
}

// -- btf-rs, the same questions through its public API -----------------

struct Rs(btf_rs::Btf);

const MAX_DEPTH: usize = 32;

impl Rs {
    fn name(&self, t: &dyn BtfType) -> String {
        self.0.resolve_name(t).unwrap_or_default()
    }

    fn by_name(&self, name: &str, want: fn(&Type) -> bool) -> Option<Type> {
        self.0
            .resolve_types_by_name(name)
            .ok()?
            .into_iter()
            .find(want)
    }

    fn chained(&self, t: &dyn BtfType) -> Option<Type> {
        self.0.resolve_chained_type(t).ok()
    }

    /// Through typedefs and modifiers.
    fn skip_mods(&self, mut t: Type) -> Option<Type> {
        for _ in 0..MAX_DEPTH {
            t = match &t {
                Type::Typedef(x) => self.chained(x)?,
                Type::Volatile(x) => self.chained(x)?,
                Type::Const(x) => self.chained(x)?,
                Type::Restrict(x) => self.chained(x)?,
                Type::TypeTag(x) => self.chained(x)?,
                _ => return Some(t),
            };
        }
        None
    }

    fn size(&self, t: Type) -> Option<u64> {
        Some(match self.skip_mods(t)? {
            Type::Int(i) => i.size() as u64,
            Type::Struct(s) | Type::Union(s) => s.size() as u64,
            Type::Enum(e) => e.size() as u64,
            Type::Enum64(e) => e.size() as u64,
            Type::Float(f) => f.size() as u64,
            Type::Ptr(_) => 8,
            Type::Array(a) => self.size(self.chained(&a)?)? * a.len() as u64,
            _ => return None,
        })
    }

    fn aggregate(&self, t: Type) -> Option<btf_rs::Struct> {
        match self.skip_mods(t)? {
            Type::Struct(s) | Type::Union(s) => Some(s),
            _ => None,
        }
    }

    /// `name` in `s` or its anonymous members: (bit offset, bitfield, size).
    /// (Old-style INT bitfields are not followed: btf-rs does not expose
    /// an INT's bit offset and width; vmlinux BTF uses `kind_flag` ones.)
    fn find_direct(&self, s: &btf_rs::Struct, name: &str, depth: usize) -> Option<(u64, u32, u64)> {
        if depth > MAX_DEPTH {
            return None;
        }
        for m in &s.members {
            let n = self.name(m);
            if n == name {
                let size = self.size(self.chained(m)?)?;
                return Some((m.bit_offset() as u64, m.bitfield_size().unwrap_or(0), size));
            }
            if n.is_empty() {
                if let Some(inner) = self.chained(m).and_then(|t| self.aggregate(t)) {
                    if let Some((off, bf, size)) = self.find_direct(&inner, name, depth + 1) {
                        return Some((off + m.bit_offset() as u64, bf, size));
                    }
                }
            }
        }
        None
    }

    /// Directly, then through the first member when it embeds a struct.
    fn find_member(&self, s: &btf_rs::Struct, name: &str) -> Option<(u64, u32, u64, Type)> {
        let mut cur = s.clone();
        let mut base = 0u64;
        for _ in 0..MAX_DEPTH {
            if let Some((off, bf, size)) = self.find_direct(&cur, name, 0) {
                let ty = self.member_type(&cur, name)?;
                return Some((base + off, bf, size, ty));
            }
            let first = cur.members.first()?;
            if first.bitfield_size().unwrap_or(0) != 0 {
                return None;
            }
            let inner = self.chained(first).and_then(|t| self.aggregate(t))?;
            base += first.bit_offset() as u64;
            cur = inner;
        }
        None
    }

    /// The declared type of member `name` (directly or in anonymous members).
    fn member_type(&self, s: &btf_rs::Struct, name: &str) -> Option<Type> {
        for m in &s.members {
            let n = self.name(m);
            if n == name {
                return self.chained(m);
            }
            if n.is_empty() {
                if let Some(inner) = self.chained(m).and_then(|t| self.aggregate(t)) {
                    if let Some(t) = self.member_type(&inner, name) {
                        return Some(t);
                    }
                }
            }
        }
        None
    }

    fn resolve(&self, path: &str) -> Option<(u64, u32, u64)> {
        let mut parts = path.split('.');
        let root = parts.next()?;
        let mut cur = match self.by_name(root, |t| matches!(t, Type::Struct(_)))? {
            Type::Struct(s) => s,
            _ => return None,
        };
        let mut found: Option<(u64, u32, u64, Type)> = None;
        let mut base = 0;
        for (i, name) in parts.enumerate() {
            if i > 0 {
                let (.., ty) = found.clone()?;
                cur = self.aggregate(ty)?;
            }
            let (off, bf, size, ty) = self.find_member(&cur, name)?;
            base += off;
            found = Some((base, bf, size, ty));
        }
        found.map(|(o, b, s, _)| (o, b, s))
    }

    /// `struct sock *`, `int`, `void *`, as tcpq's index spells them.
    fn describe(&self, t: Type) -> String {
        let Some(t) = self.skip_mods(t) else {
            return "?".into();
        };
        match &t {
            Type::Void => "void".into(),
            Type::Ptr(p) => match self.chained(p) {
                Some(inner) => format!("{} *", self.describe(inner)),
                None => "void *".into(),
            },
            Type::Struct(s) => format!("struct {}", self.name(s)),
            Type::Fwd(f) => format!("struct {}", self.name(f)),
            Type::Union(u) => format!("union {}", self.name(u)),
            Type::Enum(e) => format!("enum {}", self.name(e)),
            Type::Enum64(e) => format!("enum {}", self.name(e)),
            other => other
                .as_btf_type()
                .map(|b| self.name(b))
                .unwrap_or_default(),
        }
    }

    fn raw_args(&self, tp: &str) -> Option<Vec<String>> {
        let td = self.by_name(&format!("btf_trace_{tp}"), |t| {
            matches!(t, Type::Typedef(_))
        })?;
        let Type::Ptr(p) = self.skip_mods(td)? else {
            return None;
        };
        let Type::FuncProto(fp) = self.skip_mods(self.chained(&p)?)? else {
            return None;
        };
        fp.parameters
            .iter()
            .skip(1)
            .map(|a| Some(self.describe(self.chained(a)?)))
            .collect()
    }

    fn params(&self, func: &str) -> Option<Vec<String>> {
        let Type::Func(f) = self.by_name(func, |t| matches!(t, Type::Func(_)))? else {
            return None;
        };
        let Type::FuncProto(fp) = self.skip_mods(self.chained(&f)?)? else {
            return None;
        };
        Some(fp.parameters.iter().map(|a| self.name(a)).collect())
    }

    fn enum_values(&self, name: &str) -> Option<Vec<(u64, String)>> {
        match self.by_name(name, |t| matches!(t, Type::Enum(_) | Type::Enum64(_)))? {
            Type::Enum(e) => Some(
                e.members
                    .iter()
                    .map(|m| (m.val() as u64, self.name(m)))
                    .collect(),
            ),
            Type::Enum64(e) => Some(e.members.iter().map(|m| (m.val(), self.name(m))).collect()),
            _ => None,
        }
    }
}

fn with_btf_rs(backend: Backend) -> Answers {
    let rs = Rs(btf_rs::Btf::from_file_with_backend(VMLINUX_BTF, backend).expect("vmlinux BTF"));
    let members = offsets::STRUCT_MEMBERS
        .iter()
        .map(|&(_, path)| (path, rs.resolve(path)))
        .collect();
    let raw_args = raw_names()
        .into_iter()
        .map(|n| (n, rs.raw_args(n)))
        .collect();
    let params = func_names()
        .into_iter()
        .map(|f| (f, rs.params(f)))
        .collect();
    let iovec_size = rs
        .by_name("iovec", |t| matches!(t, Type::Struct(_)))
        .and_then(|t| rs.size(t));
    let enums = ENUMS.iter().map(|&e| (e, rs.enum_values(e))).collect();
    let rdonly_cast = rs
        .by_name("bpf_rdonly_cast", |t| matches!(t, Type::Func(_)))
        .is_some();
    Answers {
        members,
        raw_args,
        params,
        iovec_size,
        enums,
        rdonly_cast,
    }
}

fn cache() -> Answers {
    with_btf_rs(Backend::Cache)
}
fn mmap() -> Answers {
    with_btf_rs(Backend::Mmap)
}

/// Rounds of `f`, each timed; (median, min, max).
fn time<T>(rounds: usize, f: impl Fn() -> T) -> (Duration, Duration, Duration) {
    let mut t: Vec<Duration> = (0..rounds)
        .map(|_| {
            let s = Instant::now();
            std::hint::black_box(f());
            s.elapsed()
        })
        .collect();
    t.sort();
    (t[rounds / 2], t[0], t[rounds - 1])
}

/// (name, the whole workload, timed rounds).
type Impl = (&'static str, fn() -> Answers, usize);
/// (name, opening the BTF only).
type Open = (&'static str, Box<dyn Fn()>);

fn main() {
    if !std::path::Path::new(VMLINUX_BTF).exists() {
        eprintln!("no {VMLINUX_BTF}: nothing to measure");
        return;
    }
    let impls: [Impl; 3] = [
        ("tcpq", with_tcpq, 50),
        ("btf-rs-cache", cache, 5),
        ("btf-rs-mmap", mmap, 5),
    ];
    // `cargo bench` passes `--bench`; any other argument picks one.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if let Some(name) = only.first() {
        let (_, f, _) = impls
            .iter()
            .find(|(n, ..)| n == name)
            .unwrap_or_else(|| panic!("unknown implementation {name}"));
        std::hint::black_box(f());
        return;
    }
    let reference = with_tcpq();
    assert!(
        reference.members.values().all(Option::is_some),
        "tcpq's index left members unresolved: {:?}",
        reference.members
    );
    for (name, f, _) in &impls[1..] {
        assert_eq!(f(), reference, "{name} answers differently");
    }
    println!(
        "same answers from all three: {} members, {} raw tracepoints, {} functions, {} enums",
        reference.members.len(),
        reference.raw_args.len(),
        reference.params.len(),
        reference.enums.len()
    );
    println!(
        "{:<14} {:>7} {:>12} {:>12} {:>12}",
        "", "rounds", "median", "min", "max"
    );
    let opens: [Open; 3] = [
        (
            "tcpq",
            Box::new(|| drop(std::hint::black_box(Btf::from_sys_fs()))),
        ),
        (
            "btf-rs-cache",
            Box::new(|| {
                drop(std::hint::black_box(btf_rs::Btf::from_file_with_backend(
                    VMLINUX_BTF,
                    Backend::Cache,
                )))
            }),
        ),
        (
            "btf-rs-mmap",
            Box::new(|| {
                drop(std::hint::black_box(btf_rs::Btf::from_file_with_backend(
                    VMLINUX_BTF,
                    Backend::Mmap,
                )))
            }),
        ),
    ];
    for ((name, f, rounds), (_, open)) in impls.into_iter().zip(opens) {
        let (med, min, max) = time(rounds, f);
        println!("{name:<14} {rounds:>7} {med:>12.2?} {min:>12.2?} {max:>12.2?}");
        let (med, min, max) = time(rounds, open);
        println!("  open only    {rounds:>7} {med:>12.2?} {min:>12.2?} {max:>12.2?}");
    }
}
