//! What a package ships besides the binary, made by the binary from its
//! own definitions, so it can never disagree with it: the man pages
//! ([`man`]) and the shell completion scripts ([`complete`]).
//!
//! Two entry points, both outside clap's model (so neither shows in
//! `--help`, the man pages or the completions), checked by `main` before
//! it parses the command line:
//! - `TCPQ_COMPLETE=SHELL tcpq -- WORDS...`: a completion request, which
//!   the scripts make at every TAB;
//! - `tcpq __generate DIR`: writes `DIR/man/*.8`, `DIR/man/*.7` and
//!   `DIR/completions/{tcpq,_tcpq,tcpq.fish}` (bash, zsh, fish), what
//!   `scripts/release.sh` and the Debian package install. The static
//!   binary, one file, can install its own pages with it too.
use std::path::Path;
use std::process::ExitCode;

pub mod complete;
mod man;
mod markdown;

/// The hidden command.
const GENERATE: &str = "__generate";

/// Handle a completion request or `tcpq __generate DIR`; `None` for a
/// normal run.
pub fn intercept() -> Option<ExitCode> {
    complete::complete_if_asked();
    let mut args = std::env::args_os().skip(1);
    if args.next()? != GENERATE {
        return None;
    }
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!("tcpq: error: usage: tcpq {GENERATE} DIR");
        return Some(ExitCode::from(crate::EXIT_USAGE));
    };
    Some(match generate(Path::new(&dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tcpq: error: {GENERATE} {}: {e}", Path::new(&dir).display());
            ExitCode::from(crate::EXIT_RUNTIME)
        }
    })
}

fn generate(dir: &Path) -> std::io::Result<()> {
    for page in man::write_all(&dir.join("man"))? {
        println!("{}", page.display());
    }
    let completions = dir.join("completions");
    std::fs::create_dir_all(&completions)?;
    for (shell, file) in complete::SHELLS {
        let script = complete::registration(shell).expect("a shell of SHELLS");
        let path = completions.join(file);
        std::fs::write(&path, script)?;
        println!("{}", path.display());
    }
    Ok(())
}
