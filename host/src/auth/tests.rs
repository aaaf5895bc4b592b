//! Tests of `auth`.

use super::*;
use axum::body::Body;
use axum::extract::{FromRef, Path};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use hkdf::Hkdf;
use http_body_util::BodyExt as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sha2::Sha256;
use tower::ServiceExt as _;

use crate::crypto::HKDF_SALT;

const ADMIN: &str = "admin-key-0123456789";

fn config() -> AuthConfig {
    AuthConfig::from_settings(Some(ADMIN), None, false).unwrap()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn claims(sub: &str, exp_offset: i64) -> TenantClaims {
    TenantClaims {
        iss: JWT_ISSUER.to_owned(),
        sub: sub.to_owned(),
        iat: now(),
        exp: now() + exp_offset,
    }
}

#[test]
fn admin_key_compare() {
    let key = AdminKey::new(ADMIN).unwrap();
    assert!(key.verify(ADMIN));
    assert!(!key.verify("admin-key-012345678"));
    assert!(!key.verify("admin-key-01234567890"));
    assert!(!key.verify(""));
    assert!(!key.verify(&ADMIN.to_uppercase()));
    assert!(AdminKey::new("  ").is_err());
    assert_eq!(format!("{key:?}"), "AdminKey(<redacted>)");
}

#[test]
fn token_roundtrip() {
    let cfg = config();
    let token = cfg.issue_tenant_token("t_1").unwrap();
    let claims = cfg.verify_tenant_token(&token).unwrap();
    assert_eq!(claims.tenant_id(), "t_1");
    assert_eq!(claims.iss, JWT_ISSUER);
    assert_eq!(claims.exp - claims.iat, 24 * 3600);
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::HS256);
}

#[test]
fn same_secret_same_keys() {
    // Tokens survive a restart: the key derives from configuration only.
    let token = config().issue_tenant_token("t_1").unwrap();
    assert!(config().verify_tenant_token(&token).is_ok());
    // A dedicated JWT secret takes precedence over the admin key.
    let with_secret =
        AuthConfig::from_settings(Some(ADMIN), Some("jwt-secret-0123456789"), false).unwrap();
    assert_eq!(
        with_secret.verify_tenant_token(&token),
        Err(AuthError::InvalidToken)
    );
    let token = with_secret.issue_tenant_token("t_1").unwrap();
    let other_admin = AuthConfig::from_settings(
        Some("another-admin-key"),
        Some("jwt-secret-0123456789"),
        false,
    )
    .unwrap();
    assert!(other_admin.verify_tenant_token(&token).is_ok());
}

#[test]
fn expired_token() {
    let keys = &config().jwt;
    let expired = keys
        .sign(&claims("t_1", -(JWT_LEEWAY_SECS as i64) - 5))
        .unwrap();
    assert_eq!(
        keys.verify_tenant_token(&expired),
        Err(AuthError::ExpiredToken)
    );
    // Within the leeway it still passes.
    let just_expired = keys.sign(&claims("t_1", -5)).unwrap();
    assert!(keys.verify_tenant_token(&just_expired).is_ok());
}

#[test]
fn wrong_signature() {
    let token = config().issue_tenant_token("t_1").unwrap();
    let other = AuthConfig::from_settings(Some("some-other-admin-key"), None, false).unwrap();
    assert_eq!(
        other.verify_tenant_token(&token),
        Err(AuthError::InvalidToken)
    );
    // Tampering with the payload breaks the signature.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let forged = serde_json::to_vec(&claims("t_2", 3600)).unwrap();
    parts[1] = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, forged);
    assert_eq!(
        config().verify_tenant_token(&parts.join(".")),
        Err(AuthError::InvalidToken)
    );
    assert_eq!(
        config().verify_tenant_token("not.a.jwt"),
        Err(AuthError::InvalidToken)
    );
}

fn b64(bytes: &[u8]) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

#[test]
fn alg_none_and_other_algs_rejected() {
    let cfg = config();
    let payload = b64(&serde_json::to_vec(&claims("t_1", 3600)).unwrap());
    // alg "none", with and without a trailing signature.
    let none = b64(br#"{"alg":"none","typ":"JWT"}"#);
    for token in [format!("{none}.{payload}."), format!("{none}.{payload}")] {
        assert_eq!(
            cfg.verify_tenant_token(&token),
            Err(AuthError::InvalidToken)
        );
    }
    // HS512 signed with the very same key is still refused: the algorithm is pinned.
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(HKDF_SALT), ADMIN.as_bytes())
        .expand(HKDF_INFO_JWT, &mut key)
        .unwrap();
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &claims("t_1", 3600),
        &EncodingKey::from_secret(&key),
    )
    .unwrap();
    assert_eq!(
        cfg.verify_tenant_token(&hs512),
        Err(AuthError::InvalidToken)
    );
    // Sanity check: the same key with HS256 is accepted.
    let hs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims("t_1", 3600),
        &EncodingKey::from_secret(&key),
    )
    .unwrap();
    assert!(cfg.verify_tenant_token(&hs256).is_ok());
}

