//! The kernel's own view of live sockets: `ss -tinm` (tcp_info and
//! skmem), parsed into key/value pairs per socket.

use super::exec_ok;
use std::collections::HashMap;

/// One socket as `ss -Htinm` prints it.
#[derive(Debug, Clone, Default)]
pub struct SsSock {
    pub state: String,
    pub local: String,
    pub peer: String,
    pub lport: u16,
    pub rport: u16,
    /// `key:value` tokens of the info line (`wscale` -> `7,7`, `rtt` ->
    /// `0.05/0.025`, `mss` -> `1448`, ...); `skmem` is split into
    /// `skmem.rb`, `skmem.tb`, ...
    pub info: HashMap<String, String>,
    /// The raw text, for failure messages.
    pub text: String,
}

impl SsSock {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.info.get(k).map(String::as_str)
    }
    /// A numeric `key:N` token; panics with the socket when missing.
    pub fn num(&self, k: &str) -> u64 {
        self.get(k)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("ss shows no numeric {k}: {}", self.text))
    }
    /// `wscale:S,R` as (snd_wscale, rcv_wscale); None without scaling.
    pub fn wscale(&self) -> Option<(u64, u64)> {
        let (s, r) = self.get("wscale")?.split_once(',')?;
        Some((s.parse().ok()?, r.parse().ok()?))
    }
    /// `rtt:SRTT/RTTVAR` (milliseconds, printed from microseconds) as
    /// microseconds.
    pub fn rtt_us(&self) -> (u64, u64) {
        let v = self
            .get("rtt")
            .unwrap_or_else(|| panic!("ss shows no rtt: {}", self.text));
        let (a, b) = v.split_once('/').expect("rtt:a/b");
        let us = |x: &str| (x.parse::<f64>().expect("rtt number") * 1000.0).round() as u64;
        (us(a), us(b))
    }
}

/// Every TCP socket in `ns` whose local or remote port is `port`.
pub fn ss_port(ns: &str, port: u16) -> Vec<SsSock> {
    let filter = format!("( sport = :{port} or dport = :{port} )");
    let text = exec_ok(ns, &["ss", "-Htinm", "state", "all", &filter]);
    parse_ss(&text)
}

pub fn parse_ss(text: &str) -> Vec<SsSock> {
    let mut out: Vec<SsSock> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            let w: Vec<&str> = line.split_whitespace().collect();
            if w.len() < 5 {
                continue;
            }
            let port = |a: &str| {
                a.rsplit(':')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0)
            };
            out.push(SsSock {
                state: w[0].to_string(),
                local: w[3].to_string(),
                peer: w[4].to_string(),
                lport: port(w[3]),
                rport: port(w[4]),
                info: HashMap::new(),
                text: line.to_string(),
            });
            continue;
        }
        let Some(s) = out.last_mut() else { continue };
        s.text.push('\n');
        s.text.push_str(line);
        for tok in line.split_whitespace() {
            if let Some(inner) = tok
                .strip_prefix("skmem:(")
                .and_then(|t| t.strip_suffix(')'))
            {
                for part in inner.split(',') {
                    let split = part
                        .find(|c: char| c.is_ascii_digit())
                        .unwrap_or(part.len());
                    let (k, v) = part.split_at(split);
                    s.info.insert(format!("skmem.{k}"), v.to_string());
                }
            } else if let Some((k, v)) = tok.split_once(':') {
                s.info.insert(k.to_string(), v.to_string());
            }
        }
    }
    out
}

/// One socket as `ss -HtinOepm state all` prints it on one line: the
/// columns, the owners (`users:(("comm",pid=N,fd=M),...)`), and every
/// `key:value` token (`sk` is the cookie in hex, `skmem.rb`, ...); bare
/// words (`ts`, `sack`, the congestion control) are kept as `word` -> "".
#[derive(Debug, Clone, Default)]
pub struct SsLine {
    pub state: String,
    pub recv_q: u64,
    pub send_q: u64,
    /// Address as ss prints it, brackets, `%iface` and `::ffff:` removed.
    pub local: String,
    pub lport: u16,
    pub peer: String,
    pub rport: u16,
    /// (comm, pid) of every process holding the socket.
    pub users: Vec<(String, u32)>,
    pub info: HashMap<String, String>,
    pub text: String,
}

impl SsLine {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.info.get(k).map(String::as_str)
    }
    /// A numeric `key:N` token, if ss printed it.
    pub fn num(&self, k: &str) -> Option<u64> {
        self.get(k).map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("ss {k}:{v} is not a number: {}", self.text))
        })
    }
}

/// `10.0.0.1:80`, `[fd00::1]:80`, `[::ffff:10.0.0.1]:80`, `*:80`,
/// `127.0.0.1%lo:80` as (address, port).
fn endpoint(s: &str) -> (String, u16) {
    let (addr, port) = s.rsplit_once(':').unwrap_or((s, "0"));
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    let addr = addr.split('%').next().unwrap_or(addr);
    let addr = addr.strip_prefix("::ffff:").unwrap_or(addr);
    (addr.to_string(), port.parse().unwrap_or(0))
}

/// Every TCP socket of namespace `ns`, from `ss -HtinOepm state all`.
pub fn ss_all(ns: &str) -> Vec<SsLine> {
    let text = exec_ok(ns, &["ss", "-HtinOepm", "state", "all"]);
    parse_ss_oneline(&text)
}

pub fn parse_ss_oneline(text: &str) -> Vec<SsLine> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() < 5 {
            continue;
        }
        let (local, lport) = endpoint(w[3]);
        let (peer, rport) = endpoint(w[4]);
        let mut s = SsLine {
            state: w[0].to_string(),
            recv_q: w[1].parse().unwrap_or(0),
            send_q: w[2].parse().unwrap_or(0),
            local,
            lport,
            peer,
            rport,
            users: Vec::new(),
            info: HashMap::new(),
            text: line.to_string(),
        };
        for tok in &w[5..] {
            if let Some(users) = tok.strip_prefix("users:(") {
                for u in users.split("),(") {
                    let u = u.trim_matches(|c| c == '(' || c == ')');
                    let mut parts = u.split(',');
                    let comm = parts.next().unwrap_or("").trim_matches('"').to_string();
                    let pid = parts
                        .find_map(|p| p.strip_prefix("pid="))
                        .and_then(|p| p.parse().ok())
                        .unwrap_or(0);
                    s.users.push((comm, pid));
                }
            } else if let Some(inner) = tok
                .strip_prefix("skmem:(")
                .and_then(|t| t.strip_suffix(')'))
            {
                for part in inner.split(',') {
                    let split = part
                        .find(|c: char| c.is_ascii_digit())
                        .unwrap_or(part.len());
                    let (k, v) = part.split_at(split);
                    s.info.insert(format!("skmem.{k}"), v.to_string());
                }
            } else if let Some((k, v)) = tok.split_once(':') {
                s.info.entry(k.to_string()).or_insert_with(|| v.to_string());
            } else {
                s.info.entry(tok.to_string()).or_default();
            }
        }
        out.push(s);
    }
    out
}
