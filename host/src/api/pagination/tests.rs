//! Tests of `pagination`.

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
