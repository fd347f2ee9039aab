//! Property tests (issue 11) for every archive-core parser that takes outside bytes: the password blob and its
//! base64, RSA-OAEP unwrapping, private keys (PEM, DER, encrypted) and certificates, and the MPEG-TS scanner.
//!
//! Each property feeds random bytes and mutations of valid inputs (the committed `tests/corpus/` files and
//! `tests/data/clip.ts`) and requires an answer, `Ok` or a typed error, never a panic; where there is a writer the
//! round trip must give back what went in. Case counts are small so CI stays fast; `PROPTEST_CASES` overrides
//! them. Failures found are kept in `proptest-regressions/prop_parsers.txt` (committed) and as explicit tests.

use std::sync::OnceLock;

use archive_core::mpegts::{self, PACKET, TsInspector};
use archive_core::{PasswordBlob, cert::Certificate, keys, oaep, password};
use proptest::prelude::*;
use rsa::PrivateKey;
use secrecy::SecretString;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
const CLIP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/clip.ts");
/// The passphrase of the encrypted keys in the corpus.
const CORPUS_PASSPHRASE: &str = "corpus-pass";

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(format!("{CORPUS}/{name}")).unwrap_or_else(|e| panic!("{CORPUS}/{name}: {e}"))
}

/// The corpus key (1024 bits, made with openssl; see `tests/corpus/README.md`).
fn test_key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        keys::load_private_key(&corpus("key-pkcs1.pem"), None).expect("the corpus key loads")
    })
}

fn clip() -> &'static [u8] {
    static CLIP_BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    CLIP_BYTES.get_or_init(|| std::fs::read(CLIP).expect("tests/data/clip.ts"))
}

/// `PROPTEST_CASES` if set, else `default`.
fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// A mutation of `input`: a few bytes overwritten, a cut, or bytes inserted.
#[derive(Debug, Clone)]
enum Mutation {
    Overwrite(Vec<(prop::sample::Index, u8)>),
    Truncate(prop::sample::Index),
    Insert(prop::sample::Index, Vec<u8>),
    FlipBit(prop::sample::Index, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)
            .prop_map(Mutation::Overwrite),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<prop::sample::Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
    ]
}

fn mutate(input: &[u8], m: &Mutation) -> Vec<u8> {
    let mut out = input.to_vec();
    if out.is_empty() {
        return out;
    }
    match m {
        Mutation::Overwrite(edits) => {
            for (i, b) in edits {
                let at = i.index(out.len());
                out[at] = *b;
            }
        }
        Mutation::Truncate(i) => out.truncate(i.index(out.len())),
        Mutation::Insert(i, bytes) => {
            let at = i.index(out.len() + 1);
            out.splice(at..at, bytes.iter().copied());
        }
        Mutation::FlipBit(i, bit) => {
            let at = i.index(out.len());
            out[at] ^= 1 << bit;
        }
    }
    out
}

fn passphrase() -> SecretString {
    SecretString::from(CORPUS_PASSPHRASE.to_owned())
}

