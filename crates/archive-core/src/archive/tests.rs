//! Unit tests of `archive`, beside it so that the module stays within the size budget.

use super::*;

fn ts(packets: usize) -> Vec<u8> {
    (0..packets)
        .flat_map(|i| {
            let mut p = vec![0xFFu8; 188];
            p[0] = 0x47;
            p[1] = 0x01;
            p[2] = 0x00;
            p[3] = 0x10 | (i % 16) as u8;
            p
        })
        .collect()
}

fn small_opts(trim: bool) -> DecryptOptions {
    DecryptOptions {
        trim,
        buffer_size: 4096,
        chunk_size: 4096,
        buffers: 3,
        ..Default::default()
    }
}

#[test]
fn nopad_output_keeps_padding_and_trim_removes_it_across_buffer_sizes() {
    let blob = PasswordBlob::new([7; 32], [8; 16]);
    for packets in [1, 2, 21, 22, 23, 100, 1000] {
        let plain = ts(packets);
        let ct = cbc::encrypt_padded(blob.key(), blob.iv(), &plain);
        for bs in [1024, 4096, 65536] {
            let mut out = Vec::new();
            let opts = DecryptOptions {
                buffer_size: bs,
                ..small_opts(false)
            };
            let s = decrypt_stream(&ct[..], &mut out, &blob, &opts).unwrap();
            assert_eq!(&out[..plain.len()], &plain[..]);
            assert_eq!(out.len(), ct.len());
            assert_eq!(s.written_bytes, ct.len() as u64);
            let mut trimmed = Vec::new();
            let opts = DecryptOptions { trim: true, ..opts };
            let s = decrypt_stream(&ct[..], &mut trimmed, &blob, &opts).unwrap();
            assert_eq!(trimmed, plain, "packets {packets} bs {bs}");
            assert_eq!(s.trimmed_bytes, (ct.len() - plain.len()) as u64);
        }
    }
}

#[test]
fn trim_keeps_whole_packets_that_end_like_padding() {
    let blob = PasswordBlob::new([7; 32], [8; 16]);
    let mut plain = ts(4); // 752 bytes: whole packets and whole blocks
    *plain.last_mut().unwrap() = 0x01; // looks like a 1-byte PKCS#7 pad
    let mut ct = plain.clone();
    cbc::StreamEncryptor::new(blob.key(), blob.iv())
        .encrypt(&mut ct)
        .unwrap();
    let mut out = Vec::new();
    let s = decrypt_stream(&ct[..], &mut out, &blob, &small_opts(true)).unwrap();
    assert_eq!(out, plain);
    assert_eq!(s.trimmed_bytes, 0);
}

#[test]
fn trim_refuses_a_tail_that_is_not_padding_after_whole_packets() {
    let blob = PasswordBlob::new([7; 32], [8; 16]);
    let packets = ts(8); // 1504 bytes
    let torn = [0x47, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]; // a torn packet, not PKCS#7
    // Valid PKCS#7 (4 bytes), but what it pads is not whole packets: cut short.
    let short_padded = [0x47, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 4, 4, 4, 4];
    for (tail, why) in [
        (&torn[..], "nor ends with valid PKCS#7 padding"),
        (&short_padded[..], "ends 12 bytes into a 188-byte packet"),
    ] {
        let mut plain = packets.clone();
        plain.extend_from_slice(tail);
        let mut ct = plain.clone();
        cbc::StreamEncryptor::new(blob.key(), blob.iv())
            .encrypt(&mut ct)
            .unwrap();
        let mut out = Vec::new();
        let e = decrypt_stream(&ct[..], &mut out, &blob, &small_opts(true)).unwrap_err();
        assert!(matches!(e, ArchiveError::Untrimmable(_)), "{e}");
        assert!(e.to_string().contains(why), "{e}");
        // Without --trim: everything, as openssl -nopad.
        let mut out = Vec::new();
        decrypt_stream(&ct[..], &mut out, &blob, &small_opts(false)).unwrap();
        assert_eq!(out, plain);
    }
}

