//! Access tokens: exchanged at the service account's `token_uri` for a signed assertion
//! (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`), cached in the host's
//! per-destination state until shortly before they expire.

use crate::service_account::ServiceAccount;
use outrider_sdk::http::{self, Request, Response};
use outrider_sdk::serde_json::{json, Value};
use outrider_sdk::{cap_body, log, state, DeliveryError};
use std::time::Duration;

/// The grant type of the JWT bearer flow, form-encoded.
const GRANT_TYPE: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";

/// Tokens are refreshed this long before they expire (at most half their lifetime).
const REFRESH_MARGIN_S: u64 = 300;

/// An access token and when it stops being used (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// The bearer token.
    pub token: String,
    /// When the cached copy is dropped.
    pub use_until_s: u64,
}

/// State key of the token for `account` and `scope`.
fn state_key(account: &ServiceAccount, scope: &str) -> String {
    format!("access-token/{}", account.fingerprint(scope))
}

/// The cached token, if there is one still usable at `now_s`.
pub fn cached(account: &ServiceAccount, scope: &str, now_s: u64) -> Option<AccessToken> {
    let bytes = state::get(&state_key(account, scope))?;
    let value: Value = outrider_sdk::serde_json::from_slice(&bytes).ok()?;
    let token = AccessToken {
        token: value.get("token")?.as_str()?.to_string(),
        use_until_s: value.get("use_until")?.as_u64()?,
    };
    (token.use_until_s > now_s).then_some(token)
}

/// Forgets the cached token (e.g. after the API rejected it).
pub fn forget(account: &ServiceAccount, scope: &str) {
    state::delete(&state_key(account, scope));
}

/// A fresh token from the token endpoint, cached for later calls.
pub fn fetch(
    account: &ServiceAccount,
    scope: &str,
    now_s: u64,
) -> Result<AccessToken, DeliveryError> {
    let assertion = account.assertion(scope, now_s).map_err(|why| {
        DeliveryError::misconfigured(format!("credentials.service_account_json {why}"))
    })?;
    let response = http::send(
        Request::post(&account.token_uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(format!("grant_type={GRANT_TYPE}&assertion={assertion}")),
    )?;
    let token = parse_token_response(&account.token_uri, &response, now_s)?;
    let ttl = token.use_until_s.saturating_sub(now_s);
    let record = json!({"token": token.token, "use_until": token.use_until_s}).to_string();
    if let Err(e) = state::set(
        &state_key(account, scope),
        record.as_bytes(),
        Some(Duration::from_secs(ttl)),
    ) {
        log::warn!("access token not cached: {e}");
    }
    Ok(token)
}

/// Reads the token endpoint's answer: `{"access_token", "expires_in", "token_type"}` on
/// success, `{"error", "error_description"}` otherwise (400 for a rejected assertion).
pub fn parse_token_response(
    token_uri: &str,
    response: &Response,
    now_s: u64,
) -> Result<AccessToken, DeliveryError> {
    let body: Option<Value> = response.json().ok();
    if !response.is_success() {
        let detail = body
            .as_ref()
            .map(|b| {
                let error = b.get("error").and_then(Value::as_str).unwrap_or("");
                match b.get("error_description").and_then(Value::as_str) {
                    Some(description) if !error.is_empty() => format!(": {error}: {description}"),
                    Some(description) => format!(": {description}"),
                    None if !error.is_empty() => format!(": {error}"),
                    None => String::new(),
                }
            })
            .unwrap_or_default();
        return Err(crate::publish::replace_message(
            DeliveryError::from_response(response),
            format!(
                "token exchange at {token_uri} failed with HTTP {}{detail}",
                response.status
            ),
        ));
    }
    let token = body
        .as_ref()
        .and_then(|b| b.get("access_token"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty() && !t.chars().any(|c| c.is_whitespace() || c.is_control()))
        .ok_or_else(|| {
            DeliveryError::misconfigured(format!(
                "token endpoint {token_uri} answered without an access_token"
            ))
            .status(response.status)
            .response_body(cap_body(&response.text()))
        })?;
    let expires_in = body
        .as_ref()
        .and_then(|b| b.get("expires_in"))
        .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
        .unwrap_or(3600);
    let margin = REFRESH_MARGIN_S.min(expires_in / 2);
    Ok(AccessToken {
        token: token.to_string(),
        use_until_s: now_s + expires_in - margin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
            truncated: false,
        }
    }

    #[test]
    fn token_responses() {
        let t = parse_token_response(
            "https://oauth2.googleapis.com/token",
            &response(
                200,
                r#"{"access_token":"ya29.abc","expires_in":3599,"token_type":"Bearer"}"#,
            ),
            1_000,
        )
        .unwrap();
        assert_eq!(t.token, "ya29.abc");
        assert_eq!(t.use_until_s, 1_000 + 3599 - 300);
        let short = parse_token_response(
            "u",
            &response(200, r#"{"access_token":"t","expires_in":60}"#),
            0,
        )
        .unwrap();
        assert_eq!(short.use_until_s, 30);

        let e = parse_token_response(
            "https://oauth2.googleapis.com/token",
            &response(
                400,
                r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#,
            ),
            0,
        )
        .unwrap_err();
        assert!(matches!(e, DeliveryError::Fail(_)), "{e}");
        assert_eq!(
            e.failure().message,
            "token exchange at https://oauth2.googleapis.com/token failed with HTTP 400: \
             invalid_grant: Invalid JWT Signature."
        );
        assert_eq!(e.failure().status_code, Some(400));
        assert!(matches!(
            parse_token_response("u", &response(503, "busy"), 0).unwrap_err(),
            DeliveryError::Retry { .. }
        ));
        assert!(matches!(
            parse_token_response("u", &response(200, "{}"), 0).unwrap_err(),
            DeliveryError::Misconfigured(_)
        ));
    }
}