proptest! {
    #![proptest_config(config(256))]

    /// Any 51 bytes with the right header are a blob, and it writes back to the same bytes; anything else is a
    /// typed error.
    #[test]
    fn password_blob_parses_or_errors_and_round_trips(bytes in prop::collection::vec(any::<u8>(), 0..80),
                                                      key in any::<[u8; 32]>(), iv in any::<[u8; 16]>()) {
        let _ = PasswordBlob::parse(&bytes);
        let blob = PasswordBlob::new(key, iv);
        let written = blob.to_bytes();
        prop_assert_eq!(written.len(), password::BLOB_LEN);
        let back = PasswordBlob::parse(&written).expect("a written blob parses");
        prop_assert_eq!(back.key(), &key);
        prop_assert_eq!(back.iv(), &iv);
        prop_assert!(PasswordBlob::parse(&written[..50]).is_err());
    }

    /// Lenient base64 never panics, on any text (whitespace, Unicode, padding in odd places).
    #[test]
    fn lenient_base64_never_panics(text in "\\PC{0,200}", noise in "[A-Za-z0-9+/= \n\t]{0,120}") {
        let _ = oaep::decode_base64_lenient(&text);
        let _ = oaep::decode_base64_lenient(&noise);
    }

    /// Unwrapping any text or bytes with the test key is an error, never a panic, and a wrapped blob unwraps to
    /// itself, also after its base64 is broken over lines.
    #[test]
    fn oaep_unwrap_never_panics_and_round_trips(text in "[A-Za-z0-9+/=]{0,200}",
                                                bytes in prop::collection::vec(any::<u8>(), 0..200),
                                                exact in prop::collection::vec(any::<u8>(), 128),
                                                key in any::<[u8; 32]>(), iv in any::<[u8; 16]>(),
                                                line in 1usize..100) {
        let rsa_key = test_key();
        let _ = oaep::unwrap_password(rsa_key, &text);
        let _ = oaep::unwrap_password_bytes(rsa_key, &bytes);
        // The right length reaches the RSA decryption itself.
        prop_assert!(oaep::unwrap_password_bytes(rsa_key, &exact).is_err());
        let blob = PasswordBlob::new(key, iv);
        let wrapped = oaep::wrap_password(&rsa_key.to_public_key(), &blob, &mut rand::rng())
            .expect("wraps");
        let folded: String = wrapped
            .as_bytes()
            .chunks(line)
            .map(|c| format!("{}\n", std::str::from_utf8(c).expect("base64 is ASCII")))
            .collect();
        prop_assert_eq!(oaep::unwrap_password(rsa_key, &folded).expect("unwraps"), blob);
    }

    /// Key loading answers every input: random bytes, and mutations of each corpus key (PKCS#1, PKCS#8, DER,
    /// and both encrypted forms, with and without the passphrase).
    #[test]
    fn key_loading_never_panics(random in prop::collection::vec(any::<u8>(), 0..700),
                                which in 0usize..5, m in mutation(), with_pass in any::<bool>()) {
        let pass = passphrase();
        let _ = keys::load_private_key(&random, Some(&pass));
        let name = ["key-pkcs1.pem", "key-pkcs8.pem", "key-pkcs8.der", "key-pkcs1-aes256.pem", "key-pkcs8-enc.pem"][which];
        let input = mutate(&corpus(name), &m);
        let _ = keys::load_private_key(&input, with_pass.then_some(&pass));
        let _ = keys::passphrase_from_file_contents(&input);
    }

    /// Certificate parsing answers every input: random bytes, text, and mutations of the PEM, the DER and the
    /// two JSON forms the service takes.
    #[test]
    fn certificate_parsing_never_panics(random in prop::collection::vec(any::<u8>(), 0..700),
                                        text in "\\PC{0,300}", which in 0usize..4, m in mutation()) {
        let _ = Certificate::parse(&random);
        let _ = Certificate::parse(text.as_bytes());
        let cert = Certificate::parse(&corpus("cert.pem")).expect("the corpus certificate parses");
        let forms = [corpus("cert.pem"), corpus("cert.der"), cert.to_json_base64().into_bytes(),
                     cert.to_json_escaped().into_bytes()];
        if let Ok(parsed) = Certificate::parse(&mutate(&forms[which], &m)) {
            // Whatever parses can be described and re-encoded.
            let _ = parsed.info(Some(test_key()));
            let _ = parsed.check_service_acceptance();
            let _ = Certificate::parse(parsed.to_pem().as_bytes()).expect("a parsed certificate's PEM parses");
        }
    }

    /// The MPEG-TS scanner answers random bytes and mutated real packets, fed in pieces of any size, with a
    /// report whose bytes add up; `looks_like_ts` agrees with the sync bytes.
    #[test]
    fn mpegts_scanner_never_panics(random in prop::collection::vec(any::<u8>(), 0..3000),
                                   start in 0usize..200, packets in 1usize..40,
                                   mutations in prop::collection::vec(mutation(), 0..6),
                                   chunk in 1usize..700) {
        let clip = clip();
        let start = start.min(clip.len() / PACKET - 1) * PACKET;
        let end = (start + packets * PACKET).min(clip.len());
        let mut input = clip[start..end].to_vec();
        for m in &mutations {
            input = mutate(&input, m);
        }
        for data in [&random, &input] {
            let _ = mpegts::looks_like_ts(data);
            let mut inspector = TsInspector::new();
            for piece in data.chunks(chunk) {
                inspector.feed(piece);
            }
            let report = inspector.finish();
            // The report does not depend on how the stream was cut into pieces.
            let mut whole = TsInspector::new();
            whole.feed(data);
            prop_assert_eq!(&whole.finish(), &report);
            prop_assert_eq!(report.bytes, data.len() as u64);
            prop_assert_eq!(
                report.packets * PACKET as u64 + report.skipped_bytes + report.trailing_bytes,
                report.bytes
            );
            if let Some(d) = report.duration_seconds {
                prop_assert!(d.is_finite() && d >= 0.0, "{}", d);
            }
            let _ = serde_json::to_string(&report).expect("the report serializes");
        }
    }
}

/// Key writing and reading round trip (a fresh key each time is slow, so a few cases of the corpus key).
#[test]
fn key_write_read_round_trip() {
    let key = test_key();
    let plain = keys::to_pkcs8_pem(key, None).expect("encodes");
    assert_eq!(
        &keys::load_private_key(plain.as_bytes(), None).expect("loads"),
        key
    );
    for name in ["key-pkcs1.pem", "key-pkcs8.pem", "key-pkcs8.der"] {
        assert_eq!(
            &keys::load_private_key(&corpus(name), None).expect(name),
            key
        );
    }
    for name in ["key-pkcs1-aes256.pem", "key-pkcs8-enc.pem"] {
        assert_eq!(
            &keys::load_private_key(&corpus(name), Some(&passphrase())).expect(name),
            key
        );
        assert!(
            keys::load_private_key(&corpus(name), None).is_err(),
            "{name} without a passphrase"
        );
    }
}

/// A certificate made for the corpus key round trips through all its encodings.
#[test]
fn certificate_round_trip() {
    let key = test_key();
    let cert = Certificate::generate_self_signed(key, "CN=proptest", 30).expect("builds");
    for form in [
        cert.to_pem().into_bytes(),
        cert.der().to_vec(),
        cert.to_json_base64().into_bytes(),
        cert.to_json_escaped().into_bytes(),
    ] {
        let back = Certificate::parse(&form).expect("parses");
        assert_eq!(back.der(), cert.der());
        assert!(back.matches(key));
    }
}
