//! The verifier of bucket outputs: what it sends, piece by piece, is the documented decryption (or with `trim`
//! the packets alone), whatever the pieces' sizes; a bad tail, lost sync or a wrong key is refused.
#![allow(clippy::unwrap_used)]

use super::*;
use archive_core::mpegts::PACKET;

fn ts(packets: usize) -> Vec<u8> {
    (0..packets)
        .flat_map(|i| {
            let mut p = vec![0u8; PACKET];
            p[0] = 0x47;
            p[3] = 0x10 | (i % 16) as u8;
            p
        })
        .collect()
}

/// Feeds `ct` in pieces of `piece` bytes (whole blocks, the first at least a packet, as downloads give) and
/// gathers what the verifier sends.
fn run(
    blob: Option<PasswordBlob>,
    ct: &[u8],
    piece: usize,
    trim: bool,
) -> Result<(Vec<u8>, Verified), ArchiveError> {
    let mut v = StreamVerifier::new(blob, ct.len() as u64)?;
    let mut sent = Vec::new();
    for chunk in ct.chunks(piece) {
        let mut buf = chunk.to_vec();
        let r = v.push(&mut buf)?;
        sent.extend_from_slice(&r.front);
        sent.extend_from_slice(&buf[..r.now]);
    }
    let verified = v.finish(trim)?;
    sent.extend_from_slice(&verified.tail);
    Ok((sent, verified))
}

#[test]
fn sends_the_documented_decryption_whatever_the_piece_sizes() {
    let blob = PasswordBlob::new([1; 32], [2; 16]);
    let plain = ts(300);
    let ct = cbc::encrypt_padded(blob.key(), blob.iv(), &plain);
    let mut documented = plain.clone();
    let pad = 16 - plain.len() % 16;
    documented.extend(std::iter::repeat_n(pad as u8, pad));
    for piece in [192, 208, 512, 1024, 4096, ct.len()] {
        let (sent, v) = run(Some(blob.clone()), &ct, piece, false).unwrap();
        assert_eq!(sent, documented, "piece {piece}");
        assert_eq!(v.bytes, documented.len() as u64);
        assert_eq!(v.sha256, hex::encode(Sha256::digest(&documented)));
        let (sent, v) = run(Some(blob.clone()), &ct, piece, true).unwrap();
        assert_eq!(sent, plain, "trimmed, piece {piece}");
        assert_eq!(v.trimmed_bytes, pad as u64);
        assert_eq!(v.report.unwrap().sync_losses, 0);
    }
}

#[test]
fn refuses_a_wrong_key_a_bad_tail_and_lost_sync() {
    let blob = PasswordBlob::new([1; 32], [2; 16]);
    let plain = ts(100);
    let ct = cbc::encrypt_padded(blob.key(), blob.iv(), &plain);
    let wrong = PasswordBlob::new([9; 32], [2; 16]);
    assert!(matches!(
        run(Some(wrong), &ct, 1024, false),
        Err(ArchiveError::NotMpegTs(_))
    ));
    // Cut after whole blocks: no valid padding at the end.
    let cut = &ct[..ct.len() - 32];
    assert!(matches!(
        run(Some(blob.clone()), cut, 1024, false),
        Err(ArchiveError::Unverified(_))
    ));
    // A damaged packet in the middle: sync lost.
    let mut damaged = plain.clone();
    damaged[50 * PACKET] = 0x00;
    let ct = cbc::encrypt_padded(blob.key(), blob.iv(), &damaged);
    let e = run(Some(blob.clone()), &ct, 1024, false).err().unwrap();
    assert!(e.to_string().contains("lost sync"), "{e}");
    // Fewer bytes than the object's size.
    let ct = cbc::encrypt_padded(blob.key(), blob.iv(), &plain);
    let mut v = StreamVerifier::new(Some(blob), ct.len() as u64 + 16).unwrap();
    v.push(&mut ct.clone()).unwrap();
    assert!(v.finish(false).is_err());
}

#[test]
fn an_unencrypted_object_is_sent_as_it_is() {
    let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    let (sent, v) = run(None, &data, 777, false).unwrap();
    assert_eq!(sent, data);
    assert_eq!(v.sha256, hex::encode(Sha256::digest(&data)));
    assert!(v.report.is_none());
}
