//! The small SQL layer under the ledger: one [`Conn`] over two back ends, SQLite (rusqlite) and PostgreSQL
//! (rust-postgres on a thread of its own, see [`postgres`]).
//!
//! Why a layer of our own rather than two copies of every module, or an ORM: the ledger's SQL is plain and
//! nearly all of it is the same text on both databases (`ON CONFLICT ... DO UPDATE`, `RETURNING`, `CASE`,
//! sub-selects). So each module writes its SQL once, with SQLite's `?N` placeholders (turned into `$N` for
//! PostgreSQL), binds [`Value`]s, and reads owned [`Row`]s through typed accessors; the few places where the
//! dialects really differ (the schema, a JSON aggregate, SQLite's pragmas, PostgreSQL's advisory locks) ask
//! [`Conn::dialect`]. Transactions are explicit statements (`BEGIN IMMEDIATE` on SQLite, `BEGIN` on
//! PostgreSQL) run by [`Conn::write`], which also retries what the database says is worth retrying (SQLite
//! busy, a PostgreSQL serialization failure or deadlock).

pub(crate) mod postgres;
mod tls;

use std::time::Duration;

use crate::DbError;

/// Which SQL dialect a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A value bound to a statement or read from a row. Booleans are stored as integers 0/1 on both back ends.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Self::Int(i64::from(v))
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Self::Real(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Self::Text(v.clone())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}
impl From<&Option<String>> for Value {
    fn from(v: &Option<String>) -> Self {
        v.as_deref().into()
    }
}

/// Binds values: `params![a, b, c]` is a `[Value; 3]`.
macro_rules! params {
    () => { [] as [$crate::db::Value; 0] };
    ($($v:expr),+ $(,)?) => { [$($crate::db::Value::from($v)),+] };
}
pub(crate) use params;

/// A failure of the SQL layer, before it is told what was being done ([`DbError::sql`]).
#[derive(Debug)]
pub(crate) enum SqlError {
    /// SQLite's error.
    Sqlite(rusqlite::Error),
    /// PostgreSQL's error (a statement, or the connection).
    Postgres(::postgres::Error),
    /// The PostgreSQL server cannot be reached, or the connection was lost.
    Unavailable(String),
    /// The PostgreSQL server refused the login (password, database, role, rights).
    Refused(String),
    /// A value read back is not of the type asked for.
    Conversion(String),
}

impl From<rusqlite::Error> for SqlError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite(e)
    }
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(e) => e.fmt(f),
            Self::Postgres(e) => write!(f, "{}", postgres::describe(e)),
            Self::Unavailable(reason) | Self::Refused(reason) | Self::Conversion(reason) => {
                f.write_str(reason)
            }
        }
    }
}

impl SqlError {
    /// Whether the transaction is worth running again as it is: SQLite busy/locked, or PostgreSQL's
    /// serialization failure or deadlock.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            Self::Sqlite(e) => crate::error::is_busy(e),
            Self::Postgres(e) => postgres::is_retryable(e),
            _ => false,
        }
    }

    /// Whether the connection failed (rather than a statement): the database is away or the link broke.
    pub(crate) fn is_connection(&self) -> bool {
        match self {
            Self::Unavailable(_) => true,
            Self::Postgres(e) => postgres::is_connection(e),
            _ => false,
        }
    }
}

/// An error a transaction's body may fail with: an [`SqlError`], or something of the caller's that may also
/// say whether running the transaction again could help.
pub(crate) trait TxError: From<SqlError> {
    fn retryable(&self) -> bool;
    /// The connection failed (see [`SqlError::is_connection`]).
    fn connection(&self) -> bool;
}

impl TxError for SqlError {
    fn retryable(&self) -> bool {
        self.is_retryable()
    }

    fn connection(&self) -> bool {
        self.is_connection()
    }
}

/// One row read back, owned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row(pub(crate) Vec<Value>);

