//! Which of a tenant's destinations an event goes to: enabled, subscribed to its topic,
//! and matching its filter. Topics and filters are parsed once per publish batch, not once
//! per event.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::filter::{topic_matches, Filter, Topics};
use crate::api::wire::rfc3339;
use crate::store::DestinationRow;

/// The event fields a filter can look at, as published: the document a filter reads is
/// built from them only when some destination has a filter.
pub struct Routable<'a> {
    /// Event id.
    pub id: &'a str,
    /// Topic.
    pub topic: &'a str,
    /// Time, ms since the epoch.
    pub time: i64,
    /// String metadata.
    pub metadata: Option<&'a BTreeMap<String, String>>,
    /// Payload: a JSON object's text.
    pub data: &'a RawValue,
}

impl Routable<'_> {
    /// `{"id", "topic", "time", "metadata", "data"}`, what filters match against.
    fn document(&self) -> Value {
        json!({
            "id": self.id,
            "topic": self.topic,
            "time": rfc3339(self.time),
            "metadata": self.metadata,
            "data": serde_json::from_str::<Value>(self.data.get()).unwrap_or(Value::Null),
        })
    }
}

/// How a stored filter column reads.
enum StoredFilter {
    None,
    Valid(Filter),
    /// Unparseable: matches nothing rather than everything.
    Invalid,
}

/// A destination with its topics and filter parsed.
pub struct Route {
    /// The destination.
    pub destination: Arc<DestinationRow>,
    topics: Topics,
    filter: StoredFilter,
}

impl Route {
    /// Parse `destination`'s topics and filter.
    pub fn new(destination: Arc<DestinationRow>) -> Self {
        let topics = serde_json::from_str(&destination.topics).unwrap_or(Topics::All);
        let filter = match destination
            .filter
            .as_deref()
            .map(serde_json::from_str::<Value>)
        {
            None | Some(Ok(Value::Null)) => StoredFilter::None,
            Some(Ok(raw)) => Filter::parse(&raw)
                .map(StoredFilter::Valid)
                .unwrap_or(StoredFilter::Invalid),
            Some(Err(_)) => StoredFilter::Invalid,
        };
        Self {
            destination,
            topics,
            filter,
        }
    }
}

/// The destinations among `routes` (one tenant's) that should receive the event. With
/// `only` set (publish to one destination), at most that one.
pub fn route<'r>(routes: &'r [Route], event: &Routable<'_>, only: Option<&str>) -> Vec<&'r Route> {
    // Built only when some filter needs it: it parses the payload.
    let mut doc: Option<Value> = None;
    routes
        .iter()
        .filter(|r| only.is_none_or(|id| r.destination.id == id))
        .filter(|r| r.destination.disabled_at.is_none())
        .filter(|r| topic_matches(&r.topics, event.topic))
        .filter(|r| match &r.filter {
            StoredFilter::None => true,
            StoredFilter::Invalid => false,
            StoredFilter::Valid(filter) => {
                filter.matches(doc.get_or_insert_with(|| event.document()))
            }
        })
        .collect()
}
