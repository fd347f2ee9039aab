//! The current Vonage server SDKs, unmodified and pinned by `cargo xtask install-sdks` (Python `vonage` 4.9.1
//! with `vonage-video` in `.xtask/python-sdk`, Node `@vonage/video` 1.31.1 in `.xtask/node-sdk`), drive the
//! emulator over HTTPS with application credentials (issue 13): the Python SDK only speaks
//! `https://{video_host}`, so the emulator serves TLS with a certificate from a throwaway CA that the SDKs
//! trust through `REQUESTS_CA_BUNDLE` and `NODE_EXTRA_CA_CERTS`. Each journey: start with options, add and
//! remove a stream, set the layout, stop, get (the `password` unwraps with our key), list by session, delete;
//! and the object it downloads decrypts with the service's documented openssl commands.
//!
//! When the SDK is not installed the test fails and says how to install it, unless
//! `ARCHIVECTL_SKIP_SDK_TESTS=1` (which it says on stderr).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::bash;
use serde_json::Value;

const APP_ID: &str = "3c5f9f5e-7d8e-4a43-b9b4-6c0a1d2e3f40";

fn skip() -> bool {
    let skip = std::env::var("ARCHIVECTL_SKIP_SDK_TESTS").as_deref() == Ok("1");
    if skip {
        eprintln!("skipped: ARCHIVECTL_SKIP_SDK_TESTS=1");
    }
    skip
}

