// Over 800 lines: one format's reader; every query walks its private type index (tests: 120).
//! Struct member locations from the kernel's BTF.
//!
//! aya-obj 0.3 parses BTF but keeps its type walk (`type_by_id`,
//! `string_at`, member lists) crate-private, so it cannot answer "where is
//! `tcp_sock.rx_opt.wscale_ok`". This module reads the format itself: one
//! pass over the type section records where each type starts (ids are
//! positions), and only the handful of structs tcpq asks about are ever
//! decoded. That pass is the whole cost of start-up on the BTF side; it is
//! measured by [`Btf::parse_time`].
//!
//! Layout reference: the kernel's `Documentation/bpf/btf.rst`.
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use tcpq_abi::FieldLoc;

/// Where the running kernel publishes its own BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

const BTF_MAGIC: u16 = 0xeb9f;
const MAX_DEPTH: usize = 32;

// BTF kinds (`BTF_KIND_*`).
const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FWD: u32 = 7;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_FLOAT: u32 = 16;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// Errors reading BTF or finding a member in it.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    /// The BTF file could not be read (no BTF: the kernel lacks
    /// `CONFIG_DEBUG_INFO_BTF`).
    #[error("cannot read BTF from {path}: {source} (tcpq needs a kernel built with CONFIG_DEBUG_INFO_BTF)")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The data is not BTF, or is cut short.
    #[error("{path}: malformed BTF: {what}")]
    Malformed { path: PathBuf, what: String },
    /// No struct or union of that name.
    #[error("struct {0} is not in this kernel's BTF")]
    NoSuchStruct(String),
    /// The struct exists but has no such member (also not inside anonymous
    /// or embedded first members).
    #[error("{strukt} has no member {member} in this kernel's BTF")]
    NoSuchMember { strukt: String, member: String },
    /// A path step goes through something that is not a struct or union.
    #[error("{path}: {step} is not a struct or union")]
    NotAggregate { path: String, step: String },
    /// Type chain too deep or pointing outside the type section.
    #[error("BTF type {0} is invalid or too deeply nested")]
    BadType(u32),
}

/// The bytes of a BTF blob: the kernel's own pages mapped read-only, or a
/// copy on the heap.
enum Data {
    Owned(Vec<u8>),
    /// `mmap` of `/sys/kernel/btf/vmlinux` (Linux 6.16 and later map the
    /// kernel's BTF section itself: no copy, and the pages are not counted
    /// in this process's RSS).
    Mapped {
        ptr: *mut libc::c_void,
        len: usize,
    },
}

// SAFETY: a read-only private mapping nothing writes to; the pointer is
// owned by `Data` and unmapped only on drop.
unsafe impl Send for Data {}
unsafe impl Sync for Data {}

impl std::ops::Deref for Data {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Data::Owned(v) => v,
            // SAFETY: `ptr` maps `len` readable bytes until drop.
            Data::Mapped { ptr, len } => unsafe {
                std::slice::from_raw_parts(*ptr as *const u8, *len)
            },
        }
    }
}

impl Drop for Data {
    fn drop(&mut self) {
        if let Data::Mapped { ptr, len } = *self {
            // SAFETY: a mapping of `len` bytes made by `map_sysfs`.
            unsafe { libc::munmap(ptr, len) };
        }
    }
}

impl Data {
    /// Map a sysfs BTF file read-only. `None` where the kernel does not
    /// support it (before 6.16, or a module's BTF): the caller reads it.
    fn map_sysfs(path: &Path) -> Option<Data> {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(path).ok()?;
        let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
        if len == 0 {
            return None;
        }
        // SAFETY: a fresh read-only private mapping of an open file; the
        // kernel refuses (MAP_FAILED) rather than mapping less than `len`.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        (ptr != libc::MAP_FAILED).then_some(Data::Mapped { ptr, len })
    }
}

/// A parsed (indexed, not decoded) BTF blob.
pub struct Btf {
    path: PathBuf,
    data: Data,
    /// Byte offset of each type record in `data`, indexed by type id
    /// (index 0 is `void` and holds 0).
    starts: Vec<u32>,
    strings: (usize, usize),
    parse_time: Duration,
}

