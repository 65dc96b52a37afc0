//! tcpq's kernel tests: one binary, one gate (aya's `integration-test`
//! pattern). Every test here loads real templates and drives real TCP
//! traffic, only inside network namespaces it creates (see `common/`), and
//! compares tcpq with the kernel's own view (nstat, ss, tracefs, tcpdump).
//!
//! A test is a function marked `#[kernel_test]` (instead of `#[test]`) in
//! one of the modules below; the attribute registers it here. This `main`
//! opens the gate once, for all of them (`gate.rs`): root, the eBPF program
//! types the templates use, tracefs, and the tools the tests run. When
//! something is missing, the binary says once what and why, and the tests
//! are reported as ignored; with `CI` set it fails instead, since in CI a
//! kernel test that cannot run is a failure, not a skip.
//!
//! `cargo test --workspace` runs this binary like any other (`-- --list`,
//! name filters, `--exact`, `--test-threads` work as with libtest); there
//! is no output capture, so what a test prints shows as it runs.
//!
//! Tests that need no kernel (docs bookkeeping, snapshots, exit codes)
//! are ordinary `#[test]`s in the other files of `tests/`.

mod common;
// The Grafana dashboard's queries (deploy/grafana/), run against a live
// Prometheus by serve.rs; tests/deploy.rs parses them without a kernel.
#[path = "../dashboard/mod.rs"]
mod dashboard;
#[path = "../doc_examples/mod.rs"]
mod doc_examples;
mod gate;

mod aggregations;
mod counters;
mod docs;
mod doctor;
mod handshake;
mod harness;
mod lab;
mod lifecycle;
mod probes;
mod recipes;
mod reliability;
mod retransmit;
mod serve;
mod sockets;
mod stream;
mod time;
mod zero_window;

use libtest_mimic::{Arguments, Trial};

/// One `#[kernel_test]` function, registered by the attribute.
pub struct KernelTest {
    /// `module_path!()` where it is defined (`kernel::probes`).
    pub path: &'static str,
    pub name: &'static str,
    pub run: fn(),
    /// `#[kernel_test(exclusive)]`: no other test runs meanwhile.
    pub exclusive: bool,
}

/// Held shared by every test and exclusively by an exclusive one.
static MACHINE: std::sync::RwLock<()> = std::sync::RwLock::new(());

inventory::collect!(KernelTest);

impl KernelTest {
    /// `probes::seed_zero_window`: the module in this binary, then the
    /// function, as libtest names a test in a module.
    fn full_name(&self) -> String {
        match self.path.split_once("::") {
            Some((_, module)) => format!("{module}::{}", self.name),
            None => self.name.to_string(),
        }
    }
}

fn main() {
    let mut args = Arguments::from_args();
    let mut tests: Vec<&KernelTest> = inventory::iter::<KernelTest>.into_iter().collect();
    tests.sort_by_key(|t| t.full_name());
    let trials = |ignored: bool| -> Vec<Trial> {
        tests
            .iter()
            .map(|t| {
                let (run, exclusive) = (t.run, t.exclusive);
                Trial::test(t.full_name(), move || {
                    // A test that failed while holding it poisons nothing
                    // the others rely on: the lock guards no data.
                    let _turn = if exclusive {
                        Err(MACHINE.write().unwrap_or_else(|p| p.into_inner()))
                    } else {
                        Ok(MACHINE.read().unwrap_or_else(|p| p.into_inner()))
                    };
                    run();
                    Ok(())
                })
                .with_ignored_flag(ignored)
            })
            .collect()
    };
    if args.list {
        libtest_mimic::run(&args, trials(false)).exit();
    }
    match gate::open() {
        Ok(()) => libtest_mimic::run(&args, trials(false)).exit(),
        Err(missing) => {
            let why = missing.join("; ");
            if std::env::var_os("CI").is_some() {
                eprintln!(
                    "kernel tests: cannot run: {why}.\n\
                     CI is set, so this is a failure, not a skip."
                );
                std::process::exit(1);
            }
            eprintln!(
                "kernel tests: SKIPPED, all {} of them: {why}.\n\
                 (Run as root on a kernel with eBPF and tracefs, as .ci/run does; \
                 with CI set this fails instead.)",
                tests.len()
            );
            // Ignored, and `--ignored` cannot run them anyway.
            args.ignored = false;
            args.include_ignored = false;
            libtest_mimic::run(&args, trials(true)).exit();
        }
    }
}
