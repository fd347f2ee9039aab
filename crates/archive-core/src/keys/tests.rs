//! Unit tests of `keys`, beside it so that the module stays within the size budget.

use super::*;

#[test]
fn secret_files_are_read_whole_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big");
    std::fs::write(&path, vec![b'k'; MAX_SECRET_FILE as usize + 1]).unwrap();
    let err = read_secret_file(&path).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("too large"), "{err}");
    std::fs::write(&path, vec![b'k'; MAX_SECRET_FILE as usize]).unwrap();
    let bytes = read_secret_file(&path).unwrap();
    assert_eq!(bytes.len(), MAX_SECRET_FILE as usize);
    assert!(
        bytes.capacity() <= MAX_SECRET_FILE as usize + 1,
        "no reallocation"
    );
}

fn key() -> PrivateKey {
    PrivateKey::new(&mut rand::rng(), 1024).unwrap()
}

#[test]
fn pkcs8_round_trip_plain_and_encrypted() {
    let key = key();
    let pass = SecretString::from("correct horse".to_string());
    let pem = to_pkcs8_pem(&key, Some(&pass)).unwrap();
    assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    assert_eq!(load_private_key(pem.as_bytes(), Some(&pass)).unwrap(), key);
    assert!(matches!(
        load_private_key(pem.as_bytes(), None),
        Err(KeyError::PassphraseRequired)
    ));
    let wrong = SecretString::from("wrong".to_string());
    assert!(matches!(
        load_private_key(pem.as_bytes(), Some(&wrong)),
        Err(KeyError::WrongPassphrase)
    ));
}

#[test]
fn evp_bytes_to_key_matches_known_vector() {
    // openssl enc -aes-256-cbc -P -md md5 -pass pass:password -S 0001020304050607
    let k = evp_bytes_to_key(b"password", &[0, 1, 2, 3, 4, 5, 6, 7], 32);
    assert_eq!(k.len(), 32);
    let first = Md5::new()
        .chain_update(b"password")
        .chain_update([0, 1, 2, 3, 4, 5, 6, 7])
        .finalize();
    assert_eq!(&k[..16], first.as_slice());
}

#[test]
fn garbage_and_wrong_kinds_are_named() {
    assert!(matches!(
        load_private_key(b"", None),
        Err(KeyError::Malformed(_))
    ));
    assert!(matches!(
        load_private_key(b"hello world", None),
        Err(KeyError::Malformed(_))
    ));
    let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert!(matches!(
        load_private_key(cert.as_bytes(), None),
        Err(KeyError::NotAPrivateKey(_))
    ));
    let trunc = "-----BEGIN PRIVATE KEY-----\nAAAA\n";
    assert!(matches!(
        load_private_key(trunc.as_bytes(), None),
        Err(KeyError::Malformed(_))
    ));
}

/// Runs `openssl args...` in `dir`; false if openssl refuses (OpenSSL 3 no longer makes some legacy keys).
fn openssl(dir: &std::path::Path, args: &[&str]) -> bool {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (3.x) must be on PATH: these tests make keys with it");
    out.status.success()
}

/// A 2048-bit key made by `openssl genrsa` in `dir`, as `k.pem`.
fn openssl_key(dir: &std::path::Path) -> PrivateKey {
    assert!(openssl(dir, &["genrsa", "-out", "k.pem", "2048"]));
    load_private_key(&std::fs::read(dir.join("k.pem")).unwrap(), None).unwrap()
}

