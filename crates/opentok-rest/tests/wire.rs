//! The client against a local HTTP server that records every request: exact bodies, headers, paths, JWT
//! claims, error mapping, retries, timeouts and paging.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures_util::TryStreamExt as _;
use opentok_rest::auth::{self, ApplicationCredentials, Credentials};
use opentok_rest::model::{
    ArchiveEncryption, ArchiveStatus, AzureConfig, Fallback, OutputMode, S3Config,
    ServerSideEncryption, StartArchiveRequest, StorageTarget,
};
use opentok_rest::{Client, Error, RetryPolicy};

const API_KEY: &str = "47203";
const API_SECRET: &str = "0f5e1c3d9a7b2e4f6a8c0e2d4b6f8a1c3e5d7b9f";
const S3_SECRET: &str = "BvKwyshsmEATx5mngeloHwgKrYMbP+";
const AZURE_KEY: &str = "bXlBY2NvdW50S2V5LXRoYXQtaXMtc2VjcmV0";
const APP_ID: &str = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
const APP_KEY_PEM: &str = include_str!("fixtures/vonage-application-test-key.pem");
const EC_CERTIFICATE: &str = include_str!("fixtures/ec-p256-certificate.pem");
/// opentok/opentok-node `test/archiving-test.js`, `mockStartArchiveResponseBody`.
const NODE_START: &str = include_str!("fixtures/node-start-archive.json");
/// opentok/Opentok-.NET-SDK `OpenTokTest/Data/ArchiveTests/GetArchiveWithUnknownPropertiesAsync-response.json`.
const DOTNET_UNKNOWN_PROPERTIES: &str =
    include_str!("fixtures/dotnet-get-archive-unknown-properties.json");

#[derive(Debug, Clone)]
struct Recorded {
    method: Method,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: String,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    body: String,
    delay: Duration,
    retry_after: Option<&'static str>,
}

fn reply(status: u16, body: &str) -> Reply {
    Reply {
        status,
        body: body.to_owned(),
        delay: Duration::ZERO,
        retry_after: None,
    }
}

type Responder = Arc<dyn Fn(&Recorded, usize) -> Reply + Send + Sync>;

#[derive(Clone)]
struct MockState {
    recorded: Arc<Mutex<Vec<Recorded>>>,
    responder: Responder,
}

struct MockService {
    url: String,
    recorded: Arc<Mutex<Vec<Recorded>>>,
}

impl MockService {
    /// Serves on 127.0.0.1:0; `responder` gets each request and how many came before it.
    async fn start(responder: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static) -> Self {
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let state = MockState {
            recorded: recorded.clone(),
            responder: Arc::new(responder),
        };
        let app = Router::new().fallback(handle).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, recorded }
    }

    /// Answers every request with the next reply of `replies` (the last one repeats).
    async fn scripted(replies: Vec<Reply>) -> Self {
        Self::start(move |_, n| replies[n.min(replies.len() - 1)].clone()).await
    }

    fn requests(&self) -> Vec<Recorded> {
        self.recorded.lock().unwrap().clone()
    }

    fn project_client(&self) -> Client {
        Client::builder(Credentials::project(API_KEY, API_SECRET.into()))
            .base_url(&self.url)
            .retry(fast_retries(3))
            .build()
            .unwrap()
    }
}

async fn handle(
    State(state): State<MockState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = Recorded {
        method,
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let n = {
        let mut recorded = state.recorded.lock().unwrap();
        recorded.push(request.clone());
        recorded.len() - 1
    };
    let reply = (state.responder)(&request, n);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    if let Some(seconds) = reply.retry_after {
        response
            .headers_mut()
            .insert("retry-after", seconds.parse().unwrap());
    }
    response
}

fn fast_retries(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
    }
}

