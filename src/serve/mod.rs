//! `tcpq serve`: the aggregation clauses of recipes as Prometheus metrics,
//! read from the kernel's maps at every scrape.
//!
//! The steps, in the order a run meets them (any failure before the
//! listener is bound attaches nothing):
//! 1. every FILE, DIR (each `*.tcpq` in it) and RECIPE compiled, with the
//!    `--param`s each declares; what serve cannot export refused, located
//!    (`tcpq_dsl::metrics::serve_problems`: it never exports part of a
//!    program), names exported two ways across programs refused
//!    (`metrics::conflicts`). Exit 2, everything reported at once.
//! 2. `--check`: each clause's metric, type, labels and series bound,
//!    nothing attached (`check.rs`).
//! 3. privileges, then the listening socket (a port in use fails here,
//!    exit 1, before any probe is attached);
//! 4. HTTP served from then on (`/-/ready` says 503), while the plans are
//!    bound to this kernel and attached, all in one session;
//! 5. until SIGINT or SIGTERM: then the session is dropped, which detaches
//!    everything.
//!
//! The families and how a scrape reads them are `collect.rs`; the HTTP
//! side `http.rs`.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use clap::Args;
use tcpq_dsl::metrics::{self, Served};
use tcpq_dsl::plan::Plan;
use tcpq_runtime::features::Privilege;
use tcpq_runtime::{session::Bound, Kernel, Session};

use crate::{EXIT_RUNTIME, EXIT_USAGE};

mod check;
mod collect;
mod http;
mod kubernetes;

use collect::{Exported, Exports};

/// The address `tcpq serve` listens on unless `--listen` says otherwise:
/// loopback only (9464 is the port OpenTelemetry's Prometheus exporters
/// use by default).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";

/// Names tcpq exports itself (a clause may not take one).
pub const OWN_METRICS: &[&str] = &[
    "tcpq_events_lost",
    "tcpq_map_full",
    "tcpq_probe_runs_missed",
    "tcpq_probe_attached",
    "tcpq_scrape_duration_seconds",
    "tcpq_build",
    "tcpq_build_info",
    "tcpq_kubernetes_unresolved",
];

#[derive(Args, Debug)]
#[command(
    about = "Serve the aggregations of recipes as Prometheus metrics (/metrics), read from the kernel at each scrape",
    long_about = "Load every clause of the given recipes, each an aggregation (count, sum, avg, \
                  min, max, stats, hist, lhist), and serve them as Prometheus metrics on \
                  http://ADDR/metrics (the Prometheus text format 0.0.4, or OpenMetrics 1.0.0 \
                  when the client asks for it), read from the kernel's per-CPU maps at each \
                  scrape. /-/healthy answers while tcpq runs, /-/ready once every probe is \
                  attached. A printing clause, `top`, `every` or `limit` is refused: serve \
                  exports every program whole or not at all. See docs/serve.md.",
    after_help = "Examples:\n  tcpq serve zero-window-metrics retransmit-metrics\n  tcpq serve --check rtt-metrics\n  tcpq serve --listen 0.0.0.0:9464 /etc/tcpq/recipes/\n  tcpq serve ./mine.tcpq --param port=8080"
)]
pub struct ServeArgs {
    /// Recipes to serve: a built-in recipe's name, a recipe file, or a
    /// directory (every `*.tcpq` in it).
    #[arg(value_name = "FILE|DIR|RECIPE", required = true)]
    sources: Vec<String>,

    /// Address and port to listen on. Default: 127.0.0.1:9464 (this host
    /// only); any other address only when given.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    listen: String,

    /// Print each clause's metric, type, labels and an upper bound of its
    /// series; attach nothing. Exit 0 or 2.
    #[arg(long)]
    check: bool,

