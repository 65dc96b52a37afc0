//! The kernel verifier: every prepared clause's programs verified at once
//! (one thread per clause), each program verified once, and a refusal
//! turned into an error that names the template and quotes the end of the
//! verifier's log (or into "permission denied" when the kernel refused the
//! caller, not the program). Attaching verified programs is `attach.rs`.
use std::{
    io,
    time::{Duration, Instant},
};

use aya::programs::{ProgramError, RawTracePoint, TracePoint};
use tcpq_dsl::plan::Attach;

use super::{attach::Prepared, SessionError, Timings};

/// How many trailing verifier log lines an error carries.
const VERIFIER_TAIL: usize = 20;

/// Load (verify) a `TracePoint` or `RawTracePoint` program unless it is
/// loaded already (the two share these methods but no trait):
/// `Ok(Some((time in BPF_PROG_LOAD, verified instructions)))`, or `Ok(None)`
/// for a program [`preload`] verified.
macro_rules! verify_once {
    ($p:expr) => {{
        let p = $p;
        if p.fd().is_ok() {
            Ok(None)
        } else {
            let t = Instant::now();
            p.load().map(|()| {
                let took = t.elapsed();
                Some((
                    took,
                    p.info().ok().and_then(|i| i.verified_instruction_count()),
                ))
            })
        }
    }};
}
pub(super) use verify_once;

