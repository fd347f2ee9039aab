//! Tests of the resumable output: resuming, the binding of the state, verification, file safety.

use super::*;
use crate::cbc;

const ID: &str = "0b6c4f2e-3f6a-4c55-9f1e-1c2d3e4f5a6b";

fn bind(size: usize, e_tag: Option<&str>) -> ResumeBinding<'_> {
    ResumeBinding {
        archive_id: ID,
        object_size: size as u64,
        e_tag,
    }
}

fn ts(packets: usize) -> Vec<u8> {
    (0..packets)
        .flat_map(|i| {
            let mut p = vec![(i % 251) as u8; 188];
            p[0] = 0x47;
            p[1] = 0x01;
            p[2] = 0x00;
            p[3] = 0x10 | (i % 16) as u8;
            p
        })
        .collect()
}

#[test]
fn interrupted_runs_resume_and_end_identical_to_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let blob = PasswordBlob::new([3; 32], [4; 16]);
    let plain = ts(20_000);
    let ct = cbc::encrypt_padded(blob.key(), blob.iv(), &plain);
    let dest = dir.path().join("a.ts");
    let part = 64 * 1024;

    // First run: three parts, then "killed" (dropped without finish) after a checkpoint and one more part.
    let mut out = ResumableOutput::open(
        &dest,
        &bind(ct.len(), Some("\"e1\"")),
        &blob,
        2 * part as u64,
    )
    .unwrap();
    for chunk in ct[..4 * part].chunks(part) {
        out.write_ciphertext(&mut chunk.to_vec()).unwrap();
    }
    drop(out);
    assert!(!dest.exists());

    // Second run resumes at the last checkpoint (4 parts with a checkpoint every 2).
    let mut out = ResumableOutput::open(
        &dest,
        &bind(ct.len(), Some("\"e1\"")),
        &blob,
        2 * part as u64,
    )
    .unwrap();
    let at = out.resume_offset() as usize;
    assert_eq!(at, 4 * part);
    for chunk in ct[at..].chunks(part) {
        out.write_ciphertext(&mut chunk.to_vec()).unwrap();
    }
    let summary = out.finish(true).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), plain);
    assert_eq!(summary.resumed_from, 4 * part as u64);
    assert_eq!(summary.sha256, hex::encode(Sha256::digest(&plain)));
    assert_eq!(summary.report.packets, 20_000);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no partial or state file left"
    );
}

#[test]
fn another_object_or_a_wrong_key_starts_over_or_fails() {
    let dir = tempfile::tempdir().unwrap();
    let blob = PasswordBlob::new([3; 32], [4; 16]);
    let ct = cbc::encrypt_padded(blob.key(), blob.iv(), &ts(2000));
    let dest = dir.path().join("b.ts");
    let mut out = ResumableOutput::open(&dest, &bind(ct.len(), Some("\"v1\"")), &blob, 16).unwrap();
    out.write_ciphertext(&mut ct[..4096].to_vec()).unwrap();
    drop(out);
    let out = ResumableOutput::open(&dest, &bind(ct.len(), Some("\"v2\"")), &blob, 16).unwrap();
    assert_eq!(out.resume_offset(), 0, "a replaced object is not resumed");
    drop(out);
    let wrong = PasswordBlob::new([9; 32], [4; 16]);
    let mut out =
        ResumableOutput::open(&dest, &bind(ct.len(), Some("\"v3\"")), &wrong, 16).unwrap();
    assert!(matches!(
        out.write_ciphertext(&mut ct[..4096].to_vec()),
        Err(ArchiveError::NotMpegTs(_))
    ));
    out.discard();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    assert!(matches!(
        ResumableOutput::open(&dest, &bind(100, None), &blob, 16),
        Err(ArchiveError::NotBlockAligned(_))
    ));
}

