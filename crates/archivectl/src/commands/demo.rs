//! `archivectl demo`: the whole flow on embedded defaults, saying what happens at each step.
//!
//! Today: make a key and certificate, play the service's part (encrypt a bundled real clip with a fresh
//! AES-256 key and IV, wrap the password under the certificate, emit the status callback), then unwrap,
//! decrypt and inspect exactly as a user would.

use std::path::PathBuf;

use anyhow::Context;
use archive_core::{
    PasswordBlob,
    archive::{self, DecryptOptions},
    cbc,
    cert::Certificate,
    keys, oaep,
};

use crate::output::Output;

/// A real 4-second H.264/AAC MPEG-TS clip made with ffmpeg (see tests/data/README.md).
const CLIP: &[u8] = include_bytes!("../../../../tests/data/clip.ts");

/// Arguments of `archivectl demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep the demo's files in this directory (created if missing) instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
}

/// Runs `archivectl demo`.
pub fn run(args: Args, out: &Output) -> anyhow::Result<()> {
    let temp;
    let dir = match &args.keep {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            d.clone()
        }
        None => {
            temp = tempfile::tempdir().context("cannot create a temporary directory")?;
            temp.path().to_path_buf()
        }
    };
    let api_key = "46000000";
    let archive_id = uuid_like();
    let mut steps = Vec::new();
    let mut step = |title: &str, detail: String| {
        out.note(format!("[{}] {title}\n      {detail}", steps.len() + 1));
        steps.push(serde_json::json!({ "step": title, "detail": detail }));
    };

    // 1. The customer's key pair and certificate.
    let key = keys::generate_rsa_key(2048)?;
    let cert = Certificate::generate_self_signed(&key, "CN=archivectl demo", 365)?;
    let key_path = dir.join("key.pem");
    let cert_path = dir.join("cert.pem");
    super::keygen::write_file(&key_path, keys::to_pkcs8_pem(&key, None)?.as_bytes(), 0o600)?;
    super::keygen::write_file(&cert_path, cert.to_pem().as_bytes(), 0o644)?;
    cert.check_service_acceptance()?;
    step(
        "keygen: RSA-2048 key and self-signed certificate",
        format!(
            "{} (0600) and {}; sha256 {}",
            key_path.display(),
            cert_path.display(),
            cert.sha256_fingerprint()
        ),
    );

    // 2. The service's side: encrypt the recording and wrap its key.
    let blob = PasswordBlob::generate(&mut rand::thread_rng());
    let encrypted = cbc::encrypt_padded(blob.key(), blob.iv(), CLIP);
    let object_dir = dir.join(api_key).join(&archive_id);
    std::fs::create_dir_all(&object_dir)
        .with_context(|| format!("cannot create {}", object_dir.display()))?;
    let object = object_dir.join("archive.ts");
    super::keygen::write_file(&object, &encrypted, 0o644)?;
    let password = oaep::wrap_password(&cert.rsa_public_key()?, &blob, &mut rand::thread_rng())?;
    drop(blob);
    step(
        "service: AES-256-CBC with a fresh key and IV, uploaded as {apiKey}/{archiveId}/archive.ts",
        format!(
            "{} ({} bytes of a {}-byte MPEG-TS clip, PKCS#7 padded)",
            object.display(),
            encrypted.len(),
            CLIP.len()
        ),
    );
    let callback = serde_json::json!({
        "id": archive_id, "event": "archive", "status": "uploaded", "name": "demo", "reason": "",
        "sessionId": "2_MX40NjAwMDAwMH5-ZGVtbw", "partnerId": api_key.parse::<u64>().unwrap_or_default(),
        "createdAt": 1_700_000_000_000u64, "duration": 0, "size": encrypted.len(), "password": password,
    });
    let callback_path = dir.join("callback.json");
    super::keygen::write_file(
        &callback_path,
        serde_json::to_string_pretty(&callback)?.as_bytes(),
        0o644,
    )?;
    step(
        "service: status callback with the RSA-OAEP-wrapped password (duration 0: the known issue)",
        format!(
            "{} (password {}...)",
            callback_path.display(),
            &password[..24]
        ),
    );

    // 3. The customer's side, with what is on disk only.
    let key = crate::secrets::load_private_key(&key_path, None)?;
    let password = crate::secrets::read_password(None, Some(&callback_path))?;
    let blob = oaep::unwrap_password(&key, &password)?;
    step(
        "password decrypt: RSA-OAEP (SHA-1) unwrap",
        "version 1, algorithm 1 (AES-256), mode 1 (CBC), 32-byte key, 16-byte IV".into(),
    );
    let decrypted = dir.join(format!("{archive_id}.ts"));
    let summary = archive::decrypt_file(&object, &decrypted, &blob, &DecryptOptions::default())?;
    step(
        "decrypt: byte-identical to `openssl enc -d -aes-256-cbc -nopad`, checked and atomic",
        format!("{} ({} bytes)", decrypted.display(), summary.written_bytes),
    );
    let trimmed = dir.join(format!("{archive_id}.trimmed.ts"));
    let trimmed_summary = archive::decrypt_file(
        &object,
        &trimmed,
        &blob,
        &DecryptOptions {
            trim: true,
            ..Default::default()
        },
    )?;
    let identical = std::fs::read(&trimmed)
        .with_context(|| format!("cannot read {}", trimmed.display()))?
        == CLIP;
    step(
        "decrypt --trim: PKCS#7 tail removed",
        format!(
            "{} ({} bytes, {} trimmed): {}",
            trimmed.display(),
            trimmed_summary.written_bytes,
            trimmed_summary.trimmed_bytes,
            if identical {
                "byte-identical to the original recording"
            } else {
                "DIFFERS from the original"
            }
        ),
    );
    anyhow::ensure!(
        identical,
        "the decrypted archive differs from the original clip"
    );
    step(
        "inspect: MPEG-TS check and real duration",
        super::describe_report(&trimmed_summary.report),
    );

    let json = serde_json::json!({
        "dir": dir, "kept": args.keep.is_some(), "archive_id": archive_id,
        "steps": steps, "report": trimmed_summary.report,
    });
    out.emit(&json, || {
        if args.keep.is_some() {
            println!("demo complete: files kept in {}", dir.display());
        } else {
            println!("demo complete (use --keep DIR to keep the files)");
        }
    })
}

/// A random archive id in the service's UUID form.
fn uuid_like() -> String {
    let mut b = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}
