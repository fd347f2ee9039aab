//! The set-up the pull tests share against the storage servers (s3s-fs, Azurite): the service's bodies for
//! uploaded archives, archives put into a bucket, archivectl's S3 flags for a bucket, the ledger filled by
//! `archivectl sync` from the fake service, fresh archive ids.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;

use secrecy::ExposeSecret as _;
use storage_fetch::{S3Target, Store, Target};

use super::Fixture;

/// The service's JSON for archive `id` of project `api_key`, `uploaded`, with its wrapped `password`.
pub fn uploaded_archive_body(api_key: &str, id: &str, password: &str) -> String {
    format!(
        r#"{{"id":"{id}","status":"uploaded","sessionId":"S","partnerId":{api_key},"createdAt":1700000000000,
            "duration":0,"size":1,"password":"{password}"}}"#
    )
}

/// Runs `f` to its end on a new tokio runtime.
pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Runtime::new().unwrap().block_on(f)
}

/// Puts the file at `path` into `target` as `key`.
pub fn put(target: &Target, key: &str, path: &Path) {
    let data = std::fs::read(path).unwrap();
    block_on(async {
        Store::new(target.clone())
            .unwrap()
            .put(key, data)
            .await
            .unwrap()
    });
}

/// archivectl's flags for bucket `t` (its secret written to the fixture's `s3secret`).
pub fn s3_args(t: &S3Target, fx: &Fixture) -> Vec<String> {
    std::fs::write(fx.path("s3secret"), t.secret_access_key.expose_secret()).unwrap();
    vec![
        "--bucket".into(),
        t.bucket.clone(),
        "--endpoint".into(),
        t.endpoint.clone().unwrap(),
        "--access-key-id".into(),
        t.access_key_id.clone(),
        "--secret-access-key-file".into(),
        fx.path("s3secret"),
    ]
}

/// A fresh random UUID (the kernel's), so parallel runs never share a name.
pub fn fresh_uuid() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .unwrap()
        .trim()
        .to_string()
}

/// The service's answer to a listing of these uploaded archives of project `api_key`.
pub fn uploaded_archive_list(api_key: &str, ids: &[String], password: &str) -> String {
    let items: Vec<String> = ids
        .iter()
        .map(|id| uploaded_archive_body(api_key, id, password))
        .collect();
    format!(r#"{{"count":{},"items":[{}]}}"#, ids.len(), items.join(","))
}

/// Puts the file at `path` as the archive object of each of `ids` of project `api_key`.
pub fn put_archives(target: &Target, api_key: &str, ids: &[String], path: &Path) {
    let data = bytes::Bytes::from(std::fs::read(path).unwrap());
    block_on(async {
        let store = Store::new(target.clone()).unwrap();
        for id in ids {
            store
                .put(&format!("{api_key}/{id}/archive.ts"), data.clone())
                .await
                .unwrap();
        }
    });
}

/// `archivectl sync` of project `api_key` from the (fake) REST API at `api` into `ledger`, run in `dir`.
pub fn sync_from(api: SocketAddr, api_key: &str, secret: &str, ledger: &str, dir: &Path) -> Output {
    super::archivectl()
        .env("OPENTOK_API_SECRET", secret)
        .env("ARCHIVECTL_LEDGER", ledger)
        .current_dir(dir)
        .args([
            "--api-key",
            api_key,
            "--api-url",
            &format!("http://{api}"),
            "sync",
        ])
        .output()
        .unwrap()
}