/// A struct member found by [`Btf::member`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// Bit offset from the start of the outermost struct.
    pub bit_offset: u64,
    /// Bitfield width; 0 for a plain member.
    pub bitfield_size: u32,
    /// Member type id (as declared: may be a typedef or modifier).
    pub type_id: u32,
    /// Size in bytes of the member's type (modifiers and typedefs
    /// resolved); for a bitfield, the size of its underlying integer.
    pub size: u64,
}

impl Member {
    /// The ABI form the templates read.
    pub fn to_field_loc(&self) -> FieldLoc {
        if self.bitfield_size == 0 {
            return FieldLoc {
                off: (self.bit_offset / 8) as u32,
                size: self.size.min(u8::MAX as u64) as u8,
                bit_off: 0,
                bit_size: 0,
                _pad: 0,
            };
        }
        let bit_off = (self.bit_offset % 8) as u32;
        let end = bit_off + self.bitfield_size;
        // The smallest little-endian word at the byte holding the first bit
        // that covers the whole field.
        let size = match end {
            0..=8 => 1,
            9..=16 => 2,
            17..=32 => 4,
            _ => 8,
        };
        FieldLoc {
            off: (self.bit_offset / 8) as u32,
            size,
            bit_off: bit_off as u8,
            bit_size: self.bitfield_size as u8,
            _pad: 0,
        }
    }
}