    /// A recipe parameter, `NAME=VALUE` (repeatable), for every recipe that
    /// declares NAME.
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = crate::parse_param)]
    params: Vec<(String, String)>,

    /// Read the kernel's BTF from PATH (for kernels without
    /// /sys/kernel/btf/vmlinux).
    #[arg(long, value_name = "PATH")]
    btf: Option<PathBuf>,

    /// Label series keyed `by cgroup` with k8s_namespace_name,
    /// k8s_pod_name and k8s_container_name, from the node's cgroup v2
    /// tree and the kubelet's log directories (no API server); ids that
    /// cannot be named are counted in tcpq_kubernetes_unresolved_total.
    #[arg(long)]
    kubernetes: bool,

    /// With --kubernetes: the node's cgroup v2 tree (in a container, the
    /// host's, mounted). Default: the first cgroup2 mount.
    #[arg(long, value_name = "DIR", requires = "kubernetes")]
    kubernetes_cgroup_root: Option<PathBuf>,

    /// With --kubernetes: the directory holding the kubelet's `pods/` and
    /// `containers/` log directories.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/var/log",
        requires = "kubernetes"
    )]
    kubernetes_log_dir: PathBuf,
}

/// One program to serve, compiled.
pub struct Program {
    pub origin: String,
    pub source: String,
    pub plan: Plan,
}

/// `tcpq serve`.
pub fn run(args: ServeArgs, color: bool) -> anyhow::Result<ExitCode> {
    let listen: SocketAddr = match args.listen.parse() {
        Ok(a) => a,
        Err(_) => {
            eprintln!(
                "tcpq: error: --listen `{}` is not an address and port: write e.g. \
                 `127.0.0.1:9464` or `[::1]:9464`",
                args.listen
            );
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let programs = match load(&args.sources, &args.params, color) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let mut exported = exported(&programs);
    if args.kubernetes && !args.check {
        match kubernetes::Resolver::open(
            args.kubernetes_cgroup_root.as_deref(),
            &args.kubernetes_log_dir,
        ) {
            Ok(r) => exported.kubernetes = Some(Arc::new(r)),
            Err(e) => {
                eprintln!("tcpq: error: {e}");
                return Ok(ExitCode::from(EXIT_RUNTIME));
            }
        }
        if !exported.families.iter().any(|e| {
            e.clauses
                .iter()
                .any(|(_, keys)| keys.iter().any(|k| k.name == kubernetes::KEY))
        }) {
            eprintln!(
                "tcpq: note: --kubernetes: no clause is keyed `by cgroup`; no series gets k8s labels"
            );
        }
    }
    if args.check {
        print!("{}", check::report(&programs, &exported, args.kubernetes));
        return Ok(ExitCode::SUCCESS);
    }
    if !Privilege::current().sufficient() {
        anyhow::bail!("tcpq needs root or CAP_BPF+CAP_PERFMON to attach probes (try sudo)");
    }
    // Bound first: a port in use, or an address not on this host, fails
    // before anything is attached.
    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("cannot listen on {listen}"))?;
    listener
        .set_nonblocking(true)
        .with_context(|| format!("cannot listen on {listen}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the event loop")?;
    rt.block_on(serve(listener, programs, exported, args.btf, color))
}

/// Every source compiled and checked for `serve`; on any problem, all of
/// them rendered and the exit code.
fn load(
    sources: &[String],
    params: &[(String, String)],
    color: bool,
) -> Result<Vec<Program>, ExitCode> {
    let mut texts: Vec<(String, String)> = Vec::new();
    for arg in sources {
        match read_source(arg) {
            Ok(mut found) => texts.append(&mut found),
            Err(e) => {
                eprintln!("tcpq: error: {e}");
                return Err(ExitCode::from(EXIT_USAGE));
            }
        }
    }
    // Each `--param` goes to the recipes that declare it; one that none
    // declares to every recipe, whose diagnostic says so with its own
    // parameters.
    let declared: Vec<Vec<String>> = texts
        .iter()
        .map(|(s, _)| {
            tcpq_dsl::parse_recipe(s)
                .map(|r| r.params.into_iter().map(|p| p.name).collect())
                .unwrap_or_default()
        })
        .collect();
    let mut failed = false;
    let mut programs = Vec::new();
    for ((source, origin), names) in texts.into_iter().zip(&declared) {
        let mine: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| names.contains(k) || !declared.iter().any(|d| d.contains(k)))
            .cloned()
            .collect();
        let plan = match tcpq_dsl::compile(&source, &origin, &mine) {
            Ok(plan) => plan,
            Err(diags) => {
                eprint!("{}", tcpq_dsl::render_all(&diags, &source, &origin, color));
                failed = true;
                continue;
            }
        };
        let refused = metrics::serve_problems(&plan);
        if !refused.is_empty() {
            eprint!(
                "{}",
                tcpq_dsl::render_all(&refused, &source, &origin, color)
            );
            failed = true;
            continue;
        }
        programs.push(Program {
            origin,
            source,
            plan,
        });
    }
    let served: Vec<Served<'_>> = programs
        .iter()
        .map(|p| Served {
            origin: &p.origin,
            source: &p.source,
            plan: &p.plan,
        })
        .collect();
    for (i, d) in metrics::conflicts(&served, OWN_METRICS) {
        let p = &programs[i];
        eprint!(
            "{}",
            tcpq_dsl::render_all(&[d], &p.source, &p.origin, color)
        );
        failed = true;
    }
    match failed {
        true => Err(ExitCode::from(EXIT_USAGE)),
        false => Ok(programs),
    }
}

/// The recipes one argument names: a built-in recipe, a file, or every
/// `*.tcpq` of a directory (sorted), as (source, origin).
fn read_source(arg: &str) -> Result<Vec<(String, String)>, String> {
    let path = Path::new(arg);
    let builtin = !arg.contains('/') && crate::recipes::embedded(arg).is_some();
    if !builtin && path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| format!("cannot read directory {arg}: {e}"))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "tcpq") && p.is_file())
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(format!("directory {arg} holds no *.tcpq recipe"));
        }
        return files
            .iter()
            .map(|f| {
                std::fs::read_to_string(f)
                    .map(|s| (s, f.display().to_string()))
                    .map_err(|e| format!("cannot read recipe {}: {e}", f.display()))
            })
            .collect();
    }
    let l = crate::recipes::load(arg)?;
    Ok(vec![(l.source, l.origin)])
}

