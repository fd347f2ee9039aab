//! The service's side, done by archive-core (as the emulator will), checked by the openssl CLI: our RSA-OAEP
//! wrap unwraps with `pkeyutl` and `rsautl`, our AES-256-CBC archive decrypts with the documented command, and
//! our generated certificate and PKCS#8 keys are read by openssl.
#![allow(clippy::unwrap_used)]

use archive_core::{PasswordBlob, cbc, cert::Certificate, keys, oaep};
use e2e::{data_dir, sh};

fn passphrase(s: &str) -> secrecy::SecretString {
    secrecy::SecretString::from(s.to_string())
}

#[test]
fn our_wrap_and_encryption_decrypt_with_the_documented_openssl_commands() {
    let dir = tempfile::tempdir().unwrap();
    let key = keys::generate_rsa_key(2048).unwrap();
    let cert = Certificate::generate_self_signed(&key, "CN=service side", 2).unwrap();
    std::fs::write(
        dir.path().join("key.pem"),
        keys::to_pkcs8_pem(&key, None).unwrap().as_bytes(),
    )
    .unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.to_pem()).unwrap();

    let clip = std::fs::read(data_dir().join("clip.ts")).unwrap();
    let blob = PasswordBlob::generate(&mut rand::rng());
    std::fs::write(
        dir.path().join("archive.ts"),
        cbc::encrypt_padded(blob.key(), blob.iv(), &clip),
    )
    .unwrap();
    let password =
        oaep::wrap_password(&cert.rsa_public_key().unwrap(), &blob, &mut rand::rng()).unwrap();
    std::fs::write(dir.path().join("password.txt"), &password).unwrap();

    // The documented steps, verbatim but for file names; rsautl and pkeyutl both.
    sh(
        dir.path(),
        "openssl enc -base64 -d -A <<< \"$(cat password.txt)\" -out password.enc
         openssl rsautl -decrypt -oaep -inkey key.pem -in password.enc -out password.bin 2>/dev/null
         openssl pkeyutl -decrypt -inkey key.pem -pkeyopt rsa_padding_mode:oaep -in password.enc -out password2.bin
         cmp password.bin password2.bin
         openssl enc -d -aes-256-cbc -nopad -in archive.ts -out decrypted.ts \
           -K $(xxd -s 3 -l 32 -c 32 -p password.bin) -iv $(xxd -s 35 -l 16 -c 16 -p password.bin)
         openssl x509 -in cert.pem -noout -checkend 0",
    );
    let bin = std::fs::read(dir.path().join("password.bin")).unwrap();
    assert_eq!(&bin[..], &blob.to_bytes()[..]);
    let decrypted = std::fs::read(dir.path().join("decrypted.ts")).unwrap();
    assert_eq!(&decrypted[..clip.len()], &clip[..]);
    assert_eq!(decrypted.len() % 16, 0);
    assert_eq!(cbc::pkcs7_unpadded_len(&decrypted), Some(clip.len()));
}

#[test]
fn encrypted_pkcs8_we_write_is_read_by_openssl_3() {
    let dir = tempfile::tempdir().unwrap();
    let key = keys::generate_rsa_key(1024).unwrap();
    let pem = keys::to_pkcs8_pem(&key, Some(&passphrase("with spaces & symbols"))).unwrap();
    std::fs::write(dir.path().join("key.pem"), pem.as_bytes()).unwrap();
    std::fs::write(dir.path().join("pass.txt"), "with spaces & symbols\n").unwrap();
    sh(
        dir.path(),
        "openssl pkey -in key.pem -passin file:pass.txt -noout -check 2>/dev/null || openssl rsa -check -noout -in key.pem -passin file:pass.txt",
    );
}