fn python() -> Option<PathBuf> {
    if skip() {
        return None;
    }
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.xtask/python-sdk/bin/python");
    let ready = Command::new(&python)
        .args([
            "-c",
            "import importlib.metadata as m, vonage_video; assert m.version('vonage') == '4.9.1'",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ready,
        "the Vonage Python SDK (vonage==4.9.1) is not in .xtask/python-sdk: run `cargo xtask install-sdks` \
         (or set ARCHIVECTL_SKIP_SDK_TESTS=1 to skip)"
    );
    Some(python)
}

/// A throwaway CA and a server certificate for 127.0.0.1 and localhost signed by it, made with openssl:
/// `ca.pem`, `server.pem`, `server.key` in `dir`.
fn throwaway_ca(dir: &Path) {
    bash(
        dir,
        r#"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=emulator test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 \
  -extfile ext.cnf 2>/dev/null
"#,
    );
}

const JOURNEY: &str = r#"
import json, sys, time
from vonage import Auth, HttpClientOptions, Vonage
from vonage_video import AddStreamRequest, ComposedLayout, CreateArchiveRequest, ListArchivesFilter

app_id, key_file, host = sys.argv[1:4]
video = Vonage(Auth(application_id=app_id, private_key=open(key_file).read()),
               HttpClientOptions(video_host=host)).video
started = video.start_archive(CreateArchiveRequest(
    session_id="vonage-python", name="python journey", stream_mode="manual", resolution="1280x720",
    layout=ComposedLayout(type="bestFit", screenshare_type="pip"), max_bitrate=2000000))
video.add_stream_to_archive(started.id, AddStreamRequest(stream_id="s1", has_audio=True, has_video=False))
video.add_stream_to_archive(started.id, AddStreamRequest(stream_id="s2"))
video.remove_stream_from_archive(started.id, "s2")
recording = video.get_archive(started.id)
relaid = video.change_archive_layout(started.id, ComposedLayout(type="custom", stylesheet="stream { width: 50%; }"))
assert relaid.id == started.id, "the layout answer is the archive"
stopped = video.stop_archive(started.id)
deadline = time.time() + 120
while True:
    got = video.get_archive(started.id)
    if got.status not in ("started", "paused", "stopped") or time.time() > deadline:
        break
    time.sleep(0.05)
if len(sys.argv) > 4 and got.url:
    import requests
    with open(sys.argv[4], "wb") as out:
        out.write(requests.get(got.url, timeout=60).content)
items, count, _ = video.list_archives(ListArchivesFilter(session_id="vonage-python"))
video.delete_archive(started.id)
deleted = video.get_archive(started.id)
print(json.dumps({
    "id": started.id, "started": started.status, "applicationId": started.application_id,
    "streamMode": started.stream_mode, "resolution": started.resolution, "maxBitrate": started.max_bitrate,
    "streams": [[s.stream_id, s.has_audio, s.has_video] for s in recording.streams or []],
    "stopped": stopped.status, "final": got.status, "password": got.password,
    "listed": [a.id for a in items], "count": count, "deleted": deleted.status,
}))
"#;

/// The emulator over HTTPS serving the test application, with the files the SDKs need in `dir`.
async fn https_emulator(dir: &Path) -> opentok_emulator::RunningEmulator {
    throwaway_ca(dir);
    let (key, _) = common::certificate(Some(dir), 2048);
    let tls = opentok_emulator::tls::TlsConfig::from_pem_files(
        &dir.join("server.pem"),
        &dir.join("server.key"),
    )
    .unwrap();
    let emulator = common::builder()
        .application(APP_ID, key.to_public_key())
        .tls(tls)
        .start()
        .await
        .unwrap();
    assert!(emulator.base_url().starts_with("https://"));
    emulator
}

/// Runs an SDK journey, checks what it reports (the last stdout line, JSON) and returns it.
async fn journey(mut command: Command) -> Value {
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Vonage SDK journey failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let id = got["id"].as_str().unwrap();
    assert_eq!(got["started"], "started");
    assert_eq!(got["applicationId"], APP_ID);
    assert_eq!(got["streamMode"], "manual");
    assert_eq!(got["resolution"], "1280x720");
    assert_eq!(got["maxBitrate"], 2000000);
    assert_eq!(got["streams"], serde_json::json!([["s1", true, false]]));
    assert_eq!(got["stopped"], "stopped");
    assert_eq!(got["final"], "available");
    assert_eq!(got["listed"], serde_json::json!([id]));
    assert_eq!(got["count"], 1);
    assert_eq!(got["deleted"], "deleted");
    got
}

/// The three commands of the service's "Decrypting an archive", verbatim; only `password-from-tokbox` is
/// replaced by the password.
const DOCUMENTED_COMMANDS: &str = r#"openssl enc -base64 -d -A <<< "password-from-tokbox" \
  -out password.enc

openssl rsautl -decrypt -oaep -inkey key.pem \
  -in password.enc -out password.bin

openssl enc -d -aes-256-cbc -nopad -in your_archive_file.ts \
  -out your_decrypted_file.ts \
  -K $(xxd -s 3 -l 32 -c 32 -p password.bin) \
  -iv $(xxd -s 35 -l 16 -c 16 -p password.bin)
"#;

/// Encrypts the application's archives for our certificate (`cert.pem` in `dir`): the storage PUT with the
/// application's Bearer JWT (over HTTPS, with curl); the bucket is unreachable, so archives are kept in the
/// emulator's cloud (fallback), behind a download URL.
fn encrypt_for_our_certificate(dir: &Path, emulator: &opentok_emulator::RunningEmulator) {
    let key_pem = std::fs::read_to_string(dir.join("key.pem")).unwrap();
    let credentials = opentok_rest::auth::ApplicationCredentials::from_private_key_file_contents(
        APP_ID,
        key_pem.as_bytes(),
        None,
    )
    .unwrap();
    let token = credentials
        .token(std::time::Duration::from_secs(300))
        .unwrap();
    let certificate =
        archive_core::cert::Certificate::parse(&std::fs::read(dir.join("cert.pem")).unwrap())
            .unwrap();
    let target = opentok_rest::model::StorageTarget::s3(
        opentok_rest::model::S3Config {
            bucket: "archives".into(),
            access_key: "AKIDEXAMPLE".into(),
            secret_key: "very-secret-s3-key".into(),
            endpoint: Some("http://127.0.0.1:1".into()),
            sse: None,
        },
        opentok_rest::model::Fallback::Vonage,
        opentok_rest::model::ArchiveEncryption::for_certificate(&certificate),
    );
    std::fs::write(
        dir.join("target.json"),
        serde_json::to_vec(&target).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("bearer"), format!("Authorization: Bearer {token}")).unwrap();
    bash(
        dir,
        &format!(
            "curl -sS --fail --max-time 60 --cacert ca.pem -X PUT -H @bearer -H 'Content-Type: application/json' \
               --data-binary @target.json {}/v2/project/{APP_ID}/archive/storage",
            emulator.base_url()
        ),
    );
}

/// The password the SDK got (in the journey's report `got`) unwraps with our key and the object it downloaded
/// (`your_archive_file.ts` in `dir`) decrypts with the documented openssl commands to MPEG-TS.
fn decrypts_with_the_documented_commands(dir: &Path, got: &Value) {
    let password = got["password"].as_str().unwrap();
    assert!(!password.is_empty(), "{got}");
    bash(
        dir,
        &DOCUMENTED_COMMANDS.replace("password-from-tokbox", password),
    );
    let plain = std::fs::read(dir.join("your_decrypted_file.ts")).unwrap();
    assert!(!plain.is_empty() && plain.len() % 188 != 1);
    assert_eq!(plain[0], 0x47, "MPEG-TS sync byte");
    assert_eq!(plain[188], 0x47, "MPEG-TS sync byte");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_vonage_python_sdk_drives_the_emulator_over_https() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let emulator = https_emulator(dir.path()).await;
    encrypt_for_our_certificate(dir.path(), &emulator);
    let mut command = Command::new(python);
    command
        .args(["-c", JOURNEY, APP_ID])
        .arg(dir.path().join("key.pem"))
        .arg(emulator.addr.to_string())
        .arg(dir.path().join("your_archive_file.ts"))
        .env("REQUESTS_CA_BUNDLE", dir.path().join("ca.pem"))
        .env("SSL_CERT_FILE", dir.path().join("ca.pem"));
    let got = journey(command).await;
    decrypts_with_the_documented_commands(dir.path(), &got);
    emulator.stop().await;
}

const NODE_JOURNEY: &str = r#"
const fs = require("fs");
const { Video } = require("@vonage/video");
const [appId, keyFile, host, downloadTo] = process.argv.slice(1);
const video = new Video({ applicationId: appId, privateKey: fs.readFileSync(keyFile) }, { videoHost: host });
(async () => {
  const started = await video.startArchive("vonage-node", {
    name: "node journey", streamMode: "manual", resolution: "1280x720",
    layout: { type: "bestFit", screenshareType: "pip" }, maxBitrate: 2000000 });
  await video.addArchiveStream(started.id, "s1", true, false);
  await video.addArchiveStream(started.id, "s2");
  await video.removeArchiveStream(started.id, "s2");
  const recording = await video.getArchive(started.id);
  await video.updateArchiveLayout(started.id, { type: "custom", stylesheet: "stream { width: 50%; }" });
  const stopped = await video.stopArchive(started.id);
  const deadline = Date.now() + 120000;
  let got;
  for (;;) {
    got = await video.getArchive(started.id);
    if (!["started", "paused", "stopped"].includes(got.status) || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (downloadTo && got.url) {
    const response = await fetch(got.url);
    if (!response.ok) throw new Error(`download: HTTP ${response.status}`);
    fs.writeFileSync(downloadTo, Buffer.from(await response.arrayBuffer()));
  }
  const list = await video.searchArchives({ sessionId: "vonage-node" });
  await video.deleteArchive(started.id);
  const deleted = await video.getArchive(started.id);
  console.log(JSON.stringify({
    id: started.id, started: started.status, applicationId: started.applicationId,
    streamMode: started.streamMode, resolution: started.resolution, maxBitrate: started.maxBitrate,
    streams: (recording.streams || []).map((s) => [s.streamId, s.hasAudio, s.hasVideo]),
    stopped: stopped.status, final: got.status, password: got.password,
    listed: list.items.map((a) => a.id), count: list.count, deleted: deleted.status,
  }));
})().catch((e) => { console.error(e); process.exit(1); });
"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_vonage_node_sdk_drives_the_emulator_over_https() {
    if skip() {
        return;
    }
    let node_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.xtask/node-sdk");
    let manifest =
        std::fs::read_to_string(node_dir.join("node_modules/@vonage/video/package.json"))
            .unwrap_or_default();
    assert!(
        manifest.contains("\"version\": \"1.31.1\""),
        "@vonage/video 1.31.1 is not in .xtask/node-sdk: run `cargo xtask install-sdks` \
         (or set ARCHIVECTL_SKIP_SDK_TESTS=1 to skip)"
    );
    let dir = tempfile::tempdir().unwrap();
    let emulator = https_emulator(dir.path()).await;
    encrypt_for_our_certificate(dir.path(), &emulator);
    let mut command = Command::new("node");
    command
        .args(["-e", NODE_JOURNEY, APP_ID])
        .arg(dir.path().join("key.pem"))
        .arg(emulator.base_url())
        .arg(dir.path().join("your_archive_file.ts"))
        .current_dir(&node_dir)
        .env("NODE_EXTRA_CA_CERTS", dir.path().join("ca.pem"));
    let got = journey(command).await;
    decrypts_with_the_documented_commands(dir.path(), &got);
    emulator.stop().await;
}
