//! Unit tests of `auth`, beside it so that the module stays within the size budget.

use super::*;

const TEST_KEY_PEM: &str = include_str!("../../tests/fixtures/vonage-application-test-key.pem");
const FIXED_JTI: &str = "6f1b3c5e-1d2a-4b7c-9e8f-0a1b2c3d4e5f";

fn decode_part(token: &str, index: usize) -> serde_json::Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[test]
fn hs256_matches_rfc_7515_appendix_a1() {
    // RFC 7515, A.1: the HS256 example, key and token as printed there.
    let key = URL_SAFE_NO_PAD
            .decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
            .unwrap();
    let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let claims: serde_json::Value = verify_hs256(token, &key).unwrap();
    assert_eq!(claims["iss"], "joe");
    let tampered = token.replace(".dBjf", ".eBjf");
    assert_eq!(
        verify_hs256::<serde_json::Value>(&tampered, &key),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn project_token_is_byte_identical_to_openssl() {
    // Expected value computed with `openssl dgst -sha256 -mac HMAC -macopt key:...` over the same
    // header (`{"typ":"JWT","alg":"HS256"}`, jsonwebtoken's order) and claims JSON.
    let claims = ProjectClaims {
        iss: "123456".into(),
        ist: "project".into(),
        iat: 1_700_000_000,
        exp: 1_700_000_180,
        jti: Some(FIXED_JTI.into()),
    };
    let token = sign_hs256(&claims, b"1234567890abcdef1234567890abcdef1234567890").unwrap();
    assert_eq!(
        token,
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJpc3MiOiIxMjM0NTYiLCJpc3QiOiJwcm9qZWN0IiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDAxODAsImp0aSI6IjZmMWIzYzVlLTFkMmEtNGI3Yy05ZThmLTBhMWIyYzNkNGU1ZiJ9.YPoqnhQ7VvTfizMT9hY8lGYxgH02cGiMzP5z99GvTaY"
    );
    // A token with the header fields in the other order (as the hand-written encoder made them) verifies
    // the same: the claims and the signature are what matter.
    let other_order = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiIxMjM0NTYiLCJpc3QiOiJwcm9qZWN0IiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDAxODAsImp0aSI6IjZmMWIzYzVlLTFkMmEtNGI3Yy05ZThmLTBhMWIyYzNkNGU1ZiJ9.txM3-wqvUAWaXLxV8pY6pznIlieMLbTg75tK0QMeJ7A";
    let secret = b"1234567890abcdef1234567890abcdef1234567890";
    assert_eq!(
        verify_project_token(other_order, "123456", secret, 1_700_000_010).unwrap(),
        claims
    );
    assert_eq!(
        verify_project_token(&token, "123456", secret, 1_700_000_010).unwrap(),
        claims
    );
}

#[test]
fn application_token_is_byte_identical_to_openssl() {
    // Expected value computed with `openssl dgst -sha256 -sign vonage-application-test-key.pem` over the
    // same header (`{"typ":"JWT","alg":"RS256"}`, jsonwebtoken's order) and claims JSON (PKCS#1 v1.5 signatures are deterministic).
    let key = archive_core::keys::load_private_key(TEST_KEY_PEM.as_bytes(), None).unwrap();
    let claims = ApplicationClaims {
        application_id: "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee".into(),
        iat: 1_700_000_000,
        exp: 1_700_000_180,
        jti: FIXED_JTI.into(),
    };
    let token = sign_rs256(&claims, &key).unwrap();
    assert_eq!(
        token,
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhcHBsaWNhdGlvbl9pZCI6ImFhYWFhYWFhLWJiYmItNGNjYy04ZGRkLWVlZWVlZWVlZWVlZSIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAwMTgwLCJqdGkiOiI2ZjFiM2M1ZS0xZDJhLTRiN2MtOWU4Zi0wYTFiMmMzZDRlNWYifQ.fe4vHE0MBV5M7YraNdBEWIyAlyIvyb4nPOYX79W6ucFb-kO_NbZFW4tf2vNOnC5ra7x3itvoFgVgKLAbF4r6CjqYvdtPKnY2xRf_0Uc9yL0Mm6REtvdqW0SJIKFvxhBPkJeRqxl4x72P_FLwSFY_qymtfJqpFLucHZvOpveoCcLC9BziZDgxdPzlw3Dx2QdDVKUdWly3WXocetwKS_dFBP44iqEK3uMWHhoSzPTVqDeqi5-fdD7uyFuW5k_RFZOvtBvFQdsRR0em69U-sOuk1qnL7y0VxGKMlk7oRKVzhaMUlm_fB1v3ss06KgTNE-ancMku_qwim8N9nkKoNljJug"
    );
    assert_eq!(
        verify_application_token(
            &token,
            &claims.application_id,
            &key.to_public_key(),
            1_700_000_100
        )
        .unwrap(),
        claims
    );
    assert!(matches!(
        verify_application_token(&token, "another-app", &key.to_public_key(), 1_700_000_100),
        Err(AuthError::WrongIssuer { .. })
    ));
    // The header in the other field order (the hand-written encoder's) verifies the same.
    assert_eq!(
            verify_application_token("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhcHBsaWNhdGlvbl9pZCI6ImFhYWFhYWFhLWJiYmItNGNjYy04ZGRkLWVlZWVlZWVlZWVlZSIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAwMTgwLCJqdGkiOiI2ZjFiM2M1ZS0xZDJhLTRiN2MtOWU4Zi0wYTFiMmMzZDRlNWYifQ.BJXbBp2om5R2H11Ot8Lmyn-4YsoNloTY2-WatfBXDgRHOTKFeVNV04MN3OHPQJseIqHJuUayyANZODjCLaQWjogM3zifQPfg7J93wlCntVn1vWvs-9GObY3phC6bFZTrW0C_HQzZLrjtl-REEGjzprfGd--RQUhLSVNN9qbHE0n56MllXSpCKadq1sVUrJx42C5GFAOJgibIQZMw6c1TlDbkBMvWDHIPDMwBqLqoeWZbXb_IFV4bxfF3sym2-chrWObqiV8LuruTdfhe5A2D02ao6hXuPKPaeO00HaW6ApkTafPhhK53c0Ui4iah4LNxsy7WD2MzWWVrpwLl1pCvkA", &claims.application_id, &key.to_public_key(), 1_700_000_100)
                .unwrap(),
            claims
        );
}

#[test]
fn fresh_project_tokens_carry_the_documented_claims() {
    let credentials = Credentials::project("47203", "s3cr3t-value".into());
    let before = unix_now().unwrap();
    let first = credentials.auth_header(DEFAULT_TOKEN_LIFETIME).unwrap();
    let after = unix_now().unwrap();
    let second = credentials.auth_header(Duration::from_secs(300)).unwrap();
    assert_eq!(first.name(), "X-OPENTOK-AUTH");
    assert_eq!(
        decode_part(first.value(), 0),
        serde_json::json!({"alg": "HS256", "typ": "JWT"})
    );
    let claims = decode_part(first.value(), 1);
    assert_eq!(claims["iss"], "47203");
    assert_eq!(claims["ist"], "project");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        180
    );
    // Issued now: between the clock readings just before and just after (no time window to miss).
    let iat = claims["iat"].as_u64().unwrap();
    assert!(
        (before..=after).contains(&iat),
        "{before} <= {iat} <= {after}"
    );
    let jti = claims["jti"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(jti).unwrap().get_version_num(), 4);
    assert_ne!(
        decode_part(second.value(), 1)["jti"],
        claims["jti"],
        "every token has its own jti"
    );
    // Verified at the time it was issued (no second boundary to cross between two clock readings).
    let now = decode_part(second.value(), 1)["iat"].as_u64().unwrap();
    assert_eq!(
        verify_project_token(second.value(), "47203", b"s3cr3t-value", now)
            .unwrap()
            .exp
            - now,
        300
    );
}

#[test]
fn an_issued_at_time_that_would_overflow_is_an_error() {
    let lifetime = Duration::from_secs(180);
    assert_eq!(
        ProjectClaims::new("1", u64::MAX - 10, lifetime),
        Err(AuthError::TimeOutOfRange(u64::MAX - 10))
    );
    assert_eq!(
        ApplicationClaims::new("a", u64::MAX, lifetime),
        Err(AuthError::TimeOutOfRange(u64::MAX))
    );
    assert!(ProjectClaims::new("1", u64::MAX - 180, lifetime).is_ok());
}

#[test]
fn lifetimes_are_capped_at_five_minutes() {
    let credentials = Credentials::project("47203", "s".into());
    assert_eq!(
        credentials.auth_header(Duration::from_secs(301)),
        Err(AuthError::LifetimeTooLong(301))
    );
    assert_eq!(
        credentials.auth_header(Duration::from_millis(300_500)),
        Err(AuthError::LifetimeTooLong(300))
    );
    assert_eq!(
        credentials.auth_header(Duration::ZERO),
        Err(AuthError::LifetimeZero)
    );
    assert!(credentials.auth_header(MAX_TOKEN_LIFETIME).is_ok());
}

#[test]
fn verification_rejects_what_the_service_rejects() {
    let secret = b"secret";
    let good = ProjectClaims::new("123", 1000, Duration::from_secs(180)).unwrap();
    let token = sign_hs256(&good, secret).unwrap();
    assert!(verify_project_token(&token, "123", secret, 1000).is_ok());
    assert!(matches!(
        verify_project_token(&token, "124", secret, 1000),
        Err(AuthError::WrongIssuer { .. })
    ));
    assert_eq!(
        verify_project_token(&token, "123", secret, 1180),
        Err(AuthError::Expired {
            exp: 1180,
            now: 1180
        })
    );
    assert_eq!(
        verify_project_token(&token, "123", secret, 900),
        Err(AuthError::IssuedInFuture {
            iat: 1000,
            now: 900
        })
    );
    assert!(
        verify_project_token(&token, "123", secret, 950).is_ok(),
        "a minute of clock skew is tolerated"
    );

    let too_long = ProjectClaims {
        exp: 1301,
        ..good.clone()
    };
    let token = sign_hs256(&too_long, secret).unwrap();
    assert_eq!(
        verify_project_token(&token, "123", secret, 1000),
        Err(AuthError::LifetimeOutOfRange(301))
    );
    let backwards = ProjectClaims {
        exp: 999,
        ..good.clone()
    };
    let token = sign_hs256(&backwards, secret).unwrap();
    assert_eq!(
        verify_project_token(&token, "123", secret, 998),
        Err(AuthError::LifetimeOutOfRange(-1))
    );
    let account = ProjectClaims {
        ist: "account".into(),
        ..good.clone()
    };
    let token = sign_hs256(&account, secret).unwrap();
    assert_eq!(
        verify_project_token(&token, "123", secret, 1000),
        Err(AuthError::WrongIssuerType("account".into()))
    );

    // alg "none" and RS256 tokens are not HS256 tokens, whatever their signature.
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&good).unwrap());
    let none = format!("{}.{body}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#));
    assert!(matches!(
        verify_project_token(&none, "123", secret, 1000),
        Err(AuthError::WrongAlgorithm { .. })
    ));
    for malformed in ["", "a.b", "a.b.c.d", "!!.e30.", "e30.e30.e30"] {
        assert!(
            matches!(
                verify_project_token(malformed, "123", secret, 1000),
                Err(AuthError::Malformed(_))
            ),
            "{malformed}"
        );
    }
}