#[test]
fn legacy_pbe_keys_made_by_openssl_are_refused_with_the_conversion_command() {
    let dir = tempfile::tempdir().unwrap();
    let key = openssl_key(dir.path());
    let pass = SecretString::from("secret".to_string());
    // `openssl pkcs8 -v1` name, the scheme we must name, whether this openssl must be able to make it.
    let variants = [
        ("PBE-SHA1-3DES", "pbeWithSHAAnd3-KeyTripleDES-CBC", true),
        ("PBE-SHA1-2DES", "pbeWithSHAAnd2-KeyTripleDES-CBC", true),
        ("PBE-MD5-DES", "pbeWithMD5AndDES-CBC", false),
        ("PBE-SHA1-DES", "pbeWithSHA1AndDES-CBC", false),
        ("PBE-MD5-RC2-64", "pbeWithMD5AndRC2-CBC", false),
        ("PBE-SHA1-RC2-64", "pbeWithSHA1AndRC2-CBC", false),
        ("PBE-SHA1-RC4-128", "pbeWithSHAAnd128BitRC4", false),
        ("PBE-SHA1-RC4-40", "pbeWithSHAAnd40BitRC4", false),
        ("PBE-SHA1-RC2-128", "pbeWithSHAAnd128BitRC2-CBC", false),
        ("PBE-SHA1-RC2-40", "pbeWithSHAAnd40BitRC2-CBC", false),
        ("PBE-MD2-DES", "pbeWithMD2AndDES-CBC", false),
    ];
    let mut made = Vec::new();
    for (v1, scheme, required) in variants {
        for (form, ext) in [("PEM", "pem"), ("DER", "der")] {
            let out = format!("{v1}.{ext}");
            let args = [
                "pkcs8",
                "-topk8",
                "-v1",
                v1,
                "-in",
                "k.pem",
                "-outform",
                form,
                "-out",
                &out,
                "-passout",
                "pass:secret",
            ];
            // OpenSSL 3 makes the DES, RC2, RC4 and MD5 ones only with its legacy provider.
            let with_legacy =
                [&args[..], &["-provider", "legacy", "-provider", "default"]].concat();
            if !openssl(dir.path(), &args) && !openssl(dir.path(), &with_legacy) {
                assert!(!required, "openssl could not make a {v1} key");
                eprintln!("skipping {v1} ({form}): this openssl refuses to make it");
                continue;
            }
            made.push(format!("{v1} {form}"));
            let bytes = std::fs::read(dir.path().join(&out)).unwrap();
            for passphrase in [None, Some(&pass)] {
                let err = load_private_key(&bytes, passphrase).unwrap_err();
                let msg = err.to_string();
                let KeyError::LegacyPbe {
                    scheme: named,
                    family,
                    convert,
                } = err
                else {
                    panic!("{v1} {form}: {msg}");
                };
                assert_eq!(named, scheme, "{msg}");
                let expected_family = if v1 == "PBE-SHA1-DES"
                    || v1.starts_with("PBE-MD")
                    || v1 == "PBE-SHA1-RC2-64"
                {
                    "PBES1"
                } else {
                    "PKCS#12"
                };
                assert!(family.starts_with(expected_family), "{msg}");
                assert!(
                    msg.starts_with("unsupported private key encryption: "),
                    "{msg}"
                );
                assert!(msg.contains(family) && msg.contains(&convert), "{msg}");
                assert!(
                    convert.starts_with("openssl pkcs8 -topk8 -v2 aes-256-cbc"),
                    "{msg}"
                );
                assert_eq!(convert.contains("-inform DER"), form == "DER", "{msg}");
            }
            // The command in the message converts the key into one that loads.
            let (_, convert) = match load_private_key(&bytes, None) {
                Err(KeyError::LegacyPbe { convert, .. }) => ((), convert),
                other => panic!("{other:?}"),
            };
            let converted = format!("{v1}-{ext}-pbes2.pem");
            let mut args: Vec<&str> = convert
                .split(' ')
                .skip(1)
                .map(|a| match a {
                    "KEY" => out.as_str(),
                    "NEW.pem" => converted.as_str(),
                    a => a,
                })
                .collect();
            args.extend(["-passin", "pass:secret", "-passout", "pass:secret"]);
            assert!(openssl(dir.path(), &args), "{convert}");
            let pem = std::fs::read(dir.path().join(&converted)).unwrap();
            assert_eq!(
                load_private_key(&pem, Some(&pass)).unwrap(),
                key,
                "{convert}"
            );
        }
    }
    assert!(made.len() >= 4, "{made:?}");
}

