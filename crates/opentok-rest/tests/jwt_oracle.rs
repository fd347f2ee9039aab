//! Our JWTs checked by implementations that share no code with ours: the openssl CLI recomputes each
//! signature (HMAC-SHA256; RSA PKCS#1 v1.5 with SHA-256, deterministic) over the token's own signing input,
//! and PyJWT (from the official Python SDK's venv in `.xtask/python-sdk`) verifies and decodes the tokens.
//! The golden strings of `auth.rs` are re-derived the same way, so they are not just our own output pinned.
//!
//! Without openssl or the venv these tests fail, naming the tool (`cargo xtask install-sdks` makes the venv).
//! They need no HTTP client: they run with `--no-default-features` too.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use opentok_rest::auth::{
    self, ApplicationClaims, ApplicationCredentials, Credentials, ProjectClaims,
};
use serde_json::{Value, json};

const SECRET: &str = "1234567890abcdef1234567890abcdef1234567890";
const APP_ID: &str = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
const JTI: &str = "6f1b3c5e-1d2a-4b7c-9e8f-0a1b2c3d4e5f";
/// `auth.rs`'s golden HS256 token (the claims of `golden_project_claims`, signed with `SECRET`).
const GOLDEN_HS256: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiIxMjM0NTYiLCJpc3QiOiJwcm9qZWN0IiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDAxODAsImp0aSI6IjZmMWIzYzVlLTFkMmEtNGI3Yy05ZThmLTBhMWIyYzNkNGU1ZiJ9.txM3-wqvUAWaXLxV8pY6pznIlieMLbTg75tK0QMeJ7A";
/// `auth.rs`'s golden RS256 token (the claims of `golden_application_claims`, signed with the fixture key).
const GOLDEN_RS256: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhcHBsaWNhdGlvbl9pZCI6ImFhYWFhYWFhLWJiYmItNGNjYy04ZGRkLWVlZWVlZWVlZWVlZSIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAwMTgwLCJqdGkiOiI2ZjFiM2M1ZS0xZDJhLTRiN2MtOWU4Zi0wYTFiMmMzZDRlNWYifQ.BJXbBp2om5R2H11Ot8Lmyn-4YsoNloTY2-WatfBXDgRHOTKFeVNV04MN3OHPQJseIqHJuUayyANZODjCLaQWjogM3zifQPfg7J93wlCntVn1vWvs-9GObY3phC6bFZTrW0C_HQzZLrjtl-REEGjzprfGd--RQUhLSVNN9qbHE0n56MllXSpCKadq1sVUrJx42C5GFAOJgibIQZMw6c1TlDbkBMvWDHIPDMwBqLqoeWZbXb_IFV4bxfF3sym2-chrWObqiV8LuruTdfhe5A2D02ao6hXuPKPaeO00HaW6ApkTafPhhK53c0Ui4iah4LNxsy7WD2MzWWVrpwLl1pCvkA";

fn golden_project_claims() -> ProjectClaims {
    ProjectClaims {
        iss: "123456".into(),
        ist: "project".into(),
        iat: 1_700_000_000,
        exp: 1_700_000_180,
        jti: Some(JTI.into()),
    }
}

fn golden_application_claims() -> ApplicationClaims {
    ApplicationClaims {
        application_id: APP_ID.into(),
        iat: 1_700_000_000,
        exp: 1_700_000_180,
        jti: JTI.into(),
    }
}

fn key_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vonage-application-test-key.pem")
}

/// `(signing input, signature bytes)` of a compact JWT.
fn split(token: &str) -> (&str, Vec<u8>) {
    let (input, signature) = token.rsplit_once('.').expect("a JWT has two dots");
    (
        input,
        URL_SAFE_NO_PAD
            .decode(signature)
            .expect("base64url signature"),
    )
}

/// Runs openssl with `stdin`, failing with its name when it cannot run or fails.
fn openssl(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("openssl is needed as the JWT oracle (apt-get install openssl): {e}")
        });
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// HMAC-SHA256 of `input` by openssl.
fn openssl_hs256(input: &str, secret: &str) -> Vec<u8> {
    let key = format!("hexkey:{}", hex_of(secret.as_bytes()));
    openssl(
        &[
            "dgst", "-sha256", "-mac", "HMAC", "-macopt", &key, "-binary",
        ],
        input.as_bytes(),
    )
}

/// RSA PKCS#1 v1.5 / SHA-256 signature of `input` by openssl with the fixture key.
fn openssl_rs256(input: &str) -> Vec<u8> {
    let key = key_path();
    openssl(
        &["dgst", "-sha256", "-sign", key.to_str().unwrap(), "-binary"],
        input.as_bytes(),
    )
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The Python of the official SDK's venv, which has PyJWT (the SDK's own JWT library).
fn python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".xtask/python-sdk/bin/python");
    assert!(
        python.is_file(),
        "PyJWT is needed as the JWT oracle: no venv at {} (run `cargo xtask install-sdks`)",
        python.display()
    );
    python
}