#[test]
fn application_credentials_sign_bearer_tokens() {
    let credentials = ApplicationCredentials::from_private_key_file_contents(
        "app-1",
        TEST_KEY_PEM.as_bytes(),
        None,
    )
    .unwrap();
    let public = credentials.public_key();
    let header = Credentials::Application(credentials.clone())
        .auth_header(DEFAULT_TOKEN_LIFETIME)
        .unwrap();
    assert_eq!(header.name(), "Authorization");
    let token = header.value().strip_prefix("Bearer ").unwrap();
    let claims = verify_application_token(token, "app-1", &public, unix_now().unwrap()).unwrap();
    assert_eq!(claims.exp - claims.iat, 180);
    let other = PrivateKey::new(&mut rand::rng(), 1024).unwrap();
    assert_eq!(
        verify_application_token(token, "app-1", &other.to_public_key(), unix_now().unwrap()),
        Err(AuthError::BadSignature)
    );
    assert!(!format!("{credentials:?}").contains("BEGIN"));
    assert!(matches!(
        ApplicationCredentials::from_private_key_file_contents("app-1", b"not a key", None),
        Err(AuthError::PrivateKey(_))
    ));
}

#[test]
fn paths_and_base_urls_follow_the_credentials() {
    let project = Credentials::project("47203", "s".into());
    assert_eq!(
        (project.path_id(), project.default_base_url()),
        ("47203", "https://api.opentok.com")
    );
    let key = archive_core::keys::load_private_key(TEST_KEY_PEM.as_bytes(), None).unwrap();
    let app = Credentials::application("0f3c", key);
    assert_eq!(
        (app.path_id(), app.default_base_url()),
        ("0f3c", "https://video.api.vonage.com")
    );
}
