//! Progress you can see (issue 15), checked as a person would: `pull --all --parallel 2` and `decrypt` of a
//! large input run inside a tmux pane (120x30); the pane is captured while they run (polled until the bars
//! appear — the data is held back by the test meanwhile, so the bars cannot be missed) and at the end: one bar
//! per archive in flight with bytes, rate and ETA, then a clean summary with no bar left; a piped run's
//! stderr carries no control sequence; on a terminal, `-q` and `--json` draw no bar either.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::fake_service::serve;
use common::gate::{Gate, gated_proxy};
use common::storage::*;
use common::*;
use secrecy::ExposeSecret;
use storage_fetch::Target;
use storage_fetch::test_env::TestServers;

const API_KEY: &str = "46000015";
const SECRET: &str = "progress-test-secret-0123456789abcdef01234";

/// A tmux server of its own (its own socket), one pane of 120x30 running `script`, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(dir: &Path, script: &str) -> Self {
        let version = Command::new("tmux").arg("-V").output();
        assert!(
            version.is_ok_and(|o| o.status.success()),
            "tmux is needed for this test (apt-get install -y tmux)"
        );
        let socket = format!("archivectl-progress-{}", fresh_uuid());
        std::fs::write(dir.join("pane.sh"), script).unwrap();
        let status = Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", "120", "-y", "30", "-c"])
            .arg(dir)
            .arg("bash --norc --noprofile pane.sh; echo __DONE__ $?; sleep 100000")
            .status()
            .unwrap();
        assert!(status.success());
        Self { socket }
    }

    fn capture(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "0"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Captures the pane until `done` says it shows what is awaited (generous bound for a loaded machine).
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let screen = self.capture();
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the pane never showed {what}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn bar_lines<'a>(screen: &'a str, label: &str) -> Vec<&'a str> {
    screen
        .lines()
        .filter(|l| l.starts_with(label) && (l.contains("ETA") || l.contains("/s")))
        .collect()
}