/// A type a column can be read as.
pub(crate) trait FromValue: Sized {
    fn from_value(v: &Value) -> Option<Self>;
    const NAME: &'static str;
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }
    const NAME: &'static str = "an integer";
}
impl FromValue for u32 {
    fn from_value(v: &Value) -> Option<Self> {
        i64::from_value(v).and_then(|n| u32::try_from(n).ok())
    }
    const NAME: &'static str = "a 32-bit unsigned integer";
}
impl FromValue for f64 {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Real(x) => Some(*x),
            #[allow(clippy::cast_precision_loss)]
            Value::Int(n) => Some(*n as f64),
            _ => None,
        }
    }
    const NAME: &'static str = "a number";
}
impl FromValue for bool {
    fn from_value(v: &Value) -> Option<Self> {
        i64::from_value(v).map(|n| n != 0)
    }
    const NAME: &'static str = "a boolean";
}
impl FromValue for String {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
    const NAME: &'static str = "text";
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
    const NAME: &'static str = T::NAME;
}

impl Row {
    /// Column `i` as a `T`.
    pub(crate) fn get<T: FromValue>(&self, i: usize) -> Result<T, SqlError> {
        let v = self
            .0
            .get(i)
            .ok_or_else(|| SqlError::Conversion(format!("no column {i} in the row")))?;
        T::from_value(v)
            .ok_or_else(|| SqlError::Conversion(format!("column {i} is {v:?}, not {}", T::NAME)))
    }
}

/// One connection to the ledger's database.
#[derive(Debug)]
pub(crate) enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(postgres::PgConn),
}

impl Conn {
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Self::Sqlite(_) => Dialect::Sqlite,
            Self::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The SQLite connection (for what only SQLite has: pragmas, checkpoints).
    pub(crate) fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Self::Sqlite(c) => Some(c),
            Self::Postgres(_) => None,
        }
    }

    /// Runs one statement; how many rows it changed.
    pub(crate) fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, SqlError> {
        match self {
            Self::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let n = st.execute(rusqlite::params_from_iter(params.iter()))?;
                Ok(n as u64)
            }
            Self::Postgres(c) => c.execute(sql, params),
        }
    }

    /// Runs one query; every row.
    pub(crate) fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, SqlError> {
        match self {
            Self::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let n = st.column_count();
                let mut rows = st.query(rusqlite::params_from_iter(params.iter()))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    let mut values = Vec::with_capacity(n);
                    for i in 0..n {
                        values.push(sqlite_value(r.get_ref(i)?)?);
                    }
                    out.push(Row(values));
                }
                Ok(out)
            }
            Self::Postgres(c) => c.query(sql, params),
        }
    }

    /// Runs one query; its first row, if any.
    pub(crate) fn query_opt(&self, sql: &str, params: &[Value]) -> Result<Option<Row>, SqlError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Runs one query that returns a row.
    pub(crate) fn query_one(&self, sql: &str, params: &[Value]) -> Result<Row, SqlError> {
        self.query_opt(sql, params)?
            .ok_or_else(|| SqlError::Conversion("the query returned no row".into()))
    }

    /// Runs statements separated by `;`, without parameters.
    pub(crate) fn batch(&self, sql: &str) -> Result<(), SqlError> {
        match self {
            Self::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Self::Postgres(c) => c.batch(sql),
        }
    }

    /// Starts a write transaction: SQLite's `BEGIN IMMEDIATE` (the write lock now, not at the first write),
    /// PostgreSQL's `BEGIN` (READ COMMITTED; rows are locked as they are written).
    pub(crate) fn begin(&self) -> Result<(), SqlError> {
        match self {
            Self::Sqlite(c) => Ok(c.execute_batch("BEGIN IMMEDIATE")?),
            Self::Postgres(c) => c.begin(),
        }
    }

    pub(crate) fn commit(&self) -> Result<(), SqlError> {
        match self {
            Self::Sqlite(c) => Ok(c.execute_batch("COMMIT")?),
            Self::Postgres(c) => c.end("COMMIT"),
        }
    }

    /// Rolls back the open transaction, if there is one (errors are ignored: the connection may be gone,
    /// which rolls back too).
    pub(crate) fn rollback(&self) {
        match self {
            Self::Sqlite(c) => {
                if !c.is_autocommit() {
                    let _ = c.execute_batch("ROLLBACK");
                }
            }
            Self::Postgres(c) => {
                let _ = c.end("ROLLBACK");
            }
        }
    }

    /// Runs `f` in a write transaction and commits, or rolls back if `f` (or the commit) fails. Runs it again
    /// while the database says the failure is worth retrying (busy, serialization, deadlock), backing off; and
    /// once more if the connection was found broken before anything was done (the server restarted since
    /// the last call: the next attempt reconnects).
    pub(crate) fn write<T, E: TxError>(
        &self,
        mut f: impl FnMut(&Self) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut delay = Duration::from_millis(2);
        let mut reconnected = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Err(e) = self.begin() {
                if e.is_connection() && !reconnected {
                    reconnected = true;
                    continue;
                }
                if e.is_retryable() && attempt < 20 {
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_millis(250));
                    continue;
                }
                return Err(e.into());
            }
            let result = match f(self) {
                Ok(v) => self.commit().map(|()| v).map_err(|e| (E::from(e), true)),
                Err(e) => Err((e, false)),
            };
            match result {
                Ok(v) => return Ok(v),
                Err((e, committing)) => {
                    self.rollback();
                    // The connection broke before COMMIT was sent: the server rolled the transaction back,
                    // so it is run once more on a new connection (a restart in the middle of a batch is not
                    // seen). Broken during COMMIT, whether it committed is unknown: the caller is told.
                    if e.connection() && !committing && !reconnected {
                        reconnected = true;
                        continue;
                    }
                    if e.retryable() && attempt < 20 {
                        std::thread::sleep(delay);
                        delay = (delay * 2).min(Duration::from_millis(250));
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Runs `f` inside a savepoint of the open transaction: released if it succeeds, rolled back to (and
    /// released) if it fails, so that only its own changes are undone.
    pub(crate) fn savepoint<T, E>(
        &self,
        f: impl FnOnce(&Self) -> Result<T, E>,
    ) -> Result<Result<T, E>, SqlError> {
        self.batch("SAVEPOINT one_event")?;
        match f(self) {
            Ok(v) => {
                self.batch("RELEASE SAVEPOINT one_event")?;
                Ok(Ok(v))
            }
            Err(e) => {
                self.batch("ROLLBACK TO SAVEPOINT one_event")?;
                self.batch("RELEASE SAVEPOINT one_event")?;
                Ok(Err(e))
            }
        }
    }
}

fn sqlite_value(v: rusqlite::types::ValueRef<'_>) -> Result<Value, SqlError> {
    use rusqlite::types::ValueRef;
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::Int(n),
        ValueRef::Real(x) => Value::Real(x),
        ValueRef::Text(t) => Value::Text(
            std::str::from_utf8(t)
                .map_err(|e| SqlError::Conversion(format!("text that is not UTF-8: {e}")))?
                .to_owned(),
        ),
        ValueRef::Blob(_) => {
            return Err(SqlError::Conversion("a blob where none is expected".into()));
        }
    })
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Self::Null => ValueRef::Null,
            Self::Int(n) => ValueRef::Integer(*n),
            Self::Real(x) => ValueRef::Real(*x),
            Self::Text(s) => ValueRef::Text(s.as_bytes()),
        }))
    }
}

