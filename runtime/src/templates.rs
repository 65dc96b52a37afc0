//! The prebuilt template objects, embedded in the binary, and the
//! owner-tracking programs every one of them carries.
//!
//! They are built from `probe-templates/ebpf` by `probe-templates/build.sh`
//! with a pinned nightly and committed with checksums, so a stable
//! `cargo build` needs no eBPF toolchain. `include_bytes_aligned!` (not
//! `include_bytes!`) because the ELF parser needs aligned data.
use aya::include_bytes_aligned;
use tcpq_dsl::plan::Attach;

/// Embed `probe-templates/prebuilt/<name>.bpfel.o`.
macro_rules! template {
    ($name:literal) => {
        (
            $name,
            include_bytes_aligned!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../probe-templates/prebuilt/",
                $name,
                ".bpfel.o"
            )) as &[u8],
        )
    };
}

/// Every embedded template, by name (`ClausePlan::template`).
static TEMPLATES: &[(&str, &[u8])] = &[
    template!("tcp_select_window"),
    template!("tcp_probe"),
    template!("tcp_retransmit"),
    template!("tcp_state"),
    template!("tcp_reset"),
    template!("tcp_drop"),
    template!("tcp_sock_event"),
    template!("tcp_io"),
];

/// Names of the embedded templates.
pub fn names() -> impl Iterator<Item = &'static str> {
    TEMPLATES.iter().map(|(n, _)| *n)
}

/// The object bytes of a template.
///
/// Debug builds (the ones `cargo test` runs) also honour
/// `TCPQ_TEST_TEMPLATE=NAME=PATH`: the object at PATH stands for template
/// NAME, so that a test can hand tcpq a template the verifier rejects and
/// check what the user sees. Release builds ignore the variable.
pub fn get(name: &str) -> Option<&'static [u8]> {
    #[cfg(debug_assertions)]
    if let Some(bytes) = test_override(name) {
        return Some(bytes);
    }
    TEMPLATES.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// `TCPQ_TEST_TEMPLATE`'s object for `name`, read into 8-byte aligned
/// memory (the ELF parser needs it) that lives as long as the process.
#[cfg(debug_assertions)]
fn test_override(name: &str) -> Option<&'static [u8]> {
    let var = std::env::var("TCPQ_TEST_TEMPLATE").ok()?;
    let (template, path) = var.split_once('=')?;
    if template != name {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    let words: &'static mut [u64] =
        Box::leak(vec![0u64; bytes.len().div_ceil(8)].into_boxed_slice());
    // SAFETY: `words` spans at least `bytes.len()` bytes, and u8 has no
    // alignment or validity requirements.
    let out =
        unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), bytes.len()) };
    out.copy_from_slice(&bytes);
    Some(out)
}

/// Programs in every template object that record who owns each socket,
/// and where they attach. They are attached before the template's main
/// program, so the owner map is filling when the first event fires
/// ([`OWNER_IO`] may wait for that event: the plan's `owner_io`). All are
/// raw tracepoints: see `probe-templates/ebpf/src/common.rs` for why (a
/// classic program running in process context makes the kernel skip every
/// other classic program that fires on its CPU meanwhile).
pub fn owner_programs() -> Vec<(&'static str, Vec<Attach>)> {
    let points = |p: &tcpq_abi::programs::Program| p.attach.iter().map(|&a| a.into()).collect();
    tcpq_abi::programs::OWNER_PROGRAMS
        .iter()
        .map(|p| (p.name, points(p)))
        .collect()
}

/// The owner program that runs on every send and receive on the machine.
pub const OWNER_IO: &str = tcpq_abi::programs::OWN_IO;

/// A template object ready for the loader: a copy, in 8-byte aligned
/// memory, with its fast-read placeholder calls rewritten
/// (`tcpq_abi::fast_read`).
pub struct Prepared {
    words: Vec<u64>,
    len: usize,
    /// How many placeholder calls were rewritten.
    pub rewritten: usize,
}

impl Prepared {
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `words` spans at least `len` bytes, and u8 has no
        // alignment or validity requirements.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.len) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast::<u8>(), self.len) }
    }
}

/// `BPF_JMP | BPF_CALL`.
const CALL: u8 = 0x85;
/// `BPF_ALU64 | BPF_MOV | BPF_K`.
const MOV64_IMM: u8 = 0xb7;
/// `src_reg` of a kfunc call (`BPF_PSEUDO_KFUNC_CALL`), in the register
/// byte's high nibble.
const PSEUDO_KFUNC_CALL: u8 = 2 << 4;

