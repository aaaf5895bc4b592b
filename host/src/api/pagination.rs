//! Keyset (seek) pagination of list endpoints, in Outpost's shape: `limit`, `next`,
//! `prev`, `dir` and `order_by` query parameters in, a [`SeekPagination`] object out.
//!
//! A cursor is an opaque string holding one position in the list, the sort key
//! `(time, id)` of a row; it says nothing about the query it came from, so a cursor reused
//! with another `dir` or filter lists from that position with the new parameters (as in
//! Outpost). `next` asks for the rows after the position in the requested order, `prev`
//! for the rows before it.
//!
//! A list handler flattens [`PageQuery`] into its query type and checks it with
//! [`PageQuery::validate`] (errors convert into [`ApiError`]s naming the parameter). The
//! store then fetches `limit + 1` rows ordered by `(time, id)`, descending if
//! [`Page::desc`], strictly after [`Page::position`] in that order; [`Page::paginate`]
//! turns them into the page and its cursors:
//!
//! ```
//! use outrider::api::pagination::PageQuery;
//!
//! let query = PageQuery { limit: Some("2".into()), ..PageQuery::default() };
//! let page = query.validate().unwrap();
//! assert_eq!((page.desc(), page.position(), page.limit()), (true, None, 2));
//! // SELECT ... ORDER BY time DESC, id DESC LIMIT 3
//! let rows = vec![(30, "c"), (20, "b"), (10, "a")];
//! let (models, pagination) = page.paginate(rows, |(t, id)| (*t, id.to_string()));
//! assert_eq!(models, [(30, "c"), (20, "b")]);
//!
//! let query = PageQuery { next: pagination.next, ..query };
//! let page = query.validate().unwrap();
//! assert_eq!(page.position(), Some((20, "b".to_string())));
//! // SELECT ... WHERE (time, id) < (20, 'b') ORDER BY time DESC, id DESC LIMIT 3
//! ```

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, FieldProblem};

/// Default `limit` of the event and attempt lists.
pub const DEFAULT_LIMIT: u32 = 100;

/// Largest `limit` of the event and attempt lists.
pub const MAX_LIMIT: u32 = 1000;

/// Sort direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    /// Oldest first.
    Asc,
    /// Newest first (the default).
    #[default]
    Desc,
}

impl Dir {
    /// The other direction.
    pub fn reverse(self) -> Dir {
        match self {
            Dir::Asc => Dir::Desc,
            Dir::Desc => Dir::Asc,
        }
    }

    /// `asc` or `desc`, as in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Dir::Asc => "asc",
            Dir::Desc => "desc",
        }
    }
}

/// Sort key of a list; only `time` for now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrderBy {
    /// The row's time (event time, attempt time, tenant creation).
    #[default]
    Time,
}

impl OrderBy {
    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderBy::Time => "time",
        }
    }
}

/// Which query parameter carried a cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorParam {
    /// `next`.
    Next,
    /// `prev`.
    Prev,
}

impl CursorParam {
    /// The parameter's name.
    pub fn as_str(self) -> &'static str {
        match self {
            CursorParam::Next => "next",
            CursorParam::Prev => "prev",
        }
    }
}

impl fmt::Display for CursorParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A position in a list: the sort key of one row, `time_ms` being its time in
/// milliseconds since the Unix epoch (the store must sort on the same precision).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cursor {
    /// Time of the row, in milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// Id of the row, breaking ties between rows of the same time.
    pub id: String,
}

/// Version prefix of encoded cursors, so their format can change.
const CURSOR_VERSION: &str = "1";

impl Cursor {
    /// The position of a row.
    pub fn new(time_ms: i64, id: impl Into<String>) -> Cursor {
        Cursor {
            time_ms,
            id: id.into(),
        }
    }

    /// The opaque form sent to clients: URL-safe base64 (no padding) of `1:{time_ms}:{id}`.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{CURSOR_VERSION}:{}:{}", self.time_ms, self.id))
    }

    /// Reads a cursor sent back in `param`.
    pub fn decode(text: &str, param: CursorParam) -> Result<Cursor, PageQueryError> {
        let invalid = |reason: &'static str| PageQueryError::Cursor { param, reason };
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| invalid("not a cursor"))?;
        let plain = String::from_utf8(bytes).map_err(|_| invalid("not a cursor"))?;
        let (version, rest) = plain.split_once(':').ok_or(invalid("not a cursor"))?;
        if version != CURSOR_VERSION {
            return Err(invalid("unknown cursor version"));
        }
        let (time, id) = rest.split_once(':').ok_or(invalid("not a cursor"))?;
        let time_ms = time.parse().map_err(|_| invalid("invalid timestamp"))?;
        if id.is_empty() {
            return Err(invalid("missing id"));
        }
        Ok(Cursor {
            time_ms,
            id: id.to_owned(),
        })
    }
}

