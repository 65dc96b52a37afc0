//! `tcpq sockets [where EXPR] [print FIELD, ...]`: the TCP sockets that
//! exist now, like `ss -ti`, filtered with the probes' language.
use std::io::Write as _;
use std::process::ExitCode;

use tcpq_runtime::netns::{self, NetnsError};
use tcpq_runtime::render::{Format, Table};
use tcpq_runtime::sockets::{self, SocketsError};

use crate::{EXIT_RUNTIME, EXIT_USAGE};

const LONG_ABOUT: &str = "\
List the TCP sockets that exist now, like `ss -tie`, with the probes' fields \
and the same `where` language: `tcpq sockets where rcv_wscale == 0 and state == \
ESTABLISHED`. Values come from the kernel's sock_diag netlink interface (the \
socket's tcp_info, buffer sizes and cgroup), the owning process from /proc.

Without `print`, the columns are netns, state, saddr, sport, daddr, dport, \
snd_wscale, rcv_wscale, rcv_wnd, snd_wnd, srtt, rto, snd_cwnd, pid, comm. \
`tcpq -l sockets` lists every field. A value the kernel does not report for a \
socket (TIME_WAIT sockets and half-open requests have no tcp_info; listeners a \
short one) is `-` (JSON null), and a `where` that names a field a socket lacks \
does not list that socket. Sockets no process holds have pid 0 and no comm.

By default every network namespace tcpq can enter is listed (its own, those \
`ip netns` names, and those some process is in); `--netns` limits the listing.";

#[derive(clap::Args, Debug)]
#[command(long_about = LONG_ABOUT)]
pub struct SocketsArgs {
    /// Only this network namespace (repeatable): an `ip netns` name, `host`
    /// (tcpq's own), `pid:PID`, a path to a namespace file, or an inode
    /// number as `netns` prints it.
    #[arg(long = "netns", value_name = "NS")]
    netns: Vec<String>,

    /// Output format: aligned columns, or one JSON object per socket.
    #[arg(long, value_enum, default_value_t = crate::OutputFormat::Text)]
    format: crate::OutputFormat,

    /// Parse and check the query only; never touch the kernel. Exit 0 or 2.
    #[arg(long)]
    check: bool,

    /// The query: `[where EXPR] [print FIELD, ...]`, as one argument or
    /// several (joined with spaces). Options may come before or after it.
    #[arg(value_name = "QUERY", num_args = 0.., allow_negative_numbers = true)]
    query: Vec<String>,
}

pub fn run(args: SocketsArgs, color: bool) -> ExitCode {
    let source = args.query.join(" ");
    let origin = "<command line>";
    let query = match tcpq_dsl::compile_sockets(&source) {
        Ok(q) => q,
        Err(diags) => {
            eprint!("{}", tcpq_dsl::render_all(&diags, &source, origin, color));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if args.check {
        return ExitCode::SUCCESS;
    }
    let mut notes = Vec::new();
    let namespaces = if args.netns.is_empty() {
        match netns::list() {
            // Every namespace found; those that cannot be entered when
            // their turn comes are skipped by `sockets::list`.
            Ok(all) => all,
            Err(e) => {
                eprintln!("tcpq: error: cannot list network namespaces: {e}");
                return ExitCode::from(EXIT_RUNTIME);
            }
        }
    } else {
        let mut found = Vec::new();
        for spec in &args.netns {
            match netns::find(spec) {
                Ok(n) => {
                    if !found.iter().any(|f: &netns::Netns| f.inode == n.inode) {
                        found.push(n);
                    }
                }
                Err(e @ NetnsError::NotFound { .. }) => {
                    eprintln!("tcpq: error: --netns {spec}: {e}");
                    return ExitCode::from(EXIT_USAGE);
                }
                Err(e) => {
                    eprintln!("tcpq: error: --netns {spec}: {e}");
                    return ExitCode::from(EXIT_RUNTIME);
                }
            }
        }
        found
    };
    let listing = match sockets::list(&query, &namespaces, args.netns.is_empty()) {
        Ok(l) => l,
        Err(SocketsError::FieldUnavailable { field, why }) => {
            let d = tcpq_dsl::sockets::sockets_field_unavailable(&source, &field, &why);
            eprint!("{}", tcpq_dsl::render_all(&[d], &source, origin, color));
            return ExitCode::from(EXIT_RUNTIME);
        }
        Err(e) => {
            eprintln!("tcpq: error: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let format = match args.format {
        crate::OutputFormat::Text => Format::Text,
        crate::OutputFormat::Json => Format::Json,
    };
    let table = Table::new(&listing.columns, &[], format);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut lines = table
        .header()
        .into_iter()
        .chain(listing.rows.iter().map(|r| table.row(r)));
    // A closed pipe (`| head`) ends the listing quietly.
    if !lines.all(|l| writeln!(out, "{l}").is_ok()) || out.flush().is_err() {
        return ExitCode::SUCCESS;
    }
    drop(out);
    notes.extend(listing.notes);
    if format == Format::Text && listing.namespaces.len() > 1 {
        let named: Vec<String> = listing
            .namespaces
            .iter()
            .map(|(inode, label)| format!("{inode} {label}"))
            .collect();
        notes.push(format!("netns: {}", named.join(", ")));
    }
    for n in notes {
        eprintln!("tcpq: {n}");
    }
    ExitCode::SUCCESS
}
