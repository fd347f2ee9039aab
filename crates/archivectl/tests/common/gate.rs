//! A TCP proxy on loopback whose answers stop after a number of bytes until the test opens its gate: a
//! download held mid-way, for as long as the test needs, without timing.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// Holds back what a server sends once `threshold` bytes have gone through, until opened.
pub struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
    passed: AtomicU64,
    threshold: u64,
}

impl Gate {
    /// A closed gate that lets `threshold` bytes through.
    pub fn new(threshold: u64) -> Arc<Self> {
        Arc::new(Self {
            open: Mutex::new(false),
            opened: Condvar::new(),
            passed: AtomicU64::new(0),
            threshold,
        })
    }

    /// Counts `n` bytes going through; waits for the gate to open once past the threshold.
    fn pass(&self, n: usize) {
        if self.passed.fetch_add(n as u64, Ordering::Relaxed) + n as u64 > self.threshold {
            let mut open = self.open.lock().unwrap();
            while !*open {
                open = self.opened.wait(open).unwrap();
            }
        }
    }

    /// Lets everything through from now on.
    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

/// A TCP proxy on loopback to `upstream` whose answers go through `gate`.
pub fn gated_proxy(upstream: SocketAddr, gate: Arc<Gate>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut client) = conn else { continue };
            let Ok(mut server) = TcpStream::connect(upstream) else {
                continue;
            };
            let (mut client_w, mut server_w) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client, &mut server_w);
                let _ = server_w.shutdown(Shutdown::Write);
            });
            let gate = gate.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 16 << 10];
                loop {
                    match server.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            gate.pass(n);
                            if client_w.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = client_w.shutdown(Shutdown::Write);
            });
        }
    });
    addr
}