/// Leaves an interrupted output of `ct` (decrypted with `blob`, bound to `id`) in `dir`: 8 KiB durable.
fn interrupted(dest: &Path, ct: &[u8], id: &str, blob: &PasswordBlob) {
    for suffix in [".partial", ".partial.json"] {
        let _ = std::fs::remove_file(hidden_beside(dest, suffix).unwrap());
    }
    let binding = ResumeBinding {
        archive_id: id,
        ..bind(ct.len(), Some("\"e\""))
    };
    let mut out = ResumableOutput::open(dest, &binding, blob, 4096).unwrap();
    out.write_ciphertext(&mut ct[..8192].to_vec()).unwrap();
    assert_eq!(out.state.durable, 8192);
    drop(out);
}

fn state_json(dest: &Path) -> serde_json::Value {
    let path = hidden_beside(dest, ".partial.json").unwrap();
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn the_state_is_bound_to_the_archive_the_object_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let blob = PasswordBlob::new([3; 32], [4; 16]);
    let ct = cbc::encrypt_padded(blob.key(), blob.iv(), &ts(2000));
    let dest = dir.path().join("c.ts");
    // The same archive, object and key: resumed, nothing said.
    interrupted(&dest, &ct, ID, &blob);
    let state = state_json(&dest);
    let text = state.to_string();
    assert!(
        !text.contains(&hex::encode(blob.key())) && !text.contains(&hex::encode(blob.iv())),
        "no key material in the state: {text}"
    );
    assert_eq!(state["key_fingerprint"].as_str().unwrap().len(), 64);
    let out = ResumableOutput::open(&dest, &bind(ct.len(), Some("\"e\"")), &blob, 4096).unwrap();
    assert_eq!((out.resume_offset(), out.restarted()), (8192, None));
    drop(out);

    let other_key = PasswordBlob::new([5; 32], [4; 16]);
    let other_iv = PasswordBlob::new([3; 32], [5; 16]);
    let other_id = "0b6c4f2e-3f6a-4c55-9f1e-000000000000";
    let cases: [(&PasswordBlob, &str, Option<&str>, usize, &str); 5] = [
        (
            &other_key,
            ID,
            Some("\"e\""),
            ct.len(),
            "another password or key",
        ),
        (
            &other_iv,
            ID,
            Some("\"e\""),
            ct.len(),
            "another password or key",
        ),
        (&blob, other_id, Some("\"e\""), ct.len(), "another archive"),
        (&blob, ID, Some("\"f\""), ct.len(), "the object changed"),
        (
            &blob,
            ID,
            Some("\"e\""),
            ct.len() + 16,
            "the object changed",
        ),
    ];
    for (key, id, e_tag, size, why) in cases {
        interrupted(&dest, &ct, ID, &blob);
        let binding = ResumeBinding {
            archive_id: id,
            object_size: size as u64,
            e_tag,
        };
        let out = ResumableOutput::open(&dest, &binding, key, 4096).unwrap();
        assert_eq!(out.resume_offset(), 0, "{why}");
        assert!(
            out.restarted().unwrap().contains(why),
            "{:?}",
            out.restarted()
        );
        let partial = hidden_beside(&dest, ".partial").unwrap();
        assert_eq!(std::fs::metadata(&partial).unwrap().len(), 0, "discarded");
        out.discard();
    }
}