/// Copy `object` and rewrite each placeholder call of its code sections:
/// into a call of the kfunc `bpf_rdonly_cast`, whose BTF id in the running
/// kernel is `kfunc`, or with `None` into `r0 = 0` (the template then
/// reads through `bpf_probe_read_kernel`, and the verifier never reaches
/// the instruction). An object that is not a 64-bit little-endian ELF is
/// copied as it is, for the loader to reject.
pub fn prepare(object: &[u8], kfunc: Option<u32>) -> Prepared {
    let mut p = Prepared {
        words: vec![0u64; object.len().div_ceil(8)],
        len: object.len(),
        rewritten: 0,
    };
    p.bytes_mut().copy_from_slice(object);
    let placeholder = tcpq_abi::fast_read::CAST_CALL.to_le_bytes();
    let replacement: [u8; 8] = match kfunc {
        Some(id) => {
            let imm = id.to_le_bytes();
            [
                CALL,
                PSEUDO_KFUNC_CALL,
                0,
                0,
                imm[0],
                imm[1],
                imm[2],
                imm[3],
            ]
        }
        None => [MOV64_IMM, 0, 0, 0, 0, 0, 0, 0],
    };
    let mut rewritten = 0;
    let bytes = p.bytes_mut();
    for (start, end) in code_sections(bytes) {
        for insn in bytes[start..end].chunks_exact_mut(8) {
            // A 16-byte `ld_imm64`'s second half has code 0: never a call.
            if insn[0] == CALL && insn[1] == 0 && insn[4..8] == placeholder {
                insn.copy_from_slice(&replacement);
                rewritten += 1;
            }
        }
    }
    p.rewritten = rewritten;
    p
}

/// The byte ranges of an ELF64 little-endian object's executable sections
/// (`SHF_EXECINSTR`), read with the `object` crate; none for anything
/// else, or a section whose bytes are not all in the file or not 8-byte
/// aligned (an instruction is 8 bytes).
fn code_sections(elf: &[u8]) -> Vec<(usize, usize)> {
    use object::{read::elf::ElfFile64, LittleEndian, Object, ObjectSection, SectionFlags};
    let Ok(file) = ElfFile64::<LittleEndian>::parse(elf) else {
        return Vec::new();
    };
    file.sections()
        .filter(|s| {
            matches!(s.flags(), SectionFlags::Elf { sh_flags }
                if sh_flags & u64::from(object::elf::SHF_EXECINSTR) != 0)
        })
        .filter_map(|s| s.file_range())
        .filter_map(|(off, size)| {
            let start = usize::try_from(off).ok()?;
            let end = start.checked_add(usize::try_from(size).ok()?)?;
            (start % 8 == 0 && end <= elf.len()).then_some((start, end))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Placeholder calls left in the code sections of `object`.
    fn placeholders(object: &[u8]) -> usize {
        let imm = tcpq_abi::fast_read::CAST_CALL.to_le_bytes();
        code_sections(object)
            .into_iter()
            .flat_map(|(s, e)| object[s..e].chunks_exact(8))
            .filter(|i| i[0] == CALL && i[1] == 0 && i[4..8] == imm)
            .count()
    }

    #[test]
    fn every_placeholder_call_is_rewritten_and_nothing_else() {
        for name in names() {
            let object = get(name).expect("embedded");
            let before = placeholders(object);
            assert!(before > 0, "{name}: no placeholder call to rewrite");
            let kfunc = prepare(object, Some(0x1234_5678));
            assert_eq!((kfunc.rewritten, placeholders(kfunc.bytes())), (before, 0));
            let plain = prepare(object, None);
            assert_eq!((plain.rewritten, placeholders(plain.bytes())), (before, 0));
            // Only the placeholder instructions changed, each into the
            // kfunc call or `r0 = 0`.
            let changed: Vec<usize> = (0..object.len() / 8)
                .filter(|i| object[i * 8..i * 8 + 8] != kfunc.bytes()[i * 8..i * 8 + 8])
                .collect();
            assert_eq!(changed.len(), before, "{name}");
            for i in changed {
                let k = &kfunc.bytes()[i * 8..i * 8 + 8];
                assert_eq!(k, [CALL, PSEUDO_KFUNC_CALL, 0, 0, 0x78, 0x56, 0x34, 0x12]);
                let p = &plain.bytes()[i * 8..i * 8 + 8];
                assert_eq!(p, [MOV64_IMM, 0, 0, 0, 0, 0, 0, 0]);
            }
            assert_eq!(object.len(), kfunc.bytes().len());
        }
    }

    #[test]
    fn a_file_that_is_not_an_elf_object_is_copied_unchanged() {
        let junk = b"\x7fELF\x01\x01 not a 64-bit object".to_vec();
        let p = prepare(&junk, Some(1));
        assert_eq!((p.bytes(), p.rewritten), (&junk[..], 0));
        assert!(code_sections(&[]).is_empty());
    }

    #[test]
    fn every_template_is_embedded() {
        for name in names() {
            assert!(get(name).is_some(), "{name}");
        }
        assert!(get("nope").is_none());
    }
}
