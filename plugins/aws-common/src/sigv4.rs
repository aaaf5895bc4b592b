//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`) for requests sent through the host.
//!
//! [`sign`] adds `x-amz-date`, `x-amz-security-token` (temporary credentials),
//! `x-amz-content-sha256` (S3) and `authorization` to a request. Every header already on
//! the request is signed, plus `host`, derived from the URL exactly as the host's HTTP
//! client sends it (port included when it is not the scheme's default).

use crate::clock::DateTime;
use crate::credentials::AwsCredentials;
use crate::url::{percent_decode, uri_encode, ParsedUrl};
use hmac::{Hmac, Mac};
use outrider_sdk::http::Request;
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The signing algorithm's name.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Where a signature is valid: the region and the service's signing name (`sqs`, `s3`,
/// `kinesis`, `events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a> {
    /// Region, e.g. `us-east-1`.
    pub region: &'a str,
    /// Signing name of the service.
    pub service: &'a str,
}

/// Service-specific signing rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignOptions {
    /// S3 rules: the path goes into the canonical request as sent (already URI-encoded
    /// once, not again) and the payload hash is also sent as `x-amz-content-sha256`.
    pub s3: bool,
}

impl SignOptions {
    /// The rules for S3.
    pub const S3: SignOptions = SignOptions { s3: true };
}

/// Signs `request` at `unix_seconds` and returns it with the signature headers added.
/// Fails only when the request URL is not an absolute http(s) URL.
pub fn sign(
    mut request: Request,
    credentials: &AwsCredentials,
    scope: Scope<'_>,
    unix_seconds: u64,
    options: SignOptions,
) -> Result<Request, String> {
    let url = ParsedUrl::parse(&request.url).map_err(|e| format!("request URL {e}"))?;
    let time = DateTime::from_unix_seconds(unix_seconds);
    let amz_date = time.amz_date();
    let payload_hash = hex::encode(Sha256::digest(&request.body));
    request
        .headers
        .retain(|(name, _)| !is_signature_header(name));
    request
        .headers
        .push(("x-amz-date".into(), amz_date.clone()));
    if options.s3 {
        request
            .headers
            .push(("x-amz-content-sha256".into(), payload_hash.clone()));
    }
    if let Some(token) = &credentials.session_token {
        request
            .headers
            .push(("x-amz-security-token".into(), token.clone()));
    }
    let canonical = canonical_request(&request, &url, &payload_hash, options);
    let credential_scope = format!(
        "{}/{}/{}/aws4_request",
        time.amz_day(),
        scope.region,
        scope.service
    );
    let to_sign = string_to_sign(&amz_date, &credential_scope, &canonical.text);
    let key = signing_key(
        &credentials.secret_access_key,
        &time.amz_day(),
        scope.region,
        scope.service,
    );
    let signature = hex::encode(hmac(&key, to_sign.as_bytes()));
    request.headers.push((
        "authorization".into(),
        format!(
            "{ALGORITHM} Credential={}/{credential_scope}, SignedHeaders={}, Signature={signature}",
            credentials.access_key_id, canonical.signed_headers
        ),
    ));
    Ok(request)
}

/// Headers [`sign`] sets itself; stale copies are dropped before signing.
fn is_signature_header(name: &str) -> bool {
    [
        "authorization",
        "x-amz-date",
        "x-amz-content-sha256",
        "x-amz-security-token",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// A canonical request and the list of headers it signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalRequest {
    /// The canonical request text.
    pub text: String,
    /// `host;x-amz-date`: the signed header names, sorted, `;`-separated.
    pub signed_headers: String,
}

/// Builds the canonical request of `request` (whose URL is `url`) with the hex SHA-256 of
/// its payload.
pub fn canonical_request(
    request: &Request,
    url: &ParsedUrl,
    payload_hash: &str,
    options: SignOptions,
) -> CanonicalRequest {
    let canonical_uri = if options.s3 {
        url.path.clone()
    } else {
        uri_encode(&url.path, false)
    };

    let mut query: Vec<(String, String)> = url
        .query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                uri_encode(&percent_decode(k), true),
                uri_encode(&percent_decode(v), true),
            )
        })
        .collect();
    query.sort();
    let canonical_query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");

    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), normalize_value(v)))
        .collect();
    if !headers.iter().any(|(k, _)| k == "host") {
        headers.push(("host".into(), url.host_header()));
    }
    // Stable sort: repeated headers keep their order and are joined with commas.
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    let mut merged: Vec<(String, String)> = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        match merged.last_mut() {
            Some((last, values)) if *last == name => {
                values.push(',');
                values.push_str(&value);
            }
            _ => merged.push((name, value)),
        }
    }
    let canonical_headers: String = merged.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = merged
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");

    CanonicalRequest {
        text: format!(
            "{}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
            request.method.to_ascii_uppercase()
        ),
        signed_headers,
    }
}