/// `sql` with SQLite's `?N` placeholders as PostgreSQL's `$N` (outside quoted strings and identifiers).
pub(crate) fn to_dollar(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    out.push(c);
                }
                '?' if chars.peek().is_some_and(char::is_ascii_digit) => out.push('$'),
                c => out.push(c),
            },
        }
    }
    out
}

impl DbError {
    /// The error of a SQLite call that failed while doing `action`.
    pub(crate) fn sqlite(action: &'static str) -> impl FnOnce(rusqlite::Error) -> Self {
        move |source| Self::Sqlite { action, source }
    }

    /// The error of a statement that failed while doing `action`.
    pub(crate) fn sql(action: &'static str) -> impl FnOnce(SqlError) -> Self {
        move |e| match e {
            SqlError::Sqlite(source) => Self::Sqlite { action, source },
            e if e.is_connection() => Self::Unavailable {
                action,
                reason: e.to_string(),
            },
            SqlError::Postgres(source) => Self::Postgres { action, source },
            SqlError::Unavailable(reason) => Self::Unavailable { action, reason },
            SqlError::Refused(reason) => Self::Refused(reason),
            SqlError::Conversion(reason) => Self::Corrupt(format!("{action}: {reason}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::to_dollar;

    #[test]
    fn placeholders_become_dollars_outside_quotes() {
        assert_eq!(
            to_dollar("SELECT ?1, '?2', \"a?3\", ?12 WHERE x = ?2"),
            "SELECT $1, '?2', \"a?3\", $12 WHERE x = $2"
        );
        assert_eq!(to_dollar("SELECT 'it''s ?1', ?1"), "SELECT 'it''s ?1', $1");
    }
}