#[test]
fn an_edited_or_damaged_state_is_never_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let blob = PasswordBlob::new([3; 32], [4; 16]);
    let ct = cbc::encrypt_padded(blob.key(), blob.iv(), &ts(2000));
    let dest = dir.path().join("d.ts");
    let state_path = hidden_beside(&dest, ".partial.json").unwrap();
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let edits: Vec<(Edit, &str)> = vec![
        (
            Box::new(|s| s["durable"] = 8200.into()),
            "impossible offset",
        ),
        (
            Box::new(|s| s["durable"] = (1u64 << 40).into()),
            "impossible offset",
        ),
        (Box::new(|s| s["durable"] = 12288.into()), "shorter than"),
        (
            Box::new(|s| s["previous_block"] = "zz".into()),
            "no valid ciphertext block",
        ),
        (
            Box::new(|s| s["previous_block"] = serde_json::Value::Null),
            "no valid ciphertext block",
        ),
        (
            Box::new(|s| s["key_fingerprint"] = "00".repeat(32).into()),
            "another password",
        ),
        (Box::new(|s| s["version"] = 1.into()), "another version"),
        (Box::new(|s| s["extra"] = 1.into()), "damaged"),
    ];
    for (edit, why) in edits {
        interrupted(&dest, &ct, ID, &blob);
        let mut state = state_json(&dest);
        edit(&mut state);
        std::fs::write(&state_path, state.to_string()).unwrap();
        let out =
            ResumableOutput::open(&dest, &bind(ct.len(), Some("\"e\"")), &blob, 4096).unwrap();
        assert_eq!(out.resume_offset(), 0, "{why}");
        assert!(
            out.restarted().unwrap().contains(why),
            "{why}: {:?}",
            out.restarted()
        );
        out.discard();
    }
    // Not JSON at all, or far too long.
    for junk in [b"not json".to_vec(), vec![b' '; 1 << 20]] {
        interrupted(&dest, &ct, ID, &blob);
        std::fs::write(&state_path, junk).unwrap();
        let out =
            ResumableOutput::open(&dest, &bind(ct.len(), Some("\"e\"")), &blob, 4096).unwrap();
        assert_eq!(out.resume_offset(), 0);
        assert!(out.restarted().is_some());
        out.discard();
    }
    // A partial file whose prefix is no longer MPEG-TS (edited on disk).
    interrupted(&dest, &ct, ID, &blob);
    let partial = hidden_beside(&dest, ".partial").unwrap();
    let mut bytes = std::fs::read(&partial).unwrap();
    bytes[0] = 0;
    std::fs::write(&partial, bytes).unwrap();
    let out = ResumableOutput::open(&dest, &bind(ct.len(), Some("\"e\"")), &blob, 4096).unwrap();
    assert_eq!(out.resume_offset(), 0);
    assert!(
        out.restarted()
            .unwrap()
            .contains("does not start with MPEG-TS")
    );
    out.discard();
}

