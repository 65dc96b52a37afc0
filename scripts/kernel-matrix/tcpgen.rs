//! A deterministic loopback exchange for the kernel matrix (the guest has
//! no python): `tcpgen serve PORT N SIZE` accepts one connection and, N
//! times, reads SIZE bytes and answers one byte; `tcpgen client PORT N SIZE`
//! connects to 127.0.0.1:PORT and sends SIZE bytes N times, each after the
//! previous answer. With TCP_NODELAY and lock-step turns, each message and
//! each answer is one segment on any kernel: N data segments each way.
//! `tcpgen refuse PORT` connects to 127.0.0.1:PORT, where nobody listens,
//! and fails unless the kernel refuses (ECONNREFUSED).
//! Built with plain `rustc` by scripts/kernel-matrix.sh; std only.
//!
//! Why not the project's generator (`tcpq-netlab`'s `traffic`, `tcpq lab
//! __gen`): that one refuses to run outside a `tcpq-*` network namespace,
//! its bound against touching the host's network, and the guest is a
//! busybox initramfs with only its initial namespace (busybox `ip` has no
//! `netns`). This exchange talks to 127.0.0.1 only, inside a throwaway VM
//! (and, on the host, inside the matrix's own `ip netns exec` namespace).
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "refuse" {
        let port: u16 = args[2].parse().expect("PORT");
        match TcpStream::connect(("127.0.0.1", port)) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                println!("tcpgen refuse done: {e}");
                return;
            }
            other => {
                eprintln!("tcpgen refuse: expected ECONNREFUSED, got {other:?}");
                std::process::exit(1);
            }
        }
    }
    if args.len() != 5 {
        eprintln!("usage: tcpgen serve|client PORT N SIZE | tcpgen refuse PORT");
        std::process::exit(2);
    }
    let port: u16 = args[2].parse().expect("PORT");
    let n: usize = args[3].parse().expect("N");
    let size: usize = args[4].parse().expect("SIZE");
    let timeout = Some(Duration::from_secs(30));
    let mut buf = vec![0x5a_u8; size];
    match args[1].as_str() {
        "serve" => {
            let l = TcpListener::bind(("127.0.0.1", port)).expect("bind");
            let (mut s, _) = l.accept().expect("accept");
            s.set_nodelay(true).unwrap();
            s.set_read_timeout(timeout).unwrap();
            for _ in 0..n {
                s.read_exact(&mut buf).expect("read");
                s.write_all(b"k").expect("write");
            }
            // Wait for the client's close, so the FIN exchange is the same
            // on every kernel.
            let _ = s.read(&mut buf);
        }
        "client" => {
            let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            s.set_nodelay(true).unwrap();
            s.set_read_timeout(timeout).unwrap();
            let mut one = [0u8; 1];
            for _ in 0..n {
                s.write_all(&buf).expect("write");
                s.read_exact(&mut one).expect("read");
            }
        }
        other => {
            eprintln!("unknown mode {other}");
            std::process::exit(2);
        }
    }
    println!("tcpgen {} done: {n} x {size} bytes", args[1]);
}
