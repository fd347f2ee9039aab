//! Several `archivectl callbacks serve` processes on one PostgreSQL ledger (issue 14), black-box: real
//! receivers, a real PostgreSQL (a fresh database of the test server), load from the emulator's callback load
//! generator (`opentok_emulator::load`, the service's retries):
//!
//! * two receivers under load, one SIGKILLed mid-run: every acknowledged callback is in the ledger
//!   (`archivectl --json ledger list`), none twice;
//! * the same callbacks at both receivers at once: one archive each, one status row, both raw events kept;
//! * PostgreSQL unreachable (a proxy in front of it cut): 503 (and `/readyz` 503), then, once it is back, the
//!   service's retries get every callback recorded.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::archivectl;
use common::ledgers::TestLedger;
use opentok_emulator::load::{self, Fanout, LoadConfig, LoadReport};

/// How long any one step may take on a loaded 2-core machine before the test fails.
const BOUND: Duration = Duration::from_secs(120);

struct Receiver {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Receiver {
    fn start(ledger: &TestLedger) -> Self {
        let mut cmd = archivectl();
        let mut child = ledger
            .apply(&mut cmd)
            .args(["callbacks", "serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let log = stderr.clone();
        let lines = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                log.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            let mut first = String::new();
            let _ = stdout.read_line(&mut first);
            let _ = tx.send(first);
            let mut rest = String::new();
            let _ = stdout.read_to_string(&mut rest);
        });
        let first = rx
            .recv_timeout(BOUND)
            .unwrap_or_else(|_| panic!("receiver did not start: {}", stderr.lock().unwrap()));
        let addr = first
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("{first:?}: {}", stderr.lock().unwrap()))
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        Self {
            child,
            addr,
            stderr,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/callbacks/archive", self.addr)
    }