/// Checks the request's `X-OPENTOK-AUTH` as the service would, and returns its claims.
fn check_project_jwt(request: &Recorded) -> auth::ProjectClaims {
    let token = request
        .header("x-opentok-auth")
        .expect("X-OPENTOK-AUTH header");
    assert!(request.header("authorization").is_none());
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "HS256");
    let claims = auth::verify_project_token(
        token,
        API_KEY,
        API_SECRET.as_bytes(),
        auth::unix_now().unwrap(),
    )
    .unwrap();
    assert_eq!(claims.iss, API_KEY);
    assert_eq!(claims.ist, "project");
    assert_eq!(claims.exp - claims.iat, 180);
    // Issued for this request: not in the future, and not minutes old (a bound no loaded machine misses).
    let now = auth::unix_now().unwrap();
    assert!(
        claims.iat <= now && now - claims.iat <= 60,
        "iat {} now {now}",
        claims.iat
    );
    assert!(uuid::Uuid::parse_str(claims.jti.as_deref().unwrap()).is_ok());
    claims
}

fn s3_config() -> S3Config {
    S3Config {
        bucket: "example.com.archive-bucket".into(),
        secret_key: S3_SECRET.into(),
        access_key: "AWFS7BAO536E6MXA".into(),
        endpoint: None,
        sse: None,
    }
}

fn test_certificate(bits: usize) -> archive_core::cert::Certificate {
    let key = rsa::PrivateKey::new(&mut rand::rng(), bits).unwrap();
    archive_core::cert::Certificate::generate_self_signed(&key, "CN=opentok-rest wire test", 2)
        .unwrap()
}

#[tokio::test]
async fn storage_put_sends_the_documented_json_with_a_fresh_project_jwt() {
    let service = MockService::scripted(vec![reply(200, "")]).await;
    let certificate = test_certificate(1024);
    let target = StorageTarget::s3(
        s3_config(),
        Fallback::None,
        ArchiveEncryption::for_certificate(&certificate),
    );
    service
        .project_client()
        .set_archive_storage(&target)
        .await
        .unwrap();

    let requests = service.requests();
    assert_eq!(requests.len(), 1);
    let put = &requests[0];
    assert_eq!(put.method, Method::PUT);
    assert_eq!(put.path, "/v2/project/47203/archive/storage");
    assert_eq!(put.query, None);
    assert_eq!(put.header("content-type"), Some("application/json"));
    assert_eq!(put.header("accept"), Some("application/json"));
    assert!(
        put.header("user-agent")
            .unwrap()
            .starts_with("archivectl-opentok-rest/")
    );
    check_project_jwt(put);
    assert_eq!(
        put.body,
        format!(
            r#"{{"type":"s3","config":{{"bucket":"example.com.archive-bucket","secretKey":"{S3_SECRET}","accessKey":"AWFS7BAO536E6MXA"}},"fallback":"none","certificate":"{}"}}"#,
            certificate.to_json_base64()
        )
    );
    // What the service receives decodes to the certificate's PEM, as `openssl enc -base64 -A` makes it.
    let sent: serde_json::Value = serde_json::from_str(&put.body).unwrap();
    let pem = base64::engine::general_purpose::STANDARD
        .decode(sent["certificate"].as_str().unwrap())
        .unwrap();
    assert_eq!(String::from_utf8(pem).unwrap(), certificate.to_pem());
}

#[tokio::test]
async fn disabling_encryption_sends_the_same_target_with_a_null_certificate() {
    let service = MockService::scripted(vec![reply(200, "")]).await;
    let target = StorageTarget::azure(
        AzureConfig {
            account_name: "myAccountname".into(),
            account_key: AZURE_KEY.into(),
            container: "containerName".into(),
            domain: None,
        },
        Fallback::Vonage,
        ArchiveEncryption::Certificate(test_certificate(1024).to_json_base64()),
    );
    service
        .project_client()
        .disable_encryption(&target)
        .await
        .unwrap();
    let put = &service.requests()[0];
    assert_eq!(
        put.body,
        format!(
            r#"{{"type":"azure","config":{{"accountName":"myAccountname","accountKey":"{AZURE_KEY}","container":"containerName"}},"fallback":"vonage","certificate":null}}"#
        )
    );
}