/// Trims a header value and collapses inner runs of spaces.
fn normalize_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The string to sign: algorithm, time, credential scope and the canonical request's hash.
pub fn string_to_sign(amz_date: &str, credential_scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{credential_scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

/// The signing key: `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), service),
/// "aws4_request")`.
pub fn signing_key(secret: &str, amz_day: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), amz_day.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Credentials and time of AWS's SigV4 test suite (`aws-sig-v4-test-suite`).
    fn suite_credentials() -> AwsCredentials {
        AwsCredentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    }
    const SUITE_TIME: u64 = 1_440_938_160; // 20150830T123600Z
    const SUITE_SCOPE: Scope<'static> = Scope {
        region: "us-east-1",
        service: "service",
    };

    fn header<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The suite's `get-vanilla` case, intermediate values included.
    #[test]
    fn suite_get_vanilla() {
        let request = Request::get("https://example.amazonaws.com/");
        let signed = sign(
            request,
            &suite_credentials(),
            SUITE_SCOPE,
            SUITE_TIME,
            SignOptions::default(),
        )
        .unwrap();
        let url = ParsedUrl::parse(&signed.url).unwrap();
        let empty_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let mut unsigned = signed.clone();
        unsigned.headers.retain(|(k, _)| k != "authorization");
        let canonical = canonical_request(&unsigned, &url, empty_hash, SignOptions::default());
        assert_eq!(
            canonical.text,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            string_to_sign(
                "20150830T123600Z",
                "20150830/us-east-1/service/aws4_request",
                &canonical.text
            ),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
             bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
        assert_eq!(header(&signed, "x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(
            header(&signed, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
            )
        );
        assert_eq!(header(&signed, "x-amz-content-sha256"), None);
    }

    fn suite_signature(request: Request) -> String {
        let signed = sign(
            request,
            &suite_credentials(),
            SUITE_SCOPE,
            SUITE_TIME,
            SignOptions::default(),
        )
        .unwrap();
        let auth = header(&signed, "authorization").unwrap().to_string();
        auth.rsplit("Signature=").next().unwrap().to_string()
    }

    /// More cases of the suite: query ordering and encoding, POST, a form body, and
    /// temporary credentials (`post-sts-header-before`).
    #[test]
    fn suite_more_cases() {
        assert_eq!(
            suite_signature(Request::get(
                "https://example.amazonaws.com/?Param2=value2&Param1=value1"
            )),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            "get-vanilla-query-order-key-case"
        );
        assert_eq!(
            suite_signature(Request::get(
                "https://example.amazonaws.com/?Param1=value2&Param1=Value1"
            )),
            "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1",
            "repeated keys sort by value (cross-checked with botocore's SigV4Auth)"
        );
        assert_eq!(
            suite_signature(Request::get("https://example.amazonaws.com/?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")),
            "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
            "get-vanilla-query-unreserved"
        );
        assert_eq!(
            suite_signature(Request::post("https://example.amazonaws.com/")),
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            "post-vanilla"
        );
        assert_eq!(
            suite_signature(
                Request::post("https://example.amazonaws.com/")
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body("Param1=value1")
            ),
            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
            "post-x-www-form-urlencoded"
        );
        assert_eq!(
            suite_signature(
                Request::get("https://example.amazonaws.com/")
                    .header("My-Header1", "    value1")
                    .header("My-Header2", "    \"a   b   c\"")
            ),
            "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
            "get-header-value-trim"
        );
    }

    #[test]
    fn session_token_is_signed() {
        let mut creds = suite_credentials();
        creds.session_token = Some("AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==".into());
        let signed = sign(
            Request::post("https://example.amazonaws.com/"),
            &creds,
            SUITE_SCOPE,
            SUITE_TIME,
            SignOptions::default(),
        )
        .unwrap();
        let auth = header(&signed, "authorization").unwrap();
        assert!(
            auth.contains("SignedHeaders=host;x-amz-date;x-amz-security-token,"),
            "{auth}"
        );
        assert_eq!(
            auth.rsplit("Signature=").next().unwrap(),
            "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
            "post-sts-header-before"
        );
        assert_eq!(
            header(&signed, "x-amz-security-token"),
            creds.session_token.as_deref()
        );
    }

    /// AWS's S3 documentation example "GET Object" (header-based auth), which signs
    /// `range` and `x-amz-content-sha256`.
    #[test]
    fn s3_documentation_get_object() {
        let creds = AwsCredentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        );
        let request = Request::get("https://examplebucket.s3.amazonaws.com/test.txt")
            .header("Range", "bytes=0-9");
        // 20130524T000000Z
        let signed = sign(
            request,
            &creds,
            Scope {
                region: "us-east-1",
                service: "s3",
            },
            1_369_353_600,
            SignOptions::S3,
        )
        .unwrap();
        assert_eq!(
            header(&signed, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
                 SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
                 Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
            )
        );
    }

    #[test]
    fn signing_key_matches_aws_docs() {
        // "Deriving the signing key" example in AWS's SigV4 documentation.
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20120215",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex::encode(key),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn host_header_keeps_explicit_ports_and_stale_signatures_are_replaced() {
        let request = Request::post("http://127.0.0.1:5000/")
            .header("Authorization", "old")
            .header("X-Amz-Date", "old");
        let signed = sign(
            request,
            &suite_credentials(),
            SUITE_SCOPE,
            SUITE_TIME,
            SignOptions::default(),
        )
        .unwrap();
        assert_eq!(
            signed
                .headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                .count(),
            1
        );
        let url = ParsedUrl::parse(&signed.url).unwrap();
        let canonical = canonical_request(&signed, &url, "x", SignOptions::default());
        assert!(canonical.text.contains("\nhost:127.0.0.1:5000\n"));
        assert!(sign(
            Request::post("not a url"),
            &suite_credentials(),
            SUITE_SCOPE,
            0,
            SignOptions::default()
        )
        .is_err());
    }

    #[test]
    fn s3_paths_are_not_encoded_twice() {
        let request = Request::put("https://b.s3.amazonaws.com/a%20b/c%2Bd.json");
        let url = ParsedUrl::parse(&request.url).unwrap();
        let s3 = canonical_request(&request, &url, "h", SignOptions::S3);
        assert!(
            s3.text.starts_with("PUT\n/a%20b/c%2Bd.json\n"),
            "{}",
            s3.text
        );
        let other = canonical_request(&request, &url, "h", SignOptions::default());
        assert!(
            other.text.starts_with("PUT\n/a%2520b/c%252Bd.json\n"),
            "{}",
            other.text
        );
    }
}
