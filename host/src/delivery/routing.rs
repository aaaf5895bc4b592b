//! Which of a tenant's destinations an event goes to: enabled, of a loaded type, subscribed
//! to its topic, and matching its filter.

use serde_json::{json, Value};

use super::filter::{topic_matches, Filter, Topics};
use crate::store::DestinationRow;

/// The event fields a filter can look at.
pub struct Routable<'a> {
    /// Event id.
    pub id: &'a str,
    /// Topic.
    pub topic: &'a str,
    /// Time, RFC 3339.
    pub time: &'a str,
    /// Metadata object.
    pub metadata: &'a Value,
    /// Payload.
    pub data: &'a Value,
}

/// Ids of the destinations among `destinations` that should receive the event. With
/// `only` set (publish to one destination), at most that one.
pub fn route(
    destinations: &[DestinationRow],
    event: &Routable<'_>,
    only: Option<&str>,
) -> Vec<String> {
    let doc = json!({
        "id": event.id,
        "topic": event.topic,
        "time": event.time,
        "metadata": event.metadata,
        "data": event.data,
    });
    destinations
        .iter()
        .filter(|d| only.is_none_or(|id| d.id == id))
        .filter(|d| d.disabled_at.is_none())
        .filter(|d| {
            let topics: Topics = serde_json::from_str(&d.topics).unwrap_or(Topics::All);
            topic_matches(&topics, event.topic)
        })
        .filter(
            |d| match d.filter.as_deref().map(serde_json::from_str::<Value>) {
                None | Some(Ok(Value::Null)) => true,
                Some(Ok(raw)) => Filter::parse(&raw)
                    .map(|f| f.matches(&doc))
                    .unwrap_or(false),
                Some(Err(_)) => false,
            },
        )
        .map(|d| d.id.clone())
        .collect()
}
