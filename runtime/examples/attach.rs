//! Attach one catalog probe without the language, for testing templates:
//!
//! ```text
//! cargo run -p tcpq-runtime --example attach -- tcp_probe print comm,sport,dport,srtt 2s
//! cargo run -p tcpq-runtime --example attach -- tcp_retransmit count comm 2s json
//! ```
use std::time::{Duration, Instant};

use tcpq_runtime::{stream, Format, Kernel, RunOptions, Session};

fn main() {
    let t0 = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [probe, action, fields, secs, rest @ ..] = args.as_slice() else {
        eprintln!("usage: attach PROBE print|count FIELD,FIELD|- DURATION_SECS [json]");
        std::process::exit(2);
    };
    // Through the language, so the plan is lowered like any other.
    let fields: Vec<&str> = fields
        .split(',')
        .filter(|f| !f.is_empty() && *f != "-")
        .collect();
    let src = match (action.as_str(), fields.is_empty()) {
        ("count", true) => format!("on {probe} count"),
        ("count", false) => format!("on {probe} count by {}", fields.join(", ")),
        _ => format!("on {probe} print {}", fields.join(", ")),
    };
    let plan = match tcpq_dsl::compile(&src, "<attach>", &[]) {
        Ok(p) => p,
        Err(diags) => {
            eprint!("{}", tcpq_dsl::render_all(&diags, &src, "<attach>", false));
            std::process::exit(2);
        }
    };
    let kernel = Kernel::open().expect("kernel");
    let t_kernel = t0.elapsed();
    let bound = match kernel.bind(&plan) {
        Ok(b) => b,
        Err(diags) => {
            eprint!("{}", tcpq_dsl::render_all(&diags, &src, "<attach>", false));
            std::process::exit(1);
        }
    };
    let mut session = match Session::open(&bound, &kernel) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    eprintln!(
        "tcpq: {} (kernel {:?}, btf {:?}, loader {:?}, load {:?}, attach {:?}, total {:?})",
        session.summary(),
        t_kernel,
        kernel.btf_time,
        session.timings.loader,
        session.timings.load,
        session.timings.attach,
        t0.elapsed()
    );
    let opts = RunOptions {
        format: if rest.first().map(String::as_str) == Some("json") {
            Format::Json
        } else {
            Format::Text
        },
        duration: Some(Duration::from_secs_f64(secs.parse().expect("secs"))),
        stamps: Default::default(),
        stop_fd: None,
    };
    let report = stream::run_blocking(&mut session, opts, &mut std::io::stdout()).expect("run");
    eprintln!("{report:?}");
    let t = Instant::now();
    drop(session);
    eprintln!("detach {:?}, total {:?}", t.elapsed(), t0.elapsed());
    for w in report.warnings() {
        eprintln!("tcpq: {w}");
    }
}