fn u16_at(d: &[u8], off: usize) -> Option<u16> {
    d.get(off..off + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
}
fn u32_at(d: &[u8], off: usize) -> Option<u32> {
    d.get(off..off + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The common header of a type record.
#[derive(Clone, Copy)]
struct TypeHead {
    name_off: u32,
    kind: u32,
    vlen: u32,
    kind_flag: bool,
    /// `size` for INT/STRUCT/UNION/ENUM/DATASEC/FLOAT, `type` otherwise.
    size_or_type: u32,
    /// Offset of the trailing data.
    tail: usize,
}

impl Btf {
    /// Map (or, on kernels before 6.16, read) and index the running
    /// kernel's BTF.
    pub fn from_sys_fs() -> Result<Btf, BtfError> {
        let start = Instant::now();
        let path = Path::new(VMLINUX_BTF);
        let Some(data) = Data::map_sysfs(path) else {
            return Btf::parse_file(path);
        };
        let mut btf = Btf::index(path, data)?;
        btf.parse_time = start.elapsed();
        Ok(btf)
    }

    /// A BTF with no types: what the offsets resolve against on a kernel
    /// without BTF, so that every struct member is reported missing and
    /// strategies that need none (tracepoint formats alone) still run.
    pub fn empty(path: &Path) -> Btf {
        let mut data = vec![0u8; 24];
        data[0..2].copy_from_slice(&BTF_MAGIC.to_le_bytes());
        data[2] = 1; // version
        data[4..8].copy_from_slice(&24u32.to_le_bytes()); // hdr_len
        Btf::parse(path, data).expect("an empty BTF is well formed")
    }

    /// Read and index a raw BTF file.
    pub fn parse_file(path: impl AsRef<Path>) -> Result<Btf, BtfError> {
        let path = path.as_ref();
        let start = Instant::now();
        let data = std::fs::read(path).map_err(|source| BtfError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut btf = Btf::parse(path, data)?;
        btf.parse_time = start.elapsed();
        Ok(btf)
    }

    /// Index raw BTF bytes (little-endian only: tcpq runs where it is built).
    pub fn parse(path: &Path, data: Vec<u8>) -> Result<Btf, BtfError> {
        Btf::index(path, Data::Owned(data))
    }

    fn index(path: &Path, data: Data) -> Result<Btf, BtfError> {
        let start = Instant::now();
        let bad = |what: &str| BtfError::Malformed {
            path: path.to_owned(),
            what: what.to_owned(),
        };
        if u16_at(&data, 0) != Some(BTF_MAGIC) {
            return Err(bad("bad magic (or big-endian BTF)"));
        }
        let hdr_len = u32_at(&data, 4).ok_or_else(|| bad("short header"))? as usize;
        let type_off = u32_at(&data, 8).ok_or_else(|| bad("short header"))? as usize;
        let type_len = u32_at(&data, 12).ok_or_else(|| bad("short header"))? as usize;
        let str_off = u32_at(&data, 16).ok_or_else(|| bad("short header"))? as usize;
        let str_len = u32_at(&data, 20).ok_or_else(|| bad("short header"))? as usize;
        let types_start = hdr_len + type_off;
        let types_end = types_start + type_len;
        let strings = (hdr_len + str_off, hdr_len + str_off + str_len);
        if types_end > data.len() || strings.1 > data.len() {
            return Err(bad("sections run past the end of the file"));
        }
        // vmlinux has ~150k types; reserve roughly to avoid regrowth.
        let mut starts = Vec::with_capacity(type_len / 20);
        starts.push(0u32);
        let mut pos = types_start;
        while pos < types_end {
            let info = u32_at(&data, pos + 4).ok_or_else(|| bad("truncated type"))?;
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            let tail = match kind {
                KIND_INT => 4,
                KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
                | KIND_FUNC | KIND_FLOAT | KIND_TYPE_TAG => 0,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION => 12 * vlen,
                KIND_ENUM => 8 * vlen,
                KIND_FUNC_PROTO => 8 * vlen,
                KIND_VAR => 4,
                KIND_DATASEC => 12 * vlen,
                KIND_DECL_TAG => 4,
                KIND_ENUM64 => 12 * vlen,
                other => return Err(bad(&format!("unknown type kind {other}"))),
            };
            starts.push(pos as u32);
            pos += 12 + tail;
        }
        if pos != types_end {
            return Err(bad("type section does not end on a record"));
        }
        Ok(Btf {
            path: path.to_owned(),
            data,
            starts,
            strings,
            parse_time: start.elapsed(),
        })
    }

    /// Where the BTF was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Time spent reading and indexing (the whole start-up cost of BTF).
    pub fn parse_time(&self) -> Duration {
        self.parse_time
    }

    /// Number of types, `void` included.
    pub fn type_count(&self) -> usize {
        self.starts.len()
    }

    /// The raw bytes: what a future offset cache would key on.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    fn head(&self, id: u32) -> Result<TypeHead, BtfError> {
        if id == 0 {
            return Err(BtfError::BadType(id));
        }
        let pos = *self.starts.get(id as usize).ok_or(BtfError::BadType(id))? as usize;
        let d = &self.data;
        let name_off = u32_at(d, pos).ok_or(BtfError::BadType(id))?;
        let info = u32_at(d, pos + 4).ok_or(BtfError::BadType(id))?;
        let size_or_type = u32_at(d, pos + 8).ok_or(BtfError::BadType(id))?;
        Ok(TypeHead {
            name_off,
            kind: (info >> 24) & 0x1f,
            vlen: info & 0xffff,
            kind_flag: info >> 31 == 1,
            size_or_type,
            tail: pos + 12,
        })
    }

    fn name(&self, name_off: u32) -> &[u8] {
        let (start, end) = self.strings;
        let s = start + name_off as usize;
        if s >= end {
            return b"";
        }
        let rest = &self.data[s..end];
        let n = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        &rest[..n]
    }

    /// Whether the string at `name_off` is `want`: compares `want.len() + 1`
    /// bytes at most, where [`name`](Self::name) first scans for the end
    /// (the type walks call this for every candidate type).
    fn name_is(&self, name_off: u32, want: &[u8]) -> bool {
        let (start, end) = self.strings;
        let s = start + name_off as usize;
        let e = s + want.len();
        e < end && self.data[e] == 0 && &self.data[s..e] == want
    }

    /// `(id, name_off, head)` of every type whose kind is in `kinds` (a
    /// mask of `1 << KIND_*`), in id order. The lookups by name are passes
    /// over all types (~127k here), so the loop reads only each record's
    /// info word until the kind matches.
    fn of_kinds(&self, kinds: u32) -> impl Iterator<Item = (u32, TypeHead)> + '_ {
        let d: &[u8] = &self.data;
        (1..self.starts.len() as u32).filter_map(move |id| {
            let pos = self.starts[id as usize] as usize;
            let info = u32_at(d, pos + 4)?;
            if kinds & (1 << ((info >> 24) & 0x1f)) == 0 {
                return None;
            }
            self.head(id).ok().map(|h| (id, h))
        })
    }

    /// Ids of the named structs and unions among `names` (first match of
    /// each; forward declarations skipped), in one pass.
    pub fn find_structs<'n>(&self, names: &[&'n str]) -> HashMap<&'n str, u32> {
        let mut found = HashMap::new();
        for (id, h) in self.of_kinds(1 << KIND_STRUCT | 1 << KIND_UNION) {
            if let Some(n) = names
                .iter()
                .find(|n| self.name_is(h.name_off, n.as_bytes()))
            {
                found.entry(*n).or_insert(id);
            }
            if found.len() == names.len() {
                break;
            }
        }
        found
    }

    /// Ids of the named functions (`BTF_KIND_FUNC`) among `names`, in one
    /// pass. A function inlined everywhere has none.
    pub fn find_funcs<'n>(&self, names: &[&'n str]) -> HashMap<&'n str, u32> {
        let mut found = HashMap::new();
        if names.is_empty() {
            return found;
        }
        for (id, h) in self.of_kinds(1 << KIND_FUNC) {
            if let Some(n) = names
                .iter()
                .find(|n| self.name_is(h.name_off, n.as_bytes()))
            {
                found.entry(*n).or_insert(id);
            }
            if found.len() == names.len() {
                break;
            }
        }
        found
    }

    /// Id of the struct or union `name`.
    pub fn struct_id(&self, name: &str) -> Result<u32, BtfError> {
        self.find_structs(&[name])
            .get(name)
            .copied()
            .ok_or_else(|| BtfError::NoSuchStruct(name.to_owned()))
    }

    /// Follow typedefs and modifiers to the underlying type.
    fn skip_mods(&self, mut id: u32) -> Result<u32, BtfError> {
        for _ in 0..MAX_DEPTH {
            let h = self.head(id)?;
            match h.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = h.size_or_type
                }
                _ => return Ok(id),
            }
        }
        Err(BtfError::BadType(id))
    }

    /// Size in bytes of a type, through typedefs, modifiers and arrays.
    pub fn type_size(&self, id: u32) -> Result<u64, BtfError> {
        let id = self.skip_mods(id)?;
        let h = self.head(id)?;
        match h.kind {
            KIND_INT | KIND_STRUCT | KIND_UNION | KIND_ENUM | KIND_ENUM64 | KIND_FLOAT
            | KIND_DATASEC => Ok(h.size_or_type as u64),
            KIND_PTR => Ok(8),
            KIND_ARRAY => {
                let elem = u32_at(&self.data, h.tail).ok_or(BtfError::BadType(id))?;
                let n = u32_at(&self.data, h.tail + 8).ok_or(BtfError::BadType(id))?;
                Ok(self.type_size(elem)? * n as u64)
            }
            _ => Err(BtfError::BadType(id)),
        }
    }

    fn is_aggregate(&self, id: u32) -> Option<u32> {
        let id = self.skip_mods(id).ok()?;
        let h = self.head(id).ok()?;
        (h.kind == KIND_STRUCT || h.kind == KIND_UNION).then_some(id)
    }

    /// Member `i` of an aggregate: (name_off, type, bit offset, bitfield size).
    fn raw_member(&self, h: &TypeHead, i: u32) -> Option<(u32, u32, u64, u32)> {
        let p = h.tail + 12 * i as usize;
        let name_off = u32_at(&self.data, p)?;
        let ty = u32_at(&self.data, p + 4)?;
        let off = u32_at(&self.data, p + 8)?;
        Some(if h.kind_flag {
            (name_off, ty, (off & 0x00ff_ffff) as u64, off >> 24)
        } else {
            (name_off, ty, off as u64, 0)
        })
    }

    /// Find `name` directly in aggregate `id` or inside its anonymous
    /// struct/union members. Offsets are relative to `id`.
    fn find_direct(&self, id: u32, name: &str, depth: usize) -> Result<Option<Member>, BtfError> {
        if depth > MAX_DEPTH {
            return Err(BtfError::BadType(id));
        }
        let h = self.head(id)?;
        for i in 0..h.vlen {
            let (name_off, ty, bit_offset, bitfield_size) =
                self.raw_member(&h, i).ok_or(BtfError::BadType(id))?;
            let mname = self.name(name_off);
            if mname == name.as_bytes() {
                return Ok(Some(self.member(ty, bit_offset, bitfield_size)?));
            }
            if mname.is_empty() {
                if let Some(inner) = self.is_aggregate(ty) {
                    if let Some(mut m) = self.find_direct(inner, name, depth + 1)? {
                        m.bit_offset += bit_offset;
                        return Ok(Some(m));
                    }
                }
            }
        }
        Ok(None)
    }

    fn member(&self, ty: u32, bit_offset: u64, mut bitfield_size: u32) -> Result<Member, BtfError> {
        let size = self.type_size(ty)?;
        let mut bit_offset = bit_offset;
        // Old-style bitfields (no kind_flag) keep the width in the INT.
        if bitfield_size == 0 {
            let base = self.skip_mods(ty)?;
            let h = self.head(base)?;
            if h.kind == KIND_INT {
                let enc = u32_at(&self.data, h.tail).ok_or(BtfError::BadType(base))?;
                let bits = enc & 0xff;
                let int_off = (enc >> 16) & 0xff;
                if bits as u64 != size * 8 || int_off != 0 {
                    bitfield_size = bits;
                    bit_offset += int_off as u64;
                }
            }
        }
        Ok(Member {
            bit_offset,
            bitfield_size,
            type_id: ty,
            size,
        })
    }

    /// Find `name` in aggregate `id`: directly, through anonymous members,
    /// then through the first member when it is an embedded struct (the
    /// kernel's `struct tcp_sock { struct inet_connection_sock inet_conn; ...}`
    /// inheritance), recursively.
    fn find_member(&self, id: u32, name: &str) -> Result<Option<Member>, BtfError> {
        let mut cur = id;
        let mut base_bits = 0u64;
        for _ in 0..MAX_DEPTH {
            if let Some(mut m) = self.find_direct(cur, name, 0)? {
                m.bit_offset += base_bits;
                return Ok(Some(m));
            }
            let h = self.head(cur)?;
            if h.vlen == 0 {
                return Ok(None);
            }
            let (_, ty, off, bf) = self.raw_member(&h, 0).ok_or(BtfError::BadType(cur))?;
            match self.is_aggregate(ty) {
                Some(inner) if bf == 0 => {
                    cur = inner;
                    base_bits += off;
                }
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    /// The values of `enum name` (plain or 64-bit), or `None` when the
    /// kernel has no such enum.
    pub fn enum_values(&self, name: &str) -> Option<Vec<(u64, String)>> {
        for (_, h) in self.of_kinds(1 << KIND_ENUM | 1 << KIND_ENUM64) {
            if !self.name_is(h.name_off, name.as_bytes()) {
                continue;
            }
            let mut out = Vec::with_capacity(h.vlen as usize);
            for i in 0..h.vlen as usize {
                let (p, value) = if h.kind == KIND_ENUM {
                    let p = h.tail + 8 * i;
                    (p, u32_at(&self.data, p + 4)? as u64)
                } else {
                    let p = h.tail + 12 * i;
                    let lo = u32_at(&self.data, p + 4)? as u64;
                    let hi = u32_at(&self.data, p + 8)? as u64;
                    (p, lo | hi << 32)
                };
                let n = u32_at(&self.data, p)?;
                out.push((value, String::from_utf8_lossy(self.name(n)).into_owned()));
            }
            return Some(out);
        }
        None
    }

    /// The parameter names of kernel function `name`, in order, from its
    /// BTF `FUNC` (`None` when the function is not in BTF, e.g. inlined).
    pub fn function_params(&self, name: &str) -> Result<Option<Vec<String>>, BtfError> {
        match self.find_funcs(&[name]).get(name) {
            Some(&id) => self.func_params(id).map(Some),
            None => Ok(None),
        }
    }

    /// The parameter names of the `FUNC` type `id` (from
    /// [`find_funcs`](Self::find_funcs)), in order.
    pub fn func_params(&self, id: u32) -> Result<Vec<String>, BtfError> {
        let h = self.head(id)?;
        if h.kind != KIND_FUNC {
            return Err(BtfError::BadType(id));
        }
        let proto = self.skip_mods(h.size_or_type)?;
        let ph = self.head(proto)?;
        if ph.kind != KIND_FUNC_PROTO {
            return Err(BtfError::BadType(proto));
        }
        let mut names = Vec::with_capacity(ph.vlen as usize);
        for i in 0..ph.vlen as usize {
            let n = u32_at(&self.data, ph.tail + 8 * i).ok_or(BtfError::BadType(proto))?;
            names.push(String::from_utf8_lossy(self.name(n)).into_owned());
        }
        Ok(names)
    }

    /// The `TP_PROTO` arguments of a raw tracepoint, described as C types
    /// (`"struct sock *"`, `"int"`, ...), from the kernel's
    /// `btf_trace_<name>` typedef (a pointer to a function whose first
    /// parameter is the tracepoint's private `void *`, which is dropped).
    /// `Ok(None)` when the kernel has no such tracepoint.
    pub fn raw_tracepoint_args(&self, name: &str) -> Result<Option<Vec<String>>, BtfError> {
        self.raw_tracepoint_args_many(&[name])
            .remove(name)
            .unwrap_or(Ok(None))
    }

    /// [`raw_tracepoint_args`](Self::raw_tracepoint_args) for several
    /// tracepoints in one pass over the types (each pass is most of the
    /// cost: ~150k types here).
    pub fn raw_tracepoint_args_many<'n>(
        &self,
        names: &[&'n str],
    ) -> HashMap<&'n str, Result<Option<Vec<String>>, BtfError>> {
        let wanted: HashMap<Vec<u8>, &'n str> = names
            .iter()
            .map(|n| (format!("btf_trace_{n}").into_bytes(), *n))
            .collect();
        let mut found: HashMap<&'n str, u32> = HashMap::new();
        for (_, h) in self.of_kinds(1 << KIND_TYPEDEF) {
            if found.len() == wanted.len() {
                break;
            }
            if let Some(n) = wanted.get(self.name(h.name_off)) {
                found.entry(*n).or_insert(h.size_or_type);
            }
        }
        names
            .iter()
            .map(|n| {
                let r = match found.get(n) {
                    Some(&ptr) => self.proto_args(ptr).map(Some),
                    None => Ok(None),
                };
                (*n, r)
            })
            .collect()
    }

    /// The argument types of the function pointer type `ptr`, without the
    /// first (the tracepoint's private data).
    fn proto_args(&self, ptr: u32) -> Result<Vec<String>, BtfError> {
        let ptr = self.skip_mods(ptr)?;
        let ph = self.head(ptr)?;
        if ph.kind != KIND_PTR {
            return Err(BtfError::BadType(ptr));
        }
        let proto = self.skip_mods(ph.size_or_type)?;
        let h = self.head(proto)?;
        if h.kind != KIND_FUNC_PROTO {
            return Err(BtfError::BadType(proto));
        }
        let mut args = Vec::with_capacity(h.vlen as usize);
        for i in 1..h.vlen {
            let ty =
                u32_at(&self.data, h.tail + 8 * i as usize + 4).ok_or(BtfError::BadType(proto))?;
            args.push(self.describe(ty));
        }
        Ok(args)
    }

    /// A short C spelling of a type, modifiers dropped: `struct sock *`,
    /// `int`, `void *`.
    fn describe(&self, mut id: u32) -> String {
        // Like skip_mods, but `const void` ends at id 0 (void) here.
        let h = loop {
            if id == 0 {
                return "void".into();
            }
            let Ok(h) = self.head(id) else {
                return "?".into();
            };
            match h.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = h.size_or_type
                }
                _ => break h,
            }
        };
        let name = String::from_utf8_lossy(self.name(h.name_off)).into_owned();
        match h.kind {
            KIND_PTR => format!("{} *", self.describe(h.size_or_type)),
            KIND_STRUCT | KIND_FWD => format!("struct {name}"),
            KIND_UNION => format!("union {name}"),
            KIND_ENUM | KIND_ENUM64 => format!("enum {name}"),
            _ => name,
        }
    }

    /// Resolve a dotted member path, e.g. `tcp_sock.rx_opt.wscale_ok`: the
    /// first component names a struct, the rest are members, each looked up
    /// as [`find_member`](Self) does.
    pub fn resolve(&self, path: &str) -> Result<Member, BtfError> {
        let mut parts = path.split('.');
        let strukt = parts.next().unwrap_or_default();
        let id = self.struct_id(strukt)?;
        self.resolve_in(id, strukt, parts)
    }

    /// Like [`resolve`](Self::resolve) with the struct's id already known.
    pub fn resolve_in<'p>(
        &self,
        id: u32,
        strukt: &str,
        members: impl IntoIterator<Item = &'p str>,
    ) -> Result<Member, BtfError> {
        let mut cur = id;
        let mut base = 0u64;
        let mut found: Option<Member> = None;
        let mut walked = strukt.to_owned();
        for name in members {
            if let Some(prev) = found {
                cur = self
                    .is_aggregate(prev.type_id)
                    .ok_or_else(|| BtfError::NotAggregate {
                        path: format!("{walked}.{name}"),
                        step: walked.clone(),
                    })?;
            }
            let mut m = self
                .find_member(cur, name)?
                .ok_or_else(|| BtfError::NoSuchMember {
                    strukt: walked.clone(),
                    member: name.to_owned(),
                })?;
            m.bit_offset += base;
            base = m.bit_offset;
            walked.push('.');
            walked.push_str(name);
            found = Some(m);
        }
        found.ok_or_else(|| BtfError::NoSuchMember {
            strukt: strukt.to_owned(),
            member: String::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel() -> Option<Btf> {
        if !Path::new(VMLINUX_BTF).exists() {
            eprintln!("no {VMLINUX_BTF}; skipping");
            return None;
        }
        Some(Btf::from_sys_fs().expect("parse vmlinux BTF"))
    }

    #[test]
    fn rx_opt_bitfields_match_bpftool() {
        let Some(btf) = kernel() else { return };
        // bpftool: tcp_options_received wscale_ok bits_offset=131 size 1,
        // snd_wscale 136/4, rcv_wscale 140/4.
        let rx = btf.resolve("tcp_sock.rx_opt").unwrap();
        assert_eq!(rx.bit_offset % 8, 0);
        let ok = btf.resolve("tcp_sock.rx_opt.wscale_ok").unwrap();
        assert_eq!(ok.bit_offset - rx.bit_offset, 131);
        assert_eq!(ok.bitfield_size, 1);
        let snd = btf.resolve("tcp_sock.rx_opt.snd_wscale").unwrap();
        assert_eq!(
            (snd.bit_offset - rx.bit_offset, snd.bitfield_size),
            (136, 4)
        );
        let rcv = btf.resolve("tcp_sock.rx_opt.rcv_wscale").unwrap();
        assert_eq!(
            (rcv.bit_offset - rx.bit_offset, rcv.bitfield_size),
            (140, 4)
        );

        let loc = ok.to_field_loc();
        assert_eq!(loc.off as u64, rx.bit_offset / 8 + 16);
        assert_eq!((loc.bit_off, loc.bit_size, loc.size), (3, 1, 1));
        let loc = rcv.to_field_loc();
        assert_eq!(loc.off as u64, rx.bit_offset / 8 + 17);
        assert_eq!((loc.bit_off, loc.bit_size, loc.size), (4, 4, 1));
    }

    #[test]
    fn embedded_and_anonymous_members() {
        let Some(btf) = kernel() else { return };
        // sock_common sits at offset 0 of sock, and so of tcp_sock.
        let a = btf.resolve("sock.__sk_common.skc_state").unwrap();
        let b = btf.resolve("sock_common.skc_state").unwrap();
        let c = btf.resolve("tcp_sock.skc_state").unwrap();
        assert_eq!(a.bit_offset, b.bit_offset);
        assert_eq!(a.bit_offset, c.bit_offset);
        assert_eq!(b.size, 1);
        // skc_daddr lives in an anonymous struct inside a union.
        let d = btf.resolve("sock_common.skc_daddr").unwrap();
        assert_eq!((d.bit_offset, d.size), (0, 4));
        let s = btf.resolve("sock_common.skc_rcv_saddr").unwrap();
        assert_eq!((s.bit_offset, s.size), (32, 4));
        let v6 = btf.resolve("sock_common.skc_v6_daddr").unwrap();
        assert_eq!(v6.size, 16);
        let cookie = btf.resolve("sock_common.skc_cookie").unwrap();
        assert_eq!(cookie.size, 8);
        // The gso segment count is in an anonymous union of tcp_skb_cb.
        let g = btf.resolve("tcp_skb_cb.tcp_gso_segs").unwrap();
        assert_eq!((g.bit_offset / 8, g.size), (8, 2));
        let inum = btf.resolve("net.ns.inum").unwrap();
        assert_eq!(inum.size, 4);
        let net = btf.resolve("sock_common.skc_net.net").unwrap();
        assert_eq!(net.size, 8);
    }

    #[test]
    fn missing_things_are_errors_not_panics() {
        let Some(btf) = kernel() else { return };
        assert!(matches!(
            btf.resolve("no_such_struct_tcpq.x"),
            Err(BtfError::NoSuchStruct(_))
        ));
        assert!(matches!(
            btf.resolve("tcp_sock.no_such_member"),
            Err(BtfError::NoSuchMember { .. })
        ));
        assert!(matches!(
            btf.resolve("tcp_sock.rcv_wnd.x"),
            Err(BtfError::NotAggregate { .. })
        ));
    }

    /// Where the kernel lets us map its BTF, the mapping is the file.
    #[test]
    fn mapped_btf_is_the_file() {
        let Some(mapped) = kernel() else { return };
        let read = Btf::parse_file(VMLINUX_BTF).unwrap();
        assert_eq!(mapped.type_count(), read.type_count());
        assert!(mapped.bytes() == read.bytes());
        assert_eq!(
            mapped.resolve("tcp_sock.rcv_wnd").unwrap(),
            read.resolve("tcp_sock.rcv_wnd").unwrap()
        );
    }

    #[test]
    fn garbage_is_rejected() {
        let e = Btf::parse(Path::new("x"), vec![1, 2, 3]).err().unwrap();
        assert!(matches!(e, BtfError::Malformed { .. }));
        let mut hdr = vec![0u8; 24];
        hdr[0..2].copy_from_slice(&BTF_MAGIC.to_le_bytes());
        hdr[4..8].copy_from_slice(&24u32.to_le_bytes());
        hdr[12..16].copy_from_slice(&100u32.to_le_bytes());
        assert!(Btf::parse(Path::new("x"), hdr).is_err());
    }

    #[test]
    fn bitfield_word_sizes() {
        let m = Member {
            bit_offset: 8 * 10 + 6,
            bitfield_size: 4,
            type_id: 1,
            size: 4,
        };
        let l = m.to_field_loc();
        assert_eq!((l.off, l.bit_off, l.bit_size, l.size), (10, 6, 4, 2));
    }
}