/// A list query's pagination parameters that cannot be used; each names its parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageQueryError {
    /// `limit` is not an integer.
    #[error("invalid limit: must be an integer")]
    LimitNotInteger,
    /// `limit` is outside `1..=max`.
    #[error("invalid limit: must be between 1 and {max}")]
    LimitOutOfRange {
        /// The largest limit of this list.
        max: u32,
    },
    /// `next` or `prev` is not a cursor this server issued.
    #[error("invalid cursor: {param}: {reason}")]
    Cursor {
        /// The parameter carrying it.
        param: CursorParam,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Both `next` and `prev` were given.
    #[error("invalid cursor: next and prev are mutually exclusive")]
    BothCursors,
    /// `dir` is neither `asc` nor `desc`.
    #[error("invalid dir: must be 'asc' or 'desc'")]
    Dir,
    /// `order_by` is not a sort key of the list.
    #[error("invalid order_by: must be one of: time")]
    OrderBy,
}

impl PageQueryError {
    /// The query parameter at fault.
    pub fn param(&self) -> &'static str {
        match self {
            PageQueryError::LimitNotInteger | PageQueryError::LimitOutOfRange { .. } => "limit",
            PageQueryError::Cursor { param, .. } => param.as_str(),
            PageQueryError::BothCursors => "next",
            PageQueryError::Dir => "dir",
            PageQueryError::OrderBy => "order_by",
        }
    }
}

impl From<PageQueryError> for ApiError {
    /// 400 for `limit` and cursors; 422 naming `query.dir` or `query.order_by` for those,
    /// as Outpost answers.
    fn from(err: PageQueryError) -> Self {
        match err {
            PageQueryError::Dir => ApiError::validation(vec![FieldProblem {
                field: "query.dir".into(),
                message: "must be 'asc' or 'desc'".into(),
            }]),
            PageQueryError::OrderBy => ApiError::validation(vec![FieldProblem {
                field: "query.order_by".into(),
                message: "must be one of: time".into(),
            }]),
            other => ApiError::bad_request(other.to_string()),
        }
    }
}

/// The pagination parameters of a list request as they arrive in the query string,
/// unchecked; embed it with `#[serde(flatten)]` in the list's own query type and check it
/// with [`validate`](Self::validate). Empty values count as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size: 1 to 1000, default 100 (tenants: 1 to 100, default 20).
    #[serde(default)]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// Cursor of the following page (`pagination.next` of the previous answer).
    #[serde(default)]
    pub next: Option<String>,
    /// Cursor of the preceding page (`pagination.prev` of the previous answer).
    #[serde(default)]
    pub prev: Option<String>,
    /// Sort direction, newest first by default.
    #[serde(default)]
    #[param(value_type = Option<Dir>)]
    pub dir: Option<String>,
    /// Sort key.
    #[serde(default)]
    #[param(value_type = Option<OrderBy>)]
    pub order_by: Option<String>,
}

/// Default and largest `limit` of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimits {
    /// `limit` when none is given.
    pub default: u32,
    /// Largest `limit` accepted.
    pub max: u32,
}

impl PageLimits {
    /// Event and attempt lists: 100 by default, at most 1000, as Outpost.
    pub const EVENTS: PageLimits = PageLimits {
        default: DEFAULT_LIMIT,
        max: MAX_LIMIT,
    };

    /// The tenant list: 20 by default, at most 100, as Outpost.
    pub const TENANTS: PageLimits = PageLimits {
        default: 20,
        max: 100,
    };
}

impl PageQuery {
    /// Checks the parameters of an event or attempt list ([`PageLimits::EVENTS`]).
    pub fn validate(&self) -> Result<Page, PageQueryError> {
        self.validate_with(PageLimits::EVENTS)
    }