#[test]
fn a_cancelled_decryption_stops_and_leaves_nothing() {
    let blob = PasswordBlob::new([7; 32], [8; 16]);
    let ct = cbc::encrypt_padded(blob.key(), blob.iv(), &ts(200));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ts");
    std::fs::write(&input, &ct).unwrap();
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let opts = DecryptOptions {
        cancel: Some(flag),
        ..small_opts(false)
    };
    let output = dir.path().join("out.ts");
    let e = decrypt_file(&input, &output, &blob, &opts).unwrap_err();
    assert!(matches!(e, ArchiveError::Interrupted), "{e}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "only the input is left");
    let mut out = Vec::new();
    let e = decrypt_stream(&ct[..], &mut out, &blob, &opts).unwrap_err();
    assert!(matches!(e, ArchiveError::Interrupted), "{e}");
}

#[test]
fn wrong_key_empty_and_misaligned_inputs_fail() {
    let blob = PasswordBlob::new([7; 32], [8; 16]);
    let ct = cbc::encrypt_padded(blob.key(), blob.iv(), &ts(50));
    let wrong = PasswordBlob::new([6; 32], [8; 16]);
    let mut out = Vec::new();
    assert!(matches!(
        decrypt_stream(&ct[..], &mut out, &wrong, &small_opts(false)),
        Err(ArchiveError::NotMpegTs(_))
    ));
    assert!(out.is_empty(), "nothing may be written for a wrong key");
    assert!(matches!(
        decrypt_stream(&[][..], &mut out, &blob, &small_opts(false)),
        Err(ArchiveError::Empty)
    ));
    assert!(matches!(
        decrypt_stream(&ct[..ct.len() - 1], &mut out, &blob, &small_opts(false)),
        Err(ArchiveError::NotBlockAligned(_))
    ));
}

#[test]
fn positional_and_streaming_decryption_agree() {
    let dir = tempfile::tempdir().unwrap();
    let blob = PasswordBlob::new([5; 32], [6; 16]);
    for packets in [1, 22, 23, 700, 5000] {
        let plain = ts(packets);
        let input = dir.path().join("in.ts");
        std::fs::write(&input, cbc::encrypt_padded(blob.key(), blob.iv(), &plain)).unwrap();
        for (trim, threads, chunk) in [
            (false, 1, 4096),
            (true, 2, 4096),
            (true, 3, 65536),
            (false, 4, 1 << 20),
        ] {
            let opts = DecryptOptions {
                trim,
                threads: NonZeroUsize::new(threads).unwrap(),
                buffer_size: chunk,
                chunk_size: chunk,
                buffers: 3,
                cancel: None,
                temp_file: None,
                progress: None,
            };
            let output = dir.path().join("out.ts");
            let s = decrypt_file(&input, &output, &blob, &opts).unwrap();
            let mut streamed = Vec::new();
            let t = decrypt_stream(
                std::fs::File::open(&input).unwrap(),
                &mut streamed,
                &blob,
                &opts,
            )
            .unwrap();
            assert_eq!(
                std::fs::read(&output).unwrap(),
                streamed,
                "packets {packets} trim {trim} threads {threads}"
            );
            assert_eq!(s.written_bytes, t.written_bytes);
            assert_eq!(s.report.packets, t.report.packets);
            assert_eq!(s.report.packets, packets as u64);
            assert_eq!(
                s.report.continuity_errors, 0,
                "inspection saw the chunks in order"
            );
            if trim {
                assert_eq!(streamed, plain);
            }
        }
    }
}

#[test]
fn decrypt_file_is_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let blob = PasswordBlob::new([7; 32], [8; 16]);
    let input = dir.path().join("archive.ts");
    std::fs::write(
        &input,
        cbc::encrypt_padded(blob.key(), blob.iv(), &ts(3000)),
    )
    .unwrap();
    let output = dir.path().join("out.ts");
    let wrong = PasswordBlob::new([1; 32], [8; 16]);
    assert!(decrypt_file(&input, &output, &wrong, &small_opts(false)).is_err());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no output, no temp file"
    );
    assert!(matches!(
        decrypt_file(&input, &input, &blob, &small_opts(false)),
        Err(ArchiveError::OutputIsInput(_))
    ));
    let s = decrypt_file(&input, &output, &blob, &small_opts(true)).unwrap();
    assert_eq!(std::fs::read(&output).unwrap(), ts(3000));
    assert_eq!(s.report.packets, 3000);
}

#[test]
fn progress_counts_every_byte_of_ciphertext_file_or_stream() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let blob = PasswordBlob::new([7; 32], [8; 16]);
    let ct = cbc::encrypt_padded(blob.key(), blob.iv(), &ts(1000));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ts");
    std::fs::write(&input, &ct).unwrap();
    let counter = Arc::new(AtomicU64::new(0));
    let opts = DecryptOptions {
        progress: Some(counter.clone()),
        ..small_opts(false)
    };
    decrypt_file(&input, &dir.path().join("out.ts"), &blob, &opts).unwrap();
    assert_eq!(counter.load(Ordering::Relaxed), ct.len() as u64);
    counter.store(0, Ordering::Relaxed);
    decrypt_stream(&ct[..], Vec::new(), &blob, &opts).unwrap();
    assert_eq!(counter.load(Ordering::Relaxed), ct.len() as u64);
}