#[test]
fn claims_are_checked() {
    let keys = &config().jwt;
    let mut wrong_issuer = claims("t_1", 3600);
    wrong_issuer.iss = "outpost".to_owned();
    assert_eq!(
        keys.verify_tenant_token(&keys.sign(&wrong_issuer).unwrap()),
        Err(AuthError::InvalidToken)
    );
    assert_eq!(
        keys.verify_tenant_token(&keys.sign(&claims("", 3600)).unwrap()),
        Err(AuthError::InvalidToken)
    );
}

#[test]
fn tenant_scoping() {
    let tenant = Principal::Tenant("t_1".to_owned());
    assert_eq!(tenant.require_tenant_access("t_1"), Ok(()));
    let err = tenant.require_tenant_access("t_2").unwrap_err();
    assert_eq!(err.status(), StatusCode::FORBIDDEN);
    assert_eq!(err.to_string(), "token is not valid for tenant t_2");
    assert_eq!(tenant.require_admin(), Err(AuthError::AdminRequired));
    assert_eq!(tenant.tenant_id(), Some("t_1"));

    for admin in [Principal::Admin, Principal::ApiToken { id: "tok_1".into() }] {
        assert_eq!(admin.require_admin(), Ok(()));
        assert_eq!(admin.require_tenant_access("anyone"), Ok(()));
        assert_eq!(admin.tenant_id(), None);
    }
}

#[test]
fn setup_rules() {
    assert_eq!(
        AuthConfig::from_settings(None, None, false).unwrap_err(),
        AuthSetupError::MissingAdminKey
    );
    assert_eq!(
        AuthConfig::from_settings(Some(""), None, true).unwrap_err(),
        AuthSetupError::EmptyAdminKey
    );
    assert_eq!(
        AuthConfig::from_settings(Some(ADMIN), Some("short"), false).unwrap_err(),
        AuthSetupError::JwtSecretTooShort { len: 5 }
    );
    let dev = AuthConfig::from_settings(None, None, true).unwrap();
    assert!(dev.admin_key.is_none());
    let token = dev.issue_tenant_token("t_1").unwrap();
    assert!(dev.verify_tenant_token(&token).is_ok());
    let dbg = format!("{:?}", config());
    assert!(!dbg.contains(ADMIN), "{dbg}");
}

// --- the extractor, through a tiny router ---

struct FixedTokens;

impl ApiTokenLookup for FixedTokens {
    fn lookup<'a>(&'a self, token: &'a str) -> LookupFuture<'a> {
        Box::pin(async move { (token == "tok_secret_value").then(|| "tok_1".to_owned()) })
    }
}

async fn whoami(principal: Principal) -> String {
    format!("{principal:?}")
}

async fn tenant_thing(
    principal: Principal,
    Path(tenant_id): Path<String>,
) -> Result<String, AuthError> {
    principal.require_tenant_access(&tenant_id)?;
    Ok(format!("ok {tenant_id}"))
}

fn app(config: AuthConfig) -> Router {
    Router::new()
        .route("/whoami", get(whoami))
        .route("/tenants/{tenant_id}/thing", get(tenant_thing))
        .with_state(Arc::new(config))
}