/// The families every program exports, those sharing a name merged
/// (`conflicts` has made sure they can be), with their HELP; the clauses'
/// indices are those of the one session all programs load into.
fn exported(programs: &[Program]) -> Exported {
    let mut families: Vec<Exports> = Vec::new();
    let mut index = 0;
    for p in programs {
        for (k, c) in p.plan.clauses.iter().enumerate() {
            let help = metrics::help(&p.source, &p.plan, k);
            for f in metrics::families(c) {
                let help = match f.sample {
                    metrics::Sample::Min if is_stats(c) => {
                        format!("{help} (the least value, since tcpq serve started)")
                    }
                    metrics::Sample::Max if is_stats(c) => {
                        format!("{help} (the greatest value, since tcpq serve started)")
                    }
                    _ => help.clone(),
                };
                let from = (index, c.action.keys().to_vec());
                match families.iter_mut().find(|e| e.family.name == f.name) {
                    Some(e) => e.clauses.push(from),
                    None => families.push(Exports {
                        family: f,
                        help,
                        clauses: vec![from],
                    }),
                }
            }
            index += 1;
        }
    }
    Exported {
        families,
        kubernetes: None,
    }
}

/// `stats F`, whose least and greatest values are families of their own.
fn is_stats(c: &tcpq_dsl::plan::ClausePlan) -> bool {
    matches!(
        c.action,
        tcpq_dsl::plan::Action::Aggregate {
            func: tcpq_dsl::plan::AggFunc::Stats,
            ..
        }
    )
}

/// Every program's plan as one: all clauses attach in one session (one
/// set of owner maps). Every clause aggregates, so no ring buffer is read:
/// each is one page, the least the kernel takes.
fn merged(programs: &[Program]) -> Plan {
    let mut plan = Plan {
        clauses: Vec::new(),
        left_out: Vec::new(),
        ring_bytes: None,
        owner_io: None,
    };
    for p in programs {
        plan.clauses.extend(p.plan.clauses.iter().cloned());
        plan.left_out.extend(p.plan.left_out.iter().cloned());
        // Owners from the start when any program needs them then.
        use tcpq_dsl::plan::OwnerIo::AtStart;
        plan.owner_io = match (plan.owner_io, p.plan.owner_io) {
            (Some(AtStart), _) | (_, Some(AtStart)) => Some(AtStart),
            (a, b) => a.or(b),
        };
    }
    // SAFETY: sysconf has no preconditions.
    let page = u32::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    plan.set_ring_bytes(page);
    plan
}