#[test]
fn pbes2_keys_made_by_openssl_still_load() {
    let dir = tempfile::tempdir().unwrap();
    let key = openssl_key(dir.path());
    let pass = SecretString::from("secret".to_string());
    let variants: [&[&str]; 6] = [
        &[],
        &["-v2", "aes-256-cbc"],
        &["-v2", "aes-128-cbc", "-v2prf", "hmacWithSHA1"],
        &["-v2", "des3"],
        &["-v2", "aes-256-cbc", "-outform", "DER"],
        &["-scrypt"],
    ];
    for extra in variants {
        let base = [
            "pkcs8",
            "-topk8",
            "-in",
            "k.pem",
            "-out",
            "enc",
            "-passout",
            "pass:secret",
        ];
        assert!(
            openssl(dir.path(), &[&base[..], extra].concat()),
            "{extra:?}"
        );
        let bytes = std::fs::read(dir.path().join("enc")).unwrap();
        assert_eq!(
            load_private_key(&bytes, Some(&pass)).unwrap(),
            key,
            "{extra:?}"
        );
        assert!(
            matches!(
                load_private_key(&bytes, None),
                Err(KeyError::PassphraseRequired)
            ),
            "{extra:?}"
        );
    }
}

/// DER tag-length-value with a short length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = u8::try_from(content.len()).unwrap();
    assert!(len < 0x80);
    [&[tag, len][..], content].concat()
}

/// An `EncryptedPrivateKeyInfo` with algorithm `oid` (and PBES1-style salt and iteration parameters).
fn encrypted_key_info(oid: &str) -> Vec<u8> {
    let oid = der::asn1::ObjectIdentifier::new(oid).unwrap();
    let params = tlv(
        0x30,
        &[tlv(0x04, &[7; 8]), tlv(0x02, &[0x08, 0x00])].concat(),
    );
    let algorithm = tlv(0x30, &[tlv(0x06, oid.as_bytes()), params].concat());
    tlv(0x30, &[algorithm, tlv(0x04, &[0x5a; 32])].concat())
}

#[test]
fn every_pbes1_and_pkcs12_pbe_oid_is_refused_by_name_in_pem_and_der() {
    let mut oids: Vec<(&str, String)> = LEGACY_SCHEMES
        .iter()
        .map(|&(oid, name, ..)| (oid, name.to_owned()))
        .collect();
    oids.push((
        "1.2.840.113549.1.12.1.99",
        "OID 1.2.840.113549.1.12.1.99".into(),
    ));
    for (oid, name) in oids {
        let der = encrypted_key_info(oid);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let pem = format!(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\n{b64}\n-----END ENCRYPTED PRIVATE KEY-----\n"
        );
        for bytes in [der.as_slice(), pem.as_bytes()] {
            match load_private_key(bytes, None) {
                Err(KeyError::LegacyPbe { scheme, .. }) => assert_eq!(scheme, name),
                other => panic!("{oid}: {other:?}"),
            }
        }
    }
    // PBES2 and its parts are not legacy.
    for oid in [
        "1.2.840.113549.1.5.13",
        "1.2.840.113549.1.5.12",
        "1.2.840.113549.1.5.14",
    ] {
        assert!(legacy_pbe_error(oid, KeyForm::Pem).is_none(), "{oid}");
    }
}

#[test]
fn passphrase_file_ends_at_first_newline() {
    let p = passphrase_from_file_contents(b"pw\r\nmore").unwrap();
    assert_eq!(p.expose_secret(), "pw");
    assert!(passphrase_from_file_contents(b"\nx").is_err());
}