#[tokio::test]
async fn sse_target_with_endpoint() {
    let service = MockService::scripted(vec![reply(200, "{}")]).await;
    let target = StorageTarget::s3(
        S3Config {
            endpoint: Some("https://storage.googleapis.com".into()),
            sse: Some(ServerSideEncryption::S3),
            ..s3_config()
        },
        Fallback::Opentok,
        ArchiveEncryption::Disabled,
    );
    service
        .project_client()
        .set_archive_storage(&target)
        .await
        .unwrap();
    let sent: serde_json::Value = serde_json::from_str(&service.requests()[0].body).unwrap();
    assert_eq!(
        sent,
        serde_json::json!({"type": "s3", "config": {"bucket": "example.com.archive-bucket", "secretKey": S3_SECRET,
            "accessKey": "AWFS7BAO536E6MXA", "endpoint": "https://storage.googleapis.com", "sse": "s3"},
            "fallback": "opentok", "certificate": null})
    );
}

#[tokio::test]
async fn certificates_the_service_refuses_are_never_sent() {
    let service = MockService::scripted(vec![reply(200, "")]).await;
    let client = service.project_client();
    let too_large = test_certificate(3072);
    let target = StorageTarget::s3(
        s3_config(),
        Fallback::None,
        ArchiveEncryption::for_certificate(&too_large),
    );
    let err = client.set_archive_storage(&target).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Certificate(archive_core::cert::CertError::KeyTooLarge(3072))
        ),
        "{err}"
    );
    assert!(err.to_string().contains("3072"), "{err}");

    let ec = StorageTarget::s3(
        s3_config(),
        Fallback::None,
        ArchiveEncryption::Certificate(EC_CERTIFICATE.replace('\n', "\\n")),
    );
    let err = client.set_archive_storage(&ec).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Certificate(archive_core::cert::CertError::NotRsa(_))
        ),
        "{err}"
    );

    let garbage = StorageTarget::s3(
        s3_config(),
        Fallback::None,
        ArchiveEncryption::Certificate("LS0tLS1CRUdJTi4uLg==".into()),
    );
    assert!(matches!(
        client.set_archive_storage(&garbage).await,
        Err(Error::Certificate(_))
    ));
    assert!(service.requests().is_empty(), "nothing reached the service");
}