/// Verify every prepared clause's programs at once, one thread per clause:
/// the verifier runs in the loading thread, and each clause's object is
/// its own. Failures are left for [`super::attach::finish_clause`], which loads again
/// and reports them; fentry/fexit programs (which need aya's parse of the
/// kernel's BTF) are loaded there too.
pub(super) fn preload(prepared: &mut [Prepared<'_>], timings: &mut Timings) {
    let done: Vec<Vec<(String, Duration, Option<u32>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = prepared
            .iter_mut()
            .map(|p| {
                s.spawn(move || {
                    let mut out = Vec::new();
                    for (program, points) in p.programs() {
                        let Some(prog) = p.ebpf.program_mut(&program) else {
                            continue;
                        };
                        let verified = match points.first() {
                            Some(Attach::Tracepoint { .. }) => {
                                let tp: Result<&mut TracePoint, _> = prog.try_into();
                                tp.ok().map(|tp| verify_once!(tp))
                            }
                            Some(Attach::RawTracepoint { .. }) => {
                                let tp: Result<&mut RawTracePoint, _> = prog.try_into();
                                tp.ok().map(|tp| verify_once!(tp))
                            }
                            _ => continue,
                        };
                        if let Some(Ok(Some((took, n)))) = verified {
                            out.push((format!("{}/{program}", p.template), took, n));
                        }
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    timings.programs.extend(done.into_iter().flatten());
}

/// `prog` as a raw tracepoint program, verified (now, unless [`preload`]
/// did).
pub(super) fn verified_raw<'p>(
    prog: &'p mut aya::programs::Program,
    template: &str,
    program: &str,
    points: &str,
    timings: &mut Timings,
) -> Result<&'p mut RawTracePoint, SessionError> {
    let fail = |source| classify(template, program, points, source);
    let tp: &mut RawTracePoint = prog.try_into().map_err(fail)?;
    if let Some((took, n)) = verify_once!(&mut *tp).map_err(fail)? {
        timings
            .programs
            .push((format!("{template}/{program}"), took, n));
    }
    Ok(tp)
}

fn is_eperm(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
}

pub(super) fn classify(
    template: &str,
    program: &str,
    point: &str,
    source: ProgramError,
) -> SessionError {
    match source {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            // EPERM with an empty log is the kernel refusing the caller,
            // not the verifier refusing the program.
            if is_eperm(&io_error) && log.trim().is_empty() {
                return SessionError::Permission {
                    template: template.to_owned(),
                };
            }
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(VERIFIER_TAIL)..].join("\n");
            SessionError::Verifier {
                template: template.to_owned(),
                program: program.to_owned(),
                errno: io_error,
                log_tail: tail,
            }
        }
        ProgramError::SyscallError(ref e) if is_eperm(&e.io_error) => SessionError::Permission {
            template: template.to_owned(),
        },
        source => SessionError::Attach {
            template: template.to_owned(),
            program: program.to_owned(),
            point: point.to_owned(),
            source: Box::new(source),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `BPF_PROG_LOAD` of a hand-assembled tracepoint program, with a
    /// verifier log: (the syscall's error, the log).
    fn load_raw(insns: &[u64]) -> (io::Error, String) {
        const BPF_PROG_LOAD: libc::c_long = 5;
        const BPF_PROG_TYPE_TRACEPOINT: u32 = 5;
        let license = c"GPL";
        let mut log = vec![0u8; 64 * 1024];
        // union bpf_attr, the BPF_PROG_LOAD part up to prog_name.
        let mut attr = [0u8; 64];
        let mut put =
            |off: usize, bytes: &[u8]| attr[off..off + bytes.len()].copy_from_slice(bytes);
        put(0, &BPF_PROG_TYPE_TRACEPOINT.to_ne_bytes());
        put(4, &(insns.len() as u32).to_ne_bytes());
        put(8, &(insns.as_ptr() as u64).to_ne_bytes());
        put(16, &(license.as_ptr() as u64).to_ne_bytes());
        put(24, &1u32.to_ne_bytes()); // log_level
        put(28, &(log.len() as u32).to_ne_bytes());
        put(32, &(log.as_mut_ptr() as u64).to_ne_bytes());
        put(48, b"tcpq_bad\0");
        // SAFETY: attr points at a valid bpf_attr prefix of the size given;
        // insns, license and log outlive the call.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_PROG_LOAD,
                attr.as_ptr(),
                attr.len() as u32,
            )
        };
        let err = io::Error::last_os_error();
        if fd >= 0 {
            // SAFETY: a fd the kernel just returned to us.
            unsafe { libc::close(fd as i32) };
            panic!("the kernel accepted an invalid program");
        }
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        (err, String::from_utf8_lossy(&log[..end]).into_owned())
    }

    /// A program the verifier rejects (it reads r2, which a tracepoint
    /// program never gets initialised) goes through `classify`, the path
    /// every template program's load error takes: the error names the
    /// template and program and carries the verifier's last lines.
    #[test]
    fn a_verifier_rejection_names_the_template_and_quotes_the_log() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: loading a program needs root");
            return;
        }
        // r0 = r2 (BPF_ALU64 | BPF_MOV | BPF_X, dst 0, src 2); exit.
        let insn = |code: u8, regs: u8| u64::from_ne_bytes([code, regs, 0, 0, 0, 0, 0, 0]);
        let prog = [insn(0xbf, 0x20), insn(0x95, 0)];
        let (io_error, log) = load_raw(&prog);
        assert!(
            log.contains("R2 !read_ok"),
            "unexpected verifier log: {log}"
        );
        let err = classify(
            "tcp_probe",
            "tcpq_probe_tp",
            "tcp:tcp_probe",
            ProgramError::LoadError {
                io_error,
                verifier_log: aya_obj::VerifierLog::new(log.clone()),
            },
        );
        let SessionError::Verifier {
            template,
            program,
            log_tail,
            ..
        } = &err
        else {
            panic!("not classified as a verifier rejection: {err:?}");
        };
        assert_eq!(
            (template.as_str(), program.as_str()),
            ("tcp_probe", "tcpq_probe_tp")
        );
        let last = log.lines().rfind(|l| !l.trim().is_empty()).unwrap();
        assert!(log_tail.contains(last), "{log_tail}");
        assert!(log_tail.lines().count() <= VERIFIER_TAIL);
        let msg = err.to_string();
        assert!(
            msg.contains("verifier rejected tcp_probe/tcpq_probe_tp"),
            "{msg}"
        );
        assert!(msg.contains("R2 !read_ok"), "{msg}");
        assert!(msg.contains("this is a tcpq bug"), "{msg}");
    }

    /// A long log is cut to its last `VERIFIER_TAIL` lines; EACCES with an
    /// empty log is the kernel refusing the caller, not the verifier.
    #[test]
    fn verifier_logs_are_cut_to_their_tail() {
        let log: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let err = classify(
            "t",
            "p",
            "x:y",
            ProgramError::LoadError {
                io_error: io::Error::from_raw_os_error(libc::EACCES),
                verifier_log: aya_obj::VerifierLog::new(log),
            },
        );
        let SessionError::Verifier { log_tail, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(log_tail.lines().count(), VERIFIER_TAIL);
        assert!(log_tail.ends_with("line 99"), "{log_tail}");
        let err = classify(
            "t",
            "p",
            "x:y",
            ProgramError::LoadError {
                io_error: io::Error::from_raw_os_error(libc::EPERM),
                verifier_log: aya_obj::VerifierLog::new(String::new()),
            },
        );
        assert!(matches!(err, SessionError::Permission { .. }), "{err:?}");
    }
}
