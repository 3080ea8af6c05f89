//! Basic auth and the DC/OS service-account login.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::*;
use crate::sim::simulator::SimAuth;

const PRIVATE_KEY: &str = include_str!("../../../../tests/fixtures/service-account-key.pem");
const PUBLIC_KEY: &str = include_str!("../../../../tests/fixtures/service-account-pub.pem");
const UID: &str = "switchyard-principal";

fn service_account(token_lifetime: Duration) -> SimAuth {
    SimAuth::ServiceAccount {
        uid: UID.to_owned(),
        public_key_pem: PUBLIC_KEY.to_owned(),
        token_lifetime,
    }
}

/// A service-login JWT as a client builds it: RS256, `uid` and `exp`.
fn login_token(uid: &str, lifetime_secs: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({ "uid": uid, "exp": now + lifetime_secs });
    let key = EncodingKey::from_rsa_pem(PRIVATE_KEY.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap()
}

async fn login(sim: &Simulator, body: Value) -> reqwest::Response {
    client()
        .post(sim.login_endpoint())
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn apps_status(url: &str, authorization: Option<&str>) -> reqwest::Response {
    let mut request = client().get(format!("{url}/v2/apps"));
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn basic_auth_guards_everything_but_ping() {
    let basic = SimAuth::Basic {
        user: "marathon".into(),
        password: "s3cret".into(),
    };
    let sim = start(1, basic).await;
    let url = &sim.urls()[0];
    for authorization in [None, Some("Basic bWFyYXRob246d3Jvbmc="), Some("token=x")] {
        let response = apps_status(url, authorization).await;
        assert_eq!(response.status(), 401);
        assert_eq!(
            response.headers()["www-authenticate"],
            "Basic realm=\"Mesosphere\""
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["message"], "Invalid username or password.");
    }
    let ok = client()
        .get(format!("{url}/v2/apps"))
        .basic_auth("marathon", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(apps_status(url, None).await.status(), 401);
    let ping = client().get(format!("{url}/ping")).send().await.unwrap();
    assert_eq!(ping.status(), 200);
    assert_eq!(sim.stats().unauthorized, 4);
    sim.shutdown().await;
}

#[tokio::test]
async fn service_account_login_tokens_and_expiry() {
    let sim = start(1, service_account(Duration::from_secs(3600))).await;
    let url = &sim.urls()[0];
    assert!(sim.login_endpoint().ends_with("/acs/api/v1/auth/login"));
    assert!(!sim.login_endpoint().starts_with(url.as_str()));

    let refused = apps_status(url, None).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["www-authenticate"], "acsjwt");

    let response = login(
        &sim,
        serde_json::json!({"uid": UID, "token": login_token(UID, 60)}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    let token = response.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        cookie,
        format!("dcos-acs-auth-cookie={token}; Path=/; HttpOnly")
    );
    // JWT-shaped, its payload {"uid", "exp"} about an hour ahead.
    let payload = token.split('.').nth(1).unwrap();
    let payload: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(payload["uid"], UID);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!((now + 3590..=now + 3600).contains(&payload["exp"].as_u64().unwrap()));

    let authorization = format!("token={token}");
    assert_eq!(apps_status(url, Some(&authorization)).await.status(), 200);
    let bearer = format!("Bearer {token}");
    assert_eq!(apps_status(url, Some(&bearer)).await.status(), 401);
    let stream_auth = format!("Authorization: {authorization}\r\n");
    let mut raw = Raw::request(url, &events_request("", &stream_auth)).await;
    assert_eq!(
        String::from_utf8_lossy(&raw.until(b"\r\n\r\n").await),
        STREAM_HEAD
    );

    sim.expire_tokens();
    assert_eq!(apps_status(url, Some(&authorization)).await.status(), 401);
    let again = login(
        &sim,
        serde_json::json!({"uid": UID, "token": login_token(UID, 60)}),
    )
    .await;
    let token = again.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let authorization = format!("token={token}");
    assert_eq!(apps_status(url, Some(&authorization)).await.status(), 200);
    assert_eq!(sim.stats().logins, 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_service_logins_are_refused() {
    let sim = start(1, service_account(Duration::from_secs(3600))).await;
    let valid = login_token(UID, 60);
    let (head, _) = valid.rsplit_once('.').unwrap();
    let tampered = format!("{head}.{}", "A".repeat(342));
    let cases = [
        serde_json::json!({"uid": "someone-else", "token": valid}),
        serde_json::json!({"uid": UID, "token": login_token("someone-else", 60)}),
        serde_json::json!({"uid": UID, "token": login_token(UID, 3600)}),
        serde_json::json!({"uid": UID, "token": tampered}),
        serde_json::json!({"uid": UID, "password": "guess"}),
        serde_json::json!({"uid": UID, "token": "not a jwt"}),
    ];
    for body in &cases {
        let response = login(&sim, body.clone()).await;
        assert_eq!(response.status(), 401, "{body}");
        assert_eq!(response.headers()["www-authenticate"], "acsjwt");
    }
    assert_eq!(sim.stats().logins, 0);
    assert_eq!(sim.stats().unauthorized, cases.len() as u64);
    sim.shutdown().await;
}

#[tokio::test]
async fn tokens_expire_with_time() {
    let sim = start(1, service_account(Duration::ZERO)).await;
    let response = login(
        &sim,
        serde_json::json!({"uid": UID, "token": login_token(UID, 60)}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let token = response.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let authorization = format!("token={token}");
    assert_eq!(
        apps_status(&sim.urls()[0], Some(&authorization))
            .await
            .status(),
        401
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_bad_public_key_fails_start() {
    let auth = SimAuth::ServiceAccount {
        uid: UID.into(),
        public_key_pem: "not a key".into(),
        token_lifetime: Duration::from_secs(1),
    };
    let options = SimulatorOptions {
        auth,
        ..SimulatorOptions::default()
    };
    let err = Simulator::start(options).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}
