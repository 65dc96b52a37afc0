//! The lab's traffic: a server (`lab-reader`) and a client (`lab-writer`),
//! run by `tcpq lab __serve NAME` / `tcpq lab __send NAME` inside the lab's
//! own namespaces (`ip netns exec`), so the lab needs nothing but the tcpq
//! binary. Both are the project's one traffic generator (`tcpq-netlab`'s
//! `traffic`, also `tcpq lab __gen` for the kernel tests), configured from
//! the scenario.
//!
//! Bounds, enforced here and not by the caller: every process refuses to
//! run outside its scenario's own namespace, only ever talks to the lab's
//! server address, and exits by itself after at most [`MAX_SECONDS`].
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use super::scenario::{Scenario, Traffic};
use tcpq_netlab::traffic::{Client, Crowd, Server};

/// No lab process lives longer than this, whatever it is asked.
pub const MAX_SECONDS: u64 = 60;

/// The N of the lab's addresses (10.213.N.1 and .2).
pub const SUBNET: u8 = 250;
/// The server's address inside the lab's server namespace.
pub const SRV_ADDR: Ipv4Addr = Ipv4Addr::new(10, 213, SUBNET, 2);
/// The client's address inside the lab's client namespace.
pub const CLI_ADDR: Ipv4Addr = Ipv4Addr::new(10, 213, SUBNET, 1);

fn check_namespace(sc: &Scenario, side: &str) -> Result<(), String> {
    let want = sc.netns(side);
    match tcpq_netlab::netns::current_netns() {
        Some(ns) if ns == want => Ok(()),
        other => Err(format!(
            "refusing to run outside the lab's namespace {want} (in {})",
            other.as_deref().unwrap_or("an unnamed namespace")
        )),
    }
}

fn seconds_of(seconds: u64) -> f64 {
    seconds.clamp(1, MAX_SECONDS) as f64
}

/// `tcpq lab __serve NAME`: the server side. Writes `ready_file` once
/// listening.
pub fn serve(sc: &Scenario, seconds: u64, ready_file: &Path) -> Result<(), String> {
    check_namespace(sc, "srv")?;
    let t = &sc.traffic;
    let mut s = Server::new(IpAddr::V4(SRV_ADDR), sc.port);
    s.comm = "lab-reader".into();
    s.max_seconds = seconds_of(seconds);
    s.backlog = t.backlog;
    s.accept = 0; // every connection until the deadline
    s.read_size = t.read_size;
    s.read_delay = t.read_delay;
    s.idle_before_read = t.idle_before_read;
    // The backlog scenario: accept slowly, keep what was accepted.
    s.hold_accepted = t.hold_accepted.then_some(t.accept_every);
    s.ready_file = Some(ready_file.to_path_buf());
    s.run().map(drop).map_err(|e| e.to_string())
}

/// `tcpq lab __send NAME`: the client side.
pub fn send(sc: &Scenario, seconds: u64) -> Result<(), String> {
    check_namespace(sc, "cli")?;
    let mut c = Client::new(IpAddr::V4(SRV_ADDR), sc.port, 0);
    c.comm = "lab-writer".into();
    c.max_seconds = seconds_of(seconds);
    match &sc.traffic.client {
        // One connection: as fast as the window allows, or `bytes` every
        // `every`, until the deadline.
        Traffic::Stream { pace: None } => c.bytes = u64::MAX,
        Traffic::Stream {
            pace: Some((bytes, every)),
        } => {
            c.bytes = *bytes;
            c.pace = Some(*every);
        }
        // A fresh connection writing `bytes`, `idle` apart, repeated.
        Traffic::Bursts { bytes, idle } => {
            c.bytes = *bytes;
            c.connections = 0;
            c.pause = *idle;
        }
        // Every `every`: a connection to a port nobody listens on (the
        // server's kernel answers RST) and one to the server that the
        // client aborts once its data is acknowledged (RST, not FIN).
        Traffic::Resets { closed_port, every } => {
            c.bytes = 1024;
            c.connections = 0;
            c.pause = *every;
            c.refused_port = Some(*closed_port);
            c.hold_seconds = 1.0;
            c.linger0 = true;
        }
        // Many connections at once against a short accept queue.
        Traffic::Crowd { first, more, every } => {
            c.crowd = Some(Crowd {
                first: *first,
                more: *more,
                every: *every,
            })
        }
    }
    c.run().map(drop).map_err(|e| e.to_string())
}
