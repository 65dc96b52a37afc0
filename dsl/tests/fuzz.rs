//! A mutation fuzzer over the whole front end (parse → resolve → check →
//! plan → explain), with no dependency beyond the crate: valid programs are
//! cut, spliced and sprinkled with the language's own tokens, and every
//! result must be a plan within the ABI's limits or a list of diagnostics
//! that render. No input may panic or take long.
//!
//! `cargo test` runs a fixed number of cases; `TCPQ_FUZZ_SECS=N` runs for N
//! seconds instead (`.ci/run` does), and `TCPQ_FUZZ_SEED` replays a run.
//! The number of cases run is printed.
use std::time::{Duration, Instant};
use tcpq_dsl::plan::{Action, Jump};
use tcpq_dsl::{compile, explain, render_all};

const CORPUS: &[&str] = &[
    "on tcp_select_window where win == 0 print pid, comm",
    "on tcp_retransmit count by comm, daddr, dport",
    "on tcp_probe where srtt > 1.5ms and daddr in [10.0.0.0/8, fd00::/8] print srtt / 1ms as ms limit 5",
    "on tcp_probe hist srtt by dport top 3 every 1s",
    "on tcp_select_window where win_bytes / 1024 >= 64 lhist win_bytes, 0, 256KiB, 16KiB",
    "on tcp_probe where comm == \"ngi*\" or not (sport in 8000..8100) stats snd_cwnd by comm",
    "# @param port: port = 80  the port\non tcp_probe where sport == $port sum bytes_acked",
    "on tcp_retransmit where 2 * segs > 3 and state != ESTABLISHED min segs; on tcp_probe max srtt",
    "on tcp_probe where comm in [\"nginx\", \"envoy\"] and state in [ESTABLISHED, CLOSE_WAIT] and dport in [443, 8000..8100] print pid, comm",
];

const TOKENS: &[&str] = &[
    "on ",
    " where ",
    " print ",
    " count",
    " by ",
    " and ",
    " or ",
    " not ",
    " in ",
    " as ",
    " sum ",
    " avg ",
    " min ",
    " max ",
    " stats ",
    " hist ",
    " lhist ",
    " top ",
    " every ",
    " limit ",
    "(",
    ")",
    "[",
    "]",
    ",",
    ";",
    "\n",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "=",
    "&&",
    "||",
    "!",
    "/",
    "*",
    "+",
    "-",
    "..",
    "/8",
    "/129",
    "$port",
    "$",
    "#",
    "\"",
    "\"x*\"",
    "\\",
    "0",
    "1",
    "65535",
    "65536",
    "18446744073709551616",
    "0x",
    "0xffff",
    "1.5",
    "1.5s",
    "10ms",
    "64KiB",
    "1e9",
    "5us",
    "3seg",
    "10.0.0.1",
    "300.1.1.1",
    "::1",
    "fe80::",
    ":::",
    "ESTABLISHED",
    "[nginx, envoy]",
    "[ESTABLISHED, BOGUS]",
    "[srtt]",
    "nginx",
    "BOGUS",
    "NETFILTER_DROP",
    "EPERM",
    "AF_INET6",
    "true",
    "srtt",
    "win",
    "win_bytes",
    "comm",
    "saddr",
    "daddr",
    "dport",
    "sport",
    "pid",
    "segs",
    "mss",
    "tcp_probe",
    "tcp_retransmit",
    "tcp_select_window",
    "é",
    "日本",
    "\t",
    " ",
];

/// xorshift64*: deterministic, seedable, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn char_floor(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn mutate(rng: &mut Rng, src: &str) -> String {
    let mut s = src.to_string();
    // Mostly one or two edits, so that many cases get past the parser and
    // exercise resolve, check and plan.
    let edits = [1, 1, 1, 2, 2, 3, 5][rng.below(7)];
    for _ in 0..edits {
        if rng.below(3) == 0 {
            // Swap one word for a token: keeps the shape of a program.
            let words: Vec<(usize, usize)> = word_spans(&s);
            if let Some(&(a, b)) = words.get(rng.below(words.len())) {
                let t = TOKENS[rng.below(TOKENS.len())].trim();
                s.replace_range(a..b, t);
                continue;
            }
        }
        let at = char_floor(&s, rng.below(s.len() + 1));
        let to = char_floor(&s, at + rng.below(12));
        match rng.below(6) {
            0 => s.insert_str(at, TOKENS[rng.below(TOKENS.len())]),
            1 => s.replace_range(at..to.max(at), ""),
            2 => {
                let piece = s[at..to.max(at)].to_string();
                let at2 = char_floor(&s, rng.below(s.len() + 1));
                s.insert_str(at2, &piece);
            }
            3 => {
                let other = CORPUS[rng.below(CORPUS.len())];
                let cut = char_floor(other, rng.below(other.len() + 1));
                s.truncate(at);
                s.push_str(&other[cut..]);
            }
            4 => s.truncate(at),
            _ => {
                let t = TOKENS[rng.below(TOKENS.len())];
                s.replace_range(at..to.max(at), t);
            }
        }
    }
    s
}

