//! `tcpq`: ask the Linux kernel's TCP stack questions, live, with eBPF.
//!
//! A thin edge: flags are parsed once, the program is compiled by
//! `tcpq-dsl` (never touching the kernel), and `tcpq-runtime` loads,
//! attaches and streams the plan. Exit codes: 0 ok, 2 bad program, recipe,
//! parameter or usage (nothing attached), 1 runtime failure.
use std::{
    io::{IsTerminal, Write},
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

mod command;
mod counters;
mod dist;
mod doctor;
mod recipes;
mod serve;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use tcpq_runtime::{features::Privilege, stream, Format, Kernel, RunOptions, Session};

mod lab;
mod list;
mod sockets;

/// Exit code for a bad program, recipe, parameter or usage.
pub(crate) const EXIT_USAGE: u8 = 2;
/// Exit code for a failure at run time (kernel, privileges, I/O).
pub(crate) const EXIT_RUNTIME: u8 = 1;

#[derive(Parser, Debug)]
#[command(
    name = "tcpq",
    // The version and the commit (build.rs).
    version = env!("TCPQ_VERSION"),
    about = "Ask the Linux kernel's TCP stack questions, live, with eBPF",
    override_usage = "tcpq [OPTIONS] -e PROGRAM\n       tcpq [OPTIONS] [run] RECIPE [--param NAME=VALUE]...\n       tcpq RECIPE --help\n       tcpq recipes [--format text|json]\n       tcpq -l [PROBE] [--format text|json]\n       tcpq sockets [where EXPR] [print FIELD, ...] [--netns NS]... [--format text|json]\n       tcpq counters [NAME...] [--netns NS]... [--duration DUR] [--every DUR] [--explain]\n       tcpq doctor [--format text|json] [--btf PATH] [--netns NS]...\n       tcpq serve [--listen ADDR] [--check] [--series-limit N] [--series-idle DUR] FILE|DIR|RECIPE... [--param NAME=VALUE]...\n       tcpq lab list\n       tcpq lab start|rerun|stop NAME [--seconds N]",
    // One of these (or a subcommand) is required; checked in `run`.
    group = clap::ArgGroup::new("source").args(["program", "recipe", "list"]),
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true,
    after_help = "RECIPE is the name of a built-in recipe (`tcpq recipes` lists them) or a file. \
An argument with a `/` is always a file (`./zero-window`, `recipes/x.tcpq`); otherwise a built-in \
recipe of that name wins over a file of that name in the current directory; anything else is a \
file.\n\nExamples:\n  tcpq -e 'on tcp_retransmit count by comm'\n  tcpq -e 'on tcp_select_window where win == 0 print comm, sport, dport, rcv_wnd'\n  tcpq zero-window --duration 10s\n  tcpq tcplife --param port=80,443 -4\n  tcpq -c 'curl -s http://example.com/ >/dev/null' tcpconnect\n  tcpq ./my-recipe.tcpq --param port=8000..8100\n  tcpq sockets where state == ESTABLISHED and not wscale_ok"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// List the probes, or explain one: the kernel moment, every field,
    /// and how it attaches on this kernel.
    #[arg(short = 'l', long = "list", value_name = "PROBE", num_args = 0..=1, default_missing_value = "")]
    list: Option<String>,

    /// With `-l`: print the probe reference as Markdown (docs/probes.md).
    #[arg(long, requires = "list")]
    markdown: bool,

    /// The program to run, e.g. `on tcp_retransmit count by comm`.
    #[arg(short = 'e', value_name = "PROGRAM")]
    program: Option<String>,

    /// A built-in recipe's name or a recipe file (`run` before it is
    /// optional): see below for which.
    #[arg(value_name = "RECIPE", num_args = 1..=2)]
    recipe: Vec<String>,

    /// A recipe parameter, `NAME=VALUE` (repeatable). VALUE may be a set
    /// where the type allows: `port=80,443`, `port=8000..8100`,
    /// `addr=10.0.0.0/8` (`FIELD == $p` then means "one of them").
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
    params: Vec<(String, String)>,

    /// Only sockets these processes own: adds `pid == PID` (or `pid in
    /// [...]`) to every clause. A comma-separated list is several.
    #[arg(short = 'p', long = "pid", value_name = "PID[,PID...]", value_parser = parse_pids)]
    pid: Option<Pids>,

    /// Run CMD (with /bin/sh -c) and trace only it and the processes it
    /// starts (their own cgroup: adds `cgroup == ID` to every clause); stop
    /// when it has exited and its connections have closed (at most 2 s
    /// later). tcpq's exit status keeps its meaning; the command's is
    /// reported on stderr. Needs cgroup v2.
    #[arg(short = 'c', long = "command", value_name = "CMD")]
    shell_command: Option<String>,

    /// Write events and aggregation rows to FILE (created or truncated)
    /// instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,

    /// Only IPv4 sockets: adds `family == AF_INET` to every clause.
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    ipv4: bool,

    /// Only IPv6 sockets: adds `family == AF_INET6` to every clause.
    #[arg(short = '6', long = "ipv6")]
    ipv6: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,

    /// Stop after this long (`5s`, `250ms`, `1m`); `0` attaches, detaches
    /// and exits.
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    duration: Option<Duration>,

    /// Parse, check and plan only; never touch the kernel. Exit 0 or 2.
    #[arg(long)]
    check: bool,

    /// Show the plan and, when the kernel is reachable (and not `--check`),
    /// how it would attach; attach nothing.
    #[arg(long)]
    explain: bool,

    /// Read the kernel's BTF from PATH (for kernels without
    /// /sys/kernel/btf/vmlinux).
    #[arg(long, value_name = "PATH")]
    btf: Option<PathBuf>,

    /// Use only the attach strategy called NAME (`fexit`, `kprobe`,
    /// `raw_tracepoint`...; `tcpq -l PROBE` lists a probe's) for every
    /// probe of the program, instead of the first one this kernel supports.
    /// Fails when a probe has no such strategy or it cannot run here.
    #[arg(long, value_name = "NAME")]
    strategy: Option<String>,

    /// Size of each printing clause's ring buffer in bytes (`4096`, `64k`,
    /// `1m`): a power of two, at least one page. Default: 1m shared by the
    /// printing clauses (1m for one, 512k each for two, 256k for three or
    /// four, 128k from five on). Events that find it full are counted and
    /// reported as lost, never printed.
    #[arg(long, value_name = "SIZE", value_parser = parse_buffer_size)]
    buffer_size: Option<u32>,

    /// Begin each printed event's text row with TIME: the wall clock in
    /// local time (TZ), HH:MM:SS.ffffff, as tcpdump prints it (BCC's -T).
    /// JSON rows always begin with "time": RFC 3339, UTC, microseconds.
    #[arg(short = 'T', long = "timestamps")]
    timestamps: bool,

    /// Add TIME(s) to each printed event: seconds since tcpq attached its
    /// probes, with microseconds (BCC's -t; JSON key "elapsed").
    #[arg(short = 't', long = "elapsed")]
    elapsed: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Report what this kernel offers tcpq and, for every probe, the
    /// strategy it would use or why it cannot run; and the TCP sysctls
    /// that shape windows and loss recovery, per network namespace, with
    /// the dangerous values flagged and why.
    Doctor {
        /// Output format: text, or one JSON object.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
        /// Read the kernel's BTF from PATH instead of
        /// /sys/kernel/btf/vmlinux.
        #[arg(long, value_name = "PATH")]
        btf: Option<PathBuf>,
        /// Also check the sysctls of this network namespace (an `ip netns`
        /// name, `host`, a path, `pid:PID` or an inode). Repeatable; tcpq's
        /// own namespace is always checked.
        #[arg(long = "netns", value_name = "NS")]
        netns: Vec<String>,
    },
    /// List the TCP sockets that exist now (like `ss -tie`), filtered with
    /// the same `where` language: `tcpq sockets where rcv_wscale == 0`.
    Sockets(sockets::SocketsArgs),
    /// Show the kernel's TCP counters (like nstat), per network namespace,
    /// as deltas over --duration or --every, with what each one means.
    Counters(counters::CountersArgs),
    /// Serve the aggregations of recipes as Prometheus metrics (/metrics),
    /// read from the kernel's maps at each scrape.
    Serve(serve::ServeArgs),
    /// Build small TCP scenarios in network namespaces to watch with tcpq.
    Lab(lab::LabArgs),
    /// List the built-in recipes: name, purpose, parameters (`tcpq NAME
    /// --help` describes one).
    Recipes {
        /// Output format: text, or one JSON object per recipe and line.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum OutputFormat {
    Text,
    Json,
}

/// `-p PID[,PID...]`.
#[derive(Clone, Debug)]
struct Pids(Vec<u32>);

/// `4242` or `4242,4243`.
fn parse_pids(s: &str) -> Result<Pids, String> {
    s.split(',')
        .map(|p| {
            p.trim()
                .parse::<u32>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("`{}` is not a process id", p.trim()))
        })
        .collect::<Result<_, _>>()
        .map(Pids)
}