    /// SIGTERM, and a clean exit.
    fn stop(mut self) {
        std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "{status}: {}",
            self.stderr.lock().unwrap()
        );
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_load(urls: Vec<String>, fanout: Fanout, count: u64, give_up_after: Duration) -> LoadReport {
    let config = LoadConfig {
        urls,
        fanout,
        count,
        concurrency: 16,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        give_up_after,
        ..LoadConfig::default()
    };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(load::run(config))
        .unwrap()
}

/// The archive ids `archivectl --json ledger list` shows (every one, duplicates kept).
fn listed(ledger: &TestLedger) -> Vec<String> {
    let mut cmd = archivectl();
    let out = ledger
        .apply(&mut cmd)
        .args(["--json", "ledger", "list"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < BOUND, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_receivers_on_postgres_under_load_one_sigkilled_every_acknowledged_callback_is_in_the_ledger()
{
    let Some(ledger) = TestLedger::postgres("receivers") else {
        return;
    };
    let (a, b) = (Receiver::start(&ledger), Receiver::start(&ledger));
    let urls = vec![a.url(), b.url()];
    let count = 2000;
    let loader = std::thread::spawn(move || run_load(urls, Fanout::RoundRobin, count, BOUND));
    // Mid-run: once a sixth of the archives are recorded, SIGKILL the second receiver.
    wait_for("a sixth of the load recorded", || {
        ledger.open().counts().unwrap().0 >= count / 6
    });
    let mut b = b;
    b.child.kill().unwrap();
    b.child.wait().unwrap();
    let at_kill = ledger.open().counts().unwrap().0;
    assert!(
        at_kill < count,
        "killed mid-run ({at_kill} of {count} recorded)"
    );
    let report = loader.join().unwrap();
    assert!(
        report.acked.len() as u64 > count / 6,
        "{}",
        report.summary()
    );
    let ids = listed(&ledger);
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no archive listed twice");
    for id in &report.acked {
        assert!(unique.contains(id), "acknowledged {id} is in the ledger");
    }
    // The load balancer's fail-over (round-robin retries) got every callback to the survivor.
    assert!(report.gave_up.is_empty(), "{}", report.summary());
    assert_eq!(ids.len() as u64, count, "{}", report.summary());
    a.stop();
}

#[test]
fn the_same_callbacks_at_two_receivers_at_once_make_one_archive_each_and_no_doubled_row() {
    let Some(ledger) = TestLedger::postgres("duplicates") else {
        return;
    };
    let (a, b) = (Receiver::start(&ledger), Receiver::start(&ledger));
    let report = run_load(vec![a.url(), b.url()], Fanout::All, 100, BOUND);
    assert_eq!(report.acked.len(), 100, "{}", report.summary());
    assert_eq!(
        report.tries, 200,
        "each callback went to both receivers once"
    );
    let ids = listed(&ledger);
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!((ids.len(), unique.len()), (100, 100), "one archive each");
    let l = ledger.open();
    assert_eq!(l.counts().unwrap(), (100, 200), "both raw events kept");
    for id in &report.acked {
        let details = l.archive_details(id).unwrap().unwrap();
        assert_eq!(details.status_history.len(), 1, "{id}: one status row");
        assert_eq!(details.status_history[0].times_seen, 2, "{id}: seen twice");
    }
    a.stop();
    b.stop();
}

/// A TCP proxy to the test PostgreSQL that can be cut (every connection closed, new ones refused) and
/// restored.
struct Proxy {
    port: u16,
    open: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (o, c) = (open.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                if !o.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let mut list = c.lock().unwrap();
                list.push(client.try_clone().unwrap());
                list.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Self { port, open, conns }
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

/// One HTTP/1.1 request; the status code.
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(BOUND)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {answer:?}"))
}

fn body(id: &str) -> String {
    String::from_utf8(load::callback_body(id, "uploaded")).unwrap()
}

#[test]
fn postgres_unreachable_answers_503_then_the_services_retries_record_every_callback() {
    let Some(direct) = TestLedger::postgres("outage") else {
        return;
    };
    // The receiver reaches the database through the proxy: postgres://user@HOST:PORT/db?...
    let (head, rest) = direct.arg.split_once('@').unwrap();
    let (host_port, tail) = rest.split_once('/').unwrap();
    let upstream: SocketAddr = host_port.parse().unwrap();
    let proxy = Proxy::start(upstream);
    let through = direct.with_arg(&format!("{head}@127.0.0.1:{}/{tail}", proxy.port));
    let r = Receiver::start(&through);
    let before = "0e4c3b4a-5e00-4c8a-9d43-000000000001";
    assert_eq!(
        http(r.addr, "POST", "/callbacks/archive", &body(before)),
        200
    );
    assert_eq!(http(r.addr, "GET", "/readyz", ""), 200);

    proxy.cut();
    let during = "0e4c3b4a-5e00-4c8a-9d43-000000000002";
    assert_eq!(
        http(r.addr, "POST", "/callbacks/archive", &body(during)),
        503,
        "{}",
        r.stderr.lock().unwrap()
    );
    assert_eq!(http(r.addr, "GET", "/readyz", ""), 503);
    assert_eq!(http(r.addr, "GET", "/healthz", ""), 200, "alive all along");

    // The service retries while the database is away; it comes back a moment later.
    let urls = vec![r.url()];
    let loader = std::thread::spawn(move || run_load(urls, Fanout::RoundRobin, 20, BOUND));
    std::thread::sleep(Duration::from_millis(500));
    proxy.restore();
    let report = loader.join().unwrap();
    assert_eq!(report.acked.len(), 20, "{}", report.summary());
    assert!(
        report.tries > 20,
        "some tries met the outage: {}",
        report.summary()
    );
    wait_for("the retried callback", || {
        http(r.addr, "POST", "/callbacks/archive", &body(during)) == 200
    });
    let ids: BTreeSet<String> = listed(&direct).into_iter().collect();
    for id in report
        .acked
        .iter()
        .map(String::as_str)
        .chain([before, during])
    {
        assert!(ids.contains(id), "{id} is in the ledger");
    }
    assert_eq!(ids.len(), 22);
    r.stop();
}
