//! tcpdump capture inside a namespace, and reading the capture back.
//!
//! Know what a veth capture shows: tcpdump sees packets at the device, before
//! any segmentation, so a TSO/GSO "super-packet" of many MSS is one record.
//! Pure ACKs (zero-window advertisements among them) are never GSO, so
//! counting them is exact; counting data segments is not.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running `tcpdump -U -w` in a namespace; killed on Drop.
pub struct Capture {
    child: Option<Child>,
    stderr: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
    pub pcap: PathBuf,
}

/// What tcpdump said when it stopped.
#[derive(Debug, Clone, Default)]
pub struct CaptureStats {
    pub captured: u64,
    pub received_by_filter: u64,
    pub dropped_by_kernel: u64,
    pub stderr: String,
}

impl Capture {
    /// Start `tcpdump -i iface -nn -U --immediate-mode -s 256 -Z root -w
    /// pcap_path bpf_filter` in `ns` and wait (up to 5 s) until it reports
    /// "listening".
    ///
    /// `--immediate-mode` matters: without it libpcap's TPACKET_V3 ring hands
    /// packets to tcpdump in blocks (1 s timeout), and packets still in an
    /// unretired block when tcpdump gets SIGINT never reach the file (seen
    /// here: 21 of ~70 packets written). `-U` alone does not help.
    pub fn start(ns: &str, iface: &str, bpf_filter: &str, pcap_path: &Path) -> Capture {
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            ns,
            "tcpdump",
            "-i",
            iface,
            "-nn",
            "-U",
            "--immediate-mode",
        ])
        .args(["-s", "256", "-Z", "root", "-w"])
        .arg(pcap_path);
        if !bpf_filter.is_empty() {
            cmd.arg(bpf_filter);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tcpdump");
        let stderr = Arc::new(Mutex::new(String::new()));
        let err_pipe = child.stderr.take().unwrap();
        let buf = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                let mut b = buf.lock().unwrap();
                b.push_str(&line);
                b.push('\n');
            }
        });
        let mut cap = Capture {
            child: Some(child),
            stderr,
            reader: Some(reader),
            pcap: pcap_path.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if cap.stderr.lock().unwrap().contains("listening on") {
                break;
            }
            let exited = cap.child.as_mut().unwrap().try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                let so_far = cap.stderr.lock().unwrap().clone();
                panic!("tcpdump in {ns} on {iface} did not start ({exited:?}): {so_far}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        cap
    }

    /// SIGINT tcpdump (it flushes and prints its counters), wait up to 5 s
    /// (SIGKILL after that), and return its statistics.
    pub fn stop(&mut self) -> CaptureStats {
        let status = self
            .child
            .take()
            .map(|c| stop_child(c, libc::SIGINT, Duration::from_secs(5)));
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let stderr = self.stderr.lock().unwrap().clone();
        let grab = |what: &str| -> u64 {
            stderr
                .lines()
                .find(|l| l.ends_with(what))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        let stats = CaptureStats {
            captured: grab("packets captured"),
            received_by_filter: grab("packets received by filter"),
            dropped_by_kernel: grab("packets dropped by kernel"),
            stderr: stderr.clone(),
        };
        if let Some(st) = status {
            assert!(
                st.success() || st.code().is_none(),
                "tcpdump exited with {st}: {stderr}"
            );
        }
        stats
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Send `sig`, wait up to `timeout`, then SIGKILL; reap and return the status.
pub fn stop_child(mut child: Child, sig: i32, timeout: Duration) -> ExitStatus {
    if let Ok(Some(st)) = child.try_wait() {
        return st;
    }
    super::kill(child.id(), sig);
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(st)) = child.try_wait() {
            return st;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    child.wait().expect("wait child")
}

/// `tcpdump -r pcap -nn [extra args] filter`: the text, one packet a line.
pub fn tcpdump_read(pcap: &Path, extra: &[&str], filter: &str) -> String {
    let mut cmd = Command::new("tcpdump");
    cmd.arg("-r").arg(pcap).arg("-nn").args(extra);
    if !filter.is_empty() {
        cmd.arg(filter);
    }
    let out = cmd.output().expect("spawn tcpdump -r");
    assert!(
        out.status.success(),
        "tcpdump -r {} '{filter}' failed: {}",
        pcap.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Number of packets in `pcap` matching the pcap-filter(7) expression.
pub fn count(pcap: &Path, filter: &str) -> usize {
    tcpdump_read(pcap, &[], filter)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

/// One TCP packet from a capture, decoded from the raw bytes (absolute
/// sequence numbers, the raw 16-bit window field, SYN options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Seconds since the epoch, microsecond or nanosecond resolution.
    pub ts: String,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    /// TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10).
    pub flags: u8,
    /// The window field as sent (unscaled).
    pub win: u16,
    /// TCP payload length (of the whole GSO super-packet, if one).
    pub len: u32,
    /// Window-scale option (SYN/SYN-ACK only).
    pub wscale: Option<u8>,
    pub mss: Option<u16>,
}

impl Packet {
    pub fn syn(&self) -> bool {
        self.flags & 0x02 != 0
    }
    pub fn rst(&self) -> bool {
        self.flags & 0x04 != 0
    }
    pub fn fin(&self) -> bool {
        self.flags & 0x01 != 0
    }
    pub fn ack_flag(&self) -> bool {
        self.flags & 0x10 != 0
    }
}

/// Decode every IPv4/IPv6 TCP packet of a pcap file (Ethernet or Linux
/// cooked link types; other packets are skipped).
pub fn packets(pcap: &Path) -> Vec<Packet> {
    let data = std::fs::read(pcap).unwrap_or_else(|e| panic!("read {}: {e}", pcap.display()));
    assert!(data.len() >= 24, "{} is not a pcap file", pcap.display());
    let magic = u32::from_le_bytes(data[0..4].try_into().unwrap());
    let (le, nanos) = match magic {
        0xa1b2c3d4 => (true, false),
        0xa1b23c4d => (true, true),
        0xd4c3b2a1 => (false, false),
        0x4d3cb2a1 => (false, true),
        m => panic!("{}: bad pcap magic {m:#x}", pcap.display()),
    };
    let rd32 = |b: &[u8]| -> u32 {
        let a: [u8; 4] = b[..4].try_into().unwrap();
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let linktype = rd32(&data[20..24]);
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= data.len() {
        let sec = rd32(&data[off..]);
        let frac = rd32(&data[off + 4..]);
        let caplen = rd32(&data[off + 8..]) as usize;
        let origlen = rd32(&data[off + 12..]) as usize;
        let start = off + 16;
        let end = (start + caplen).min(data.len());
        off = start + caplen;
        let frame = &data[start..end];
        let ts = if nanos {
            format!("{sec}.{frac:09}")
        } else {
            format!("{sec}.{frac:06}")
        };
        let (ethertype, l3) = match linktype {
            1 if frame.len() >= 14 => (be16(&frame[12..]), 14),
            113 if frame.len() >= 16 => (be16(&frame[14..]), 16),
            276 if frame.len() >= 20 => (be16(&frame[0..]), 20),
            _ => continue,
        };
        if let Some(p) = decode_ip(ethertype, &frame[l3..], origlen.saturating_sub(l3), ts) {
            out.push(p);
        }
    }
    out
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}
fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn decode_ip(ethertype: u16, ip: &[u8], wire_len: usize, ts: String) -> Option<Packet> {
    let (src, dst, l4, l4_len) = match ethertype {
        0x0800 => {
            if ip.len() < 20 || ip[9] != 6 {
                return None;
            }
            let ihl = (ip[0] & 0x0f) as usize * 4;
            let tot = be16(&ip[2..]) as usize;
            // GSO super-packets beyond 64 KiB (BIG TCP) carry tot_len 0.
            let tot = if tot == 0 { wire_len } else { tot };
            let s: [u8; 4] = ip[12..16].try_into().ok()?;
            let d: [u8; 4] = ip[16..20].try_into().ok()?;
            (
                IpAddr::from(s),
                IpAddr::from(d),
                ip.get(ihl..)?,
                tot.saturating_sub(ihl),
            )
        }
        0x86dd => {
            if ip.len() < 40 || ip[6] != 6 {
                return None;
            }
            let plen = be16(&ip[4..]) as usize;
            let plen = if plen == 0 {
                wire_len.saturating_sub(40)
            } else {
                plen
            };
            let s: [u8; 16] = ip[8..24].try_into().ok()?;
            let d: [u8; 16] = ip[24..40].try_into().ok()?;
            (IpAddr::from(s), IpAddr::from(d), &ip[40..], plen)
        }
        _ => return None,
    };
    if l4.len() < 20 {
        return None;
    }
    let doff = (l4[12] >> 4) as usize * 4;
    let mut p = Packet {
        ts,
        src,
        dst,
        sport: be16(&l4[0..]),
        dport: be16(&l4[2..]),
        seq: be32(&l4[4..]),
        ack: be32(&l4[8..]),
        flags: l4[13],
        win: be16(&l4[14..]),
        len: l4_len.saturating_sub(doff) as u32,
        wscale: None,
        mss: None,
    };
    let opts = l4.get(20..doff.min(l4.len())).unwrap_or(&[]);
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => break,
            1 => i += 1,
            kind => {
                let Some(&olen) = opts.get(i + 1) else { break };
                let olen = olen as usize;
                if olen < 2 || i + olen > opts.len() {
                    break;
                }
                match (kind, olen) {
                    (2, 4) => p.mss = Some(be16(&opts[i + 2..])),
                    (3, 3) => p.wscale = Some(opts[i + 2]),
                    _ => {}
                }
                i += olen;
            }
        }
    }
    Some(p)
}

/// Packets per (sport, dport) direction, for failure messages.
pub fn summary(pkts: &[Packet]) -> String {
    let mut m: BTreeMap<(u16, u16), (usize, usize)> = BTreeMap::new();
    for p in pkts {
        let e = m.entry((p.sport, p.dport)).or_default();
        e.0 += 1;
        if p.win == 0 && !p.syn() && !p.rst() {
            e.1 += 1;
        }
    }
    m.iter()
        .map(|((s, d), (n, z))| format!("{s}->{d}: {n} packets, {z} with win 0\n"))
        .collect()
}

/// A SYN or SYN-ACK as tcpdump itself prints it (`tcpdump -r -nn -S`):
/// its flags, absolute sequence numbers, window and options, read from
/// tcpdump's text rather than decoded here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpdumpSyn {
    pub sport: u16,
    pub dport: u16,
    /// tcpdump's flags, e.g. `S`, `S.`, `SEW`.
    pub flags: String,
    pub seq: u64,
    pub ack: Option<u64>,
    pub win: u64,
    /// The option list, as printed: `mss 1460`, `sackOK`, `TS val 1 ecr 0`,
    /// `nop`, `wscale 7`.
    pub options: Vec<String>,
    pub line: String,
}

impl TcpdumpSyn {
    fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find_map(|o| {
                o.strip_prefix(name)
                    .filter(|r| r.is_empty() || r.starts_with(' '))
            })
            .map(str::trim)
    }
    pub fn mss(&self) -> Option<u64> {
        self.option("mss").and_then(|v| v.parse().ok())
    }
    pub fn wscale(&self) -> Option<u64> {
        self.option("wscale").and_then(|v| v.parse().ok())
    }
    pub fn sack_ok(&self) -> bool {
        self.option("sackOK").is_some()
    }
    pub fn ts(&self) -> bool {
        self.option("TS").is_some()
    }
    /// A SYN-ACK (tcpdump's `.` is ACK).
    pub fn is_synack(&self) -> bool {
        self.flags.contains('.')
    }
}

/// Every segment with SYN set in `pcap` (IPv4 and IPv6), as tcpdump
/// prints it. Selected by the flags tcpdump prints: a filter on
/// `tcp[tcpflags]` would only match IPv4.
pub fn tcpdump_syns(pcap: &Path) -> Vec<TcpdumpSyn> {
    tcpdump_read(pcap, &["-S"], "tcp")
        .lines()
        .filter(|l| {
            l.split("Flags [")
                .nth(1)
                .and_then(|r| r.split(']').next())
                .is_some_and(|f| f.contains('S'))
        })
        .map(|l| parse_syn_line(l).unwrap_or_else(|| panic!("cannot read tcpdump line {l:?}")))
        .collect()
}

fn parse_syn_line(line: &str) -> Option<TcpdumpSyn> {
    let port =
        |tok: &str| -> Option<u16> { tok.trim_end_matches(':').rsplit('.').next()?.parse().ok() };
    let words: Vec<&str> = line.split_whitespace().collect();
    let gt = words.iter().position(|w| *w == ">")?;
    let (sport, dport) = (port(words[gt - 1])?, port(words[gt + 1])?);
    let field = |name: &str| -> Option<&str> {
        let at = line.find(&format!(" {name} "))? + name.len() + 2;
        line[at..].split([',', ' ']).next()
    };
    let flags = line.split("Flags [").nth(1)?.split(']').next()?.to_string();
    let options = match line.split("options [").nth(1) {
        Some(rest) => rest
            .split(']')
            .next()?
            .split(',')
            .map(|o| o.trim().to_string())
            .collect(),
        None => Vec::new(),
    };
    Some(TcpdumpSyn {
        sport,
        dport,
        flags,
        seq: field("seq")?.parse().ok()?,
        ack: field("ack").and_then(|v| v.parse().ok()),
        win: field("win")?.parse().ok()?,
        options,
        line: line.to_string(),
    })
}