#[test]
fn pull_parallel_and_decrypt_show_bars_on_a_terminal_and_nothing_when_piped() {
    let Some(servers) = TestServers::require() else {
        return;
    };
    let fx = Fixture::new();
    // 80 clips: 10 MB per archive.
    sh(
        fx.dir.path(),
        "for i in $(seq 80); do cat clip.ts; done > big.ts
         openssl enc -aes-256-cbc -K $(cat key.hex) -iv $(cat iv.hex) -in big.ts -out archive.ts",
    );
    let password = std::fs::read_to_string(fx.path("password.b64")).unwrap();
    let password = password.trim();
    let ids = [fresh_uuid(), fresh_uuid()];
    put_archives(
        &Target::S3(servers.s3.clone()),
        API_KEY,
        &ids,
        &fx.dir.path().join("archive.ts"),
    );
    let list = uploaded_archive_list(API_KEY, &ids, password);
    let (api, _fake) = serve(vec![(200, &list)]);
    let ledger = fx.path("ledger.sqlite3");
    let out = sync_from(api, API_KEY, SECRET, &ledger, fx.dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // pull --all --parallel 2 in a pane, its downloads held back after 1 MiB.
    let endpoint = servers.s3.endpoint.clone().unwrap();
    let upstream: SocketAddr = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let gate = Gate::new(1 << 20);
    let proxy = gated_proxy(upstream, gate.clone());
    std::fs::write(
        fx.path("s3secret"),
        servers.s3.secret_access_key.expose_secret(),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_archivectl");
    let script = format!(
        "export OPENTOK_API_SECRET={secret} ARCHIVECTL_LEDGER={ledger}\n\
         {bin} --api-key {API_KEY} --api-url http://{api} pull --all --parallel 2 --key key.pem \
         --out-dir out --part-size-mib 1 --bucket {bucket} --endpoint http://{proxy} \
         --access-key-id {access} --secret-access-key-file s3secret\n",
        secret = shell_quote(SECRET),
        ledger = shell_quote(&ledger),
        bin = shell_quote(bin),
        bucket = shell_quote(&servers.s3.bucket),
        access = shell_quote(&servers.s3.access_key_id),
    );
    let pane = Tmux::run(fx.dir.path(), &script);
    let labels: Vec<String> = ids.iter().map(|id| id[..8].to_string()).collect();
    let running = pane.wait_for("a bar per archive in flight", |s| {
        labels.iter().all(|l| !bar_lines(s, l).is_empty())
    });
    for label in &labels {
        let line = bar_lines(&running, label)[0];
        assert!(
            line.contains("ETA") && line.contains("/s") && line.contains('['),
            "{line}"
        );
    }
    gate.open();
    let end = pane.wait_for("the end of the pull", |s| s.contains("__DONE__"));
    assert!(end.contains("__DONE__ 0"), "{end}");
    for id in &ids {
        assert!(end.contains(&format!("pulled {id} -> ")), "{end}");
    }
    assert!(!end.contains("ETA"), "a bar was left on the screen:\n{end}");
    drop(pane);

    // decrypt of a large input (through a FIFO the test feeds, so the bar is there to be seen).
    sh(fx.dir.path(), "mkfifo ct.fifo");
    sh(
        fx.dir.path(),
        "for i in $(seq 2); do cat big.ts; done > big2.ts
         openssl enc -aes-256-cbc -K $(cat key.hex) -iv $(cat iv.hex) -in big2.ts -out archive2.ts",
    );
    let script = format!(
        "{} decrypt --key key.pem --password-file password.b64 --in ct.fifo --out decrypted.ts\n",
        shell_quote(bin)
    );
    let pane = Tmux::run(fx.dir.path(), &script);
    let ct = std::fs::read(fx.path("archive2.ts")).unwrap();
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .open(fx.path("ct.fifo"))
        .unwrap();
    let half = ct.len() / 2 / 16 * 16;
    fifo.write_all(&ct[..half]).unwrap();
    let running = pane.wait_for("the decryption's bar", |s| {
        bar_lines(s, "decrypting").iter().any(|l| l.contains("MiB"))
    });
    assert!(
        bar_lines(&running, "decrypting")[0].contains("/s"),
        "{running}"
    );
    fifo.write_all(&ct[half..]).unwrap();
    drop(fifo);
    let end = pane.wait_for("the end of the decryption", |s| s.contains("__DONE__"));
    assert!(end.contains("__DONE__ 0"), "{end}");
    assert!(end.contains("decrypted ct.fifo -> decrypted.ts"), "{end}");
    assert!(bar_lines(&end, "decrypting").is_empty(), "{end}");
    drop(pane);

    // Piped: no control sequence on stderr, from pull or decrypt.
    let out = archivectl()
        .current_dir(fx.dir.path())
        .args([
            "--api-key",
            API_KEY,
            "pull",
            &ids[0],
            "--password-file",
            "password.b64",
        ])
        .args(["--key", "key.pem", "--out-dir", "piped", "--force"])
        .args(["--bucket", &servers.s3.bucket, "--endpoint"])
        .arg(servers.s3.endpoint.clone().unwrap())
        .args(["--access-key-id", &servers.s3.access_key_id])
        .args(["--secret-access-key-file", "s3secret"])
        .env("ARCHIVECTL_LEDGER", fx.path("ledger-piped.sqlite3"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out2 = archivectl()
        .current_dir(fx.dir.path())
        .args([
            "decrypt",
            "--key",
            "key.pem",
            "--password-file",
            "password.b64",
        ])
        .args(["--in", "archive2.ts", "--out", "piped.ts"])
        .output()
        .unwrap();
    assert!(
        out2.status.success(),
        "{}",
        String::from_utf8_lossy(&out2.stderr)
    );
    for stderr in [&out.stderr, &out2.stderr] {
        assert!(
            !stderr.iter().any(|&b| b == 0x1b || b == b'\r'),
            "control sequences on a piped stderr: {:?}",
            String::from_utf8_lossy(stderr)
        );
    }
}

/// On a terminal too, `--quiet` and `--json` mean no bar: `decrypt` of a large input, held half-way through
/// (a FIFO the test feeds), shows a bar with no flag; with `-q` and with `--json` the pane is watched three
/// times as long as that bar took to show (at least 1.5 s) and shows none; each run finishes cleanly.
#[test]
fn on_a_terminal_quiet_and_json_show_no_bar() {
    let fx = Fixture::new();
    sh(
        fx.dir.path(),
        "for i in $(seq 160); do cat clip.ts; done > big.ts
         openssl enc -aes-256-cbc -K $(cat key.hex) -iv $(cat iv.hex) -in big.ts -out big.enc",
    );
    let ct = std::fs::read(fx.path("big.enc")).unwrap();
    let half = ct.len() / 2 / 16 * 16;
    let bin = env!("CARGO_BIN_EXE_archivectl");
    let mut bar_after = Duration::ZERO;
    for (n, flag) in ["", "-q", "--json"].into_iter().enumerate() {
        let fifo_name = format!("ct{n}.fifo");
        sh(fx.dir.path(), &format!("mkfifo {fifo_name}"));
        let script = format!(
            "{} decrypt --key key.pem --password-file password.b64 --in {fifo_name} --out out{n}.ts {flag}\n",
            shell_quote(bin)
        );
        let pane = Tmux::run(fx.dir.path(), &script);
        let mut fifo = std::fs::OpenOptions::new()
            .write(true)
            .open(fx.path(&fifo_name))
            .unwrap();
        // Once this returns, the decryption has read all but a pipe's worth of it.
        fifo.write_all(&ct[..half]).unwrap();
        let written = Instant::now();
        if flag.is_empty() {
            // Without a flag the bar shows: how long it took sets how long the others are watched.
            pane.wait_for("the decryption's bar", |s| {
                !bar_lines(s, "decrypting").is_empty()
            });
            bar_after = written.elapsed();
        } else {
            // Three times as long as the bar took to show without a flag (at least 1.5 s): no bar.
            std::thread::sleep((bar_after * 3).max(Duration::from_millis(1500)));
            let held = pane.capture();
            assert!(
                bar_lines(&held, "decrypting").is_empty(),
                "a bar with {flag}:\n{held}"
            );
            assert!(!held.contains("MiB"), "progress with {flag}:\n{held}");
        }
        fifo.write_all(&ct[half..]).unwrap();
        drop(fifo);
        let end = pane.wait_for("the end of the decryption", |s| s.contains("__DONE__"));
        assert!(end.contains("__DONE__ 0"), "{flag}: {end}");
        assert!(bar_lines(&end, "decrypting").is_empty(), "{flag}: {end}");
        // The result on stdout stays, with -q too (only stderr is quieted).
        match flag {
            "--json" => assert!(end.contains("\": "), "the JSON result: {end}"),
            _ => assert!(
                end.contains(&format!("decrypted {fifo_name} -> out{n}.ts")),
                "{flag}: {end}"
            ),
        }
        drop(pane);
        // The plaintext, and the PKCS#7 padding `decrypt` keeps (as `openssl enc -d -nopad` does).
        let out = std::fs::read(fx.path(&format!("out{n}.ts"))).unwrap();
        let big = std::fs::read(fx.path("big.ts")).unwrap();
        assert!(
            out.len() == ct.len() && out.starts_with(&big),
            "{flag}: {} bytes out",
            out.len()
        );
    }
}
