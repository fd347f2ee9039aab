//! Profiles (`[profile.NAME.*]`, `--profile`, `ARCHIVECTL_PROFILE`), `config show` and where each setting came
//! from, and the certificate's expiry in `cert inspect`.
#![allow(clippy::unwrap_used)]

mod common;

use common::fake_service::serve;
use common::*;

const CONFIG: &str = r#"# top level: production
[project]
api_key = "46000001"
api_url = "http://127.0.0.1:9"
api_secret_file = "prod-secret"

[keys]
private_key = "prod.pem"

[ledger]
path = "prod.sqlite3"

[profile.staging.project]
api_key = "47000002"
api_url = "{STAGING_URL}"

[profile.staging.ledger]
path = "staging.sqlite3"
"#;

fn setup(staging_url: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("archivectl.toml"),
        CONFIG.replace("{STAGING_URL}", staging_url),
    )
    .unwrap();
    dir
}

fn run_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    archivectl()
        .current_dir(dir)
        .env_remove("ARCHIVECTL_LEDGER")
        .env_remove("ARCHIVECTL_PROFILE")
        .env_remove("OPENTOK_API_KEY")
        .env_remove("OPENTOK_API_URL")
        .env_remove("OPENTOK_API_SECRET")
        .env("ARCHIVECTL_CONFIG", dir.join("archivectl.toml"))
        .args(args)
        .output()
        .unwrap()
}

fn settings(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut map = serde_json::Map::new();
    for s in json["settings"].as_array().unwrap() {
        map.insert(
            s["name"].as_str().unwrap().to_string(),
            serde_json::json!([s["value"], s["source"]]),
        );
    }
    serde_json::json!({ "profile": json["profile"], "profile_source": json["profile_source"], "s": map })
}

#[test]
fn a_profile_replaces_what_it_sets_and_config_show_says_where_each_setting_came_from() {
    let dir = setup("http://127.0.0.1:8");
    let file = dir.path().join("archivectl.toml");
    let file = file.display();

    // No profile: the top level.
    let top = settings(&run_in(dir.path(), &["config", "show", "--json"]));
    assert_eq!(top["profile"], serde_json::Value::Null);
    assert_eq!(
        top["s"]["project.api_key"],
        serde_json::json!(["46000001", format!("file {file}")])
    );

    // --profile staging: its keys, the top level's for the rest, and the flag and environment on top.
    let out = archivectl()
        .current_dir(dir.path())
        .env_remove("ARCHIVECTL_LEDGER")
        .env_remove("OPENTOK_API_KEY")
        .env("ARCHIVECTL_CONFIG", dir.path().join("archivectl.toml"))
        .env("OPENTOK_API_URL", "http://127.0.0.1:7")
        .env("OPENTOK_API_SECRET", "the-secret-value-never-shown")
        .args(["config", "show", "--json", "--profile", "staging"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("the-secret-value-never-shown"),
        "secrets are redacted"
    );
    let s = settings(&out);
    assert_eq!(s["profile"], "staging");
    assert_eq!(s["profile_source"], "flag --profile");
    assert_eq!(
        s["s"]["project.api_key"],
        serde_json::json!(["47000002", format!("file {file}, profile staging")])
    );
    assert_eq!(
        s["s"]["project.api_url"],
        serde_json::json!(["http://127.0.0.1:7", "environment OPENTOK_API_URL"])
    );
    assert_eq!(
        s["s"]["project.api_secret"],
        serde_json::json!(["<redacted>", "environment OPENTOK_API_SECRET"])
    );
    assert_eq!(
        s["s"]["keys.private_key"],
        serde_json::json!([
            dir.path().join("prod.pem").display().to_string(),
            format!("file {file}")
        ]),
        "left out by the profile: the top level's"
    );
    assert_eq!(
        s["s"]["ledger.path"],
        serde_json::json!([
            dir.path().join("staging.sqlite3").display().to_string(),
            format!("file {file}, profile staging")
        ])
    );

    // ARCHIVECTL_PROFILE picks it too; a flag beats the file.
    let out = archivectl()
        .current_dir(dir.path())
        .env_remove("ARCHIVECTL_LEDGER")
        .env_remove("OPENTOK_API_URL")
        .env_remove("OPENTOK_API_KEY")
        .env("ARCHIVECTL_CONFIG", dir.path().join("archivectl.toml"))
        .env("ARCHIVECTL_PROFILE", "staging")
        .args(["config", "show", "--json", "--api-key", "48000003"])
        .output()
        .unwrap();
    let s = settings(&out);
    assert_eq!(s["profile_source"], "environment ARCHIVECTL_PROFILE");
    assert_eq!(
        s["s"]["project.api_key"],
        serde_json::json!(["48000003", "flag --api-key"])
    );
    assert_eq!(
        s["s"]["ledger.path"][1],
        format!("file {file}, profile staging")
    );

    // An unknown profile: a usage error naming the ones there are.
    let out = run_in(dir.path(), &["config", "show", "--profile", "prod"]);
    assert_fails(&out, 2, "unknown profile \"prod\"");
    assert!(String::from_utf8_lossy(&out.stderr).contains("staging"));
}

#[test]
fn every_command_that_calls_the_service_uses_the_profile() {
    let (addr, fake) = serve(vec![(200, r#"{"count":0,"items":[]}"#)]);
    let dir = setup(&format!("http://{addr}"));
    let out = archivectl()
        .current_dir(dir.path())
        .env_remove("ARCHIVECTL_LEDGER")
        .env("ARCHIVECTL_CONFIG", dir.path().join("archivectl.toml"))
        .env("OPENTOK_API_SECRET", "s")
        .env_remove("OPENTOK_API_URL")
        .env_remove("OPENTOK_API_KEY")
        .args(["--profile", "staging", "archives", "list", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let requests = fake.requests.lock().unwrap();
    assert!(
        requests[0].uri.contains("/v2/project/47000002/archive"),
        "{requests:?}"
    );
}

#[test]
fn cert_inspect_says_how_many_days_are_left_and_warns_under_thirty() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    for (days, cert) in [("10", "soon.pem"), ("400", "later.pem")] {
        let out = run(&[
            "keygen",
            "--days",
            days,
            "--cert",
            &p(cert),
            "--key",
            &p(&format!("{cert}.key")),
        ]);
        assert!(out.status.success());
    }
    let out = run(&["cert", "inspect", &p("soon.pem"), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let days = json["expiry_days"].as_i64().unwrap();
    assert!((9..=10).contains(&days), "{json}");
    assert!(
        json["warnings"][0]
            .as_str()
            .unwrap()
            .contains(&format!("expires in {days} days")),
        "{json}"
    );
    let out = run(&["cert", "inspect", &p("soon.pem")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("expires in:   {days} days (WARNING:")),
        "{text}"
    );

    let out = run(&["cert", "inspect", &p("later.pem"), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["expiry_days"].as_i64().unwrap() >= 399, "{json}");
    assert_eq!(json["warnings"], serde_json::json!([]));
}
