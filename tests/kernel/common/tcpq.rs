//! Run the tcpq binary under test and collect what it says.

use super::capture::stop_child;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running `tcpq` (`env!("CARGO_BIN_EXE_tcpq")`) with stdout and stderr
/// collected on threads. Killed (SIGKILL) on Drop.
pub struct Tcpq {
    child: Option<Child>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    threads: Vec<JoinHandle<()>>,
    pub args: Vec<String>,
    /// Kept after stop(): the exit status.
    status: Option<ExitStatus>,
}

fn collect(pipe: impl Read + Send + 'static, buf: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut r = BufReader::new(pipe);
        let mut line = Vec::new();
        // Read raw lines so invalid UTF-8 cannot stop the collector.
        while r
            .read_until(b'\n', &mut line)
            .map(|n| n > 0)
            .unwrap_or(false)
        {
            buf.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&line));
            line.clear();
        }
    })
}

impl Tcpq {
    /// The path of the binary under test.
    pub fn bin() -> &'static str {
        env!("CARGO_BIN_EXE_tcpq")
    }

    /// Spawn `tcpq ARGS...` (in the root namespace: eBPF sees every netns).
    pub fn spawn(args: &[&str]) -> Tcpq {
        Self::spawn_with(args, &[])
    }

    /// `spawn` with extra environment variables (`TCPQ_TIMINGS=1`, ...).
    pub fn spawn_with(args: &[&str], env: &[(String, String)]) -> Tcpq {
        Self::spawn_full(args, env, None)
    }

    /// `spawn` with `dir` as the current directory (built-in recipes by
    /// name must not need `recipes/` there).
    pub fn spawn_in(args: &[&str], dir: &std::path::Path) -> Tcpq {
        Self::spawn_full(args, &[], Some(dir))
    }

    fn spawn_full(args: &[&str], env: &[(String, String)], dir: Option<&std::path::Path>) -> Tcpq {
        let mut cmd = Command::new(Self::bin());
        if let Some(d) = dir {
            cmd.current_dir(d);
        }
        let mut child = cmd
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {} {args:?}: {e}", Self::bin()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let threads = vec![
            collect(child.stdout.take().unwrap(), stdout.clone()),
            collect(child.stderr.take().unwrap(), stderr.clone()),
        ];
        Tcpq {
            child: Some(child),
            stdout,
            stderr,
            threads,
            args: args.iter().map(|s| s.to_string()).collect(),
            status: None,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn stdout_so_far(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr_so_far(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Wait until stderr has a line containing the word `attached` (probes
    /// are live). Err(with stderr so far) if tcpq exits first or `timeout`
    /// passes.
    pub fn try_wait_attached(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stderr_so_far().lines().any(says_attached) {
                return Ok(());
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    // Let the collectors drain the pipes: a run that ends
                    // on its own (`--duration 0`, ~25 ms) can exit before
                    // its `attached` line has been read.
                    std::thread::sleep(Duration::from_millis(50));
                    if self.stderr_so_far().lines().any(says_attached) {
                        return Ok(());
                    }
                    return Err(format!(
                        "tcpq {:?} exited ({st}) before attaching; stderr:\n{}\nstdout:\n{}",
                        self.args,
                        self.stderr_so_far(),
                        self.stdout_so_far()
                    ));
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "tcpq {:?} did not say 'attached' within {timeout:?}; stderr so far:\n{}",
                    self.args,
                    self.stderr_so_far()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `try_wait_attached`, panicking with tcpq's stderr on failure.
    pub fn wait_attached(&mut self, timeout: Duration) {
        if let Err(e) = self.try_wait_attached(timeout) {
            panic!("{e}");
        }
    }

    /// SIGINT, wait up to `timeout` (SIGKILL after), join the collectors and
    /// return (exit status, stdout, stderr).
    pub fn stop(&mut self, timeout: Duration) -> (ExitStatus, String, String) {
        self.finish(Some(libc::SIGINT), timeout)
    }

    /// Wait for tcpq to exit by itself (e.g. `--duration`), SIGKILL after
    /// `timeout`; returns (exit status, stdout, stderr).
    pub fn wait(&mut self, timeout: Duration) -> (ExitStatus, String, String) {
        self.finish(None, timeout)
    }

    fn finish(&mut self, sig: Option<i32>, timeout: Duration) -> (ExitStatus, String, String) {
        if let Some(mut c) = self.child.take() {
            let st = match sig {
                Some(sig) => stop_child(c, sig, timeout),
                None => {
                    let exited = super::wait_for(timeout, || c.try_wait().ok().flatten());
                    exited.unwrap_or_else(|| stop_child(c, libc::SIGKILL, Duration::from_secs(2)))
                }
            };
            self.status = Some(st);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        (
            self.status.expect("tcpq status"),
            self.stdout_so_far(),
            self.stderr_so_far(),
        )
    }
}

impl Drop for Tcpq {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// True when `line` contains the word "attached" (not "detached",
/// "unattached", ...), case-insensitively.
pub fn says_attached(line: &str) -> bool {
    line.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .any(|w| w.eq_ignore_ascii_case("attached"))
}

/// Parse tcpq's `--format json` stdout: one object per non-empty line.
/// Panics, quoting the line and the whole output, on anything else.
pub fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| {
                panic!("tcpq printed a non-JSON line ({e}): {l:?}\nstdout:\n{stdout}")
            });
            assert!(v.is_object(), "tcpq printed a non-object JSON line: {l}");
            v
        })
        .collect()
}

/// A field as u64, accepting a JSON number or a decimal/0x-hex string;
/// panics with the event when it is missing.
pub fn field_u64(ev: &Value, key: &str) -> u64 {
    let v = &ev[key];
    let got = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s
            .strip_prefix("0x")
            .map(|h| u64::from_str_radix(h, 16).ok())
            .unwrap_or_else(|| s.parse().ok()),
        Value::Bool(b) => Some(*b as u64),
        _ => None,
    };
    got.unwrap_or_else(|| panic!("event has no numeric '{key}': {ev}"))
}

/// A field as bool, accepting true/false, 0/1 or "true"/"false".
pub fn field_bool(ev: &Value, key: &str) -> bool {
    match &ev[key] {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_u64() != Some(0),
        Value::String(s) if s == "true" || s == "false" => s == "true",
        _ => panic!("event has no boolean '{key}': {ev}"),
    }
}

/// A field as a string (numbers rendered).
pub fn field_str(ev: &Value, key: &str) -> String {
    match &ev[key] {
        Value::String(s) => s.clone(),
        Value::Null => panic!("event has no '{key}': {ev}"),
        v => v.to_string(),
    }
}

/// Start tcpq on `program` (JSON output) and wait until it is attached.
pub fn attached_json(program: &str) -> Tcpq {
    let mut t = Tcpq::spawn(&["-e", program, "--format", "json"]);
    t.wait_attached(Duration::from_secs(10));
    t
}

/// Stop tcpq (SIGINT) and return its JSON lines, its exit status, and its
/// arguments and output for failure messages.
pub fn finish_json(mut t: Tcpq) -> (Vec<Value>, ExitStatus, String) {
    let (st, stdout, stderr) = t.stop(Duration::from_secs(5));
    let ctx = format!(
        "\ntcpq {:?} ({st})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        t.args
    );
    (json_lines(&stdout), st, ctx)
}

/// The events of one probe (multi-clause programs tag each line).
pub fn of_probe<'a>(events: &'a [Value], probe: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e.get("probe").is_none_or(|p| p == probe))
        .collect()
}
