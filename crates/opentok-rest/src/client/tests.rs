//! Unit tests of `client`, beside it so that the module stays within the size budget.

use super::*;
use crate::auth::AuthError;
use error::MAX_QUOTED_BODY;

#[test]
fn statuses_map_to_typed_errors() {
    let e = |status: u16| {
        Error::from_status(service_error(
            StatusCode::from_u16(status).unwrap(),
            br#"{"message":"m"}"#,
            &[],
        ))
    };
    assert!(matches!(e(400), Error::BadRequest(_)));
    assert!(matches!(e(401), Error::Unauthorized(_)));
    assert!(matches!(e(403), Error::Unauthorized(_)));
    assert!(matches!(e(404), Error::NotFound(_)));
    assert!(matches!(e(409), Error::Conflict(_)));
    assert!(matches!(e(429), Error::Service(_)));
    assert!(matches!(e(500), Error::Service(_)));
    assert_eq!(e(403).status(), Some(403));
    assert_eq!(
        e(403).to_string(),
        "the service refused the credentials (HTTP 403: m)"
    );
}

#[test]
fn service_messages_are_read_from_any_body() {
    let full = service_error(
        StatusCode::FORBIDDEN,
        br#"{"code":-1,"message":"Issuer not found","description":"Issuer not found"}"#,
        &[],
    );
    assert_eq!(full.to_string(), "HTTP 403, code -1: Issuer not found");
    let with_description = service_error(
        StatusCode::BAD_REQUEST,
        br#"{"code":15002,"message":"m","description":"d"}"#,
        &[],
    );
    assert_eq!(with_description.to_string(), "HTTP 400, code 15002: m (d)");
    let html = service_error(
        StatusCode::BAD_GATEWAY,
        b"<html>\r\n<b>502 Bad Gateway</b></html>",
        &[],
    );
    assert_eq!(html.message, "<html><b>502 Bad Gateway</b></html>");
    assert_eq!(
        service_error(StatusCode::NOT_FOUND, b"", &[]).message,
        "Not Found"
    );
    let long = vec![b'x'; 10_000];
    assert_eq!(
        service_error(StatusCode::INTERNAL_SERVER_ERROR, &long, &[])
            .message
            .len(),
        MAX_QUOTED_BODY
    );
}

#[test]
fn secrets_echoed_by_the_service_are_blanked() {
    let echoed = service_error(
            StatusCode::BAD_REQUEST,
            br#"{"message":"bad secretKey BvKwyshsmEATx5mngeloHwgKrYMbP+","description":"BvKwyshsmEATx5mngeloHwgKrYMbP+"}"#,
            &["BvKwyshsmEATx5mngeloHwgKrYMbP+"],
        );
    assert!(
        !echoed
            .to_string()
            .contains("BvKwyshsmEATx5mngeloHwgKrYMbP+"),
        "{echoed}"
    );
    assert!(echoed.message.contains("[REDACTED]"));
}

#[test]
fn base_urls_are_checked() {
    assert!(parse_base_url("https://api.opentok.com", false).is_ok());
    assert!(parse_base_url("http://127.0.0.1:8080/prefix/", false).is_ok());
    for bad in [
        "api.opentok.com",
        "ftp://host",
        "https://host/?x=1",
        "mailto:a@b",
        "not a url",
    ] {
        assert!(
            matches!(
                parse_base_url(bad, false),
                Err(Error::InvalidBaseUrl { .. })
            ),
            "{bad}"
        );
    }
    for remote in [
        "http://api.opentok.com",
        "http://10.0.0.7:8080",
        "http://localhost.evil.com",
    ] {
        let refused = parse_base_url(remote, false).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("plain http:// is only used for a loopback host"),
            "{refused}"
        );
        assert!(
            parse_base_url(remote, true).is_ok(),
            "allowed explicitly: {remote}"
        );
    }
    for local in [
        "http://127.0.0.1:9",
        "http://127.8.9.10",
        "http://[::1]:8080",
        "http://localhost:3000/emu",
        "http://emulator.localhost",
    ] {
        assert!(parse_base_url(local, false).is_ok(), "{local}");
    }
    let with_password = parse_base_url("https://user:hunter2@host", false).unwrap_err();
    assert!(
        !with_password.to_string().contains("hunter2"),
        "{with_password}"
    );
}

