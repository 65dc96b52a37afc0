//! Attach one catalog probe without the language, for testing templates:
//!
//! ```text
//! cargo run -p tcpq-runtime --example attach -- tcp_probe print comm,sport,dport,srtt 2s
//! cargo run -p tcpq-runtime --example attach -- tcp_retransmit count comm 2s json
//! ```
use std::time::{Duration, Instant};

use tcpq_dsl::{
    catalog,
    plan::{Action, ClausePlan, Column, Plan},
};
use tcpq_runtime::{stream, Format, Kernel, RunOptions, Session};

fn main() {
    let t0 = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [probe, action, fields, secs, rest @ ..] = args.as_slice() else {
        eprintln!("usage: attach PROBE print|count FIELD,FIELD|- DURATION_SECS [json]");
        std::process::exit(2);
    };
    let def = catalog::probe(probe).expect("unknown probe");
    let cols: Vec<Column> = fields
        .split(',')
        .filter(|f| !f.is_empty() && *f != "-")
        .map(|f| {
            let fd = def.field(f).unwrap_or_else(|| panic!("no field {f}"));
            Column {
                name: fd.name.into(),
                ty: fd.ty,
                slots: fd.slots.to_vec(),
                source: Default::default(),
                scale: None,
                labels: fd.labels.map(|l| l.map(str::to_owned)),
            }
        })
        .collect();
    let plan = Plan {
        clauses: vec![ClausePlan {
            probe: def.name.into(),
            template: def.template.into(),
            strategies: def.strategies.iter().map(|s| s.to_plan()).collect(),
            where_source: None,
            where_words: None,
            where_omitted: Vec::new(),
            loads: Vec::new(),
            filter: vec![],
            binds: Vec::new(),
            field_spans: Vec::new(),
            action: if action == "count" {
                Action::Count { keys: cols }
            } else {
                Action::Print { columns: cols }
            },
            output: Default::default(),
        }],
        left_out: Vec::new(),
    };
    let kernel = Kernel::open().expect("kernel");
    let t_kernel = t0.elapsed();
    let mut session = match Session::open(&plan, &kernel) {
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
