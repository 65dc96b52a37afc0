//! `tcpq --version` names the commit the binary was built from.
//!
//! Sets `TCPQ_VERSION` (`0.1.0 (6fa890b1c2d3 2026-12-07)`) and
//! `TCPQ_COMMIT_DATE` (`2026-12-07`, or empty; the man pages' date). The
//! commit comes from, in order:
//! 1. git, when the package directory is the top of a git checkout (a
//!    tarball unpacked inside some other repository must not take that
//!    repository's commit). `-dirty` is added when a tracked file that
//!    goes into the binary differs from the commit;
//! 2. `.cargo_vcs_info.json`, which `cargo package` writes into a source
//!    tarball (the commit only: it has no date);
//! 3. the environment variable `TCPQ_COMMIT` (`SHA` or `SHA DATE`), for
//!    builds from another kind of tarball;
//! 4. otherwise `commit unknown`.
//!
//! Everything here is a function of the source tree, never of the clock
//! or the machine, so two builds of one commit print the same version
//! (`scripts/release.sh` checks that the bytes are the same).
use std::path::Path;
use std::process::Command;

/// What the binary is made of: a change to a tracked file here makes the
/// build `-dirty` (and reruns this script, through `rerun-if-changed`).
const SOURCES: &[&str] = &[
    "Cargo.toml",
    "Cargo.lock",
    "build.rs",
    "src",
    "dsl",
    "runtime",
    "netlab",
    "probe-templates/abi",
    "probe-templates/prebuilt",
    "recipes",
    "docs/language.md",
    "vendor",
];

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_owned())
}

/// `(commit, date)` from this checkout's git, if it is one.
fn from_git(dir: &Path) -> Option<(String, String)> {
    let top = git(dir, &["rev-parse", "--show-toplevel"])?;
    if Path::new(&top).canonicalize().ok()? != dir.canonicalize().ok()? {
        return None;
    }
    // Rebuild when HEAD moves: HEAD itself, the branch it names, and the
    // packed refs (paths resolved by git: a worktree keeps HEAD apart).
    // (Not the index: `git status` below may rewrite it.)
    let mut watch = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(r) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watch.push(r);
    }
    for w in watch {
        if let Some(p) = git(dir, &["rev-parse", "--git-path", &w]) {
            let p = dir.join(p);
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    let sha = git(dir, &["rev-parse", "--short=12", "HEAD"])?;
    let date = git(dir, &["log", "-1", "--format=%cs", "HEAD"]).unwrap_or_default();
    let mut status = vec!["status", "--porcelain", "--untracked-files=no", "--"];
    status.extend(SOURCES);
    let dirty = git(dir, &status).is_none_or(|s| !s.is_empty());
    Some((if dirty { format!("{sha}-dirty") } else { sha }, date))
}

/// The commit `cargo package` recorded: `{"git": {"sha1": "..."}, ...}`.
fn from_cargo_vcs_info(dir: &Path) -> Option<(String, String)> {
    let text = std::fs::read_to_string(dir.join(".cargo_vcs_info.json")).ok()?;
    let at = text.find("\"sha1\"")?;
    let rest = &text[at + 6..];
    let start = rest.find('"')? + 1;
    let len = rest[start..].find('"')?;
    let sha = &rest[start..start + len];
    if sha.len() < 12 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let dirty = text.contains("\"dirty\": true") || text.contains("\"dirty\":true");
    Some((
        format!("{}{}", &sha[..12], if dirty { "-dirty" } else { "" }),
        String::new(),
    ))
}

fn from_env() -> Option<(String, String)> {
    let v = std::env::var("TCPQ_COMMIT").ok()?;
    let mut words = v.split_whitespace();
    let sha = words.next()?.to_owned();
    Some((sha, words.next().unwrap_or_default().to_owned()))
}

fn main() {
    let dir = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    println!("cargo:rerun-if-env-changed=TCPQ_COMMIT");
    // A path that does not exist would rerun this script on every build.
    if dir.join(".cargo_vcs_info.json").exists() {
        println!("cargo:rerun-if-changed=.cargo_vcs_info.json");
    }
    for s in SOURCES {
        println!("cargo:rerun-if-changed={s}");
    }
    let version = std::env::var("CARGO_PKG_VERSION").unwrap();
    let found = from_git(&dir)
        .or_else(|| from_cargo_vcs_info(&dir))
        .or_else(from_env);
    let (long, date) = match found {
        Some((sha, date)) if date.is_empty() => (format!("{version} ({sha})"), date),
        Some((sha, date)) => (format!("{version} ({sha} {date})"), date),
        None => (format!("{version} (commit unknown)"), String::new()),
    };
    println!("cargo:rustc-env=TCPQ_VERSION={long}");
    println!("cargo:rustc-env=TCPQ_COMMIT_DATE={date}");
}