#[cfg(unix)]
#[test]
fn files_are_0600_and_symbolic_links_are_not_followed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let blob = PasswordBlob::new([3; 32], [4; 16]);
    let ct = cbc::encrypt_padded(blob.key(), blob.iv(), &ts(2000));
    let dest = dir.path().join("e.ts");
    let partial = hidden_beside(&dest, ".partial").unwrap();
    let state = hidden_beside(&dest, ".partial.json").unwrap();
    // An older, more open partial file is made 0600.
    std::fs::write(&partial, b"").unwrap();
    std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut out = ResumableOutput::open(&dest, &bind(ct.len(), None), &blob, 4096).unwrap();
    out.write_ciphertext(&mut ct[..8192].to_vec()).unwrap();
    for f in [&partial, &state] {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
    out.discard();

    // The partial file as a link to a file elsewhere: refused, the file untouched.
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    std::os::unix::fs::symlink(&victim, &partial).unwrap();
    let e = ResumableOutput::open(&dest, &bind(ct.len(), None), &blob, 4096).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    std::fs::remove_file(&partial).unwrap();

    // The state as a link: not read through, and replaced (not written through) at the checkpoint.
    std::os::unix::fs::symlink(&victim, &state).unwrap();
    let mut out = ResumableOutput::open(&dest, &bind(ct.len(), None), &blob, 4096).unwrap();
    out.write_ciphertext(&mut ct[..8192].to_vec()).unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(
        !std::fs::symlink_metadata(&state)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    out.discard();
}

#[test]
fn finish_verifies_the_whole_output_and_keeps_nothing_that_fails() {
    let dir = tempfile::tempdir().unwrap();
    let blob = PasswordBlob::new([3; 32], [4; 16]);
    let dest = dir.path().join("f.ts");
    // A packet deep inside that is not MPEG-TS (the first packets are fine).
    let mut plain = ts(3000);
    plain[2000 * 188] = 0x00;
    // Whole packets then no PKCS#7 padding, and a valid pad after a torn packet.
    let unpadded = ts(8);
    let mut torn = ts(8);
    torn.extend_from_slice(&[0x47, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 4, 4, 4, 4]);
    let cases = [
        (
            cbc::encrypt_padded(blob.key(), blob.iv(), &plain),
            "lost sync 1 times",
        ),
        (raw_encrypt(&blob, &unpadded), "PKCS#7"),
        (raw_encrypt(&blob, &torn), "into a 188-byte packet"),
    ];
    for (ct, why) in cases {
        for trim in [false, true] {
            let mut out =
                ResumableOutput::open(&dest, &bind(ct.len(), None), &blob, 1 << 20).unwrap();
            for chunk in ct.chunks(4096) {
                out.write_ciphertext(&mut chunk.to_vec()).unwrap();
            }
            let e = out.finish(trim).unwrap_err();
            assert!(matches!(e, ArchiveError::Unverified(_)), "{e}");
            assert!(e.to_string().contains(why), "{e}");
            assert_eq!(
                std::fs::read_dir(dir.path()).unwrap().count(),
                0,
                "nothing kept"
            );
        }
    }
}

fn raw_encrypt(blob: &PasswordBlob, plain: &[u8]) -> Vec<u8> {
    let mut ct = plain.to_vec();
    cbc::StreamEncryptor::new(blob.key(), blob.iv())
        .encrypt(&mut ct)
        .unwrap();
    ct
}

#[test]
fn no_checkpoint_within_the_last_interval_so_a_short_archive_is_made_durable_once() {
    let dir = tempfile::tempdir().unwrap();
    let blob = PasswordBlob::new([5; 32], [6; 16]);
    let part = 64 * 1024;

    // 3,703,616 bytes, a checkpoint every 2 parts: at 54 parts (164,672 bytes left, more than an interval)
    // but not at 56 (33,600 bytes left: the end is within the interval).
    let plain = ts(19_700);
    let ct = cbc::encrypt_padded(blob.key(), blob.iv(), &plain);
    assert_eq!(ct.len(), 3_703_616);
    let dest = dir.path().join("long.ts");
    let mut out =
        ResumableOutput::open(&dest, &bind(ct.len(), None), &blob, 2 * part as u64).unwrap();
    for chunk in ct.chunks(part) {
        out.write_ciphertext(&mut chunk.to_vec()).unwrap();
    }
    drop(out);
    let out = ResumableOutput::open(&dest, &bind(ct.len(), None), &blob, 2 * part as u64).unwrap();
    assert_eq!(out.resume_offset(), 54 * part as u64);
    out.discard();

    // Shorter than two intervals: no checkpoint at all (no state file, nothing durable before `finish`).
    let plain = ts(500);
    let ct = cbc::encrypt_padded(blob.key(), blob.iv(), &plain);
    let checkpoint = 64 * 1024;
    assert!(ct.len() > checkpoint && ct.len() < 2 * checkpoint);
    let dest = dir.path().join("short.ts");
    let mut out =
        ResumableOutput::open(&dest, &bind(ct.len(), None), &blob, checkpoint as u64).unwrap();
    for chunk in ct.chunks(16 * 1024) {
        out.write_ciphertext(&mut chunk.to_vec()).unwrap();
    }
    assert!(
        !dir.path().join(".short.ts.partial.json").exists(),
        "no checkpoint in the last interval"
    );
    let summary = out.finish(false).unwrap();
    assert_eq!(summary.bytes, ct.len() as u64);
    let mut expected = ct.clone();
    cbc::decrypt_in_place(blob.key(), blob.iv(), &mut expected).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), expected);
}
