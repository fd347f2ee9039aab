//! The official OpenTok server SDKs drive the emulator through their base-URL option: the Python `opentok`
//! package (`Client(api_key, secret, api_url=...)`) and the Node `opentok` package
//! (`new OpenTok(key, secret, { apiUrl })`) start, stop, get, list by session and delete archives, and meet the
//! emulator's error answers as they meet the service's.
//!
//! The SDKs live in `.xtask/python-sdk` (a venv) and `.xtask/node-sdk`; `cargo xtask ci` installs them
//! (`cargo xtask install-sdks`), and these tests install them if they are missing (pinned versions below).
//! When that is impossible they fail, unless `ARCHIVECTL_SKIP_SDK_TESTS=1`.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use opentok_rest::model::{ArchiveEncryption, ArchiveStatus, Fallback, S3Config, StorageTarget};
use serde_json::Value;

/// The SDK versions the tests run (and xtask installs).
const PYTHON_SDK: &str = "opentok==3.15.0";
const NODE_SDK: &str = "opentok@2.23.2";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

fn skip() -> bool {
    if std::env::var("ARCHIVECTL_SKIP_SDK_TESTS").as_deref() == Ok("1") {
        eprintln!("skipped: ARCHIVECTL_SKIP_SDK_TESTS=1");
        return true;
    }
    false
}