#[tokio::test]
async fn archive_calls_use_the_documented_methods_paths_and_bodies() {
    let service =
        MockService::start(
            |request, _| match (request.method.as_str(), request.path.as_str()) {
                ("POST", "/v2/project/47203/archive") => reply(200, NODE_START),
                ("POST", p) if p.ends_with("/stop") => {
                    let mut stopped: serde_json::Value = serde_json::from_str(NODE_START).unwrap();
                    stopped["status"] = "stopped".into();
                    stopped["reason"] = "user initiated".into();
                    reply(200, &stopped.to_string())
                }
                ("GET", _) => reply(200, DOTNET_UNKNOWN_PROPERTIES),
                ("DELETE", _) => reply(204, ""),
                _ => reply(418, r#"{"message":"unexpected"}"#),
            },
        )
        .await;
    let client = service.project_client();

    let request = StartArchiveRequest {
        name: Some("test_archive_name".into()),
        output_mode: Some(OutputMode::Composed),
        resolution: Some("1280x720".into()),
        multi_archive_tag: Some("audit".into()),
        ..StartArchiveRequest::new("1_MX4xMDB-fg")
    };
    let started = client.start_archive(&request).await.unwrap();
    assert_eq!(started.status, ArchiveStatus::Started);
    assert_eq!(started.id, "e85741ce-d280-4efa-a3ba-93379a68be06");
    let stopped = client.stop_archive(&started.id).await.unwrap();
    assert_eq!(
        (stopped.status, stopped.reason.as_deref()),
        (ArchiveStatus::Stopped, Some("user initiated"))
    );
    let got = client
        .get_archive("f6e7ee58-d6cf-4a59-896b-6d56b158ec71")
        .await
        .unwrap();
    assert_eq!(got.status, ArchiveStatus::Expired);
    client
        .delete_archive("f6e7ee58-d6cf-4a59-896b-6d56b158ec71")
        .await
        .unwrap();

    let requests = service.requests();
    let summary: Vec<(String, String)> = requests
        .iter()
        .map(|r| (r.method.to_string(), r.path.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            ("POST", "/v2/project/47203/archive"),
            (
                "POST",
                "/v2/project/47203/archive/e85741ce-d280-4efa-a3ba-93379a68be06/stop"
            ),
            (
                "GET",
                "/v2/project/47203/archive/f6e7ee58-d6cf-4a59-896b-6d56b158ec71"
            ),
            (
                "DELETE",
                "/v2/project/47203/archive/f6e7ee58-d6cf-4a59-896b-6d56b158ec71"
            ),
        ]
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
    );
    assert_eq!(
        requests[0].body,
        r#"{"sessionId":"1_MX4xMDB-fg","name":"test_archive_name","outputMode":"composed","resolution":"1280x720","multiArchiveTag":"audit"}"#
    );
    assert_eq!(requests[1].body, "{}");
    assert_eq!(requests[2].body, "");
    assert_eq!(requests[2].header("content-type"), None);
    let jtis: HashSet<String> = requests
        .iter()
        .map(|r| check_project_jwt(r).jti.unwrap())
        .collect();
    assert_eq!(
        jtis.len(),
        requests.len(),
        "a fresh token for every request"
    );
}

#[tokio::test]
async fn vonage_application_auth_sends_an_rs256_bearer_token_to_the_application_path() {
    let service = MockService::scripted(vec![reply(200, DOTNET_UNKNOWN_PROPERTIES)]).await;
    let credentials = ApplicationCredentials::from_private_key_file_contents(
        APP_ID,
        APP_KEY_PEM.as_bytes(),
        None,
    )
    .unwrap();
    let public_key = credentials.public_key();
    let client = Client::new(Credentials::Application(credentials), &service.url).unwrap();
    client.get_archive("f6e7ee58").await.unwrap();
    let request = &service.requests()[0];
    assert_eq!(
        request.path,
        format!("/v2/project/{APP_ID}/archive/f6e7ee58")
    );
    assert!(request.header("x-opentok-auth").is_none());
    let token = request
        .header("authorization")
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap();
    let claims =
        auth::verify_application_token(token, APP_ID, &public_key, auth::unix_now().unwrap())
            .unwrap();
    assert_eq!(claims.exp - claims.iat, 180);
    assert!(uuid::Uuid::parse_str(&claims.jti).is_ok());
}

#[tokio::test]
async fn list_sends_offset_count_and_session_id() {
    let service = MockService::scripted(vec![reply(200, r#"{"count":0,"items":[]}"#)]).await;
    let client = service.project_client();
    client
        .list_archives(50, 1000, Some("2_MX4+/=&x"))
        .await
        .unwrap();
    client.list_archives(0, 1, None).await.unwrap();
    let requests = service.requests();
    assert_eq!(requests[0].path, "/v2/project/47203/archive");
    assert_eq!(
        requests[0].query.as_deref(),
        Some("offset=50&count=1000&sessionId=2_MX4%2B%2F%3D%26x")
    );
    assert_eq!(requests[1].query.as_deref(), Some("offset=0&count=1"));
}

fn archive_json(n: usize) -> serde_json::Value {
    serde_json::json!({"id": format!("archive-{n:05}"), "status": "uploaded", "sessionId": "S", "partnerId": 47203,
        "createdAt": 1_700_000_000_000i64 - n as i64, "duration": 0, "size": 188 * n, "password": "cGFzcw=="})
}

fn query_value(query: &str, name: &str) -> Option<u64> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn list_all_pages_until_it_has_counted_everything() {
    const TOTAL: usize = 2345;
    let service = MockService::start(|request, _| {
        let query = request.query.as_deref().unwrap_or("");
        let offset = query_value(query, "offset").unwrap() as usize;
        let count = query_value(query, "count").unwrap() as usize;
        let items: Vec<_> = (offset..(offset + count).min(TOTAL))
            .map(archive_json)
            .collect();
        reply(
            200,
            &serde_json::json!({"count": TOTAL, "items": items}).to_string(),
        )
    })
    .await;
    let client = service.project_client();
    let all: Vec<_> = client
        .list_all_archives(Some("S"))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), TOTAL);
    assert_eq!(
        all.iter()
            .map(|a| a.id.as_str())
            .collect::<HashSet<_>>()
            .len(),
        TOTAL
    );
    assert_eq!(all[2344].id, "archive-02344");
    let queries: Vec<String> = service
        .requests()
        .iter()
        .map(|r| r.query.clone().unwrap())
        .collect();
    assert_eq!(
        queries,
        [
            "offset=0&count=1000&sessionId=S",
            "offset=1000&count=1000&sessionId=S",
            "offset=2000&count=1000&sessionId=S"
        ]
    );
}

#[tokio::test]
async fn list_all_yields_an_archive_pushed_to_the_next_page_once_and_stops_on_an_empty_page() {
    // Page two starts with the last archive of page one again (a new archive was created meanwhile), and the
    // service's count is larger than what it ever returns.
    let service = MockService::start(|request, _| {
        let offset = query_value(request.query.as_deref().unwrap(), "offset").unwrap();
        let items: Vec<_> = match offset {
            0 => (0..1000).map(archive_json).collect(),
            1000 => (999..1500).map(archive_json).collect(),
            _ => Vec::new(),
        };
        reply(
            200,
            &serde_json::json!({"count": 5000, "items": items}).to_string(),
        )
    })
    .await;
    let all = service
        .project_client()
        .collect_all_archives(None)
        .await
        .unwrap();
    assert_eq!(all.len(), 1500);
    assert_eq!(service.requests().len(), 3);
    assert!(
        service
            .requests()
            .iter()
            .all(|r| !r.query.as_deref().unwrap().contains("sessionId"))
    );
}

#[tokio::test]
async fn list_all_ends_with_the_error_of_a_failing_page() {
    let service = MockService::start(|request, _| {
        match query_value(request.query.as_deref().unwrap(), "offset").unwrap() {
            0 => reply(200, &serde_json::json!({"count": 1500, "items": (0..1000).map(archive_json).collect::<Vec<_>>()}).to_string()),
            _ => reply(403, r#"{"code":-1,"message":"Issuer not found","description":"Issuer not found"}"#),
        }
    })
    .await;
    let results: Vec<_> = futures_util::StreamExt::collect::<Vec<_>>(
        service.project_client().list_all_archives(None),
    )
    .await;
    assert_eq!(results.len(), 1001);
    assert!(matches!(
        results.last().unwrap(),
        Err(Error::Unauthorized(_))
    ));
}

#[tokio::test]
async fn service_errors_are_typed_and_carry_the_service_message() {
    // Bodies: see fixtures/SOURCES.md.
    let cases = [
        (
            400,
            r#"{"code":15002,"message":"Invalid archive storage configuration","description":"bucket is required"}"#,
        ),
        (
            403,
            r#"{"code":-1,"message":"Issuer not found","description":"Issuer not found"}"#,
        ),
        (
            404,
            r#"{"code":-1,"message":"Not found. You passed in an invalid archive ID."}"#,
        ),
        (
            409,
            r#"{ "message" : "Conflict. You are trying to stop an archive that is not recording." }"#,
        ),
        (
            409,
            r#"{"code": 15001, "message": "HTTP 409 conflict ", "description": "HTTP 401 Conflict"}"#,
        ),
        (500, "<html><body>Internal Server Error</body></html>"),
        (401, ""),
    ];
    for (status, body) in cases {
        let service = MockService::scripted(vec![reply(status, body)]).await;
        let err = service
            .project_client()
            .stop_archive("e85741ce")
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(status), "{err}");
        let text = err.to_string();
        let service_error = err.service_error().unwrap();
        match status {
            400 => {
                assert!(matches!(err, Error::BadRequest(_)));
                assert_eq!(service_error.code, Some(15002));
                assert_eq!(
                    text,
                    "the service rejected the request as invalid (HTTP 400, code 15002: Invalid archive storage configuration (bucket is required))"
                );
            }
            403 => {
                assert!(matches!(err, Error::Unauthorized(_)));
                assert_eq!(
                    text,
                    "the service refused the credentials (HTTP 403, code -1: Issuer not found)"
                );
            }
            404 => {
                assert!(matches!(err, Error::NotFound(_)));
                assert_eq!(
                    service_error.message,
                    "Not found. You passed in an invalid archive ID."
                );
            }
            409 => {
                assert!(matches!(err, Error::Conflict(_)));
                assert!(text.contains("409"), "{text}");
            }
            500 => {
                assert!(matches!(err, Error::Service(_)));
                assert!(text.contains("Internal Server Error"), "{text}");
            }
            401 => {
                assert!(matches!(err, Error::Unauthorized(_)));
                assert_eq!(service_error.message, "Unauthorized");
            }
            _ => unreachable!(),
        }
        for secret in [API_SECRET, S3_SECRET] {
            assert!(!text.contains(secret) && !format!("{err:?}").contains(secret));
        }
        assert_eq!(service.requests().len(), 1, "stop is never retried");
    }
}

#[tokio::test]
async fn secrets_echoed_in_an_error_body_are_blanked() {
    let echo = format!(
        r#"{{"code":15002,"message":"invalid secretKey {S3_SECRET}","description":"api secret {API_SECRET}"}}"#
    );
    let service = MockService::scripted(vec![reply(400, &echo)]).await;
    let target = StorageTarget::s3(s3_config(), Fallback::None, ArchiveEncryption::Disabled);
    let err = service
        .project_client()
        .set_archive_storage(&target)
        .await
        .unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(S3_SECRET) && !shown.contains(API_SECRET),
        "{shown}"
    );
    assert!(shown.contains("[REDACTED]"));
}

#[tokio::test]
async fn safe_calls_are_retried_on_5xx_and_429_with_fresh_tokens() {
    let service = MockService::scripted(vec![
        reply(503, r#"{"message":"unavailable"}"#),
        Reply {
            retry_after: Some("0"),
            ..reply(429, r#"{"message":"slow down"}"#)
        },
        reply(200, DOTNET_UNKNOWN_PROPERTIES),
    ])
    .await;
    let archive = service.project_client().get_archive("a").await.unwrap();
    assert_eq!(archive.status, ArchiveStatus::Expired);
    let requests = service.requests();
    assert_eq!(requests.len(), 3);
    let jtis: HashSet<_> = requests
        .iter()
        .map(|r| check_project_jwt(r).jti.unwrap())
        .collect();
    assert_eq!(jtis.len(), 3);

    // The storage PUT and DELETE are safe to repeat too.
    let service = MockService::scripted(vec![reply(502, ""), reply(200, "")]).await;
    let target = StorageTarget::s3(s3_config(), Fallback::None, ArchiveEncryption::Disabled);
    service
        .project_client()
        .set_archive_storage(&target)
        .await
        .unwrap();
    let requests = service.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, requests[1].body);

    let service = MockService::scripted(vec![reply(500, ""), reply(204, "")]).await;
    service.project_client().delete_archive("a").await.unwrap();
    assert_eq!(service.requests().len(), 2);
}

#[tokio::test]
async fn retries_give_up_after_the_policy_and_report_the_last_answer() {
    let service =
        MockService::scripted(vec![reply(503, r#"{"message":"still unavailable"}"#)]).await;
    let err = service.project_client().get_archive("a").await.unwrap_err();
    assert!(
        matches!(&err, Error::Service(e) if e.status == 503 && e.message == "still unavailable"),
        "{err}"
    );
    assert_eq!(service.requests().len(), 4, "one attempt and three retries");
}

#[tokio::test]
async fn unsafe_calls_and_client_errors_are_not_retried() {
    let service = MockService::scripted(vec![reply(503, ""), reply(200, NODE_START)]).await;
    let client = service.project_client();
    assert!(matches!(
        client.start_archive(&StartArchiveRequest::new("S")).await,
        Err(Error::Service(_))
    ));
    assert_eq!(
        service.requests().len(),
        1,
        "a repeated start could record twice"
    );

    let service =
        MockService::scripted(vec![reply(400, r#"{"message":"bad"}"#), reply(200, "{}")]).await;
    assert!(matches!(
        service.project_client().get_archive("a").await,
        Err(Error::BadRequest(_))
    ));
    assert_eq!(service.requests().len(), 1);
}

#[tokio::test]
async fn a_delete_that_finds_nothing_after_a_retry_counts_as_done() {
    let service = MockService::scripted(vec![
        reply(502, ""),
        reply(404, r#"{"message":"Not found"}"#),
    ])
    .await;
    service.project_client().delete_archive("a").await.unwrap();
    // Without a retry, 404 is an error.
    let service = MockService::scripted(vec![reply(404, r#"{"message":"Not found"}"#)]).await;
    assert!(matches!(
        service.project_client().delete_archive("a").await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn slow_answers_time_out_and_safe_calls_try_again() {
    // The slow answer would take a minute; the client gives up on it after its timeout and the retry gets
    // the quick one. Bounds no loaded machine misses: a 2 s timeout for a local answer, under 30 s in all.
    let slow = Reply {
        delay: Duration::from_secs(60),
        ..reply(200, DOTNET_UNKNOWN_PROPERTIES)
    };
    let service =
        MockService::scripted(vec![slow.clone(), reply(200, DOTNET_UNKNOWN_PROPERTIES)]).await;
    let client = Client::builder(Credentials::project(API_KEY, API_SECRET.into()))
        .base_url(&service.url)
        .timeout(Duration::from_secs(2))
        .retry(fast_retries(1))
        .build()
        .unwrap();
    let started = Instant::now();
    client.get_archive("a").await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(service.requests().len(), 2);

    let service = MockService::scripted(vec![slow]).await;
    let client = Client::builder(Credentials::project(API_KEY, API_SECRET.into()))
        .base_url(&service.url)
        .timeout(Duration::from_millis(300))
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let err = client.get_archive("a").await.unwrap_err();
    assert!(
        matches!(err, Error::Timeout(t) if t == Duration::from_millis(300)),
        "{err}"
    );
}

#[tokio::test]
async fn unreachable_service_is_a_connection_error_retried_only_for_safe_calls() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::builder(Credentials::project(API_KEY, API_SECRET.into()))
        .base_url(format!("http://127.0.0.1:{port}"))
        .retry(RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        })
        .build()
        .unwrap();
    let started = Instant::now();
    let err = client.get_archive("a").await.unwrap_err();
    // Two retries wait at least 50 ms and 100 ms (the lower halves of 100 and 200 ms).
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
    // Issue 17: the URL and port, and what to check.
    assert!(
        err.to_string().starts_with(&format!(
            "could not reach the service at http://127.0.0.1:{port}/ (port {port}): connection refused: \
             nothing listens there: wrong host or port, or the server is down"
        )),
        "{err}"
    );
    assert!(!format!("{err} {err:?}").contains(API_SECRET));

    // With a backoff of at least 30 s, a repeated call could not end within 30 s, however loaded the machine.
    let client = Client::builder(Credentials::project(API_KEY, API_SECRET.into()))
        .base_url(format!("http://127.0.0.1:{port}"))
        .retry(RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_secs(60),
            max_backoff: Duration::from_secs(120),
        })
        .build()
        .unwrap();
    let started = Instant::now();
    assert!(matches!(
        client.start_archive(&StartArchiveRequest::new("S")).await,
        Err(Error::Unreachable { .. })
    ));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "no backoff for a call that is never repeated"
    );
}

#[tokio::test]
async fn debug_output_of_the_client_holds_no_secret() {
    let client = Client::new(
        Credentials::project(API_KEY, API_SECRET.into()),
        "http://127.0.0.1:9",
    )
    .unwrap();
    let shown = format!("{client:?}");
    assert!(shown.contains(API_KEY));
    assert!(!shown.contains(API_SECRET), "{shown}");
    let app = ApplicationCredentials::from_private_key_file_contents(
        APP_ID,
        APP_KEY_PEM.as_bytes(),
        None,
    )
    .unwrap();
    let client = Client::new(Credentials::Application(app), "http://127.0.0.1:9").unwrap();
    let shown = format!("{client:?}");
    assert!(
        !shown.contains("PRIVATE") && !shown.contains(&APP_KEY_PEM[40..80]),
        "{shown}"
    );
}

/// Serves on 127.0.0.1:0 with `app`; returns its address.
async fn serve(app: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn redirects_are_never_followed_and_the_token_goes_nowhere_else() {
    // Another origin that records every request it gets, with its headers.
    let elsewhere: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let seen = elsewhere.clone();
    let other = serve(Router::new().fallback(move |headers: HeaderMap| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(headers);
            (StatusCode::OK, r#"{"id":"x","status":"uploaded"}"#)
        }
    }))
    .await;
    for status in [301u16, 302, 303, 307, 308] {
        let location = format!("http://{other}/v2/steal?X-Amz-Signature=SECRETSIG");
        let service = serve(Router::new().fallback(move || {
            let location = location.clone();
            async move {
                (
                    StatusCode::from_u16(status).unwrap(),
                    [(axum::http::header::LOCATION, location)],
                    "",
                )
            }
        }))
        .await;
        let project = Client::builder(Credentials::project(API_KEY, API_SECRET.into()))
            .base_url(format!("http://{service}"))
            .retry(fast_retries(3))
            .build()
            .unwrap();
        let err = project.get_archive("a").await.unwrap_err();
        match &err {
            Error::Redirect {
                status: s,
                location,
            } => {
                assert_eq!(*s, status);
                assert_eq!(location, &format!("http://{other}"));
            }
            other => panic!("HTTP {status}: {other}"),
        }
        let text = err.to_string();
        assert!(text.contains("not followed"), "{text}");
        assert!(
            !text.contains("SECRETSIG") && !text.contains("/v2/steal"),
            "{text}"
        );
        // The storage PUT carries a secret in its body: not followed either.
        let put = project
            .set_archive_storage(&StorageTarget::s3(
                s3_config(),
                Fallback::None,
                ArchiveEncryption::Disabled,
            ))
            .await
            .unwrap_err();
        assert!(matches!(put, Error::Redirect { .. }), "{put}");
    }
    assert!(
        elsewhere.lock().unwrap().is_empty(),
        "the other origin got requests (with X-OPENTOK-AUTH: {:?})",
        elsewhere
            .lock()
            .unwrap()
            .iter()
            .map(|h| h.contains_key("x-opentok-auth"))
            .collect::<Vec<_>>()
    );
}