    /// Checks the parameters against a list's own limits.
    pub fn validate_with(&self, limits: PageLimits) -> Result<Page, PageQueryError> {
        let present = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
        let limit = match present(&self.limit) {
            None => limits.default,
            Some(text) => {
                let limit: i64 = text.parse().map_err(|_| PageQueryError::LimitNotInteger)?;
                u32::try_from(limit)
                    .ok()
                    .filter(|l| (1..=limits.max).contains(l))
                    .ok_or(PageQueryError::LimitOutOfRange { max: limits.max })?
            }
        };
        let seek = match (present(&self.next), present(&self.prev)) {
            (None, None) => Seek::First,
            (Some(next), None) => Seek::After(Cursor::decode(&next, CursorParam::Next)?),
            (None, Some(prev)) => Seek::Before(Cursor::decode(&prev, CursorParam::Prev)?),
            (Some(_), Some(_)) => return Err(PageQueryError::BothCursors),
        };
        let dir = match present(&self.dir).as_deref() {
            None | Some("desc") => Dir::Desc,
            Some("asc") => Dir::Asc,
            Some(_) => return Err(PageQueryError::Dir),
        };
        let order_by = match present(&self.order_by).as_deref() {
            None | Some("time") => OrderBy::Time,
            Some(_) => return Err(PageQueryError::OrderBy),
        };
        Ok(Page {
            limit,
            seek,
            dir,
            order_by,
        })
    }
}

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seek {
    /// At the beginning of the list.
    First,
    /// Just after this position, in the requested order (`next`).
    After(Cursor),
    /// Just before this position, in the requested order (`prev`).
    Before(Cursor),
}

/// A checked page request: what to fetch and how to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    limit: u32,
    seek: Seek,
    dir: Dir,
    order_by: OrderBy,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            limit: DEFAULT_LIMIT,
            seek: Seek::First,
            dir: Dir::Desc,
            order_by: OrderBy::Time,
        }
    }
}

/// The pagination object of list responses, as Outpost's `SeekPagination`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SeekPagination {
    /// The sort key, e.g. `time`.
    pub order_by: String,
    /// Sort direction.
    pub dir: Dir,
    /// Page size used.
    pub limit: u32,
    /// Cursor of the following page; `null` on the last page.
    pub next: Option<String>,
    /// Cursor of the preceding page; `null` on the first page.
    pub prev: Option<String>,
}

impl Page {
    /// Rows per page; the store fetches one more.
    pub fn limit(&self) -> i64 {
        i64::from(self.limit)
    }

    /// Where the page starts.
    pub fn seek(&self) -> &Seek {
        &self.seek
    }

    /// Sort direction of the answer.
    pub fn dir(&self) -> Dir {
        self.dir
    }

    /// Sort key.
    pub fn order_by(&self) -> OrderBy {
        self.order_by
    }

    /// Whether the store must scan newest first (`ORDER BY time DESC, id DESC`). For a
    /// `prev` page this is the reverse of [`dir`](Self::dir).
    pub fn desc(&self) -> bool {
        let scan = match self.seek {
            Seek::Before(_) => self.dir.reverse(),
            Seek::First | Seek::After(_) => self.dir,
        };
        scan == Dir::Desc
    }

    /// The `(time_ms, id)` the store must start strictly after, in its scan order: with
    /// [`desc`](Self::desc), rows with `(time, id) < position`, else `> position`.
    pub fn position(&self) -> Option<(i64, String)> {
        match &self.seek {
            Seek::First => None,
            Seek::After(cursor) | Seek::Before(cursor) => Some((cursor.time_ms, cursor.id.clone())),
        }
    }

    /// Builds the page from the rows the store returned (up to limit + 1, in the scan
    /// order), `key` giving each row's `(time_ms, id)`. Returns the rows of the page in
    /// the requested order and the pagination object.
    ///
    /// `next` is set when more rows follow the page; `prev` when the page was reached
    /// through a cursor and is not empty (for `prev`, when more rows precede it).
    pub fn paginate<T>(
        &self,
        mut rows: Vec<T>,
        key: impl Fn(&T) -> (i64, String),
    ) -> (Vec<T>, SeekPagination) {
        let limit = self.limit as usize;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let cursor_of = |row: Option<&T>| {
            row.map(|row| {
                let (time_ms, id) = key(row);
                Cursor { time_ms, id }.encode()
            })
        };
        let (next, prev) = match self.seek {
            Seek::First => (if more { cursor_of(rows.last()) } else { None }, None),
            Seek::After(_) => (
                if more { cursor_of(rows.last()) } else { None },
                cursor_of(rows.first()),
            ),
            Seek::Before(_) => {
                rows.reverse();
                (
                    cursor_of(rows.last()),
                    if more { cursor_of(rows.first()) } else { None },
                )
            }
        };
        let pagination = SeekPagination {
            order_by: self.order_by.as_str().to_owned(),
            dir: self.dir,
            limit: self.limit,
            next,
            prev,
        };
        (rows, pagination)
    }
}

#[cfg(test)]
mod tests;