/// PyJWT's verdict on each `(token, key, algorithm)`: `{"ok": true, "header": .., "claims": ..}` or
/// `{"ok": false, "error": ..}`. Times are not checked (the golden tokens are from 2023).
fn pyjwt(cases: &[(&str, &str, &str)]) -> Vec<Value> {
    const SCRIPT: &str = r#"
import json, sys, warnings
warnings.simplefilter("ignore")
import jwt
out = []
for token, key, alg in json.load(sys.stdin):
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, key, algorithms=[alg],
                            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False})
        out.append({"ok": True, "header": header, "claims": claims})
    except Exception as e:
        out.append({"ok": False, "error": type(e).__name__ + ": " + str(e)})
print(json.dumps(out))
"#;
    let mut child = Command::new(python())
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run the SDK venv's python (PyJWT): {e}"));
    let input = serde_json::to_vec(cases).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "PyJWT: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("PyJWT's JSON")
}

fn public_key_pem() -> String {
    let key = key_path();
    String::from_utf8(openssl(
        &["pkey", "-in", key.to_str().unwrap(), "-pubout"],
        b"",
    ))
    .unwrap()
}

/// Changes the first character of the signature (one that carries six whole bits, so it stays valid base64).
fn tampered(token: &str) -> String {
    let at = token.rfind('.').unwrap() + 1;
    let first = &token[at..=at];
    let other = if first == "A" { "B" } else { "A" };
    format!("{}{other}{}", &token[..at], &token[at + 1..])
}

#[test]
fn project_tokens_are_what_openssl_and_pyjwt_compute() {
    // The golden string: its signature is openssl's HMAC of its own signing input, and PyJWT reads the
    // golden claims from it.
    let (input, signature) = split(GOLDEN_HS256);
    assert_eq!(
        signature,
        openssl_hs256(input, SECRET),
        "golden HS256 signature"
    );
    // What we sign now (whatever the header's field order) and a live token from the credentials.
    let ours = auth::sign_hs256(&golden_project_claims(), SECRET.as_bytes()).unwrap();
    let live = Credentials::project("123456", SECRET.into())
        .auth_header(Duration::from_secs(180))
        .unwrap()
        .value()
        .to_string();
    for token in [&ours, &live] {
        let (input, signature) = split(token);
        assert_eq!(signature, openssl_hs256(input, SECRET), "{token}");
    }
    let bad = tampered(&ours);
    let verdicts = pyjwt(&[
        (GOLDEN_HS256, SECRET, "HS256"),
        (&ours, SECRET, "HS256"),
        (&live, SECRET, "HS256"),
        (
            &ours,
            "another-secret-another-secret-another-secret",
            "HS256",
        ),
        (&bad, SECRET, "HS256"),
    ]);
    let golden = json!({"iss": "123456", "ist": "project", "iat": 1_700_000_000u64,
                        "exp": 1_700_000_180u64, "jti": JTI});
    for v in &verdicts[..2] {
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["header"]["alg"], "HS256", "{v}");
        assert_eq!(v["claims"], golden, "{v}");
    }
    let live = &verdicts[2];
    assert_eq!(live["ok"], true, "{live}");
    assert_eq!(
        (&live["claims"]["iss"], &live["claims"]["ist"]),
        (&json!("123456"), &json!("project"))
    );
    let claims = &live["claims"];
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        180
    );
    // The oracle refuses what it should: another secret, a changed signature.
    for v in &verdicts[3..] {
        assert_eq!(v["ok"], false, "{v}");
        assert!(v["error"].as_str().unwrap().contains("Signature"), "{v}");
    }
}

#[test]
fn application_tokens_are_what_openssl_and_pyjwt_compute() {
    let key = archive_core::keys::load_private_key(&std::fs::read(key_path()).unwrap(), None)
        .expect("the fixture key");
    // PKCS#1 v1.5 signatures are deterministic: openssl's signature of the golden signing input is the
    // golden signature, and of our signing input ours.
    let (input, signature) = split(GOLDEN_RS256);
    assert_eq!(signature, openssl_rs256(input), "golden RS256 signature");
    let ours = auth::sign_rs256(&golden_application_claims(), &key).unwrap();
    let live = ApplicationCredentials::new(APP_ID, key)
        .token(Duration::from_secs(180))
        .unwrap();
    for token in [&ours, &live] {
        let (input, signature) = split(token);
        assert_eq!(signature, openssl_rs256(input), "{token}");
    }
    let public = public_key_pem();
    let bad = tampered(&ours);
    let verdicts = pyjwt(&[
        (GOLDEN_RS256, &public, "RS256"),
        (&ours, &public, "RS256"),
        (&live, &public, "RS256"),
        (&bad, &public, "RS256"),
    ]);
    let golden = json!({"application_id": APP_ID, "iat": 1_700_000_000u64,
                        "exp": 1_700_000_180u64, "jti": JTI});
    for v in &verdicts[..2] {
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["header"]["alg"], "RS256", "{v}");
        assert_eq!(v["claims"], golden, "{v}");
    }
    let live = &verdicts[2];
    assert_eq!(live["ok"], true, "{live}");
    assert_eq!(live["claims"]["application_id"], APP_ID);
    assert!(uuid_v4(live["claims"]["jti"].as_str().unwrap()), "{live}");
    assert_eq!(verdicts[3]["ok"], false, "{}", verdicts[3]);
}

/// Whether `s` is a version-4 UUID in its hyphenated form.
fn uuid_v4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && parts
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
        && parts[2].starts_with('4')
}
