//! The AWS credential fields every AWS destination shares (Outpost's `key`, `secret`,
//! `session`) and their checks.

use outrider_sdk::{Credentials, Field, FieldError, Record};

/// Static AWS credentials: an access key pair and, for temporary credentials, a session
/// token.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    /// Access key id (`AKIA...`, `ASIA...`).
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token of temporary credentials (sent as `x-amz-security-token`).
    pub session_token: Option<String>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl AwsCredentials {
    /// Static credentials without a session token.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        AwsCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        }
    }

    /// Reads and checks `credentials.key`, `credentials.secret` and
    /// `credentials.session`, pushing one error per bad field.
    pub fn parse(credentials: &Credentials, errors: &mut Vec<FieldError>) -> Option<Self> {
        let key = credentials
            .str("key")
            .and_then(|v| check_token(credentials, "key", v, true))
            .record(errors);
        let secret = credentials
            .str("secret")
            .and_then(|v| check_token(credentials, "secret", v, false))
            .record(errors);
        let session = credentials
            .opt_str("session")
            .and_then(|v| match v {
                Some(v) => check_token(credentials, "session", v, false).map(Some),
                None => Ok(None),
            })
            .record(errors);
        Some(AwsCredentials {
            access_key_id: key?,
            secret_access_key: secret?,
            session_token: session?,
        })
    }

    /// [`parse`](Self::parse) for `deliver`: a bad field is a configuration problem.
    pub fn from_target(credentials: &Credentials) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        match Self::parse(credentials, &mut errors) {
            Some(c) if errors.is_empty() => Ok(c),
            _ => Err(errors),
        }
    }
}

/// Credentials travel in headers: printable ASCII without spaces; the access key id also
/// without the `/` and `,` that separate the parts of `Authorization`.
fn check_token(
    credentials: &Credentials,
    key: &str,
    value: &str,
    is_key_id: bool,
) -> Result<String, FieldError> {
    let value = value.trim();
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(credentials.error(key, "must be printable ASCII without spaces"));
    }
    if is_key_id && value.contains(['/', ',', '=']) {
        return Err(credentials.error(key, "must be an AWS access key id (no `/`, `,` or `=`)"));
    }
    Ok(value.to_string())
}

/// The credential fields of every AWS destination, as Outpost declares them: `key`,
/// `secret` and the optional `session` token.
pub fn credential_fields() -> [Field; 3] {
    [
        Field::text("key")
            .label("Access Key ID")
            .description("AWS Access Key ID")
            .required()
            .sensitive(),
        Field::text("secret")
            .label("Secret Access Key")
            .description("AWS Secret Access Key")
            .required()
            .sensitive(),
        Field::text("session")
            .label("Session Token")
            .description("AWS Session Token (optional, for temporary credentials)")
            .sensitive(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use outrider_sdk::serde_json::json;

    fn parse(value: outrider_sdk::serde_json::Value) -> (Option<AwsCredentials>, Vec<String>) {
        let creds = Credentials::from_value(value).unwrap();
        let mut errors = Vec::new();
        let parsed = AwsCredentials::parse(&creds, &mut errors);
        (parsed, errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn reads_all_three() {
        let (c, errors) =
            parse(json!({"key": " AKIDEXAMPLE ", "secret": "wJal/K7+x", "session": "tok=="}));
        assert!(errors.is_empty(), "{errors:?}");
        let c = c.unwrap();
        assert_eq!(c.access_key_id, "AKIDEXAMPLE");
        assert_eq!(c.secret_access_key, "wJal/K7+x");
        assert_eq!(c.session_token.as_deref(), Some("tok=="));
        assert!(!format!("{c:?}").contains("wJal"), "Debug hides the secret");
    }

    #[test]
    fn names_every_bad_field() {
        let (c, errors) = parse(json!({"key": "AK/ID", "session": "has space"}));
        assert!(c.is_none());
        assert_eq!(
            errors,
            [
                "credentials.key must be an AWS access key id (no `/`, `,` or `=`)",
                "credentials.secret is required",
                "credentials.session must be printable ASCII without spaces",
            ]
        );
        let (c, errors) = parse(json!({"key": "k", "secret": "s", "session": ""}));
        assert!(errors.is_empty());
        assert_eq!(c.unwrap().session_token, None);
    }

    #[test]
    fn fields_follow_outpost() {
        let keys: Vec<_> = credential_fields().iter().map(|f| f.key.clone()).collect();
        assert_eq!(keys, ["key", "secret", "session"]);
        assert!(credential_fields().iter().all(|f| f.sensitive));
    }
}
