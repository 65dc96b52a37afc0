//! Shell completion, for real: bash, zsh and fish run interactively in a
//! pseudo-terminal, load the scripts `tcpq __generate DIR` writes (as a
//! package installs them: bash sources the file, zsh autoloads `_tcpq`
//! from its fpath through compinit, fish autoloads `tcpq.fish` from its
//! completion path), and complete what a user types; a key bound in each
//! shell prints the command line after TAB, and that line is compared.
//!
//! A shell that is not installed is skipped, saying so (with `CI` set it
//! fails: .ci/run installs all three). No root needed.
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A fresh directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("tcpq-compl-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An interactive shell on a pseudo-terminal; killed on drop.
struct Shell {
    master: std::fs::File,
    child: Child,
    seen: String,
}

impl Shell {
    fn spawn(cmd: &mut Command) -> Shell {
        let (mut m, mut s) = (0, 0);
        // SAFETY: openpty writes two fds; the other arguments may be null.
        let r = unsafe {
            libc::openpty(
                &mut m,
                &mut s,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both fds are new and ours.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
        let io = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
        cmd.stdin(io(&slave)).stdout(io(&slave)).stderr(io(&slave));
        // SAFETY: only async-signal-safe calls between fork and exec: a
        // session of its own, with the terminal as its controlling one.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start the shell");
        drop(slave);
        // SAFETY: fcntl on an fd we own.
        unsafe {
            let fl = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(master.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
        Shell {
            master: std::fs::File::from(master),
            child,
            seen: String::new(),
        }
    }

    fn send(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
    }

    /// Read until `needle` has appeared after `from` (a byte offset into
    /// everything seen); what was seen, from `from`.
    fn wait_for(&mut self, from: usize, needle: &str, within: Duration) -> Option<String> {
        let end = Instant::now() + within;
        let mut buf = [0u8; 4096];
        loop {
            if let Some(i) = self.seen[from..].find(needle) {
                return Some(self.seen[from..from + i + needle.len()].to_owned());
            }
            if Instant::now() > end {
                return None;
            }
            match self.master.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                // EIO: the shell is gone.
                Err(_) => return None,
            }
        }
    }

    /// Type `line`, press TAB, and return the command line then (printed
    /// by the key Ctrl-T, bound in each shell's setup to print
    /// `<<LINE>>`); then clear the line.
    fn complete(&mut self, line: &str) -> String {
        let from = self.seen.len();
        self.send(line);
        self.send("\t");
        // Keys are read in order: Ctrl-T runs once the completion is done.
        self.send("\x14");
        let shown = self
            .wait_for(from, ">>", Duration::from_secs(30))
            .unwrap_or_else(|| {
                panic!(
                    "no line printed after `{line}` TAB; the terminal showed:\n{}",
                    &self.seen[from..]
                )
            });
        let start = shown.rfind("<<").expect("<< before >>") + 2;
        let got = shown[start..shown.len() - 2].to_owned();
        // Ctrl-C: drop the line, back at an empty prompt.
        let from = self.seen.len();
        self.send("\x03");
        let _ = self.wait_for(from, "$ ", Duration::from_secs(10));
        got
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn found(shell: &str) -> bool {
    let ok = Command::new(shell)
        .args(["-c", "exit 0"])
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{shell} is not installed, and CI is set (.ci/run installs it)"
        );
        eprintln!("skipped: {shell} is not installed");
    }
    ok
}

/// The scripts, written by the binary under test; and a PATH that finds
/// that binary as `tcpq`, the name the scripts run.
fn generate(dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tcpq"))
        .arg("__generate")
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let bin = Path::new(env!("CARGO_BIN_EXE_tcpq")).parent().unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// What every shell must complete: (typed, the line after TAB). The
/// shell's directory holds only the scripts (`completions/`), so a
/// recipe name is not also the start of a file name there.
const CASES: &[(&str, &str)] = &[
    // A subcommand and an option (clap's own definitions).
    ("tcpq doc", "tcpq doctor "),
    ("tcpq doctor --for", "tcpq doctor --format "),
    // A built-in recipe by name, a probe, a lab scenario.
    // Two recipes start so: their common part, then one of them.
    ("tcpq zero-w", "tcpq zero-window"),
    ("tcpq zero-window-m", "tcpq zero-window-metrics "),
    // serve offers only the recipes it exports.
    ("tcpq serve zero-w", "tcpq serve zero-window-metrics "),
    ("tcpq -l tcp_retr", "tcpq -l tcp_retransmit "),
    ("tcpq lab rerun zero-w", "tcpq lab rerun zero-window "),
    // Inside a program: the probe after `on`, and a field of that
    // probe after `on PROBE` (`data_len` is tcp_probe's own), the quote
    // left open to go on typing.
    ("tcpq -e 'on tcp_sel", "tcpq -e 'on tcp_select_window"),
    (
        "tcpq -e 'on tcp_probe where data_l",
        "tcpq -e 'on tcp_probe where data_len",
    ),
    (
        "tcpq -e 'on tcp_state where newstate == ESTAB",
        "tcpq -e 'on tcp_state where newstate == ESTABLISHED",
    ),
];

fn run_cases(shell: &mut Shell, name: &str) {
    // The line editor is up once Ctrl-T works (keys typed before it took
    // the terminal would be read as plain input).
    let from = shell.seen.len();
    shell.send("\x14");
    shell
        .wait_for(from, "<<>>", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{name}: Ctrl-T printed no line"));
    let mut failed = Vec::new();
    for (typed, want) in CASES {
        let got = shell.complete(typed);
        if got != *want {
            failed.push(format!("{name}: `{typed}` TAB gave `{got}`, not `{want}`"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn bash_completes() {
    if !found("bash") {
        return;
    }
    let dir = TempDir::new("bash");
    let path = generate(&dir.0);
    let rc = dir.0.join("rc");
    std::fs::write(
        &rc,
        format!(
            "PS1='$ '\nsource {}\nbind -x '\"\\C-t\": printf \"\\n<<%s>>\\n\" \"$READLINE_LINE\"'\n",
            dir.0.join("completions/tcpq").display()
        ),
    )
    .unwrap();
    let mut sh = Shell::spawn(
        Command::new("bash")
            .current_dir(&dir.0)
            .arg("--rcfile")
            .arg(&rc)
            .arg("-i")
            .env("PATH", &path)
            .env("TERM", "dumb")
            .env("HOME", &dir.0)
            .env_remove("TCPQ_COMPLETE"),
    );
    sh.wait_for(0, "$ ", Duration::from_secs(10))
        .expect("a bash prompt");
    run_cases(&mut sh, "bash");
}

#[test]
fn zsh_completes() {
    if !found("zsh") {
        return;
    }
    let dir = TempDir::new("zsh");
    let path = generate(&dir.0);
    std::fs::write(
        dir.0.join(".zshrc"),
        format!(
            "PS1='$ '\nunsetopt PROMPT_SP\nfpath=({} $fpath)\nautoload -Uz compinit && compinit -u -D\n\
             show() {{ print -r -- $'\\n'\"<<$BUFFER>>\" }}\nzle -N show\nbindkey '^T' show\n",
            dir.0.join("completions").display()
        ),
    )
    .unwrap();
    let mut sh = Shell::spawn(
        Command::new("zsh")
            .current_dir(&dir.0)
            .arg("-i")
            .env("PATH", &path)
            .env("TERM", "dumb")
            .env("HOME", &dir.0)
            .env("ZDOTDIR", &dir.0)
            .env_remove("TCPQ_COMPLETE"),
    );
    sh.wait_for(0, "$ ", Duration::from_secs(10))
        .expect("a zsh prompt");
    run_cases(&mut sh, "zsh");
}

#[test]
fn fish_completes() {
    if !found("fish") {
        return;
    }
    let dir = TempDir::new("fish");
    let path = generate(&dir.0);
    let init = format!(
        "set -p fish_complete_path {}; function fish_prompt; echo -n '$ '; end; \
         bind \\ct 'echo; echo \"<<\"(commandline)\">>\"'",
        dir.0.join("completions").display()
    );
    let mut sh = Shell::spawn(
        Command::new("fish")
            .current_dir(&dir.0)
            .args(["--no-config", "-i", "-C", &init])
            .env("PATH", &path)
            .env("TERM", "dumb")
            .env("HOME", &dir.0)
            .env("XDG_CONFIG_HOME", dir.0.join("config"))
            .env("XDG_DATA_HOME", dir.0.join("data"))
            .env_remove("TCPQ_COMPLETE"),
    );
    sh.wait_for(0, "$ ", Duration::from_secs(10))
        .expect("a fish prompt");
    run_cases(&mut sh, "fish");
}