pub(crate) fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected NAME=VALUE, got `{s}`")),
    }
}

/// `--duration DUR`: see [`duration_flag`].
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    duration_flag(s, "--duration")
}

/// A duration flag's value, read by the language's own grammar for
/// `every DUR` (`250ms`, `5s`, `1.5s`, `1m`, `1h`; see
/// `tcpq_dsl::parse_duration`), so both take the same spellings and a bad
/// one gets the same message. One addition: a bare `0`, which needs no
/// unit (`--duration 0` attaches, detaches and exits).
pub(crate) fn duration_flag(s: &str, flag: &str) -> Result<Duration, String> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    tcpq_dsl::parse_duration(s, flag).map_err(|ds| {
        ds.iter()
            .map(|d| match &d.help {
                Some(h) => format!("{}\n  = help: {h}", d.message),
                None => d.message.clone(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// The largest `--buffer-size`: 1 GiB.
const MAX_BUFFER: u64 = 1 << 30;

/// `4096`, `64k`, `1m` (KiB and MiB): a power of two, at least one page,
/// at most 1 GiB (the kernel's ring buffer rules).
fn parse_buffer_size(s: &str) -> Result<u32, String> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mult) = match t.strip_suffix(['k', 'm']) {
        Some(n) if t.ends_with('k') => (n, 1u64 << 10),
        Some(n) => (n, 1 << 20),
        None => (t.as_str(), 1),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size: write e.g. `4096`, `64k` or `1m`"))?;
    // SAFETY: sysconf has no preconditions.
    let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    let bytes = n
        .checked_mul(mult)
        .filter(|&b| b <= MAX_BUFFER)
        .ok_or_else(|| format!("`{s}` is too big: the most is 1024m"))?;
    if bytes < page || !bytes.is_power_of_two() {
        return Err(format!(
            "`{s}` ({bytes} bytes) must be a power of two of at least one page ({page} bytes)"
        ));
    }
    Ok(bytes as u32)
}

/// Colour on stderr only on a terminal and when `NO_COLOR` is unset.
fn stderr_color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn main() -> ExitCode {
    // Shell completion and `tcpq __generate DIR` (src/dist/).
    if let Some(code) = dist::intercept() {
        return code;
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if let Some(recipe) = recipe_asking_for_help(&e) {
                return list::recipe_help(&recipe);
            }
            // Help and version print to stdout and exit 0; usage errors
            // exit 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let (code, message) = runtime_failure(&e);
            eprintln!("{message}");
            ExitCode::from(code)
        }
    }
}

/// What `main` does with an error out of `run`: every one is a runtime
/// failure (a verifier rejection among them: a bug in a template, never in
/// the user's program), exit 1, with the whole chain of causes.
fn runtime_failure(e: &anyhow::Error) -> (u8, String) {
    (EXIT_RUNTIME, format!("tcpq: error: {e:#}"))
}

/// `tcpq RECIPE --help`: clap stops at `--help`; if the same command line
/// without it names a recipe, show that recipe's help instead.
fn recipe_asking_for_help(e: &clap::Error) -> Option<String> {
    if e.kind() != clap::error::ErrorKind::DisplayHelp {
        return None;
    }
    let args = std::env::args_os().filter(|a| a != "--help" && a != "-h");
    match Cli::try_parse_from(args) {
        Ok(Cli {
            command: None,
            recipe,
            ..
        }) => recipe_arg(&recipe).ok().flatten().map(str::to_owned),
        _ => None,
    }
}

/// The RECIPE of `[run] RECIPE`: `Ok(None)` when none is given.
fn recipe_arg(words: &[String]) -> Result<Option<&str>, String> {
    match words {
        [] => Ok(None),
        [r] if r == "run" => {
            Err("`tcpq run` needs a recipe: `tcpq run NAME` (`tcpq recipes` lists them)".into())
        }
        [r] => Ok(Some(r)),
        [run, r] if run == "run" => Ok(Some(r)),
        [a, b] => Err(format!(
            "one recipe at a time: `{a}` and `{b}` (to run a recipe by name: `tcpq run NAME`)"
        )),
        _ => Err("one recipe at a time".into()),
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(Command::Doctor { format, btf, netns }) = &cli.command {
        let json = matches!(format, OutputFormat::Json);
        return doctor::run(json, btf.as_deref(), netns);
    }
    let color = stderr_color();
    match cli.command {
        Some(Command::Lab(args)) => return Ok(lab::run(args)),
        Some(Command::Counters(args)) => return counters::run(args),
        Some(Command::Sockets(args)) => return Ok(sockets::run(args, color)),
        Some(Command::Serve(args)) => return serve::run(args, color),
        _ => {}
    }
    if let Some(Command::Recipes { format }) = &cli.command {
        list::out(&match format {
            OutputFormat::Text => recipes::list_text(),
            OutputFormat::Json => recipes::list_json(),
        });
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(probe) = &cli.list {
        let json = matches!(cli.format, OutputFormat::Json);
        return Ok(list::run(probe, cli.markdown, json));
    }
    let recipe = match recipe_arg(&cli.recipe) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tcpq: error: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let (source, origin) = match (&cli.program, recipe) {
        (Some(p), _) => (p.clone(), "<command line>".to_owned()),
        (None, Some(r)) => match recipes::load(r) {
            Ok(l) => (l.source, l.origin),
            Err(e) => {
                eprintln!("tcpq: error: {e}");
                return Ok(ExitCode::from(EXIT_USAGE));
            }
        },
        (None, None) => {
            use clap::CommandFactory;
            let _ = Cli::command()
                .error(
                    clap::error::ErrorKind::MissingRequiredArgument,
                    "give a program (-e PROGRAM), a RECIPE, -l or a subcommand",
                )
                .print();
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };

    // `-c`: until the command's cgroup exists, 0 stands for its id (in
    // `--check` and `--explain`, which create nothing).
    let mut restrictions = reflex_restrictions(&cli);
    if let Some(cmd) = cli.command_line() {
        restrictions.push(cgroup_restriction(&cmd, 0));
    }
    let plan = match build_plan(&cli, &source, &origin, &restrictions, color) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };

    if cli.explain {
        explain(&plan, !cli.check, cli.btf.as_deref(), (&source, &origin));
        if cli.command_line().is_some() {
            println!();
            println!(
                "note: -c: `cgroup == 0` stands for the command's own cgroup, created when it runs"
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if cli.check {
        return Ok(ExitCode::SUCCESS);
    }
    if !Privilege::current().sufficient() {
        anyhow::bail!("tcpq needs root or CAP_BPF+CAP_PERFMON to attach probes (try sudo)");
    }
    for pid in cli.pid.iter().flat_map(|p| &p.0) {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("tcpq: error: -p {pid}: no such process");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    }
    let output: Option<std::fs::File> = match &cli.output {
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("tcpq: error: -o {}: {e}", path.display());
                return Ok(ExitCode::from(EXIT_USAGE));
            }
        },
        None => None,
    };
    // `-c`: the command's cgroup, then the plan with its real id.
    let cgroup = match cli.command_line() {
        Some(cmd) => {
            let cg = command::Cgroup::create().map_err(anyhow::Error::msg)?;
            restrictions.pop();
            restrictions.push(cgroup_restriction(&cmd, cg.id));
            Some((cmd, cg))
        }
        None => None,
    };
    let plan = match cgroup {
        Some(_) => match build_plan(&cli, &source, &origin, &restrictions, color) {
            Ok(p) => p,
            Err(code) => return Ok(code),
        },
        None => plan,
    };
    let timing = std::env::var_os("TCPQ_TIMINGS").is_some_and(|v| !v.is_empty());
    let t0 = Instant::now();
    // Catch Ctrl-C/SIGTERM before attaching, so a signal that arrives at
    // any point from here on ends the run cleanly.
    let mut runner = stream::Runner::new()?;
    let kernel = Kernel::open_for(cli.btf.as_deref(), Some(&plan))
        .context("cannot read what this kernel offers")?;
    let t_kernel = t0.elapsed();
    // The program is fine but this kernel may lack a field, a constant
    // or a probe it uses: each is pointed at like any other diagnostic.
    let bound = match kernel.bind(&plan) {
        Ok(b) => b,
        Err(diags) => {
            eprint!("{}", tcpq_dsl::render_all(&diags, &source, &origin, color));
            return Ok(ExitCode::from(EXIT_RUNTIME));
        }
    };
    let mut session = Session::open(&bound, &kernel)?;
    let t_attached = t0.elapsed();
    let mut note = String::new();
    if let Some(d) = cli.duration.filter(|d| !d.is_zero()) {
        note = format!(" for {}", show_duration(d));
    }
    eprintln!("tcpq: {}{note}; Ctrl-C to stop", session.summary());
    note_owner_gaps(&session);

    // `-c`: the command starts only now, with every probe attached.
    let traced = match &cgroup {
        Some((cmd, cg)) => {
            Some(command::spawn(cmd, cg).with_context(|| format!("-c: cannot run `{cmd}`"))?)
        }
        None => None,
    };
    let opts = RunOptions {
        format: match cli.format {
            OutputFormat::Text => Format::Text,
            OutputFormat::Json => Format::Json,
        },
        duration: cli.duration,
        stamps: tcpq_runtime::render::Stamps {
            clock: cli.timestamps,
            elapsed: cli.elapsed,
        },
        stop_fd: traced.as_ref().map(command::Traced::stop_fd),
    };
    let stdout = std::io::stdout();
    let mut out: Box<dyn Write> = match output {
        Some(f) => Box::new(std::io::BufWriter::new(f)),
        None => Box::new(std::io::BufWriter::new(stdout.lock())),
    };
    let report = runner.run(&mut session, opts, &mut out);
    if let Some(t) = traced {
        t.finish();
    }
    let report = report?;
    out.flush().context("cannot write the output")?;
    // A test hook (tests/kernel/reliability.rs): panic while every probe is
    // still attached, to show that unwinding detaches them. Harmless: it
    // only turns a clean exit into a crash for whoever sets it.
    if std::env::var_os("TCPQ_TEST_PANIC_AFTER_ATTACH").is_some_and(|v| v == "1") {
        panic!("TCPQ_TEST_PANIC_AFTER_ATTACH=1: panicking with probes attached (test hook)");
    }
    let t_run = t0.elapsed();
    let timings = session.timings.clone();
    drop(session);
    if timing {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        eprintln!(
            "tcpq: timings: kernel {:.1} ms (btf index {:.1}, offsets {:.1}), loader {:.1}, owners {:.1}, load {:.1}, attach {:.1}, attached at {:.1}, detach {:.1}, total {:.1}",
            ms(t_kernel),
            ms(kernel.btf_time),
            ms(kernel.offsets.btf_resolve_time + kernel.offsets.tracefs_time),
            ms(timings.loader),
            ms(timings.owners),
            ms(timings.load),
            ms(timings.attach),
            ms(t_attached),
            ms(t0.elapsed() - t_run),
            ms(t0.elapsed())
        );
        for (prog, d, insns) in &timings.programs {
            let insns = insns.map_or("?".to_owned(), |n| n.to_string());
            eprintln!(
                "tcpq: timings:   {prog}: verify {:.1} ms, {insns} insns verified",
                ms(*d)
            );
        }
    }
    for w in report.warnings() {
        eprintln!("tcpq: {w}");
    }
    // With --format json, the same accounting as one JSON line on stderr
    // (stdout carries only events and aggregation rows).
    if matches!(cli.format, OutputFormat::Json) {
        eprintln!("{}", report.summary_json());
    }
    Ok(ExitCode::SUCCESS)
}

impl Cli {
    /// `-c CMD` (the field `command` is the subcommand).
    fn command_line(&self) -> Option<String> {
        self.shell_command.clone()
    }
}

/// `-p`, `-4`, `-6` as conditions for every clause.
fn reflex_restrictions(cli: &Cli) -> Vec<tcpq_dsl::Restriction> {
    use tcpq_dsl::ast::Value;
    let mut r = Vec::new();
    if let Some(Pids(pids)) = &cli.pid {
        r.push(tcpq_dsl::Restriction {
            flag: format!(
                "-p {}",
                pids.iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            field: "pid",
            values: pids
                .iter()
                .map(|&p| Value::Int {
                    value: i128::from(p),
                    suffix: None,
                })
                .collect(),
        });
    }
    for (on, flag, name) in [(cli.ipv4, "-4", "AF_INET"), (cli.ipv6, "-6", "AF_INET6")] {
        if let (true, Some(f)) = (on, tcpq_dsl::catalog::family_by_name(name)) {
            r.push(tcpq_dsl::Restriction {
                flag: flag.into(),
                field: "family",
                values: vec![Value::Family(f)],
            });
        }
    }
    r
}

fn cgroup_restriction(cmd: &str, id: u64) -> tcpq_dsl::Restriction {
    let _ = cmd;
    tcpq_dsl::Restriction {
        flag: "-c".into(),
        field: "cgroup",
        values: vec![tcpq_dsl::ast::Value::Int {
            value: i128::from(id),
            suffix: None,
        }],
    }
}

/// Compile with the command line's restrictions and `--strategy`; on a
/// bad program, print why and give the exit code.
fn build_plan(
    cli: &Cli,
    source: &str,
    origin: &str,
    restrictions: &[tcpq_dsl::Restriction],
    color: bool,
) -> Result<tcpq_dsl::plan::Plan, ExitCode> {
    let mut plan = match tcpq_dsl::compile_with(source, origin, &cli.params, restrictions) {
        Ok(plan) => plan,
        Err(diags) => {
            eprint!("{}", tcpq_dsl::render_all(&diags, source, origin, color));
            return Err(ExitCode::from(EXIT_USAGE));
        }
    };
    if let Some(name) = &cli.strategy {
        for clause in &mut plan.clauses {
            if !clause.strategies.iter().any(|s| &s.name == name) {
                let names: Vec<&str> = clause.strategies.iter().map(|s| s.name.as_str()).collect();
                eprintln!(
                    "tcpq: error: --strategy {name}: probe {} has no strategy `{name}` (its strategies: {})",
                    clause.probe,
                    names.join(", ")
                );
                return Err(ExitCode::from(EXIT_USAGE));
            }
            clause.strategies.retain(|s| &s.name == name);
        }
    }
    if let Some(bytes) = cli.buffer_size {
        plan.set_ring_bytes(bytes);
    }
    Ok(plan)
}

pub(crate) fn show_duration(d: Duration) -> String {
    if d.subsec_millis() != 0 || d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs())
    }
}

/// Print the plan, then what this kernel would do with it. Without
/// privileges (or tracefs, or BTF) the second half says why it is missing.
fn explain(
    plan: &tcpq_dsl::plan::Plan,
    kernel: bool,
    btf: Option<&std::path::Path>,
    source: (&str, &str),
) {
    let mut text = tcpq_dsl::explain(plan);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    print!("{text}");
    if !kernel {
        return;
    }
    println!();
    println!("On this kernel:");
    if !Privilege::current().sufficient() {
        println!("  not checked: reading tracefs needs root or CAP_BPF+CAP_PERFMON");
        return;
    }
    let kernel = match Kernel::open_with(btf) {
        Ok(k) => k,
        Err(e) => {
            println!("  not checked: {e}");
            return;
        }
    };
    let bound = match kernel.bind(plan) {
        Ok(bound) => bound,
        Err(diags) => {
            // Rendered without colour: `--explain` is read, and piped.
            let (source, origin) = source;
            for line in tcpq_dsl::render_all(&diags, source, origin, false).lines() {
                println!("  {line}");
            }
            return;
        }
    };
    for (c, b) in bound.plan.clauses.iter().zip(&bound.clauses) {
        for bind in &c.binds {
            println!(
                "  {}: {} = {} in this kernel's enum {}",
                c.probe,
                bind.bind.constant,
                c.filter[usize::from(bind.insn)].value,
                bind.bind.enum_name
            );
        }
        let s = &b.choice.strategy;
        println!(
            "  {}: strategy {} ({}), program {}",
            c.probe,
            s.name,
            s.attach.describe(),
            s.program
        );
        for k in &b.choice.skipped {
            println!(
                "    skipped {} ({}): {}",
                k.name,
                k.attach,
                k.reasons.join("; ")
            );
        }
        if b.config.quick.size != 0 {
            println!("    quick first step: placed (the filter's first step runs first)");
        }
        // What this strategy cannot fill here, of the fields the clause
        // does not use (the ones it uses were checked by binding).
        let all: Vec<String> = tcpq_dsl::catalog::probe(&c.probe)
            .map(|p| {
                p.all_fields()
                    .filter(|f| f.header.is_none() && !c.fields.iter().any(|u| u == f.name))
                    .map(|f| f.name.to_owned())
                    .collect()
            })
            .unwrap_or_default();
        for (field, why) in tcpq_runtime::strategy::unavailable_fields(s, &all, &kernel.features) {
            println!("    unavailable here (not used): `{field}`: {why}");
        }
    }
    println!(
        "  offsets: {} indexed in {:.1} ms, {} locations resolved in {:.1} ms",
        tcpq_runtime::btf::VMLINUX_BTF,
        kernel.btf_time.as_secs_f64() * 1e3,
        kernel.offsets.locs.iter().filter(|l| l.size != 0).count(),
        (kernel.offsets.btf_resolve_time + kernel.offsets.tracefs_time).as_secs_f64() * 1e3
    );
    println!(
        "  features: found by trying in {:.1} ms (tcpq doctor shows them)",
        kernel.features_time.as_secs_f64() * 1e3
    );
    for n in &kernel.offsets.notes {
        println!("  note: {n}");
    }
    for (_, what, why) in &kernel.offsets.missing {
        println!("  unresolved: {what}: {why}");
    }
}

/// Says, per clause, what owner tracking misses on this kernel (some
/// sockets may then show no `comm`).
pub(crate) fn note_owner_gaps(session: &tcpq_runtime::Session) {
    for c in &session.clauses {
        if !c.owner_gaps.is_empty() {
            eprintln!(
                "tcpq: note: {}: owner tracking misses {} on this kernel; some sockets may show no comm",
                c.plan.probe,
                c.owner_gaps.join(", ")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("5parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1e400s").is_err());
        // The language's spellings (`every 1_000ms`), and its refusals.
        assert_eq!(parse_duration("1_000ms"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration(" 2h "), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("1.5ms").is_err());
        assert!(parse_duration(".5s").is_err());
        assert!(parse_duration("").is_err());
    }

    /// A bad unit gets the language's message and help, naming the flag.
    #[test]
    fn duration_errors_are_the_languages() {
        assert_eq!(
            parse_duration("5x").unwrap_err(),
            "`x` is not a unit of `--duration`\n  = help: `--duration` is in milliseconds: \
             write `ms`, `s`, `m` or `h`"
        );
        assert_eq!(
            parse_duration("5").unwrap_err(),
            "`--duration 5` has no unit\n  = help: write e.g. `--duration 5s` or `--duration 5ms`"
        );
        assert_eq!(
            parse_duration("-1s").unwrap_err(),
            "`--duration -1s` is negative\n  = help: write a duration from `--duration 0s` up"
        );
        assert!(duration_flag("5parsecs", "--every")
            .unwrap_err()
            .starts_with("`parsecs` is not a unit of `--every`"));
    }

    /// A verifier rejection while opening the session reaches `main` as an
    /// error, exits 1 and prints the template, the program and the log.
    #[test]
    fn a_verifier_rejection_exits_1_with_the_log() {
        let e = tcpq_runtime::SessionError::Verifier {
            template: "tcp_probe".into(),
            program: "tcpq_probe_tp".into(),
            errno: std::io::Error::from_raw_os_error(libc::EACCES),
            log_tail: "0: (bf) r0 = r2\nR2 !read_ok".into(),
        };
        // `Session::open(..)?` in `run`: the error goes up to `main` as is.
        let err: anyhow::Error = e.into();
        let (code, msg) = runtime_failure(&err);
        assert_eq!(code, 1);
        assert!(msg.starts_with("tcpq: error: "), "{msg}");
        assert!(msg.contains("tcp_probe/tcpq_probe_tp"), "{msg}");
        assert!(msg.ends_with("R2 !read_ok"), "{msg}");
    }

    #[test]
    fn buffer_sizes() {
        assert_eq!(parse_buffer_size("4096"), Ok(4096));
        assert_eq!(parse_buffer_size("64k"), Ok(65536));
        assert_eq!(parse_buffer_size("1M"), Ok(1 << 20));
        assert_eq!(parse_buffer_size("1024m"), Ok(1 << 30));
        for bad in [
            "",
            "0",
            "100",
            "4095",
            "12288",
            "2048m",
            "1g",
            "-4096",
            "4k4",
            "99999999999999999999",
        ] {
            assert!(parse_buffer_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn params() {
        assert_eq!(parse_param("port=80"), Ok(("port".into(), "80".into())));
        assert_eq!(parse_param("x=a=b"), Ok(("x".into(), "a=b".into())));
        assert!(parse_param("=1").is_err());
        assert!(parse_param("port").is_err());
    }

    /// A subcommand would shadow a built-in recipe of the same name.
    #[test]
    fn no_recipe_is_named_like_a_subcommand() {
        use clap::CommandFactory;
        let cmd = Cli::command();
        let mut taken: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
        taken.push("run");
        for (name, _) in recipes::EMBEDDED {
            assert!(
                !taken.contains(name),
                "recipe `{name}` is shadowed by a subcommand"
            );
        }
    }

    #[test]
    fn recipe_words() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(recipe_arg(&w(&[])), Ok(None));
        assert_eq!(recipe_arg(&w(&["tcplife"])), Ok(Some("tcplife")));
        assert_eq!(recipe_arg(&w(&["run", "tcplife"])), Ok(Some("tcplife")));
        assert!(recipe_arg(&w(&["run"])).is_err());
        assert!(recipe_arg(&w(&["tcplife", "x"])).is_err());
        assert_eq!(parse_pids("1,22").map(|p| p.0).as_deref(), Ok(&[1, 22][..]));
        assert!(parse_pids("0").is_err() && parse_pids("x").is_err() && parse_pids("1,").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