/// Steps 4 and 5: serve while attaching, then until a signal.
async fn serve(
    listener: std::net::TcpListener,
    programs: Vec<Program>,
    exported: Exported,
    btf: Option<PathBuf>,
    color: bool,
) -> anyhow::Result<ExitCode> {
    use tokio::signal::unix::{signal, SignalKind};
    // From here on a signal ends the run cleanly, even while attaching.
    let mut int = signal(SignalKind::interrupt()).context("cannot catch SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("cannot catch SIGTERM")?;
    let addr = listener.local_addr().context("the listening socket")?;
    let listener =
        tokio::net::TcpListener::from_std(listener).context("cannot listen for connections")?;
    let state = Arc::new(http::State {
        exported,
        session: Mutex::new(None),
        last_scrape: Mutex::new(None),
    });
    let server = tokio::spawn(http::serve(listener, state.clone()));
    let plan = merged(&programs);
    let attach =
        tokio::task::spawn_blocking(move || attach(&programs, &plan, btf.as_deref(), color));
    tokio::pin!(attach);
    let mut stopped = false;
    let opened = loop {
        tokio::select! {
            r = &mut attach => break r.context("the attaching thread failed")?,
            _ = int.recv() => stopped = true,
            _ = term.recv() => stopped = true,
        }
    };
    let session = match opened {
        Ok(s) => s,
        Err(code) => {
            server.abort();
            return code;
        }
    };
    if stopped {
        // A signal while attaching: detach at once.
        drop(session);
        server.abort();
        eprintln!("tcpq: stopped while attaching; everything is detached");
        return Ok(ExitCode::SUCCESS);
    }
    let summary = session.summary();
    for c in &session.clauses {
        if !c.owner_gaps.is_empty() {
            eprintln!(
                "tcpq: note: {}: owner tracking misses {} on this kernel; some sockets may show no comm",
                c.plan.probe,
                c.owner_gaps.join(", ")
            );
        }
    }
    *state.session.lock().expect("session lock") = Some(session);
    let n = state.exported.families.len();
    eprintln!(
        "tcpq: {summary}; serving {n} metric famil{} on http://{addr}/metrics; Ctrl-C to stop",
        if n == 1 { "y" } else { "ies" }
    );
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    server.abort();
    // Detach (the session's drop): after the last scrape let go of it.
    let session = state.session.lock().map(|mut s| s.take()).unwrap_or(None);
    drop(session);
    eprintln!("tcpq: detached");
    Ok(ExitCode::SUCCESS)
}

/// Bind every program to this kernel (each one's problems rendered in its
/// own source) and attach them all in one session.
fn attach(
    programs: &[Program],
    plan: &Plan,
    btf: Option<&Path>,
    color: bool,
) -> Result<Session, anyhow::Result<ExitCode>> {
    // A test hook (tests/kernel/serve.rs): hold the attach back, so that
    // `/-/ready` is seen answering 503 meanwhile. Harmless: it only delays.
    if let Some(ms) = std::env::var("TCPQ_TEST_SERVE_ATTACH_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    let kernel = Kernel::open_for(btf, Some(plan))
        .context("cannot read what this kernel offers")
        .map_err(Err)?;
    let mut bound = Bound {
        plan: plan.clone(),
        clauses: Vec::new(),
    };
    bound.plan.clauses.clear();
    let mut failed = false;
    for p in programs {
        match kernel.bind(&p.plan) {
            Ok(b) => {
                bound.plan.clauses.extend(b.plan.clauses);
                bound.clauses.extend(b.clauses);
            }
            Err(diags) => {
                eprint!(
                    "{}",
                    tcpq_dsl::render_all(&diags, &p.source, &p.origin, color)
                );
                failed = true;
            }
        }
    }
    if failed {
        return Err(Ok(ExitCode::from(EXIT_RUNTIME)));
    }
    Session::open(&bound, &kernel).map_err(|e| Err(e.into()))
}

#[cfg(test)]
mod tests {
    /// Loopback unless told otherwise.
    #[test]
    fn the_default_address_is_loopback() {
        let a: std::net::SocketAddr = super::DEFAULT_LISTEN.parse().unwrap();
        assert!(a.ip().is_loopback());
        use clap::CommandFactory;
        let cmd = crate::Cli::command();
        let serve = cmd.find_subcommand("serve").unwrap();
        let listen = serve
            .get_arguments()
            .find(|a| a.get_id() == "listen")
            .unwrap();
        assert_eq!(listen.get_default_values(), [super::DEFAULT_LISTEN]);
    }
}