/// Byte ranges of the words of `s`.
fn word_spans(s: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        let w = c.is_alphanumeric() || c == '_' || c == '.' || c == ':' || c == '$';
        match (w, start) {
            (true, None) => start = Some(i),
            (false, Some(a)) => {
                out.push((a, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(a) = start {
        out.push((a, s.len()));
    }
    out
}

/// One case: whatever happens must be a valid plan or rendered errors.
fn run_case(src: &str, params: &[(String, String)]) -> bool {
    match compile(src, "fuzz", params) {
        Ok(plan) => {
            for c in &plan.clauses {
                assert!(c.filter.len() <= tcpq_abi::MAX_INSNS, "{src}");
                // An accepted `where` is never lost: only a comparison left
                // out for an absent optional parameter may vanish.
                if c.where_source.is_some() && c.where_omitted.is_empty() {
                    assert!(!c.filter.is_empty(), "where clause dropped: {src}");
                }
                for (i, insn) in c.filter.iter().enumerate() {
                    for j in [insn.jt, insn.jf] {
                        if let Jump::To(t) = j {
                            assert!(usize::from(t) > i, "backward jump: {src}");
                        }
                    }
                }
                let key_slots: usize = c.action.keys().iter().map(|k| k.slots.len()).sum();
                let bucket =
                    matches!(&c.action, Action::Aggregate { func, .. } if func.is_histogram());
                assert!(
                    key_slots + usize::from(bucket) <= tcpq_abi::MAX_KEY_SLOTS,
                    "{src}"
                );
                assert!(c.loads.len() <= tcpq_abi::MAX_LOADS, "{src}");
                // What was accepted is what the kernel reads: every step,
                // load and key slot made it into the CONFIG entry.
                let cfg = &c.config;
                assert_eq!(cfg.n_insns as usize, c.filter.len(), "{src}");
                for (abi, insn) in cfg.insns.iter().zip(&c.filter) {
                    assert_eq!(*abi, insn.to_abi(), "{src}");
                }
                assert_eq!(cfg.n_loads as usize, c.loads.len(), "{src}");
                assert_eq!(cfg.n_key_slots as usize, key_slots, "{src}");
            }
            let _ = explain(&plan);
            true
        }
        Err(diags) => {
            assert!(!diags.is_empty(), "error without diagnostics: {src}");
            let _ = render_all(&diags, src, "fuzz", false);
            let _ = render_all(&diags, src, "fuzz", true);
            false
        }
    }
}

#[test]
fn the_corpus_compiles() {
    let params = [("port".to_string(), "8080".to_string())];
    for src in CORPUS {
        let p = if src.contains("@param") {
            &params[..]
        } else {
            &[]
        };
        if let Err(d) = compile(src, "corpus", p) {
            panic!("{}", render_all(&d, src, "corpus", false));
        }
    }
}

#[test]
fn front_end_never_panics_or_hangs() {
    let secs: Option<u64> = std::env::var("TCPQ_FUZZ_SECS")
        .ok()
        .and_then(|v| v.parse().ok());
    let seed: u64 = std::env::var("TCPQ_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            if secs.is_some() {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
                    | 1
            } else {
                0x7c9e_55aa_1234_5679
            }
        });
    let mut rng = Rng(seed);
    let params = [("port".to_string(), "8080".to_string())];
    let start = Instant::now();
    let budget = secs.map(Duration::from_secs);
    let (mut cases, mut ok) = (0u64, 0u64);
    let mut slowest = Duration::ZERO;
    loop {
        let done = match budget {
            Some(b) => start.elapsed() >= b,
            None => cases >= 3000,
        };
        if done {
            break;
        }
        let base = CORPUS[rng.below(CORPUS.len())];
        let src = mutate(&mut rng, base);
        let t = Instant::now();
        // A program without a header takes no parameters.
        let p = if src.contains("@param") {
            &params[..]
        } else {
            &[]
        };
        ok += u64::from(run_case(&src, p));
        let took = t.elapsed();
        slowest = slowest.max(took);
        assert!(
            took < Duration::from_secs(1),
            "case took {took:?} (seed {seed}): {src:?}"
        );
        cases += 1;
    }
    eprintln!(
        "fuzz: {cases} cases in {:.1}s (seed {seed}): {ok} compiled, {} rejected with \
         diagnostics; slowest {slowest:?}; no panic, no hang",
        start.elapsed().as_secs_f64(),
        cases - ok
    );
}