fn run(command: &mut Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| {
        panic!("cannot run {what}: {e} (set ARCHIVECTL_SKIP_SDK_TESTS=1 to skip)")
    });
    assert!(
        out.status.success(),
        "{what} failed (set ARCHIVECTL_SKIP_SDK_TESTS=1 to skip):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The venv's python with the SDK, installed if missing.
fn python_sdk() -> PathBuf {
    let venv = workspace_root().join(".xtask/python-sdk");
    let python = venv.join("bin/python");
    let ready = python.is_file()
        && Command::new(&python)
            .args(["-c", "import opentok"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !ready {
        run(
            Command::new("python3").arg("-m").arg("venv").arg(&venv),
            "python3 -m venv",
        );
        run(
            Command::new(&python).args(["-m", "pip", "install", "--quiet", PYTHON_SDK]),
            "pip install opentok",
        );
    }
    python
}

/// The directory whose node_modules holds the SDK, installed if missing.
fn node_sdk() -> PathBuf {
    let dir = workspace_root().join(".xtask/node-sdk");
    if !dir.join("node_modules/opentok/package.json").is_file() {
        std::fs::create_dir_all(&dir).unwrap();
        if !dir.join("package.json").is_file() {
            std::fs::write(
                dir.join("package.json"),
                r#"{"name":"archivectl-node-sdk","private":true}"#,
            )
            .unwrap();
        }
        run(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--silent", NODE_SDK])
                .current_dir(&dir),
            "npm install opentok",
        );
    }
    dir
}

/// Runs a script, returns its last stdout line as JSON.
async fn script(mut command: Command) -> Value {
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the SDK script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

const PYTHON_SCRIPT: &str = r#"
import json, sys, time, warnings
warnings.simplefilter("ignore")
import opentok
from opentok.exceptions import ArchiveError, AuthError, NotFoundError

base, key, secret, session = sys.argv[1:5]
ot = opentok.Client(key, secret, api_url=base)
out = {}
a = ot.start_archive(session, name="python-sdk")
out["started"] = {"id": a.id, "status": a.status, "name": a.name, "session": a.session_id,
                  "output_mode": a.output_mode.value, "has_video": a.has_video}
s = ot.stop_archive(a.id)
out["stopped"] = {"status": s.status, "duration": s.duration}
for _ in range(1200):  # polled until it changes, for up to a minute
    g = ot.get_archive(a.id)
    if g.status != "stopped":
        break
    time.sleep(0.05)
out["got"] = {"status": g.status, "url": g.url, "size": g.size}
listed = ot.list_archives(session_id=session)
out["listed"] = {"count": listed.count, "ids": [x.id for x in listed.items]}
other = ot.list_archives(offset=0, count=10, session_id="no-such-session")
out["other_session"] = other.count
try:
    ot.stop_archive(a.id)
    out["stop_again"] = None
except ArchiveError as e:
    out["stop_again"] = str(e)
ot.delete_archive(a.id)
out["after_delete"] = {"count": ot.list_archives(session_id=session).count,
                       "status": ot.get_archive(a.id).status}
try:
    ot.get_archive("AN-INVALID-ARCHIVE-ID")
    out["not_found"] = None
except NotFoundError as e:
    out["not_found"] = str(e)
try:
    opentok.Client(key, "not-the-secret", api_url=base).list_archives()
    out["bad_secret"] = None
except AuthError as e:
    out["bad_secret"] = type(e).__name__
# The older class, deprecated but still used.
out["legacy_count"] = opentok.OpenTok(key, secret, api_url=base).get_archives(session_id=session).count
print(json.dumps(out))
"#;

#[tokio::test]
async fn the_python_sdk_drives_the_emulator() {
    if skip() {
        return;
    }
    let python = tokio::task::spawn_blocking(python_sdk).await.unwrap();
    let emulator = builder().start().await.unwrap();
    let mut command = Command::new(python);
    command.args([
        "-c",
        PYTHON_SCRIPT,
        &emulator.base_url(),
        API_KEY,
        API_SECRET,
        "2_MX4-python",
    ]);
    let out = script(command).await;
    let id = out["started"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        out["started"],
        serde_json::json!({"id": id, "status": "started", "name": "python-sdk", "session": "2_MX4-python",
            "output_mode": "composed", "has_video": true})
    );
    assert_eq!(out["stopped"]["status"], "stopped");
    assert_eq!(out["got"]["status"], "available");
    assert!(
        out["got"]["url"]
            .as_str()
            .unwrap()
            .starts_with(&emulator.base_url())
    );
    assert_eq!(out["listed"], serde_json::json!({"count": 1, "ids": [id]}));
    assert_eq!(out["other_session"], 0);
    assert_eq!(out["stop_again"], "Archive is not in started state");
    assert_eq!(
        out["after_delete"],
        serde_json::json!({"count": 0, "status": "deleted"})
    );
    assert_eq!(out["not_found"], "Archive not found");
    assert_eq!(out["bad_secret"], "AuthError");
    assert_eq!(out["legacy_count"], 0);
    // What the emulator saw: the Python SDK's body, with its explicit nulls, made an archive.
    let snapshot = emulator.snapshot();
    assert_eq!(snapshot.archives.len(), 1);
    assert_eq!(snapshot.archives[0].archive.status, ArchiveStatus::Deleted);
    emulator.stop().await;
}

const NODE_SCRIPT: &str = r#"
const OpenTok = require('opentok');
// `node -e SCRIPT ARGS...`: the arguments start at argv[1].
const [base, key, secret, session, appId, appKey] = process.argv.slice(1);
const call = (ot, method, ...args) => new Promise((resolve, reject) =>
  ot[method](...args, (err, ...rest) => (err ? reject(err) : resolve(rest))));
const failure = (promise) => promise.then(() => null, (e) => e.message);
(async () => {
  const ot = new OpenTok(key, secret, { apiUrl: base });
  const out = {};
  const [a] = await call(ot, 'startArchive', session, { name: 'node-sdk' });
  out.started = { id: a.id, status: a.status, name: a.name, sessionId: a.sessionId, password: a.password };
  const [s] = await call(ot, 'stopArchive', a.id);
  out.stopped = { status: s.status, duration: s.duration };
  let g;
  for (let i = 0; i < 400; i++) {
    [g] = await call(ot, 'getArchive', a.id);
    if (g.status !== 'stopped') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  out.got = { status: g.status, url: g.url, password: g.password, size: g.size };
  const [items, total] = await call(ot, 'listArchives', { sessionId: session });
  out.listed = { total, ids: items.map((x) => x.id) };
  out.stopAgain = await failure(call(ot, 'stopArchive', a.id));
  await call(ot, 'deleteArchive', a.id);
  const [after, afterTotal] = await call(ot, 'listArchives', { sessionId: session });
  out.afterDelete = { total: afterTotal, items: after.length };
  out.notFound = await failure(call(ot, 'getArchive', 'AN-INVALID-ARCHIVE-ID'));
  out.badSecret = await failure(call(new OpenTok(key, 'not-the-secret', { apiUrl: base }), 'listArchives', {}));
  // A Vonage application (RS256 Bearer tokens), pointed at the emulator the same way.
  const app = new OpenTok(appId, appKey, { apiUrl: base });
  const [b] = await call(app, 'startArchive', session + '-app', {});
  const [appItems, appTotal] = await call(app, 'listArchives', {});
  out.application = { status: b.status, applicationId: b.applicationId, total: appTotal, ids: appItems.map((x) => x.id) };
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
"#;

#[tokio::test]
async fn the_node_sdk_drives_the_emulator() {
    if skip() {
        return;
    }
    let sdk = tokio::task::spawn_blocking(node_sdk).await.unwrap();
    let (key, cert) = certificate(None, 2048);
    let app_key = archive_core::keys::generate_rsa_key(2048).unwrap();
    let app_id = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
    let emulator = builder()
        .application(app_id, app_key.to_public_key())
        .start()
        .await
        .unwrap();
    // Encrypted, with a target nobody listens at and fallback: the archive ends `available`.
    let target = StorageTarget::s3(
        S3Config {
            bucket: "b".into(),
            access_key: "a".into(),
            secret_key: "s".into(),
            endpoint: Some("http://127.0.0.1:1".into()),
            sse: None,
        },
        Fallback::Opentok,
        ArchiveEncryption::for_certificate(&cert),
    );
    client(&emulator)
        .set_archive_storage(&target)
        .await
        .unwrap();
    let app_pem = archive_core::keys::to_pkcs8_pem(&app_key, None).unwrap();
    let mut command = Command::new("node");
    command
        .args([
            "-e",
            NODE_SCRIPT,
            &emulator.base_url(),
            API_KEY,
            API_SECRET,
            "2_MX4-node",
            app_id,
        ])
        .arg(app_pem.as_str())
        .current_dir(&sdk);
    let out = script(command).await;
    let id = out["started"]["id"].as_str().unwrap().to_owned();
    assert_eq!(out["started"]["status"], "started");
    assert_eq!(out["started"]["name"], "node-sdk");
    assert_eq!(out["started"]["sessionId"], "2_MX4-node");
    assert_eq!(
        out["stopped"],
        serde_json::json!({"status": "stopped", "duration": 0})
    );
    assert_eq!(out["got"]["status"], "available");
    // The Node SDK shows the password: it unwraps with the certificate's key.
    let password = out["got"]["password"].as_str().unwrap();
    assert_eq!(out["started"]["password"], password);
    archive_core::oaep::unwrap_password(&key, password).unwrap();
    assert_eq!(out["listed"], serde_json::json!({"total": 1, "ids": [id]}));
    assert_eq!(
        out["stopAgain"],
        "Conflict. You are trying to stop an archive that is not recording."
    );
    assert_eq!(
        out["afterDelete"],
        serde_json::json!({"total": 0, "items": 0})
    );
    assert_eq!(out["notFound"], "Archive not found");
    assert_eq!(out["badSecret"], "Invalid API key or secret");
    assert_eq!(out["application"]["status"], "started");
    assert_eq!(out["application"]["applicationId"], app_id);
    assert_eq!(out["application"]["total"], 1);
    let url = out["got"]["url"].as_str().unwrap();
    let bytes = common::http()
        .get(url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.len() % 16, 0);
    emulator.stop().await;
}
