//! Topic subscriptions: which topics a destination takes, and the `*` patterns in them.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The topics a destination subscribes to: all of them, or a list in which `*` matches
/// any run of characters (`user.*`).
///
/// Deserialises from `"*"`, `["*"]` or a non-empty list of non-empty strings; serialises
/// as Outpost answers it, `["*"]` for all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topics {
    /// Every topic (`"*"` or `["*"]`).
    All,
    /// These topics or topic patterns.
    List(Vec<String>),
}

/// A topic list that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicsError {
    /// Neither `"*"` nor a list of topics.
    #[error("topics: expected \"*\" or a non-empty array of topics")]
    Shape,
    /// An empty string in the list.
    #[error("topics[{0}]: must not be empty")]
    EmptyTopic(usize),
    /// A topic that is not among the configured ones, or a pattern matching none of them.
    #[error("topics[{index}]: `{topic}` is not an available topic")]
    Unavailable {
        /// Position in the list.
        index: usize,
        /// The topic or pattern.
        topic: String,
    },
}

impl Topics {
    /// Builds a topic list, turning `["*"]` into [`Topics::All`].
    pub fn from_list(topics: Vec<String>) -> Result<Topics, TopicsError> {
        if topics.is_empty() {
            return Err(TopicsError::Shape);
        }
        if let Some(index) = topics.iter().position(String::is_empty) {
            return Err(TopicsError::EmptyTopic(index));
        }
        if topics.len() == 1 && topics[0] == "*" {
            return Ok(Topics::All);
        }
        Ok(Topics::List(topics))
    }

    /// True if an event of `topic` goes to a destination with these topics
    /// (see [`topic_matches`]).
    pub fn matches(&self, topic: &str) -> bool {
        topic_matches(self, topic)
    }

    /// Checks the list against the operator's configured topics (Outpost's `TOPICS`):
    /// every plain topic must be one of them and every pattern must match at least one.
    /// With no configured topics anything goes.
    pub fn validate_against(&self, available: &[String]) -> Result<(), TopicsError> {
        let Topics::List(topics) = self else {
            return Ok(());
        };
        if available.is_empty() {
            return Ok(());
        }
        for (index, topic) in topics.iter().enumerate() {
            if !available
                .iter()
                .any(|candidate| wildcard_match(topic, candidate))
            {
                return Err(TopicsError::Unavailable {
                    index,
                    topic: topic.clone(),
                });
            }
        }
        Ok(())
    }
}

impl Serialize for Topics {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Topics::All => ["*"].serialize(serializer),
            Topics::List(topics) => topics.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Topics {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            One(String),
            Many(Vec<String>),
        }
        match Wire::deserialize(deserializer).map_err(|_| D::Error::custom(TopicsError::Shape))? {
            Wire::One(star) if star == "*" => Ok(Topics::All),
            Wire::One(_) => Err(D::Error::custom(TopicsError::Shape)),
            Wire::Many(list) => Topics::from_list(list).map_err(D::Error::custom),
        }
    }
}

/// True if an event published with `topic` goes to a destination subscribed to `topics`.
///
/// As in Outpost, an event published without a topic (`""`) or with `*` goes to every
/// destination. Otherwise [`Topics::All`] matches everything and a list matches when one
/// entry equals the topic or, as a pattern, matches it (`*` stands for any run of
/// characters, including none).
pub fn topic_matches(topics: &Topics, topic: &str) -> bool {
    if topic.is_empty() || topic == "*" {
        return true;
    }
    match topics {
        Topics::All => true,
        Topics::List(list) => list.iter().any(|pattern| wildcard_match(pattern, topic)),
    }
}

/// Glob match where `*` is the only special character.
pub(super) fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    let (mut p, mut t) = (0, 0);
    // Position after the last `*` seen, and the text position it was tried at.
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            backtrack = Some((p + 1, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((after_star, tried)) = backtrack {
            p = after_star;
            t = tried + 1;
            backtrack = Some((after_star, tried + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}
