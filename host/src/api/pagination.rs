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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct PageQuery {
    /// Page size.
    #[serde(default)]
    pub limit: Option<String>,
    /// Cursor of the following page.
    #[serde(default)]
    pub next: Option<String>,
    /// Cursor of the preceding page.
    #[serde(default)]
    pub prev: Option<String>,
    /// `asc` or `desc`.
    #[serde(default)]
    pub dir: Option<String>,
    /// Sort key.
    #[serde(default)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
mod tests {
    use super::*;
    use axum::extract::Query;
    use axum::http::{StatusCode, Uri};
    use axum::response::IntoResponse;
    use serde_json::json;

    fn query<Q: serde::de::DeserializeOwned>(qs: &str) -> Q {
        let uri: Uri = format!("/events?{qs}").parse().unwrap();
        Query::<Q>::try_from_uri(&uri).map(|Query(q)| q).unwrap()
    }

    fn page(qs: &str) -> Result<Page, PageQueryError> {
        query::<PageQuery>(qs).validate()
    }

    #[test]
    fn cursor_round_trip() {
        for cursor in [
            Cursor::new(1_700_000_000_123, "evt_1"),
            Cursor::new(-5, "a:b:c"),
            Cursor::new(0, "ünïcode/+="),
        ] {
            let text = cursor.encode();
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{text}"
            );
            assert_eq!(Cursor::decode(&text, CursorParam::Next), Ok(cursor));
        }
    }

    #[test]
    fn bad_cursors_name_their_parameter() {
        let err = |text: &str, param| Cursor::decode(text, param).unwrap_err().to_string();
        let encoded = |plain: &str| URL_SAFE_NO_PAD.encode(plain);
        let not_utf8 = URL_SAFE_NO_PAD.encode([0xff, 0xfe]);
        use CursorParam::{Next, Prev};
        assert_eq!(
            err("not a cursor!", Next),
            "invalid cursor: next: not a cursor"
        );
        assert_eq!(err("abc123", Prev), "invalid cursor: prev: not a cursor");
        assert_eq!(err(&not_utf8, Next), "invalid cursor: next: not a cursor");
        assert_eq!(
            err(&encoded("1"), Next),
            "invalid cursor: next: not a cursor"
        );
        assert_eq!(
            err(&encoded("1:123"), Next),
            "invalid cursor: next: not a cursor"
        );
        assert_eq!(
            err(&encoded("2:123:id"), Next),
            "invalid cursor: next: unknown cursor version"
        );
        assert_eq!(
            err(&encoded("1:yesterday:id"), Prev),
            "invalid cursor: prev: invalid timestamp"
        );
        assert_eq!(
            err(&encoded("1:123:"), Next),
            "invalid cursor: next: missing id"
        );
    }

    #[test]
    fn defaults() {
        let p = page("").unwrap();
        assert_eq!(p, Page::default());
        assert_eq!(
            (p.limit(), p.seek(), p.dir(), p.order_by()),
            (100, &Seek::First, Dir::Desc, OrderBy::Time)
        );
        assert_eq!(page("limit=&next=&prev=&dir=&order_by=").unwrap(), p);
        let tenants = PageQuery::default()
            .validate_with(PageLimits::TENANTS)
            .unwrap();
        assert_eq!(tenants.limit(), 20);
    }

    #[test]
    fn limits_as_outpost_checks_them() {
        for (ok, limit) in [("1", 1), ("1000", 1000), ("%2B7", 7)] {
            assert_eq!(page(&format!("limit={ok}")).unwrap().limit(), limit, "{ok}");
        }
        for word in [
            "ten",
            "1.5",
            "1e2",
            "10px",
            "%20",
            "+7",
            "99999999999999999999",
        ] {
            let err = page(&format!("limit={word}")).unwrap_err();
            assert_eq!(err, PageQueryError::LimitNotInteger, "{word}");
            assert_eq!(err.to_string(), "invalid limit: must be an integer");
        }
        for out in ["0", "-1", "1001", "1000000"] {
            let err = page(&format!("limit={out}")).unwrap_err();
            assert_eq!(
                err.to_string(),
                "invalid limit: must be between 1 and 1000",
                "{out}"
            );
            assert_eq!(err.param(), "limit");
        }
        let tenants = PageQuery {
            limit: Some("101".into()),
            ..Default::default()
        };
        let err = tenants.validate_with(PageLimits::TENANTS).unwrap_err();
        assert_eq!(err.to_string(), "invalid limit: must be between 1 and 100");
    }

    #[test]
    fn dir_order_by_and_cursor_parameters() {
        let cursor = Cursor::new(5, "x");
        let p = page(&format!("dir=asc&next={}", cursor.encode())).unwrap();
        assert_eq!(
            (p.dir(), p.seek()),
            (Dir::Asc, &Seek::After(cursor.clone()))
        );
        let p = page(&format!("order_by=time&prev={}", cursor.encode())).unwrap();
        assert_eq!(
            (p.dir(), p.seek()),
            (Dir::Desc, &Seek::Before(cursor.clone()))
        );
        assert_eq!(page("dir=up"), Err(PageQueryError::Dir));
        assert_eq!(page("dir=DESC"), Err(PageQueryError::Dir));
        assert_eq!(page("order_by=id"), Err(PageQueryError::OrderBy));
        let both = format!("next={0}&prev={0}", cursor.encode());
        assert_eq!(page(&both), Err(PageQueryError::BothCursors));
        let err = page("prev=zzz").unwrap_err();
        assert_eq!(err.param(), "prev");
        assert_eq!(err.to_string(), "invalid cursor: prev: not a cursor");
    }

    #[test]
    fn flattens_into_a_list_query() {
        #[derive(Deserialize)]
        struct EventsQuery {
            topic: Option<String>,
            #[serde(flatten)]
            page: PageQuery,
        }
        let events: EventsQuery = query("topic=user.created&limit=7&time%5Bgte%5D=2024-01-01");
        assert_eq!(events.topic.as_deref(), Some("user.created"));
        assert_eq!(events.page.limit.as_deref(), Some("7"));
        assert_eq!(events.page.validate().unwrap().limit(), 7);
    }

    #[test]
    fn errors_answer_in_the_api_shape() {
        let response = ApiError::from(PageQueryError::LimitNotInteger).into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let cursor = PageQueryError::Cursor {
            param: CursorParam::Prev,
            reason: "not a cursor",
        };
        let cursor = ApiError::from(cursor);
        assert_eq!(cursor.status(), StatusCode::BAD_REQUEST);
        assert_eq!(cursor.message(), "invalid cursor: prev: not a cursor");
        let both = ApiError::from(PageQueryError::BothCursors);
        assert_eq!(
            both.message(),
            "invalid cursor: next and prev are mutually exclusive"
        );
        let dir = ApiError::from(PageQueryError::Dir);
        assert_eq!(dir.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            dir.message(),
            "validation failed: query.dir: must be 'asc' or 'desc'"
        );
        let order_by = ApiError::from(PageQueryError::OrderBy);
        assert_eq!(
            order_by.message(),
            "validation failed: query.order_by: must be one of: time"
        );
        assert_eq!(PageQueryError::BothCursors.param(), "next");
        assert_eq!(PageQueryError::Dir.param(), "dir");
        assert_eq!(PageQueryError::OrderBy.param(), "order_by");
    }

    #[test]
    fn scan_order_and_position() {
        let c = Cursor::new(10, "m");
        let at = Some((10, "m".to_string()));
        let scan = |qs: String| {
            let p = page(&qs).unwrap();
            (p.desc(), p.position())
        };
        assert_eq!(scan("dir=desc".into()), (true, None));
        assert_eq!(scan("dir=asc".into()), (false, None));
        assert_eq!(
            scan(format!("dir=desc&next={}", c.encode())),
            (true, at.clone())
        );
        assert_eq!(
            scan(format!("dir=asc&next={}", c.encode())),
            (false, at.clone())
        );
        assert_eq!(
            scan(format!("dir=desc&prev={}", c.encode())),
            (false, at.clone())
        );
        assert_eq!(scan(format!("dir=asc&prev={}", c.encode())), (true, at));
        assert_eq!((Dir::Asc.as_str(), Dir::Desc.as_str()), ("asc", "desc"));
        assert_eq!(Dir::Asc.reverse(), Dir::Desc);
        assert_eq!(CursorParam::Next.to_string(), "next");
    }

    type Row = (i64, &'static str);

    /// An in-memory store serving a page request over `rows` as the SQL would.
    fn run(rows: &[Row], page: &Page) -> Vec<Row> {
        let mut sorted = rows.to_vec();
        sorted.sort();
        if page.desc() {
            sorted.reverse();
        }
        let after = page.position();
        sorted
            .into_iter()
            .filter(|(t, id)| match &after {
                None => true,
                Some((at, at_id)) if page.desc() => (*t, *id) < (*at, at_id.as_str()),
                Some((at, at_id)) => (*t, *id) > (*at, at_id.as_str()),
            })
            .take(page.limit() as usize + 1)
            .collect()
    }

    fn fetch(rows: &[Row], qs: &str) -> (Vec<Row>, SeekPagination) {
        let p = page(qs).unwrap();
        p.paginate(run(rows, &p), |(t, id)| (*t, id.to_string()))
    }

    /// Walks a list forward with `next` and back with `prev`, in both directions, with
    /// ties on time broken by id.
    #[test]
    fn walks_forward_and_back() {
        let rows: Vec<Row> = vec![
            (1, "a"),
            (2, "b"),
            (2, "c"),
            (3, "d"),
            (4, "e"),
            (5, "f"),
            (5, "g"),
        ];
        for dir in ["desc", "asc"] {
            let mut expected = rows.clone();
            if dir == "desc" {
                expected.reverse();
            }
            let chunks: Vec<Vec<Row>> = expected.chunks(3).map(<[Row]>::to_vec).collect();

            let mut pages = Vec::new();
            let mut current = fetch(&rows, &format!("dir={dir}&limit=3"));
            assert_eq!(current.1.prev, None);
            loop {
                pages.push(current.clone());
                let Some(next) = current.1.next.clone() else {
                    break;
                };
                current = fetch(&rows, &format!("dir={dir}&limit=3&next={next}"));
                assert!(current.1.prev.is_some());
            }
            let seen: Vec<Vec<Row>> = pages.iter().map(|(models, _)| models.clone()).collect();
            assert_eq!(seen, chunks, "{dir} forward");

            let mut back = vec![pages.last().unwrap().0.clone()];
            let mut current = pages.last().unwrap().clone();
            while let Some(prev) = current.1.prev.clone() {
                current = fetch(&rows, &format!("dir={dir}&limit=3&prev={prev}"));
                assert!(current.1.next.is_some());
                back.push(current.0.clone());
            }
            back.reverse();
            assert_eq!(back, chunks, "{dir} backward");
        }
    }

    #[test]
    fn edges() {
        let rows: Vec<Row> = vec![(1, "a"), (2, "b")];
        let (models, pagination) = fetch(&rows, "limit=2");
        assert_eq!(models, [(2, "b"), (1, "a")]);
        assert_eq!((pagination.next, pagination.prev), (None, None));

        let (models, pagination) = fetch(&[], "");
        assert!(models.is_empty());
        assert_eq!((pagination.next, pagination.prev), (None, None));

        let past_end = format!("next={}", Cursor::new(0, "z").encode());
        let (models, pagination) = fetch(&rows, &past_end);
        assert!(models.is_empty());
        assert_eq!((pagination.next, pagination.prev), (None, None));

        // A cursor from a newest-first list reused oldest-first lists on from its position.
        let reused = format!("dir=asc&next={}", Cursor::new(1, "a").encode());
        assert_eq!(fetch(&rows, &reused).0, [(2, "b")]);
    }

    #[test]
    fn pagination_serialises_as_outpost() {
        let (_, pagination) = fetch(&[(1, "a"), (2, "b")], "limit=1");
        let value = serde_json::to_value(&pagination).unwrap();
        assert_eq!(
            value,
            json!({
                "order_by": "time",
                "dir": "desc",
                "limit": 1,
                "next": Cursor::new(2, "b").encode(),
                "prev": null
            })
        );
        let back: SeekPagination = serde_json::from_value(value).unwrap();
        assert_eq!(back, pagination);
    }
}
