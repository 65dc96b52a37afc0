//! What aya's feature probes (`aya::sys::is_program_supported`,
//! `is_map_supported`, `is_helper_supported`, used in `features.rs`) do
//! not cover: attaching a program (a tracepoint perf event, a raw
//! tracepoint, a kprobe, an fentry trampoline), and loading an fentry
//! program on a function tcpq chose, by its id in tcpq's own BTF index
//! (aya's probe parses the whole sysfs BTF for `bpf_fentry_test1`). A
//! two-instruction program (`r0 = 0; exit`, assembled here, never
//! compiled) is loaded with bpf(2), attached, and everything closed at
//! once. The answer is the kernel's own (an errno), never inferred from a
//! version.
//!
//! Every fd is an `OwnedFd`, so nothing outlives the try.
use std::{
    ffi::CString,
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

// `bpf(2)` commands.
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_RAW_TRACEPOINT_OPEN: libc::c_long = 17;

// Program types.
pub const PROG_KPROBE: u32 = 2;
pub const PROG_TRACEPOINT: u32 = 5;
pub const PROG_RAW_TRACEPOINT: u32 = 17;
const PROG_TRACING: u32 = 26;
/// `BPF_TRACE_FENTRY`.
const ATTACH_FENTRY: u32 = 24;

const PERF_TYPE_TRACEPOINT: u32 = 2;
/// `_IOW('$', 8, __u32)`. `libc::Ioctl`: ioctl(2)'s request is an
/// `unsigned long` in glibc and an `int` in musl (the static build).
const PERF_EVENT_IOC_SET_BPF: libc::Ioctl = 0x4004_2408;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
/// `PERF_ATTR_SIZE_VER5`: every kernel since 4.1 takes it.
const PERF_ATTR_SIZE: usize = 112;

/// One eBPF instruction, as the kernel reads it.
fn insn(code: u8, regs: u8, off: i16, imm: i32) -> u64 {
    (code as u64) | (regs as u64) << 8 | ((off as u16) as u64) << 16 | ((imm as u32) as u64) << 32
}

/// `r0 = 0; exit`.
fn trivial() -> Vec<u64> {
    vec![insn(0xb7, 0, 0, 0), insn(0x95, 0, 0, 0)]
}

/// A zeroed `union bpf_attr` prefix we fill by offset: the kernel accepts
/// any size up to its own as long as unknown tail bytes are zero.
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 128])
    }
    fn u32(&mut self, off: usize, v: u32) -> &mut Attr {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(&mut self, off: usize, v: u64) -> &mut Attr {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
}

fn sys_bpf(cmd: libc::c_long, attr: &mut Attr, size: usize) -> io::Result<OwnedFd> {
    // SAFETY: attr is a valid, writable buffer of at least `size` bytes and
    // every pointer inside it points to memory that outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.0.as_mut_ptr(), size) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success these commands return a new fd we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// Load a program; on a verifier refusal the error carries the log's end.
pub fn load(
    prog_type: u32,
    insns: &[u64],
    expected_attach_type: u32,
    attach_btf_id: u32,
) -> io::Result<OwnedFd> {
    let license = b"GPL\0";
    let mut log = vec![0u8; 4096];
    let mut attr = Attr::new();
    attr.u32(0, prog_type)
        .u32(4, insns.len() as u32)
        .u64(8, insns.as_ptr() as u64)
        .u64(16, license.as_ptr() as u64)
        .u32(24, 1)
        .u32(28, log.len() as u32)
        .u64(32, log.as_mut_ptr() as u64)
        .u32(68, expected_attach_type)
        .u32(108, attach_btf_id);
    sys_bpf(BPF_PROG_LOAD, &mut attr, 120).map_err(|e| {
        let text = String::from_utf8_lossy(&log);
        let text = text.trim_end_matches('\0').trim();
        match text.lines().rev().find(|l| !l.trim().is_empty()) {
            Some(last) if !last.starts_with("processed") => {
                io::Error::new(e.kind(), format!("{e}; verifier: {last}"))
            }
            _ => e,
        }
    })
}

/// Load `r0 = 0; exit` as `prog_type`.
pub fn load_trivial(prog_type: u32) -> io::Result<OwnedFd> {
    load(prog_type, &trivial(), 0, 0)
}

/// Load `r0 = 0; exit` as an fentry program on the BTF function `btf_id`.
pub fn load_fentry(btf_id: u32) -> io::Result<OwnedFd> {
    load(PROG_TRACING, &trivial(), ATTACH_FENTRY, btf_id)
}

/// Attach an fentry program (a BPF trampoline is built, then torn down).
pub fn try_fentry(prog: &OwnedFd) -> io::Result<()> {
    let mut attr = Attr::new();
    attr.u32(8, prog.as_raw_fd() as u32);
    sys_bpf(BPF_RAW_TRACEPOINT_OPEN, &mut attr, 16).map(drop)
}

/// Attach a raw tracepoint program to tracepoint `name`.
pub fn try_raw_tracepoint(prog: &OwnedFd, name: &str) -> io::Result<()> {
    let name = CString::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut attr = Attr::new();
    attr.u64(0, name.as_ptr() as u64)
        .u32(8, prog.as_raw_fd() as u32);
    sys_bpf(BPF_RAW_TRACEPOINT_OPEN, &mut attr, 16).map(drop)
}

fn perf_event_open(attr: &mut [u8; PERF_ATTR_SIZE]) -> io::Result<OwnedFd> {
    // SAFETY: attr is a valid perf_event_attr of the size it declares; any
    // pointer in it (config1) outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr.as_mut_ptr(),
            -1 as libc::pid_t,
            0 as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

fn perf_attr(kind: u32, config: u64) -> [u8; PERF_ATTR_SIZE] {
    let mut a = [0u8; PERF_ATTR_SIZE];
    a[0..4].copy_from_slice(&kind.to_ne_bytes());
    a[4..8].copy_from_slice(&(PERF_ATTR_SIZE as u32).to_ne_bytes());
    a[8..16].copy_from_slice(&config.to_ne_bytes());
    a[16..24].copy_from_slice(&1u64.to_ne_bytes()); // sample_period
    a[48..52].copy_from_slice(&1u32.to_ne_bytes()); // wakeup_events
    a
}

fn set_bpf(event: &OwnedFd, prog: &OwnedFd) -> io::Result<()> {
    // SAFETY: an ioctl on an fd we own with an int argument.
    let r = unsafe { libc::ioctl(event.as_raw_fd(), PERF_EVENT_IOC_SET_BPF, prog.as_raw_fd()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Attach a tracepoint program to the tracepoint with tracefs id `id` on
/// CPU 0 (perf event + `PERF_EVENT_IOC_SET_BPF`).
pub fn try_tracepoint(prog: &OwnedFd, id: u64) -> io::Result<()> {
    let event = perf_event_open(&mut perf_attr(PERF_TYPE_TRACEPOINT, id))?;
    set_bpf(&event, prog)
}

/// Open a kprobe perf event on `function` (PMU type `pmu` from
/// `/sys/bus/event_source/devices/kprobe/type`) and attach `prog` to it.
pub fn try_kprobe(prog: &OwnedFd, pmu: u32, function: &str) -> io::Result<()> {
    let name =
        CString::new(function).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut attr = perf_attr(pmu, 0);
    attr[56..64].copy_from_slice(&(name.as_ptr() as u64).to_ne_bytes()); // kprobe_func
    let event = perf_event_open(&mut attr)?;
    set_bpf(&event, prog)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_encode_like_the_kernel() {
        // `r0 = 0` and `exit`, as bpftool prints them in hex.
        assert_eq!(
            insn(0xb7, 0, 0, 0).to_le_bytes(),
            [0xb7, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            insn(0x07, 0x01, 0, -8).to_le_bytes(),
            [0x07, 0x01, 0, 0, 0xf8, 0xff, 0xff, 0xff]
        );
        assert_eq!(insn(0xbf, 0xa1, 0, 0).to_le_bytes()[1], 0xa1);
    }
}
