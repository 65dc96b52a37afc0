//! `tcpq lab`: small TCP scenarios built in network namespaces on this
//! machine, to watch with tcpq from the host.
//!
//! What a scenario owns, and `tcpq lab stop NAME` removes: two namespaces
//! `tcpq-lab-NAME-{cli,srv}` joined by a veth pair (`lab-cli`/`lab-srv`,
//! created inside them, so nothing appears in the host's namespace),
//! addresses 10.213.250.1 and .2 that exist only inside them, whatever the
//! scenario installs in them (sysctls, an nft table), two traffic
//! processes (`lab-reader`, `lab-writer`: this binary, re-run inside the
//! namespaces) that end by themselves within 60 s, and a state directory
//! `/run/tcpq-lab/NAME` (pids, namespace names, logs) so `stop` works from
//! any shell.
mod scenario;
mod traffic;

use std::fmt::Write as _;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use scenario::{Scenario, Setup, SCENARIOS};
use tcpq_netlab::netns;

/// Where each running scenario keeps its state.
pub const RUN_DIR: &str = "/run/tcpq-lab";
const CLI_IF: &str = "lab-cli";
const SRV_IF: &str = "lab-srv";
const NFT_TABLE: &str = "tcpq_lab";

#[derive(clap::Args, Debug)]
pub struct LabArgs {
    #[command(subcommand)]
    cmd: LabCmd,
}

fn scenario_name(s: &str) -> Result<&'static Scenario, String> {
    scenario::find(s).ok_or_else(|| {
        let names: Vec<_> = SCENARIOS.iter().map(|s| s.name).collect();
        format!("no scenario `{s}`; scenarios: {}", names.join(", "))
    })
}