#[test]
fn request_bodies_are_wiped_once_no_attempt_holds_them() {
    let body = bytes::Bytes::from(b"{\"secretKey\":\"s3cr3t\"}".to_vec());
    let attempt = body.clone();
    assert!(!wipe(body), "an attempt still holds it");
    let data = attempt.as_ptr();
    let len = attempt.len();
    // The same buffer (no copy was made), zeroed.
    let mut only = attempt.try_into_mut().unwrap();
    assert_eq!(only.as_ptr(), data);
    zeroize::Zeroize::zeroize(&mut only[..]);
    assert_eq!(&only[..], vec![0u8; len].as_slice());
    let fresh = bytes::Bytes::from(b"secret".to_vec());
    assert!(wipe(fresh));
}

#[test]
fn unreachable_reasons_say_what_to_check() {
    let t = Duration::from_secs(10);
    let reason = |chain: &str| unreachable_reason(chain, false, t);
    assert!(
        reason("client error (Connect): tcp connect error: Connection refused (os error 111)")
            .starts_with("connection refused: nothing listens there: wrong host or port")
    );
    for dns in [
        "client error (Connect): dns error: failed to lookup address information: Name or service not known",
        "dns error: No such host is known. (os error 11001)",
        "dns error: nodename nor servname provided, or not known",
    ] {
        assert!(reason(dns).starts_with("DNS lookup failed"), "{dns}");
    }
    assert!(unreachable_reason("client error (Connect)", true, t).contains("within 10s"));
    assert!(
        reason("tcp connect error: Connection timed out (os error 110)").contains("within 10s")
    );
    assert!(
        reason("client error (Connect): invalid peer certificate: UnknownIssuer")
            .starts_with("TLS failed (invalid peer certificate: UnknownIssuer)")
    );
    assert!(
        reason("tcp connect error: Network is unreachable (os error 101)").starts_with("no route")
    );
    assert!(reason("something else").ends_with("check the service URL and that the service is up"));
}

#[test]
fn paths_are_built_under_the_base_and_ids_are_encoded() {
    let client = Client::new(
        Credentials::project("47203", "s".into()),
        "http://127.0.0.1:9/emu/",
    )
    .unwrap();
    assert_eq!(
        client.url(&["archive", "storage"]).as_str(),
        "http://127.0.0.1:9/emu/v2/project/47203/archive/storage"
    );
    assert_eq!(
        client.url(&["archive", "../../x?y#z"]).as_str(),
        "http://127.0.0.1:9/emu/v2/project/47203/archive/..%2F..%2Fx%3Fy%23z"
    );
    let plain = Client::new(
        Credentials::project("47203", "s".into()),
        "https://api.opentok.com",
    )
    .unwrap();
    assert_eq!(
        plain.url(&["archive"]).as_str(),
        "https://api.opentok.com/v2/project/47203/archive"
    );
}

#[test]
fn backoff_doubles_with_jitter_and_is_capped() {
    let policy = RetryPolicy {
        max_retries: 10,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
    };
    for _ in 0..50 {
        let first = policy.delay(0, None);
        assert!(
            (Duration::from_millis(50)..=Duration::from_millis(100)).contains(&first),
            "{first:?}"
        );
        let third = policy.delay(2, None);
        assert!(
            (Duration::from_millis(200)..=Duration::from_millis(400)).contains(&third),
            "{third:?}"
        );
        assert!(policy.delay(9, None) <= Duration::from_secs(1));
    }
    assert_eq!(
        policy.delay(0, Some(Duration::from_secs(3))),
        Duration::from_secs(1)
    );
    assert_eq!(
        policy.delay(0, Some(Duration::from_millis(300))),
        Duration::from_millis(300)
    );
}

#[test]
fn token_lifetime_is_checked_when_building() {
    let built = Client::builder(Credentials::project("1", "s".into()))
        .token_lifetime(Duration::from_secs(301))
        .build();
    assert!(matches!(
        built,
        Err(Error::Auth(AuthError::LifetimeTooLong(301)))
    ));
}

#[tokio::test]
async fn arguments_the_service_would_refuse_are_refused_without_a_request() {
    // Port 9 (discard) on loopback: nothing is sent in these cases anyway.
    let client = Client::new(Credentials::project("1", "s".into()), "http://127.0.0.1:9").unwrap();
    assert!(matches!(
        client.list_archives(0, 1001, None).await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        client.list_archives(0, 0, None).await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        client.get_archive(" ").await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        client.start_archive(&StartArchiveRequest::new("")).await,
        Err(Error::InvalidArgument(_))
    ));
}