async fn call(app: Router, uri: &str, auth: Option<&str>) -> (StatusCode, String) {
    let mut req = Request::builder().uri(uri);
    if let Some(auth) = auth {
        req = req.header(AUTHORIZATION, auth);
    }
    let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn error_json(status: u16, message: &str) -> String {
    serde_json::json!({"status": status, "message": message}).to_string()
}

#[tokio::test]
async fn extractor_resolves_principals() {
    let cfg = config().with_api_tokens(Arc::new(FixedTokens));
    let tenant_token = cfg.issue_tenant_token("t_1").unwrap();
    let app = app(cfg);

    let bearer = |t: &str| format!("Bearer {t}");
    assert_eq!(
        call(app.clone(), "/whoami", Some(&bearer(ADMIN))).await,
        (StatusCode::OK, "Admin".into())
    );
    assert_eq!(
        call(app.clone(), "/whoami", Some(&format!("bearer {ADMIN}"))).await,
        (StatusCode::OK, "Admin".into())
    );
    assert_eq!(
        call(app.clone(), "/whoami", Some(&bearer(&tenant_token))).await,
        (StatusCode::OK, "Tenant(\"t_1\")".into())
    );
    assert_eq!(
        call(app.clone(), "/whoami", Some(&bearer("tok_secret_value"))).await,
        (StatusCode::OK, "ApiToken { id: \"tok_1\" }".into())
    );
}

#[tokio::test]
async fn extractor_rejects_with_json_401() {
    let app = app(config().with_api_tokens(Arc::new(FixedTokens)));
    let cases = [
        (None, "missing authorization header"),
        (
            Some(ADMIN.to_owned()),
            "invalid authorization header: expected \"Bearer <token>\"",
        ),
        (
            Some(format!("Basic {ADMIN}")),
            "invalid authorization header: expected \"Bearer <token>\"",
        ),
        (
            Some("Bearer ".to_owned()),
            "invalid authorization header: expected \"Bearer <token>\"",
        ),
        (Some("Bearer wrong-key".to_owned()), "invalid token"),
    ];
    for (auth, message) in cases {
        let req = Request::builder().uri("/whoami");
        let req = match &auth {
            Some(a) => req.header(AUTHORIZATION, a),
            None => req,
        };
        let res = app
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(res.headers()[WWW_AUTHENTICATE], "Bearer");
        assert_eq!(
            res.headers()[axum::http::header::CONTENT_TYPE],
            "application/json"
        );
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            String::from_utf8(body.to_vec()).unwrap(),
            error_json(401, message),
            "{auth:?}"
        );
    }

    // An expired tenant token says so.
    let cfg = config();
    let expired = cfg.jwt.sign(&claims("t_1", -3600)).unwrap();
    assert_eq!(
        call(app.clone(), "/whoami", Some(&format!("Bearer {expired}"))).await,
        (StatusCode::UNAUTHORIZED, error_json(401, "token expired"))
    );
}

#[tokio::test]
async fn extractor_scopes_tenant_tokens() {
    let cfg = config();
    let token = format!("Bearer {}", cfg.issue_tenant_token("t_1").unwrap());
    let app = app(cfg);
    assert_eq!(
        call(app.clone(), "/tenants/t_1/thing", Some(&token)).await,
        (StatusCode::OK, "ok t_1".into())
    );
    assert_eq!(
        call(app.clone(), "/tenants/t_2/thing", Some(&token)).await,
        (
            StatusCode::FORBIDDEN,
            error_json(403, "token is not valid for tenant t_2")
        )
    );
    assert_eq!(
        call(app, "/tenants/t_2/thing", Some(&format!("Bearer {ADMIN}"))).await,
        (StatusCode::OK, "ok t_2".into())
    );
}

#[tokio::test]
async fn insecure_dev_without_admin_key_is_admin() {
    let app = app(AuthConfig::from_settings(None, None, true).unwrap());
    assert_eq!(
        call(app.clone(), "/whoami", None).await,
        (StatusCode::OK, "Admin".into())
    );
    // With an admin key, --insecure-dev does not switch authentication off.
    let app = self::app(AuthConfig::from_settings(Some(ADMIN), None, true).unwrap());
    assert_eq!(call(app, "/whoami", None).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn extractor_works_with_a_larger_state() {
    #[derive(Clone)]
    struct AppState {
        auth: Arc<AuthConfig>,
    }
    impl FromRef<AppState> for Arc<AuthConfig> {
        fn from_ref(state: &AppState) -> Self {
            state.auth.clone()
        }
    }
    let app = Router::new()
        .route("/whoami", get(whoami))
        .with_state(AppState {
            auth: Arc::new(config()),
        });
    assert_eq!(
        call(app, "/whoami", Some(&format!("Bearer {ADMIN}"))).await,
        (StatusCode::OK, "Admin".into())
    );
}

#[test]
fn api_tokens_and_tenant_tokens_do_not_cross() {
    let cfg = config();
    let api_token = cfg.api_token_keys.issue("tok_1").unwrap();
    assert_eq!(cfg.api_token_keys.verify(&api_token), Some("tok_1".into()));
    assert_eq!(
        cfg.verify_tenant_token(&api_token),
        Err(AuthError::InvalidToken)
    );
    let tenant_token = cfg.issue_tenant_token("t_1").unwrap();
    assert_eq!(cfg.api_token_keys.verify(&tenant_token), None);
    let other = AuthConfig::from_settings(Some("another-admin-key"), None, false).unwrap();
    assert_eq!(other.api_token_keys.verify(&api_token), None);
    assert_eq!(token_digest("x").len(), 64);
}
