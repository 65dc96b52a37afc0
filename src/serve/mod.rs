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
//!    bound to this kernel and attached, each clause in a session of its
//!    own (`reload.rs` says why);
//! 5. until SIGINT or SIGTERM: then the sessions are dropped, which
//!    detaches everything. Meanwhile SIGHUP, and a change in a DIR source
//!    (read every [`POLL`]), reload: steps 1 and 4 again, keeping every
//!    clause whose plan did not change, or, on any problem, the previous
//!    set whole (`reload.rs`).
//!
//! The families and how a scrape reads them are `collect.rs`; the HTTP
//! side `http.rs`; what is served and how a reload replaces it
//! `reload.rs`.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use tcpq_dsl::metrics::{self, Served};
use tcpq_dsl::plan::Plan;
use tcpq_runtime::features::Privilege;
use tcpq_runtime::Session;

use crate::{EXIT_RUNTIME, EXIT_USAGE};

mod check;
mod collect;
mod http;
mod kubernetes;
mod limit;
mod reload;

use collect::{Exported, Exports};
use limit::Limits;
use reload::{Reloads, ServedClause, ServedSet};

/// The address `tcpq serve` listens on unless `--listen` says otherwise:
/// loopback only (9464 is the port OpenTelemetry's Prometheus exporters
/// use by default).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";

/// Names tcpq exports itself (a clause may not take one).
pub const OWN_METRICS: &[&str] = &[
    "tcpq_events_lost",
    "tcpq_map_full",
    "tcpq_probe_runs_missed",
    "tcpq_series_dropped",
    "tcpq_probe_attached",
    "tcpq_scrape_duration_seconds",
    "tcpq_build",
    "tcpq_build_info",
    "tcpq_reloads",
    "tcpq_last_reload_success",
    "tcpq_last_reload_timestamp_seconds",
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
                  exports every program whole or not at all.\n\n\
                  SIGHUP, and a change in a DIR (read every 2 s), reload the recipes: a \
                  clause whose plan did not change keeps its maps and counters, new ones \
                  attach, removed ones detach; if anything fails the diagnostics go to \
                  stderr and the previous recipes keep serving \
                  (tcpq_last_reload_success 0). SIGINT or SIGTERM detaches everything. \
                  See docs/serve.md.",
    after_help = "Examples:\n  tcpq serve zero-window-metrics retransmit-metrics\n  tcpq serve --check rtt-metrics\n  tcpq serve --listen 0.0.0.0:9464 /etc/tcpq/recipes/\n  tcpq serve ./mine.tcpq --param port=8080"
)]
pub struct ServeArgs {
    /// Recipes to serve: a built-in recipe's name, a recipe file, or a
    /// directory (every `*.tcpq` in it, read again every 2 s).
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

    /// Label sets a clause exports as series of their own (when its labels
    /// can make more); the values of the others go to the family's
    /// `otel_metric_overflow="true"` series and count in
    /// tcpq_series_dropped_total. 0: no limit and no expiry.
    #[arg(long, value_name = "N", default_value_t = limit::DEFAULT_SERIES_LIMIT)]
    series_limit: usize,

    /// A limited clause's label set unchanged this long is deleted from the
    /// kernel's map; its values move to the overflow series, so no total
    /// goes down. 0: never.
    #[arg(long, value_name = "DUR", default_value = limit::DEFAULT_SERIES_IDLE,
          value_parser = parse_idle)]
    series_idle: Duration,
}

