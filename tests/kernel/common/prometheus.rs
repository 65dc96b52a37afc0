//! A real Prometheus (Debian's `prometheus`, 2.42) scraping `tcpq serve`
//! on loopback, and the small HTTP client the tests read both with.
//!
//! Each [`Prometheus`] has its own temporary directory (configuration and
//! storage) and port on 127.0.0.1; Drop stops it (SIGTERM, SIGKILL after
//! 5 s) and removes the directory, whether the test passed or not.
use super::{next_id, TempDir};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// An HTTP response: status, headers (lower-case names), body.
pub type Reply = (u16, Vec<(String, String)>, String);

/// A GET over HTTP/1.0 (so neither side chunks the body): status, the
/// response's headers (lower-case names) and its body.
pub fn http_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Reply> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok((status, headers, body.to_string()))
}

/// `%XX` for everything but unreserved characters.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// One sample of an instant query: its labels, its timestamp (s) and value.
#[derive(Clone, Debug)]
pub struct Sample {
    pub labels: serde_json::Map<String, Value>,
    pub time: f64,
    pub value: f64,
}

pub struct Prometheus {
    child: Option<Child>,
    pub addr: SocketAddr,
    dir: TempDir,
}

impl Prometheus {
    /// Start Prometheus on 127.0.0.1 scraping `target` every second as job
    /// `tcpq`, and wait until it is ready.
    pub fn start(target: SocketAddr) -> Prometheus {
        let mut dir = TempDir::new(&format!("prom{}", next_id()));
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: tcpq\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        // A port taken between free_port() and Prometheus's bind: try again.
        for _ in 0..3 {
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
            let child = Command::new("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("run prometheus");
            let mut p = Prometheus {
                child: Some(child),
                addr,
                dir,
            };
            let ready = super::wait_for(Duration::from_secs(30), || {
                if let Some(c) = p.child.as_mut() {
                    if let Ok(Some(_)) = c.try_wait() {
                        return Some(false);
                    }
                }
                match http_get(addr, "/-/ready", &[]) {
                    Ok((200, _, _)) => Some(true),
                    _ => None,
                }
            });
            if ready == Some(true) {
                return p;
            }
            eprintln!("prometheus did not start on {addr}:\n{}", p.log());
            let _ = p.child.take().map(|mut c| {
                let _ = c.kill();
                c.wait()
            });
            dir = std::mem::replace(&mut p.dir, TempDir::new("prom-spare"));
        }
        panic!("prometheus did not start three times");
    }

    /// Prometheus's own log (warnings and errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query at `time` (seconds since the epoch; now if None).
    pub fn query(&self, expr: &str, time: Option<f64>) -> Vec<Sample> {
        let mut path = format!("/api/v1/query?query={}", url_encode(expr));
        if let Some(t) = time {
            path.push_str(&format!("&time={t:.3}"));
        }
        let (status, _, body) = http_get(self.addr, &path, &[])
            .unwrap_or_else(|e| panic!("query {expr}: {e}\n{}", self.log()));
        let v: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("query {expr}: {status} {e}: {body}"));
        assert_eq!(v["status"], "success", "query {expr}: {body}");
        v["data"]["result"]
            .as_array()
            .unwrap_or_else(|| panic!("query {expr}: {body}"))
            .iter()
            .map(|r| Sample {
                labels: r["metric"].as_object().cloned().unwrap_or_default(),
                time: r["value"][0].as_f64().unwrap(),
                value: r["value"][1]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(f64::NAN),
            })
            .collect()
    }

    /// The one value of `expr` at `time`, 0 when it has no series then
    /// (a counter not yet born); panics on several.
    pub fn value_at(&self, expr: &str, time: f64) -> f64 {
        let r = self.query(expr, Some(time));
        assert!(r.len() <= 1, "{expr} has {} series: {r:?}", r.len());
        r.first().map_or(0.0, |s| s.value)
    }

    /// Wait (at most 20 s) for a successful scrape of tcpq that started at
    /// or after `t`; returns its timestamp. The samples of that scrape are
    /// read at that time by [`Prometheus::value_at`].
    pub fn scraped_after(&self, t: f64) -> f64 {
        let start = Instant::now();
        loop {
            let up = self.query("up{job=\"tcpq\"}", None);
            let at = self.query("timestamp(up{job=\"tcpq\"})", None);
            if let (Some(u), Some(a)) = (up.first(), at.first()) {
                if u.value == 1.0 && a.value >= t {
                    return a.value;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no successful scrape after {t} within 20 s: up {up:?}; targets: {}\nlog:\n{}",
                self.targets(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `/api/v1/targets`, for failure messages (the scrape's last error).
    pub fn targets(&self) -> String {
        http_get(self.addr, "/api/v1/targets", &[])
            .map(|(_, _, b)| b)
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            super::kill(c.id(), libc::SIGTERM);
            let done = super::wait_for(Duration::from_secs(5), || c.try_wait().ok().flatten());
            if done.is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// `promtool check metrics` of a scrape, written to `file` first: `None`
/// when promtool accepts it and says nothing, else its exit status and
/// what it said.
pub fn promtool_lint(file: &std::path::Path, scrape: &str) -> Option<String> {
    std::fs::write(file, scrape).unwrap();
    let out = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(file).unwrap())
        .output()
        .expect("run promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match out.status.success() && said.trim().is_empty() {
        true => None,
        false => Some(format!("({}) {said}", out.status)),
    }
}
