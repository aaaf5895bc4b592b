//! A small builder for SQL with a variable set of filters, numbering `$n` placeholders
//! so the same text runs on SQLite and PostgreSQL.

use sqlx::any::AnyRow;
use sqlx::AnyPool;

/// A value bound into built SQL.
#[derive(Clone, Debug)]
pub(crate) enum Bind {
    Text(String),
    Int(i64),
    OptText(Option<String>),
    OptInt(Option<i64>),
}

/// SQL text plus its bound values.
#[derive(Default)]
pub(crate) struct SqlBuilder {
    sql: String,
    binds: Vec<Bind>,
    /// Write `?` instead of `$n` (SQLite only; see [`SqlBuilder::for_dialect`]).
    anonymous: bool,
}

impl SqlBuilder {
    /// Start with fixed text.
    pub fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            binds: Vec::new(),
            anonymous: false,
        }
    }

    /// Like [`SqlBuilder::new`], but on SQLite with anonymous `?` placeholders: sqlx looks
    /// each parameter up by name, and SQLite finds a name by scanning all of them, so a
    /// multi-row statement with `$n` names binds in quadratic time (a 1,600-value insert
    /// spent more time binding than writing).
    pub fn for_dialect(dialect: super::Dialect, sql: impl Into<String>) -> Self {
        Self {
            anonymous: dialect == super::Dialect::Sqlite,
            ..Self::new(sql)
        }
    }

    /// Append text verbatim.
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Append text where each `?` takes the next of `values`.
    pub fn push_binds(&mut self, sql: &str, values: impl IntoIterator<Item = Bind>) -> &mut Self {
        let mut values = values.into_iter();
        for part in sql.split_inclusive('?') {
            match part.strip_suffix('?') {
                Some(text) => {
                    self.sql.push_str(text);
                    self.binds
                        .push(values.next().expect("a value for every placeholder"));
                    if self.anonymous {
                        self.sql.push('?');
                    } else {
                        self.sql.push_str(&format!("${}", self.binds.len()));
                    }
                }
                None => self.sql.push_str(part),
            }
        }
        self
    }

    /// Append `sql` with one bound value.
    pub fn push_bind(&mut self, sql: &str, value: Bind) -> &mut Self {
        self.push_binds(sql, [value])
    }

    /// ` AND column IN ($a, $b, ...)`, or nothing for an empty list.
    pub fn push_in(&mut self, prefix: &str, values: &[String]) -> &mut Self {
        if values.is_empty() {
            return self;
        }
        let marks = vec!["?"; values.len()].join(", ");
        self.push_binds(
            &format!("{prefix} IN ({marks})"),
            values.iter().cloned().map(Bind::Text),
        )
    }

    /// Keyset condition on `(time_col, id_col)` strictly after `(time, id)` in the order.
    pub fn push_after(
        &mut self,
        time_col: &str,
        id_col: &str,
        after: &Option<(i64, String)>,
        desc: bool,
    ) -> &mut Self {
        if let Some((time, id)) = after {
            let cmp = if desc { "<" } else { ">" };
            self.push_binds(
                &format!(" AND ({time_col} {cmp} ? OR ({time_col} = ? AND {id_col} {cmp} ?))"),
                [Bind::Int(*time), Bind::Int(*time), Bind::Text(id.clone())],
            );
        }
        self
    }

    /// The SQL text.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The bound values, in placeholder order.
    pub fn binds(&self) -> &[Bind] {
        &self.binds
    }

    /// Whether nothing has been bound yet.
    pub fn is_empty(&self) -> bool {
        self.binds.is_empty()
    }

    /// The query with its values bound, to run on any executor (a pool or a transaction).
    pub fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
        let mut query = sqlx::query(&self.sql);
        for bind in &self.binds {
            query = match bind {
                Bind::Text(s) => query.bind(s.as_str()),
                Bind::Int(i) => query.bind(*i),
                Bind::OptText(s) => query.bind(s.as_deref()),
                Bind::OptInt(i) => query.bind(*i),
            };
        }
        query
    }

    /// Run the query and return all rows.
    pub async fn fetch_all(&self, pool: &AnyPool) -> Result<Vec<AnyRow>, sqlx::Error> {
        self.query().fetch_all(pool).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders_in_order() {
        let mut b = SqlBuilder::new("SELECT 1 WHERE 1 = 1");
        b.push_bind(" AND a = ?", Bind::Int(1));
        b.push_in(" AND t", &["x".into(), "y".into()]);
        b.push_after("time", "id", &Some((5, "e".into())), true);
        assert_eq!(
            b.sql,
            "SELECT 1 WHERE 1 = 1 AND a = $1 AND t IN ($2, $3) AND (time < $4 OR (time = $5 AND id < $6))"
        );
        assert_eq!(b.binds.len(), 6);
    }

    #[test]
    fn sqlite_statements_use_anonymous_placeholders() {
        let mut b = SqlBuilder::for_dialect(crate::store::Dialect::Sqlite, "VALUES ");
        b.push_binds("(?, ?)", [Bind::Int(1), Bind::Int(2)]);
        assert_eq!(b.sql, "VALUES (?, ?)");
        let mut b = SqlBuilder::for_dialect(crate::store::Dialect::Postgres, "VALUES ");
        b.push_binds("(?, ?)", [Bind::Int(1), Bind::Int(2)]);
        assert_eq!(b.sql, "VALUES ($1, $2)");
    }
}
