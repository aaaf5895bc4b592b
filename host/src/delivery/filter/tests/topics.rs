//! Topic lists: their wire form, matching and `*` patterns, and validation.

use serde_json::json;

use crate::delivery::filter::topics::wildcard_match;
use crate::delivery::filter::{topic_matches, Topics, TopicsError};

#[test]
fn topics_deserialise_from_star_or_list() {
    assert_eq!(
        serde_json::from_value::<Topics>(json!("*")).unwrap(),
        Topics::All
    );
    assert_eq!(
        serde_json::from_value::<Topics>(json!(["*"])).unwrap(),
        Topics::All
    );
    assert_eq!(
        serde_json::from_value::<Topics>(json!(["a", "b.*"])).unwrap(),
        Topics::List(vec!["a".into(), "b.*".into()])
    );
    for bad in [
        json!("user.created"),
        json!([]),
        json!(5),
        json!([1]),
        json!(null),
    ] {
        let err = serde_json::from_value::<Topics>(bad.clone()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "topics: expected \"*\" or a non-empty array of topics",
            "{bad}"
        );
    }
    let err = serde_json::from_value::<Topics>(json!(["a", ""])).unwrap_err();
    assert_eq!(err.to_string(), "topics[1]: must not be empty");
}

#[test]
fn topics_serialise_as_outpost_does() {
    assert_eq!(serde_json::to_value(Topics::All).unwrap(), json!(["*"]));
    assert_eq!(
        serde_json::to_value(Topics::List(vec!["a".into()])).unwrap(),
        json!(["a"])
    );
}

#[test]
fn topic_matching() {
    let list = |items: &[&str]| Topics::List(items.iter().map(|s| s.to_string()).collect());
    assert!(topic_matches(&Topics::All, "user.created"));
    assert!(topic_matches(&list(&["user.created"]), "user.created"));
    assert!(!topic_matches(&list(&["user.created"]), "user.updated"));
    assert!(!topic_matches(&list(&["user.created"]), "user.created.v2"));
    assert!(topic_matches(&list(&["user.*"]), "user.created"));
    assert!(!topic_matches(&list(&["user.*"]), "users.created"));
    assert!(topic_matches(&list(&["a", "*.deleted"]), "user.deleted"));
    assert!(topic_matches(&list(&["*"]), "anything"));
    // Events published without a topic, or with `*`, go everywhere (Outpost's rule).
    assert!(topic_matches(&list(&["user.created"]), ""));
    assert!(topic_matches(&list(&["user.created"]), "*"));
    assert!(list(&["x"]).matches("x"));
}

#[test]
fn wildcard_patterns() {
    assert!(wildcard_match("*", ""));
    assert!(wildcard_match("a*", "a"));
    assert!(wildcard_match("a*c", "abbbc"));
    assert!(wildcard_match("*b*", "abc"));
    assert!(wildcard_match("a**c", "ac"));
    assert!(wildcard_match("*.*.v2", "user.created.v2"));
    assert!(!wildcard_match("a*c", "abcd"));
    assert!(!wildcard_match("abc", "ab"));
    assert!(!wildcard_match("", "a"));
    assert!(wildcard_match("a*b*c", "aXbYbZc"));
    assert!(!wildcard_match("a*b*c", "aXbYbZ"));
}

#[test]
fn topics_validated_against_available() {
    let available: Vec<String> = vec!["user.created".into(), "user.deleted".into()];
    let list = |items: &[&str]| Topics::List(items.iter().map(|s| s.to_string()).collect());
    assert_eq!(Topics::All.validate_against(&available), Ok(()));
    assert_eq!(list(&["user.created"]).validate_against(&available), Ok(()));
    assert_eq!(list(&["user.*"]).validate_against(&available), Ok(()));
    assert_eq!(list(&["anything"]).validate_against(&[]), Ok(()));
    let err = list(&["user.created", "order.*"])
        .validate_against(&available)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "topics[1]: `order.*` is not an available topic"
    );
    assert_eq!(Topics::from_list(vec![]), Err(TopicsError::Shape));
    assert_eq!(Topics::from_list(vec!["*".into()]), Ok(Topics::All));
}