#[derive(clap::Subcommand, Debug)]
enum LabCmd {
    /// List the scenarios and whether each is running.
    List,
    /// Build a scenario and start its traffic (which ends by itself).
    Start {
        #[arg(value_parser = scenario_name)]
        name: &'static Scenario,
        /// How long the traffic runs (at most 60).
        #[arg(long, default_value_t = traffic::MAX_SECONDS, value_name = "SECONDS",
              value_parser = clap::value_parser!(u64).range(1..=traffic::MAX_SECONDS))]
        seconds: u64,
    },
    /// Run a started scenario's traffic again, stopping what still runs
    /// (after you changed something in its namespaces, e.g. applied the fix).
    Rerun {
        #[arg(value_parser = scenario_name)]
        name: &'static Scenario,
        #[arg(long, default_value_t = traffic::MAX_SECONDS, value_name = "SECONDS",
              value_parser = clap::value_parser!(u64).range(1..=traffic::MAX_SECONDS))]
        seconds: u64,
    },
    /// Stop a scenario's traffic and remove everything it created.
    Stop {
        #[arg(value_parser = scenario_name)]
        name: &'static Scenario,
    },
    #[command(name = "__serve", hide = true)]
    Serve {
        #[arg(value_parser = scenario_name)]
        name: &'static Scenario,
        #[arg(long)]
        seconds: u64,
        #[arg(long)]
        ready: PathBuf,
    },
    #[command(name = "__send", hide = true)]
    Send {
        #[arg(value_parser = scenario_name)]
        name: &'static Scenario,
        #[arg(long)]
        seconds: u64,
    },
    /// The traffic generator the kernel tests run in their namespaces
    /// (`tcpq-netlab`'s `traffic`: `server ...` or `client ...`; `stream ...`).
    #[command(name = "__gen", hide = true)]
    Gen {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// Run `tcpq lab ...`. Exit codes: 0 ok, 1 failure (privileges, a command
/// that failed, a scenario already running).
pub fn run(args: LabArgs) -> ExitCode {
    let r = match args.cmd {
        LabCmd::List => {
            list();
            Ok(())
        }
        LabCmd::Start { name, seconds } => root().and_then(|_| start(name, seconds)),
        LabCmd::Rerun { name, seconds } => root().and_then(|_| rerun(name, seconds)),
        LabCmd::Stop { name } => root().and_then(|_| stop(name)),
        LabCmd::Serve {
            name,
            seconds,
            ready,
        } => traffic::serve(name, seconds, &ready),
        LabCmd::Send { name, seconds } => traffic::send(name, seconds),
        LabCmd::Gen { args } => {
            return match tcpq_netlab::traffic::main(&args) {
                Ok(code) => ExitCode::from(code as u8),
                Err(e) => {
                    eprintln!("tcpq lab __gen: error: {e}");
                    ExitCode::from(match e {
                        tcpq_netlab::Error::Usage(_) => 2,
                        _ => 1,
                    })
                }
            }
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tcpq lab: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn root() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("the lab creates network namespaces: run it as root (sudo)".into());
    }
    Ok(())
}

fn state_dir(sc: &Scenario) -> PathBuf {
    Path::new(RUN_DIR).join(sc.name)
}

/// The state file: `key=value` lines.
#[derive(Debug, Default)]
struct State {
    pids: Vec<u32>,
    /// Unix seconds when the traffic ends by itself.
    ends: u64,
}

impl State {
    fn read(sc: &Scenario) -> Option<State> {
        let text = std::fs::read_to_string(state_dir(sc).join("state")).ok()?;
        let mut st = State::default();
        for line in text.lines() {
            match line.split_once('=') {
                Some(("pids", v)) => {
                    st.pids = v.split(',').filter_map(|p| p.trim().parse().ok()).collect()
                }
                Some(("ends", v)) => st.ends = v.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
        Some(st)
    }

    fn write(&self, sc: &Scenario) -> Result<(), String> {
        let pids: Vec<String> = self.pids.iter().map(u32::to_string).collect();
        let text = format!(
            "scenario={}\nnetns={},{}\npids={}\nends={}\n",
            sc.name,
            sc.netns("cli"),
            sc.netns("srv"),
            pids.join(","),
            self.ends
        );
        let dir = state_dir(sc);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        std::fs::write(dir.join("state"), text).map_err(|e| format!("{}: {e}", dir.display()))
    }

    /// Traffic processes of `sc` still alive (checked by their command
    /// line, so a recycled pid is never mistaken for ours).
    fn live(&self, sc: &Scenario) -> Vec<u32> {
        self.pids
            .iter()
            .copied()
            .filter(|&p| is_lab_process(p, sc))
            .collect()
    }
}

fn is_lab_process(pid: u32, sc: &Scenario) -> bool {
    let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // A zombie has finished; its parent has not reaped it yet.
    if stat
        .rsplit(')')
        .next()
        .is_some_and(|r| r.trim_start().starts_with('Z'))
    {
        return false;
    }
    let args: Vec<&[u8]> = cmd.split(|&b| b == 0).collect();
    let has = |w: &str| args.contains(&w.as_bytes());
    (has("__serve") || has("__send")) && has(sc.name)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn namespaces() -> Vec<String> {
    netns::list_namespaces()
}

/// Print to stdout, ignoring a closed pipe (`tcpq lab list | head`).
fn out(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn list() {
    let nss = namespaces();
    let mut s = String::new();
    let _ = writeln!(s, "{:<12} {:<5} {:<24} SUMMARY", "NAME", "PORT", "STATUS");
    for sc in SCENARIOS {
        let built = nss.contains(&sc.netns("cli")) || nss.contains(&sc.netns("srv"));
        let status = match State::read(sc) {
            Some(st) if !st.live(sc).is_empty() => {
                format!("running ({}s left)", st.ends.saturating_sub(now_secs()))
            }
            Some(_) => "traffic ended".to_string(),
            None if built => "left over: stop it".to_string(),
            None => "-".to_string(),
        };
        let _ = writeln!(
            s,
            "{:<12} {:<5} {:<24} {}",
            sc.name, sc.port, status, sc.summary
        );
    }
    s.push_str(
        "\ntcpq lab start NAME   build it and start its traffic (at most 60 s)\n\
         tcpq lab stop NAME    stop it and remove everything it created\n\
         Each scenario has a page: docs/lab/NAME.md\n",
    );
    out(&s);
}

fn start(sc: &'static Scenario, seconds: u64) -> Result<(), String> {
    if let Some(st) = State::read(sc) {
        let live = st.live(sc);
        if !live.is_empty() {
            return Err(format!(
                "{} is already running (pids {live:?}); `tcpq lab stop {}` first",
                sc.name, sc.name
            ));
        }
        eprintln!(
            "tcpq lab: removing what an earlier run of {} left behind",
            sc.name
        );
    }
    teardown(sc);
    if let Err(e) = build(sc).and_then(|_| launch(sc, seconds)) {
        teardown(sc);
        return Err(e);
    }
    out(&next_steps(sc, seconds));
    Ok(())
}

fn rerun(sc: &'static Scenario, seconds: u64) -> Result<(), String> {
    let Some(st) = State::read(sc) else {
        return Err(format!(
            "{} is not started; `tcpq lab start {}`",
            sc.name, sc.name
        ));
    };
    // The pages apply a fix and rerun at once, well within the first run's
    // 60 s: what still runs is the old traffic, and it has to go.
    if !st.live(sc).is_empty() {
        stop_traffic(sc, &st);
        let left = st.live(sc);
        if !left.is_empty() {
            return Err(format!(
                "{}'s traffic (pids {left:?}) did not stop; `tcpq lab stop {}`",
                sc.name, sc.name
            ));
        }
        println!("tcpq lab: {}: stopped the traffic still running", sc.name);
    }
    launch(sc, seconds)?;
    println!(
        "tcpq lab: {}: traffic running again for {seconds} s",
        sc.name
    );
    Ok(())
}

fn stop(sc: &'static Scenario) -> Result<(), String> {
    let had_state = State::read(sc).is_some();
    let nss = namespaces();
    let built = nss.contains(&sc.netns("cli")) || nss.contains(&sc.netns("srv"));
    teardown(sc);
    let nss = namespaces();
    let left: Vec<_> = ["cli", "srv"]
        .iter()
        .map(|s| sc.netns(s))
        .filter(|n| nss.contains(n))
        .collect();
    if !left.is_empty() {
        return Err(format!("could not remove {}", left.join(", ")));
    }
    if had_state || built {
        println!("tcpq lab: {} stopped; nothing of it is left", sc.name);
    } else {
        println!("tcpq lab: {} was not running", sc.name);
    }
    Ok(())
}

/// Create both namespaces, the veth pair, addresses, and the scenario's
/// setup (`tcpq-netlab`'s `Pair`, kept: the namespaces outlive this
/// process). The state file is written first, so a failure half way that
/// the pair's own cleanup missed is removed by `stop` (or the next
/// `start`).
fn build(sc: &'static Scenario) -> Result<(), String> {
    State::default().write(sc)?;
    let (cli, srv) = (sc.netns("cli"), sc.netns("srv"));
    let pair = netns::Pair::create(&netns::PairSpec {
        cli: cli.clone(),
        srv: srv.clone(),
        cli_if: CLI_IF,
        srv_if: SRV_IF,
        n: traffic::SUBNET,
        v6: false,
    })
    .map_err(|e| e.to_string())?;
    for s in sc.setup {
        match s {
            Setup::Sysctl { side, key, value } => pair.sysctl(&sc.netns(side), key, value),
            // Loss the sender cannot see locally, like loss on a wire.
            Setup::WireLoss { percent } => {
                pair.add_loss(&cli, *percent, NFT_TABLE).map(|l| l.keep())
            }
            Setup::GsoMaxSegs { side, segs } => pair.set_gso_max_segs(&sc.netns(side), *segs),
        }
        .map_err(|e| e.to_string())?;
    }
    pair.keep();
    Ok(())
}

/// Start the server, wait until it listens, start the client; record both.
fn launch(sc: &'static Scenario, seconds: u64) -> Result<(), String> {
    let dir = state_dir(sc);
    let exe = std::env::current_exe().map_err(|e| format!("cannot find tcpq itself: {e}"))?;
    let ready = dir.join("serve.ready");
    let _ = std::fs::remove_file(&ready);
    let secs = seconds.to_string();
    let spawn = |side: &str, sub: &str, extra: &[&str]| -> Result<std::process::Child, String> {
        let log = std::fs::File::create(dir.join(format!("{sub}.log").trim_start_matches('_')))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("ip")
            .args(["netns", "exec", &sc.netns(side)])
            .arg(&exe)
            .args(["lab", sub, sc.name, "--seconds", &secs])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            // Its own process group: Ctrl-C in the learner's shell does not
            // reach it; it ends by itself or with `lab stop`.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start the lab's {sub}: {e}"))?;
        Ok(child)
    };
    let mut st = State {
        pids: Vec::new(),
        ends: now_secs() + seconds,
    };
    let mut server = spawn("srv", "__serve", &["--ready", &ready.display().to_string()])?;
    st.pids.push(server.id());
    st.write(sc)?;
    let t0 = Instant::now();
    while !ready.exists() {
        // (Not `is_lab_process`: until it execs, the child's command line
        // is still ours.)
        let exited = matches!(server.try_wait(), Ok(Some(_)));
        if t0.elapsed() > Duration::from_secs(5) || exited {
            let log = std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default();
            return Err(format!("the lab's server did not start: {}", log.trim()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    st.pids.push(spawn("cli", "__send", &[])?.id());
    st.write(sc)
}

/// Remove everything `sc` may have created, whatever state it is in:
/// traffic processes, anything else inside its namespaces, the namespaces
/// (their veth, addresses, sysctls and nft table go with them) and the
/// state directory.
fn teardown(sc: &Scenario) {
    if let Some(st) = State::read(sc) {
        stop_traffic(sc, &st);
    }
    for side in ["cli", "srv"] {
        netns::delete_namespace(&sc.netns(side));
    }
    let _ = std::fs::remove_dir_all(state_dir(sc));
}

/// End `st`'s traffic processes: SIGTERM, then SIGKILL for any still
/// alive after 2 s.
fn stop_traffic(sc: &Scenario, st: &State) {
    let signal = |sig: i32| {
        for p in st.live(sc) {
            // SAFETY: kill(2) on a pid just verified to be our lab process.
            unsafe { libc::kill(p as libc::pid_t, sig) };
        }
    };
    signal(libc::SIGTERM);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(2) && !st.live(sc).is_empty() {
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(libc::SIGKILL);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(1) && !st.live(sc).is_empty() {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What `start` prints: what was built and what to run next.
pub fn next_steps(sc: &Scenario, seconds: u64) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "tcpq lab: {} is running: {}", sc.name, sc.summary);
    let _ = writeln!(
        s,
        "  server lab-reader {}:{} in netns {}",
        traffic::SRV_ADDR,
        sc.port,
        sc.netns("srv")
    );
    let _ = writeln!(
        s,
        "  client lab-writer {} in netns {}",
        traffic::CLI_ADDR,
        sc.netns("cli")
    );
    for st in sc.setup {
        match st {
            Setup::Sysctl { side, key, value } => {
                let _ = writeln!(s, "  {key}={value} in {}", sc.netns(side));
            }
            Setup::WireLoss { percent } => {
                let _ = writeln!(
                    s,
                    "  nft table inet {NFT_TABLE} in {} drops {percent}% of the client's packets",
                    sc.netns("srv")
                );
            }
            Setup::GsoMaxSegs { side, segs } => {
                let _ = writeln!(s, "  gso_max_segs {segs} on the {side} veth");
            }
        }
    }
    let _ = writeln!(
        s,
        "  traffic ends by itself in {seconds} s; `tcpq lab stop {}` removes everything",
        sc.name
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "Observe it from this shell (as root):");
    for (q, cmd) in sc.observe {
        let _ = writeln!(s, "  # {q}");
        let _ = writeln!(s, "  {cmd}");
    }
    if !sc.fix.is_empty() {
        let _ = writeln!(s, "Then apply the fix and watch the same program again:");
        for cmd in sc.fix {
            let _ = writeln!(s, "  {cmd}");
        }
    }
    let _ = writeln!(s, "The whole story: docs/lab/{}.md", sc.name);
    s
}
