//! `archivectl ledger migrate --to postgres://...` (issue 14), black-box against the test PostgreSQL: a SQLite
//! ledger is copied whole and verified (per-table counts and checksums, `--json`), a second run adds nothing,
//! the password comes from PGPASSWORD or a 0600 `.pgpass` (never the URL: refused), and a destination that
//! held other rows is reported as different (exit 8).
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::process::Output;

use archive_db::{IncomingEvent, Ledger};
use common::archivectl;
use common::ledgers::TestLedger;

fn event(id: &str, status: &str) -> IncomingEvent {
    let body = String::from_utf8(opentok_emulator::load::callback_body(id, status)).unwrap();
    IncomingEvent::from_callback(body.as_bytes(), "test").unwrap()
}

const IDS: [&str; 3] = [
    "1d6f3a8e-0000-4000-8000-000000000001",
    "1d6f3a8e-0000-4000-8000-000000000002",
    "1d6f3a8e-0000-4000-8000-000000000003",
];

/// A SQLite ledger with three archives, five raw events, a verified pull and a deletion.
fn sqlite_ledger(dir: &std::path::Path) -> String {
    let path = dir.join("ledger.sqlite3");
    let mut l = Ledger::open(&path).unwrap();
    for id in IDS {
        l.record_event(&event(id, "started")).unwrap();
    }
    l.record_event(&event(IDS[0], "uploaded")).unwrap();
    l.record_event(&event(IDS[1], "uploaded")).unwrap();
    l.record_deletion(
        IDS[0],
        archive_db::Deleted::Object,
        "s3://b/k",
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    path.display().to_string()
}

fn migrate(pg: &TestLedger, from: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = archivectl();
    cmd.env_remove("PGPASSWORD").env_remove("PGPASSFILE").args([
        "--json", "ledger", "migrate", "--to", &pg.arg, "--ledger", from,
    ]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn report(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn listed(ledger: &TestLedger) -> Vec<serde_json::Value> {
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
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn migrate_copies_a_sqlite_ledger_into_postgres_verified_and_a_second_run_adds_nothing() {
    let Some(pg) = TestLedger::postgres("migrate") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let from = sqlite_ledger(dir.path());
    let password = pg.password().unwrap().to_string();

    let first = report(&migrate(&pg, &from, &[("PGPASSWORD", &password)]));
    assert_eq!(first["verified"], true, "{first}");
    let table = |r: &serde_json::Value, name: &str| -> serde_json::Value {
        r["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"] == name)
            .unwrap()
            .clone()
    };
    for (name, rows) in [
        ("archives", 3),
        ("events", 5),
        ("deletions", 1),
        ("projects", 1),
    ] {
        let t = table(&first, name);
        assert_eq!(t["source_rows"], rows, "{t}");
        assert_eq!(t["destination_rows"], rows, "{t}");
        assert_eq!(t["copied"], rows, "{t}");
        assert_eq!(t["source_checksum"], t["destination_checksum"], "{t}");
    }
    let total: u64 = first["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["source_rows"].as_u64().unwrap())
        .sum();
    assert_eq!(first["copied"], total);

    // Idempotent: the second run adds nothing and still verifies.
    let second = report(&migrate(&pg, &from, &[("PGPASSWORD", &password)]));
    assert_eq!(
        (second["verified"].clone(), second["copied"].clone()),
        (true.into(), 0.into())
    );

    // The PostgreSQL ledger lists what the SQLite one does.
    let sqlite = TestLedger::sqlite(from.clone());
    assert_eq!(listed(&pg), listed(&sqlite));

    // A row the source does not have: the comparison says so, exit 8.
    let mut l = pg.open();
    l.record_event(&event("1d6f3a8e-0000-4000-8000-000000000009", "started"))
        .unwrap();
    let out = migrate(&pg, &from, &[("PGPASSWORD", &password)]);
    assert_eq!(
        out.status.code(),
        Some(8),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("differs") && stderr.contains("archives"),
        "{stderr}"
    );
}

#[test]
fn the_password_comes_from_a_private_pgpass_and_never_from_the_url() {
    let Some(pg) = TestLedger::postgres("pgpass") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let from = sqlite_ledger(dir.path());
    let password = pg.password().unwrap().to_string();

    // In the URL: refused before anything is opened, the password not repeated.
    let with_password = pg.arg.replacen('@', &format!(":{password}@"), 1);
    let out = archivectl()
        .args([
            "ledger",
            "migrate",
            "--to",
            &with_password,
            "--ledger",
            &from,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("password") && stderr.contains("PGPASSWORD"),
        "{stderr}"
    );
    assert!(!stderr.contains(&password), "{stderr}");

    // From ~/.pgpass when it is private...
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let pgpass = home.join(".pgpass");
    std::fs::write(&pgpass, format!("# test\n*:*:*:*:{password}\n")).unwrap();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let home_s = home.to_str().unwrap();
    let ok = report(&migrate(&pg, &from, &[("HOME", home_s)]));
    assert_eq!(ok["verified"], true);

    // ...and not when others may read it (libpq's rule): a warning, and no password.
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut cmd = archivectl();
    let out = cmd
        .env_remove("PGPASSWORD")
        .env_remove("PGPASSFILE")
        .env("HOME", home_s)
        .args(["ledger", "migrate", "--to", &pg.arg, "--ledger", &from])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(8));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("group or world access"), "{stderr}");
}

/// `[ledger] url` and `password_file` in archivectl.toml: every command then runs on PostgreSQL without a flag
/// or variable, and `config show` says where each came from (the password itself never shown).
#[test]
fn the_config_files_ledger_url_and_password_file_put_every_command_on_postgres() {
    let Some(pg) = TestLedger::postgres("config") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let from = sqlite_ledger(dir.path());
    let password = pg.password().unwrap().to_string();
    std::fs::write(dir.path().join("ledger-password"), format!("{password}\n")).unwrap();
    let config = dir.path().join("archivectl.toml");
    std::fs::write(
        &config,
        format!(
            "[ledger]\nurl = \"{}\"\npassword_file = \"ledger-password\"\n",
            pg.arg
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        archivectl()
            .env_remove("ARCHIVECTL_LEDGER")
            .env_remove("PGPASSWORD")
            .env_remove("PGPASSFILE")
            .env("HOME", dir.path())
            .env("ARCHIVECTL_CONFIG", &config)
            .args(args)
            .output()
            .unwrap()
    };
    // The password file is found relative to the configuration file.
    let out = run(&[
        "--json", "ledger", "migrate", "--to", &pg.arg, "--ledger", &from,
    ]);
    assert_eq!(report(&out)["verified"], true);
    let out = run(&["--json", "ledger", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        listed.as_array().unwrap().len(),
        IDS.len(),
        "the PostgreSQL ledger's archives"
    );

    let out = run(&["--json", "config", "show"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains(&password),
        "the password is never shown: {text}"
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let setting = |name: &str| {
        json["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {json}"))
            .clone()
    };
    assert_eq!(setting("ledger.url")["value"], pg.arg.as_str());
    assert!(
        setting("ledger.url")["source"]
            .as_str()
            .unwrap()
            .starts_with("file "),
        "{json}"
    );
    assert!(
        setting("ledger.password_file")["value"]
            .as_str()
            .unwrap()
            .ends_with("ledger-password")
    );
}
