//! Several `archivectl pull --all` processes sharing one ledger, SQLite or PostgreSQL (issue 14): archives from s3s-fs,
//! each decrypted, verified, recorded and deleted exactly once, every worker doing some of the work; a worker
//! SIGKILLed mid-archive has its archive finished by another once its lease expires; and `pull --all --watch`
//! pulls what a sync records while it runs and stops cleanly on SIGTERM. Outputs equal openssl's decryption.
//!
//! Nothing here waits on time: the workers are held by the hidden `--test-gate` hook until each holds a
//! lease, the kill waits for the victim's first checkpoint file, the watcher's output is waited for as a file.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::fake_service::serve;
use common::ledgers::TestLedger;
use common::*;
use storage_fetch::test_env::TestServers;
use storage_fetch::{S3Target, Store, Target};

const API_KEY: &str = "46000003";
const SECRET: &str = "workers-test-secret-0123456789abcdef0123";
/// How long any one event may take on a loaded 2-core machine before the test fails.
const BOUND: Duration = Duration::from_secs(180);

fn archive_body(id: &str, password: &str) -> String {
    format!(
        r#"{{"id":"{id}","status":"uploaded","sessionId":"S","partnerId":{API_KEY},"createdAt":1700000000000,
            "duration":0,"size":1,"password":"{password}"}}"#
    )
}

/// Fresh archive ids (so parallel runs against the shared s3s-fs never collide).
fn fresh_ids(n: usize) -> Vec<String> {
    let run = std::process::id();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    (0..n)
        .map(|i| format!("{run:08x}-{:04x}-4000-8000-{i:012x}", nanos & 0xffff))
        .collect()
}

/// Uploads `file` as the archive object of each id.
fn put_all(s3: &S3Target, ids: &[String], file: &Path) {
    let data = bytes::Bytes::from(std::fs::read(file).unwrap());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = Store::new(Target::S3(s3.clone())).unwrap();
        for id in ids {
            store
                .put(&format!("{API_KEY}/{id}/archive.ts"), data.clone())
                .await
                .unwrap();
        }
    });
}

