//! Archive ids on the command line (issue 11): every `ARCHIVE_ID` argument is checked against the service's
//! id form (a UUID) before anything is sent, looked up, or made into a file name or an object key; a bad one is
//! a usage error (exit 2) in one line that names it, and the service never sees a request.
#![allow(clippy::unwrap_used)]

mod common;

use common::fake_service::serve;
use common::*;

const BAD: [&str; 4] = [
    "../../etc/passwd",
    "b40ef09b-3811-4726-b508-e41a0f96c68f/../x",
    "abc",
    "b40ef09b38114726b508e41a0f96c68f",
];

#[test]
fn a_bad_archive_id_is_refused_before_anything_is_sent() {
    let (addr, fake) = serve(vec![(200, "{}"); 32]);
    let api = format!("http://{addr}");
    let dir = tempfile::tempdir().unwrap();
    for bad in BAD {
        for command in [
            &["archives", "get", bad][..],
            &["archives", "stop", bad],
            &["archives", "delete", bad],
            &["pull", bad, "--out-dir", "out", "--key", "key.pem"],
            &["ledger", "show", bad],
        ] {
            let out = archivectl()
                .current_dir(dir.path())
                .env("OPENTOK_API_SECRET", "secret-0123456789")
                .env("ARCHIVECTL_LEDGER", dir.path().join("ledger.sqlite3"))
                .args(["--api-key", "46000001", "--api-url", &api])
                .args(command)
                .output()
                .unwrap();
            assert_fails(&out, 2, "is not an archive id");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(stderr.lines().count(), 1, "{command:?}: {stderr}");
        }
    }
    assert!(
        fake.requests.lock().unwrap().is_empty(),
        "the service saw a request"
    );
    assert!(
        !dir.path().join("out").exists() && !dir.path().join("ledger.sqlite3").exists(),
        "nothing was created"
    );
}

#[test]
fn the_service_form_is_accepted_in_either_case() {
    let dir = tempfile::tempdir().unwrap();
    for id in [
        "b40ef09b-3811-4726-b508-e41a0f96c68f",
        "B40EF09B-3811-4726-B508-E41A0F96C68F",
    ] {
        let out = archivectl()
            .current_dir(dir.path())
            .env("ARCHIVECTL_LEDGER", dir.path().join("ledger.sqlite3"))
            .args(["ledger", "show", id])
            .output()
            .unwrap();
        // Valid, but not in the (missing) ledger: the lookup happened.
        assert_fails(&out, 3, "is not in the ledger");
    }
}
