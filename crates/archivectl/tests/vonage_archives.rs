//! `archivectl archives streams add|remove` and `archivectl archives layout` (issue 13) against a local HTTP
//! server standing in for the service: the exact method, path and JSON body sent, and the local checks made
//! before anything is sent.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;

use common::fake_service::serve;
use common::*;

const API_KEY: &str = "46000001";
const SECRET: &str = "0123456789abcdef0123456789abcdef01234567";
const ID: &str = "b40ef09b-3811-4726-b508-e41a0f96c68f";

fn cli(addr: SocketAddr, args: &[&str]) -> std::process::Output {
    archivectl()
        .env("OPENTOK_API_SECRET", SECRET)
        .env_remove("ARCHIVECTL_CONFIG")
        .current_dir(std::env::temp_dir())
        .args(["--api-key", API_KEY, "--api-url", &format!("http://{addr}")])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn streams_add_and_remove_send_the_services_patch_bodies() {
    let (addr, fake) = serve(vec![(204, ""), (204, ""), (204, "")]);
    for args in [
        vec!["archives", "streams", "add", ID, "s1"],
        vec!["archives", "streams", "add", ID, "s2", "--no-video"],
        vec!["archives", "streams", "remove", ID, "s1"],
    ] {
        let out = cli(addr, &args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let reqs = fake.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 3);
    for r in &reqs {
        assert_eq!(r.method, "PATCH");
        assert_eq!(r.uri, format!("/v2/project/{API_KEY}/archive/{ID}/streams"));
    }
    let body = |i: usize| serde_json::from_str::<serde_json::Value>(&reqs[i].body).unwrap();
    assert_eq!(
        body(0),
        serde_json::json!({"addStream": "s1", "hasAudio": true, "hasVideo": true})
    );
    assert_eq!(
        body(1),
        serde_json::json!({"addStream": "s2", "hasAudio": true, "hasVideo": false})
    );
    assert_eq!(body(2), serde_json::json!({"removeStream": "s1"}));

    // Neither audio nor video: a usage error, nothing sent.
    let (addr, fake) = serve(vec![]);
    let out = cli(
        addr,
        &[
            "archives",
            "streams",
            "add",
            ID,
            "s1",
            "--no-audio",
            "--no-video",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(fake.requests.lock().unwrap().is_empty());
}

#[test]
fn layout_sends_the_type_the_stylesheet_file_and_the_screenshare_type() {
    let dir = tempfile::tempdir().unwrap();
    let css = dir.path().join("layout.css");
    std::fs::write(&css, "stream.instructor { position: absolute; }\n").unwrap();
    let (addr, fake) = serve(vec![(200, ""), (200, "")]);
    let out = cli(
        addr,
        &[
            "archives",
            "layout",
            ID,
            "--type",
            "custom",
            "--stylesheet",
            css.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(
        addr,
        &[
            "archives",
            "layout",
            ID,
            "--type",
            "bestFit",
            "--screenshare-type",
            "pip",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["layout"]["screenshareType"], "pip");
    let reqs = fake.requests.lock().unwrap().clone();
    assert_eq!(reqs[0].method, "PUT");
    assert_eq!(
        reqs[0].uri,
        format!("/v2/project/{API_KEY}/archive/{ID}/layout")
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&reqs[0].body).unwrap(),
        serde_json::json!({"type": "custom", "stylesheet": "stream.instructor { position: absolute; }\n"})
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&reqs[1].body).unwrap(),
        serde_json::json!({"type": "bestFit", "screenshareType": "pip"})
    );

    // custom without a stylesheet: refused before sending, with the reason.
    let (addr, fake) = serve(vec![]);
    let out = cli(addr, &["archives", "layout", ID, "--type", "custom"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stylesheet"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(fake.requests.lock().unwrap().is_empty());
}