/// Records the archives in the ledger the way a user does: `archivectl sync` from the (fake) REST API.
fn sync(fx: &Fixture, ledger: &TestLedger, ids: &[String], password: &str) {
    let items: Vec<String> = ids.iter().map(|id| archive_body(id, password)).collect();
    let list = format!(r#"{{"count":{},"items":[{}]}}"#, ids.len(), items.join(","));
    let (api, _fake) = serve(vec![(200, &list)]);
    let mut cmd = archivectl();
    let out = ledger
        .apply(&mut cmd)
        .env("OPENTOK_API_SECRET", SECRET)
        .current_dir(fx.dir.path())
        .args([
            "--api-key",
            API_KEY,
            "--api-url",
            &format!("http://{api}"),
            "sync",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s3_args(t: &S3Target, fx: &Fixture) -> Vec<String> {
    use secrecy::ExposeSecret;
    std::fs::write(fx.path("s3secret"), t.secret_access_key.expose_secret()).unwrap();
    vec![
        "--bucket".into(),
        t.bucket.clone(),
        "--endpoint".into(),
        t.endpoint.clone().unwrap(),
        "--access-key-id".into(),
        t.access_key_id.clone(),
        "--secret-access-key-file".into(),
        fx.path("s3secret"),
    ]
}

/// A `pull --all` worker (no API secret: everything it needs is in the ledger), stdout and stderr piped.
fn worker(fx: &Fixture, ledger: &TestLedger, s3: &[String], extra: &[&str]) -> Child {
    let mut cmd = archivectl();
    ledger
        .apply(&mut cmd)
        .current_dir(fx.dir.path())
        .args([
            "--api-key",
            API_KEY,
            "--json",
            "pull",
            "--all",
            "--key",
            "key.pem",
        ])
        .args(["--out-dir", "out", "--delete-object"])
        .args(s3)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Kills the workers a failing test leaves behind (only while panicking: a passing test has reaped them).
struct KillOnPanic(Vec<u32>);

impl Drop for KillOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for pid in &self.0 {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

/// Waits until `ready()` holds, failing after [`BOUND`] with `what`.
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < BOUND, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The ids a worker reports pulled (its `--json` output), and its exit code and stderr.
fn finish(child: Child) -> (Vec<String>, Option<i32>, String) {
    let (pulled, code, stderr) = finish_json(child);
    let ids = pulled
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    (ids, code, stderr)
}

/// What a worker reports pulled (its `--json` output), and its exit code and stderr.
fn finish_json(child: Child) -> (Vec<serde_json::Value>, Option<i32>, String) {
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let pulled: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", String::from_utf8_lossy(&out.stdout)));
    (
        pulled.as_array().unwrap().clone(),
        out.status.code(),
        stderr,
    )
}

/// Per archive: (verified pull attempts, object deletions), read from the ledger.
fn ledger_counts(ledger: &TestLedger) -> BTreeMap<String, (i64, i64)> {
    let l = ledger.open();
    ledger
        .archive_ids()
        .into_iter()
        .map(|id| {
            let verified = l
                .pull_attempts(&id)
                .unwrap()
                .iter()
                .filter(|p| p.outcome == "verified")
                .count() as i64;
            let deleted = l
                .deletions(&id)
                .unwrap()
                .iter()
                .filter(|d| d.what == "object")
                .count() as i64;
            (id, (verified, deleted))
        })
        .collect()
}

fn leases(ledger: &TestLedger) -> Vec<(String, String)> {
    ledger
        .open()
        .leases()
        .unwrap()
        .into_iter()
        .map(|l| (l.archive_id, l.owner))
        .collect()
}

/// Makes `{name}` from `copies` copies of the clip, encrypted by openssl with the fixture's key and IV, and
/// its expected decryption `{name}.expected` by the documented commands.
fn encrypted(fx: &Fixture, name: &str, copies: usize) {
    sh(
        fx.dir.path(),
        &format!(
            "for i in $(seq {copies}); do cat clip.ts; done > {name}.plain
             openssl enc -aes-256-cbc -K $(cat key.hex) -iv $(cat iv.hex) -in {name}.plain -out {name}"
        ),
    );
    fx.documented_decrypt(name, &format!("{name}.expected"));
}

fn no_partial_files(dir: &Path) {
    let left: Vec<String> = files(dir)
        .into_iter()
        .filter(|f| f.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "partial outputs left: {left:?}");
}

#[test]
fn three_workers_share_thirty_archives_and_a_killed_workers_archive_is_finished_by_another() {
    let fx = Fixture::new();
    let ledger = TestLedger::sqlite(fx.path("ledger.sqlite3"));
    three_workers_share_thirty_archives(&fx, &ledger);
}

/// The same on one PostgreSQL ledger (issue 14: workers on several machines).
#[test]
fn three_workers_share_thirty_archives_on_postgres_and_a_killed_workers_archive_is_finished_by_another()
 {
    let Some(ledger) = TestLedger::postgres("workers") else {
        return;
    };
    three_workers_share_thirty_archives(&Fixture::new(), &ledger);
}

fn three_workers_share_thirty_archives(fx: &Fixture, ledger: &TestLedger) {
    let servers = TestServers::require().expect("the test servers (cargo xtask ci starts them)");
    std::fs::create_dir_all(fx.path("out")).unwrap();
    std::fs::create_dir_all(fx.path("gate")).unwrap();
    let password = std::fs::read_to_string(fx.path("password.b64")).unwrap();
    let password = password.trim();
    let s3 = s3_args(&servers.s3, fx);

    // 30 archives, each of a few copies of the clip.
    encrypted(fx, "small.ts", 3);
    let ids = fresh_ids(31);
    let (ids, victim_id) = (&ids[..30], ids[30].clone());
    put_all(&servers.s3, ids, &fx.dir.path().join("small.ts"));
    sync(fx, ledger, ids, password);

    // Three workers, one archive at a time each; each holds its first lease at the gate until all three do,
    // so none can finish the work before the others start.
    let workers: Vec<Child> = (0..3)
        .map(|_| {
            worker(
                fx,
                ledger,
                &s3,
                &["--parallel", "1", "--test-gate", &fx.path("gate")],
            )
        })
        .collect();
    let mut reaper = KillOnPanic(workers.iter().map(Child::id).collect());
    let claimed = || {
        files(&fx.dir.path().join("gate"))
            .into_iter()
            .filter(|f| f.starts_with("claimed-"))
            .collect::<Vec<_>>()
    };
    wait_for("the three workers' first claims", || claimed().len() == 3);
    let first: BTreeSet<String> = claimed()
        .iter()
        .map(|f| std::fs::read_to_string(fx.dir.path().join("gate").join(f)).unwrap())
        .collect();
    assert_eq!(first.len(), 3, "three different archives: {first:?}");
    std::fs::write(fx.path("gate/go"), "").unwrap();

    let mut all = Vec::new();
    for w in workers {
        let (pulled, code, stderr) = finish(w);
        assert_eq!(code, Some(0), "{stderr}");
        assert!(!pulled.is_empty(), "every worker did some work: {stderr}");
        all.extend(pulled);
    }
    all.sort();
    let mut expected: Vec<String> = ids.to_vec();
    expected.sort();
    assert_eq!(all, expected, "each archive pulled by exactly one worker");
    let wanted = std::fs::read(fx.path("small.ts.expected")).unwrap();
    for id in ids {
        assert_eq!(
            std::fs::read(fx.path(&format!("out/{id}.ts"))).unwrap(),
            wanted,
            "{id}: the documented openssl decryption"
        );
    }
    let counts = ledger_counts(ledger);
    for id in ids {
        assert_eq!(
            counts[id],
            (1, 1),
            "{id}: verified once, object deleted once"
        );
    }
    assert!(leases(ledger).is_empty(), "every lease released");
    no_partial_files(&fx.dir.path().join("out"));

    // A worker with a short lease is SIGKILLed mid-archive (after its first checkpoint)...
    encrypted(fx, "big.ts", 400);
    put_all(
        &servers.s3,
        std::slice::from_ref(&victim_id),
        &fx.dir.path().join("big.ts"),
    );
    sync(fx, ledger, std::slice::from_ref(&victim_id), password);
    let slow = [
        "--parallel",
        "1",
        "--concurrency",
        "1",
        "--part-size-mib",
        "1",
        "--checkpoint-mib",
        "1",
        "--lease-ms",
        "3000",
    ];
    let mut victim = worker(fx, ledger, &s3, &slow);
    reaper.0.push(victim.id());
    let state = fx
        .dir
        .path()
        .join(format!("out/.{victim_id}.ts.partial.json"));
    wait_for("the victim's first checkpoint", || state.exists());
    victim.kill().unwrap();
    victim.wait().unwrap();
    assert!(!fx.dir.path().join(format!("out/{victim_id}.ts")).exists());
    let held = leases(ledger);
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(
        held[0].1.contains(&format!("-{}-", victim.id())),
        "the dead worker still holds the lease: {held:?}"
    );

    // ...and a watching worker takes the archive over once the lease expires, resuming the checkpoint.
    let taker = worker(fx, ledger, &s3, &["--watch", "--lease-ms", "3000"]);
    reaper.0.push(taker.id());
    let output = fx.dir.path().join(format!("out/{victim_id}.ts"));
    wait_for("the taken-over archive's output", || output.exists());
    // The output is renamed into place before the ledger records it: wait for the record too.
    wait_for("the ledger's record of it", || {
        ledger_counts(ledger)[&victim_id] == (1, 1)
    });
    Command::new("kill")
        .args(["-TERM", &taker.id().to_string()])
        .status()
        .unwrap();
    let (pulled, code, stderr) = finish_json(taker);
    assert_eq!(code, Some(143), "{stderr}");
    assert_eq!(pulled.len(), 1, "{stderr}");
    assert_eq!(pulled[0]["id"], victim_id.as_str());
    assert!(
        pulled[0]["resumed_from"].as_u64().unwrap() > 0,
        "resumed from the dead worker's checkpoint: {}",
        pulled[0]
    );
    assert_eq!(
        std::fs::read(&output).unwrap(),
        std::fs::read(fx.path("big.ts.expected")).unwrap()
    );
    assert!(leases(ledger).is_empty());
    no_partial_files(&fx.dir.path().join("out"));
}

#[test]
fn watch_pulls_what_a_sync_records_while_it_runs_and_stops_cleanly_on_sigterm() {
    let fx = Fixture::new();
    let ledger = TestLedger::sqlite(fx.path("ledger.sqlite3"));
    watch_pulls_what_a_sync_records(&fx, &ledger);
}

/// The same with the ledger on PostgreSQL.
#[test]
fn watch_on_postgres_pulls_what_a_sync_records_while_it_runs_and_stops_cleanly_on_sigterm() {
    let Some(ledger) = TestLedger::postgres("watch") else {
        return;
    };
    watch_pulls_what_a_sync_records(&Fixture::new(), &ledger);
}

fn watch_pulls_what_a_sync_records(fx: &Fixture, ledger: &TestLedger) {
    let servers = TestServers::require().expect("the test servers (cargo xtask ci starts them)");
    std::fs::create_dir_all(fx.path("out")).unwrap();
    let password = std::fs::read_to_string(fx.path("password.b64")).unwrap();
    let s3 = s3_args(&servers.s3, fx);
    fx.documented_decrypt("archive.ts", "expected.ts");
    let id = fresh_ids(1).remove(0);
    put_all(
        &servers.s3,
        std::slice::from_ref(&id),
        &fx.dir.path().join("archive.ts"),
    );

    let mut watcher = worker(fx, ledger, &s3, &["--watch"]);
    let _reaper = KillOnPanic(vec![watcher.id()]);
    // It says it is watching (stderr) before anything is recorded.
    let stderr = watcher.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if line.starts_with("watching the ledger") {
                tx.send(()).unwrap();
            }
            lines.push(line);
        }
        lines
    });
    rx.recv_timeout(BOUND).expect("the watcher starts watching");
    assert!(files(&fx.dir.path().join("out")).is_empty());

    sync(fx, ledger, std::slice::from_ref(&id), password.trim());
    let output = fx.dir.path().join(format!("out/{id}.ts"));
    wait_for("the watched archive's output", || output.exists());
    wait_for("the ledger's record of it", || {
        ledger_counts(ledger)[&id] == (1, 1)
    });
    Command::new("kill")
        .args(["-TERM", &watcher.id().to_string()])
        .status()
        .unwrap();
    let out = watcher.wait_with_output().unwrap();
    let lines = reader.join().unwrap();
    assert_eq!(out.status.code(), Some(143), "{lines:?}");
    let pulled: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pulled.as_array().unwrap().len(), 1, "{pulled}");
    assert_eq!(pulled[0]["id"], id.as_str());
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("error: stopped watching (terminated)"),
        "{lines:?}"
    );
    assert_eq!(
        std::fs::read(&output).unwrap(),
        std::fs::read(fx.path("expected.ts")).unwrap()
    );
    no_partial_files(&fx.dir.path().join("out"));
    assert!(leases(ledger).is_empty());
}
