//! What Linux's `/proc` says about the server processes: resident memory, and which
//! process holds a TCP connection (so a sink can tell two nodes' deliveries apart).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Resident set size of process `pid` in KiB (`VmRSS`), `None` when it is gone.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// Which of `pids` holds the IPv4 loopback socket whose local address is `peer` (the
/// remote end of a connection accepted on this machine).
pub fn socket_owner(peer: SocketAddr, pids: &[u32]) -> Option<u32> {
    let inode = socket_inode(peer)?;
    let wanted = format!("socket:[{inode}]");
    pids.iter().copied().find(|pid| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|entries| {
                entries.filter_map(Result::ok).any(|entry| {
                    std::fs::read_link(entry.path())
                        .map(|target| target.as_os_str() == wanted.as_str())
                        .unwrap_or(false)
                })
            })
            .unwrap_or(false)
    })
}

/// The inode of the TCP socket bound locally to `addr`, from `/proc/net/tcp`.
fn socket_inode(addr: SocketAddr) -> Option<u64> {
    let SocketAddr::V4(v4) = addr else {
        return None;
    };
    // /proc/net/tcp writes the address as the 32-bit value in host byte order, in hex.
    let wanted = format!(
        "{:08X}:{:04X}",
        u32::from_ne_bytes(v4.ip().octets()),
        v4.port()
    );
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // Sockets in TIME_WAIT keep their address but have no inode (0).
        let inode: u64 = fields.get(9)?.parse().ok()?;
        (fields.get(1) == Some(&wanted.as_str()) && inode != 0).then_some(inode)
    })
}

/// Resident memory of a process, sampled every 250 ms on a thread of its own.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<u64>>>,
    thread: std::thread::JoinHandle<()>,
}

/// What the sampler saw, KiB.
pub struct Rss {
    /// First sample, KiB.
    pub start: u64,
    /// Largest sample, KiB.
    pub peak: u64,
    /// Last sample, KiB.
    pub end: u64,
    /// How many samples.
    pub samples: usize,
}

impl RssSampler {
    /// Starts sampling process `pid`.
    pub fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let samples: Arc<Mutex<Vec<u64>>> = Arc::default();
        let (flag, into) = (stop.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                if let Some(kib) = rss_kib(pid) {
                    into.lock().expect("samples").push(kib);
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        });
        RssSampler {
            stop,
            samples,
            thread,
        }
    }

    /// Stops and tells what it saw.
    pub fn stop(self) -> Rss {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        let samples = self.samples.lock().expect("samples").clone();
        Rss {
            start: samples.first().copied().unwrap_or_default(),
            peak: samples.iter().copied().max().unwrap_or_default(),
            end: samples.last().copied().unwrap_or_default(),
            samples: samples.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_this_process_behind_its_own_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server_side, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        let me = std::process::id();
        assert_eq!(socket_owner(peer, &[u32::MAX - 1, me]), Some(me));
        assert!(rss_kib(me).unwrap() > 0);
    }
}