/// `--series-idle DUR`.
fn parse_idle(s: &str) -> Result<Duration, String> {
    crate::duration_flag(s, "--series-idle")
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
    // What the directories held when they were read for the first time.
    let seen = fingerprint(
        &args
            .sources
            .iter()
            .filter(|a| is_dir_source(a))
            .cloned()
            .collect::<Vec<_>>(),
    );
    let programs = match load(&args.sources, &args.params, color) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let limits = Limits {
        series: Some(args.series_limit).filter(|&n| n > 0),
        idle: Some(args.series_idle).filter(|d| !d.is_zero()),
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
        print!(
            "{}",
            check::report(&programs, &exported, &limits, args.kubernetes)
        );
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
    let config = Config {
        dirs: args
            .sources
            .iter()
            .filter(|a| is_dir_source(a))
            .cloned()
            .collect(),
        sources: args.sources,
        params: args.params,
        btf: args.btf,
        color,
    };
    rt.block_on(serve(listener, programs, exported, config, seen, limits))
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
    if is_dir_source(arg) {
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

/// Whether a source argument is a directory (a built-in recipe's name
/// wins over a directory of that name in the working directory).
fn is_dir_source(arg: &str) -> bool {
    let builtin = !arg.contains('/') && crate::recipes::embedded(arg).is_some();
    !builtin && Path::new(arg).is_dir()
}

/// The families every program exports, those sharing a name merged
/// (`conflicts` has made sure they can be), with their HELP; the clauses'
/// indices are those of the served clauses, in the programs' order.
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

/// What a reload reads again: the sources, with the same `--param`s.
struct Config {
    sources: Vec<String>,
    params: Vec<(String, String)>,
    btf: Option<PathBuf>,
    color: bool,
    /// The sources that are directories, polled for changes.
    dirs: Vec<String>,
}

/// How often a recipe directory is read for changes.
const POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// What the recipe directories hold now (each `*.tcpq` file's path and
/// text, or why it could not be read): a reload follows when it changes.
/// Read, not watched: a Kubernetes ConfigMap volume changes by swapping a
/// symlink (`..data`), which inotify on the files would miss, and a read
/// of a few small files every 2 s costs nothing.
type Fingerprint = Vec<Result<Vec<(String, String)>, String>>;

fn fingerprint(dirs: &[String]) -> Fingerprint {
    dirs.iter().map(|d| read_source(d)).collect()
}

/// Steps 4 and 5: serve while attaching, then until a signal, reloading
/// on SIGHUP and when a recipe directory changes.
async fn serve(
    listener: std::net::TcpListener,
    programs: Vec<Program>,
    exported: Exported,
    config: Config,
    seen: Fingerprint,
    limits: Limits,
) -> anyhow::Result<ExitCode> {
    use tokio::signal::unix::{signal, SignalKind};
    // From here on a signal ends the run cleanly, even while attaching.
    let mut int = signal(SignalKind::interrupt()).context("cannot catch SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("cannot catch SIGTERM")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot catch SIGHUP")?;
    let addr = listener.local_addr().context("the listening socket")?;
    let listener =
        tokio::net::TcpListener::from_std(listener).context("cannot listen for connections")?;
    // The expiry timer (none without a limit or expiry). A clause that
    // cannot exceed the limit is skipped at each tick.
    let tick = limits.tick();
    let state = Arc::new(http::State {
        served: Mutex::new(ServedSet {
            exported,
            clauses: None,
            limits,
        }),
        reloads: Mutex::new(Reloads::started()),
        last_scrape: Mutex::new(None),
    });
    let server = tokio::spawn(http::serve(listener, state.clone()));
    let config = Arc::new(config);
    let cfg = config.clone();
    let attach = tokio::task::spawn_blocking(move || attach(&programs, &cfg));
    tokio::pin!(attach);
    let mut stopped = false;
    let opened = loop {
        tokio::select! {
            r = &mut attach => break r.context("the attaching thread failed")?,
            _ = int.recv() => stopped = true,
            _ = term.recv() => stopped = true,
        }
    };
    let opened = match opened {
        Ok(s) => s,
        Err(code) => {
            server.abort();
            return code;
        }
    };
    let clauses: Vec<ServedClause> = opened
        .into_iter()
        .filter_map(|(key, session)| Some(ServedClause::new(key, session?, limits)))
        .collect();
    if stopped {
        // A signal while attaching: detach at once.
        reload::detach(clauses);
        server.abort();
        eprintln!("tcpq: stopped while attaching; everything is detached");
        return Ok(ExitCode::SUCCESS);
    }
    let summary = reload::summary(&clauses);
    let n = {
        let mut served = state.served.lock().expect("served lock");
        served.clauses = Some(clauses);
        served.exported.families.len()
    };
    // Expiry needs no scrape: its own timer, on this runtime.
    let expiry = tick.map(|every| tokio::spawn(http::expire_every(state.clone(), every)));
    eprintln!(
        "tcpq: {summary}; serving {n} metric famil{} on http://{addr}/metrics; Ctrl-C to stop",
        if n == 1 { "y" } else { "ies" }
    );
    let mut seen = seen;
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let why = tokio::select! {
            _ = int.recv() => break,
            _ = term.recv() => break,
            _ = hup.recv() => "SIGHUP",
            _ = poll.tick(), if !config.dirs.is_empty() => {
                let dirs = config.dirs.clone();
                let now = tokio::task::spawn_blocking(move || fingerprint(&dirs))
                    .await
                    .context("the thread reading the recipe directories failed")?;
                if now == seen {
                    continue;
                }
                seen = now;
                "a recipe directory changed"
            }
        };
        let (cfg, st) = (config.clone(), state.clone());
        let job = tokio::task::spawn_blocking(move || reload(&cfg, &st, why));
        tokio::pin!(job);
        // A stop meanwhile waits for the reload to finish, then detaches
        // whichever set it left.
        let mut stop = false;
        loop {
            tokio::select! {
                r = &mut job => {
                    r.context("the reloading thread failed")?;
                    break;
                }
                _ = int.recv() => stop = true,
                _ = term.recv() => stop = true,
            }
        }
        if stop {
            break;
        }
    }
    server.abort();
    if let Some(e) = expiry {
        e.abort();
    }
    // Detach (the sessions' drop): after the last scrape let go of them.
    let clauses = state
        .served
        .lock()
        .map(|mut s| s.clauses.take())
        .unwrap_or(None);
    reload::detach(clauses.unwrap_or_default());
    eprintln!("tcpq: detached");
    Ok(ExitCode::SUCCESS)
}

/// Bind every program to this kernel (each one's problems rendered in its
/// own source) and attach every clause, each in a session of its own.
fn attach(
    programs: &[Program],
    config: &Config,
) -> Result<Vec<(String, Option<Session>)>, anyhow::Result<ExitCode>> {
    // A test hook (tests/kernel/serve.rs): hold the attach back, so that
    // `/-/ready` is seen answering 503 meanwhile. Harmless: it only delays.
    if let Some(ms) = std::env::var("TCPQ_TEST_SERVE_ATTACH_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    reload::open_new(programs, &[], config.btf.as_deref(), config.color).map_err(|f| match f {
        reload::Failure::Refused => Ok(ExitCode::from(EXIT_RUNTIME)),
        reload::Failure::Error(e) => Err(e),
    })
}

/// One reload: every source read, compiled, checked and bound again; the
/// clauses that changed attached, those unchanged kept, those gone
/// detached. On any problem (rendered on stderr) the served set stays as
/// it was. Counted in the self-metrics either way.
fn reload(config: &Config, state: &http::State, why: &str) {
    eprintln!("tcpq: reloading the recipes ({why})");
    let ok = reload_once(config, state);
    if let Ok(mut r) = state.reloads.lock() {
        r.record(ok);
    }
    if !ok {
        eprintln!("tcpq: the reload failed; still serving the recipes as they were");
    }
}

fn reload_once(config: &Config, state: &http::State) -> bool {
    let Ok(programs) = load(&config.sources, &config.params, config.color) else {
        return false;
    };
    let exported = exported(&programs);
    let old: Vec<String> = match state.served.lock() {
        Ok(s) => s.clauses.iter().flatten().map(|c| c.key.clone()).collect(),
        Err(_) => return false,
    };
    let new = match reload::open_new(&programs, &old, config.btf.as_deref(), config.color) {
        Ok(new) => new,
        Err(reload::Failure::Refused) => return false,
        Err(reload::Failure::Error(e)) => {
            eprintln!("tcpq: error: {e:#}");
            return false;
        }
    };
    let (gone, change, n) = {
        let Ok(mut served) = state.served.lock() else {
            return false;
        };
        // The --kubernetes resolver (and its cache and counts) goes on.
        let mut exported = exported;
        exported.kubernetes = served.exported.kubernetes.clone();
        let (gone, change) = reload::swap(&mut served, exported, new);
        (gone, change, served.exported.families.len())
    };
    reload::detach(gone);
    eprintln!(
        "tcpq: reloaded: {} clause{} kept, {} attached, {} detached; serving {n} metric famil{}",
        change.kept,
        if change.kept == 1 { "" } else { "s" },
        change.added,
        change.removed,
        if n == 1 { "y" } else { "ies" }
    );
    true
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
