//! A PostgreSQL connection on a thread of its own.
//!
//! rust-postgres' sync `Client` runs every call with `block_on` on a runtime of its own, and panics when it is
//! called from a thread that is driving a tokio runtime — and the ledger is called from async code (the
//! callback receiver, `pull`). So each [`PgConn`] owns a plain std thread that owns the `Client`; the ledger's
//! thread sends it a job (a statement with its owned parameters) over a channel and blocks on the answer,
//! which is safe on any thread, in a runtime or not (it blocks that thread, as a SQLite call does).
//!
//! The connection is opened lazily and re-opened by the next call after it was lost (the server restarted):
//! an error while it is away is [`SqlError::Unavailable`] (the receiver answers 503), and the service's retry
//! succeeds once the server is back. A connection lost inside a transaction fails every statement until the
//! transaction ends, so that nothing runs half inside and half outside it.

use std::collections::HashMap;
use std::error::Error as _;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use ::postgres::error::SqlState;
use ::postgres::types::{IsNull, ToSql, Type};
use ::postgres::{Client, Statement};
use bytes::BytesMut;
use secrecy::ExposeSecret;

use super::{Row, SqlError, Value, to_dollar};
use crate::location::{PostgresConfig, SslMode};

type Job = Box<dyn FnOnce(&mut Session) + Send>;

/// One PostgreSQL connection, served by its own thread.
#[derive(Debug)]
pub(crate) struct PgConn {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

/// What the connection's thread holds.
struct Session {
    config: PostgresConfig,
    client: Option<Client>,
    statements: HashMap<String, Statement>,
    /// A transaction is open (BEGIN sent, no COMMIT/ROLLBACK yet).
    in_tx: bool,
    /// The connection was lost inside the open transaction.
    broken: bool,
}

impl PgConn {
    /// Starts the connection's thread and connects (so that a wrong URL or password is told at once).
    pub(crate) fn connect(config: &PostgresConfig) -> Result<Self, SqlError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let session = Session {
            config: config.clone(),
            client: None,
            statements: HashMap::new(),
            in_tx: false,
            broken: false,
        };
        let thread = std::thread::Builder::new()
            .name("ledger-postgres".into())
            .spawn(move || {
                let mut session = session;
                while let Ok(job) = rx.recv() {
                    // A job that panicked (a bug) loses its answer — its caller is told the connection
                    // failed — but not the thread: the next job gets a new connection.
                    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        job(&mut session)
                    }));
                    if ran.is_err() {
                        session.client = None;
                        session.statements.clear();
                        session.in_tx = false;
                        session.broken = false;
                    }
                }
            })
            .map_err(|e| {
                SqlError::Unavailable(format!("cannot start the connection's thread: {e}"))
            })?;
        let conn = Self {
            jobs: Some(tx),
            thread: Some(thread),
        };
        conn.call(|s| s.client().map(drop))??;
        Ok(conn)
    }

    /// Runs `f` on the connection's thread and waits for its answer.
    fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Session) -> R + Send + 'static,
    ) -> Result<R, SqlError> {
        let stopped = || {
            SqlError::Unavailable(
                "the ledger's PostgreSQL connection failed (its thread gave no answer)".into(),
            )
        };
        let (reply, answer) = mpsc::sync_channel(1);
        let jobs = self.jobs.as_ref().ok_or_else(stopped)?;
        jobs.send(Box::new(move |s: &mut Session| {
            let _ = reply.send(f(s));
        }))
        .map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())
    }

    pub(crate) fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, SqlError> {
        let (sql, params) = (to_dollar(sql), params.to_vec());
        self.call(move |s| s.execute(&sql, &params))?
    }

    pub(crate) fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, SqlError> {
        let (sql, params) = (to_dollar(sql), params.to_vec());
        self.call(move |s| s.query(&sql, &params))?
    }

    pub(crate) fn batch(&self, sql: &str) -> Result<(), SqlError> {
        let sql = sql.to_owned();
        self.call(move |s| s.batch(&sql))?
    }

    pub(crate) fn begin(&self) -> Result<(), SqlError> {
        self.call(|s| {
            if s.in_tx {
                // A transaction left open by an earlier failure: end it first.
                let _ = s.end("ROLLBACK");
            }
            s.batch("BEGIN")?;
            s.in_tx = true;
            Ok(())
        })?
    }

    /// Ends the open transaction with `COMMIT` or `ROLLBACK`.
    pub(crate) fn end(&self, how: &'static str) -> Result<(), SqlError> {
        self.call(move |s| s.end(how))?
    }
}

impl Drop for PgConn {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Session {
    /// The open client, connecting if there is none or it was closed — except inside a transaction, whose
    /// statements must not go to a new connection.
    fn client(&mut self) -> Result<&mut Client, SqlError> {
        let usable = self.client.as_ref().is_some_and(|c| !c.is_closed());
        if !usable {
            self.client = None;
            self.statements.clear();
            if self.in_tx {
                self.broken = true;
                return Err(SqlError::Unavailable(
                    "the connection to PostgreSQL was lost during the transaction".into(),
                ));
            }
            self.client = Some(open(&self.config)?);
        }
        self.client
            .as_mut()
            .ok_or_else(|| SqlError::Unavailable("no connection".into()))
    }

    fn check<T>(&mut self, r: Result<T, ::postgres::Error>) -> Result<T, SqlError> {
        r.map_err(|e| {
            if is_connection(&e) {
                self.client = None;
                self.statements.clear();
                if self.in_tx {
                    self.broken = true;
                }
            }
            SqlError::Postgres(e)
        })
    }

    fn statement(&mut self, sql: &str) -> Result<Statement, SqlError> {
        if let Some(st) = self.statements.get(sql) {
            return Ok(st.clone());
        }
        let prepared = self.client()?.prepare(sql);
        let st = self.check(prepared)?;
        self.statements.insert(sql.to_owned(), st.clone());
        Ok(st)
    }

    fn guard(&self) -> Result<(), SqlError> {
        if self.broken {
            return Err(SqlError::Unavailable(
                "the connection to PostgreSQL was lost during the transaction".into(),
            ));
        }
        Ok(())
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, SqlError> {
        self.guard()?;
        let st = self.statement(sql)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        let r = self.client()?.execute(&st, &refs);
        self.check(r)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, SqlError> {
        match self.query_once(sql, params) {
            // Outside a transaction a read may simply be asked again: once, on a new connection, if the
            // old one was found broken (the server restarted since the last call).
            Err(e) if !self.in_tx && e.is_connection() && self.client.is_none() => {
                self.query_once(sql, params)
            }
            other => other,
        }
    }

    fn query_once(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, SqlError> {
        self.guard()?;
        let st = self.statement(sql)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        let r = self.client()?.query(&st, &refs);
        let rows = self.check(r)?;
        rows.iter().map(owned_row).collect()
    }

    fn batch(&mut self, sql: &str) -> Result<(), SqlError> {
        self.guard()?;
        let r = self.client()?.batch_execute(sql);
        self.check(r)
    }

    fn end(&mut self, how: &str) -> Result<(), SqlError> {
        let was_broken = self.broken;
        self.in_tx = false;
        self.broken = false;
        if was_broken {
            return Err(SqlError::Unavailable(
                "the connection to PostgreSQL was lost during the transaction; it was not committed".into(),
            ));
        }
        let Some(client) = self.client.as_mut() else {
            return Err(SqlError::Unavailable(
                "no connection to end the transaction on".into(),
            ));
        };
        let r = client.batch_execute(how);
        self.check(r)
    }
}

/// Opens a connection: TLS as `sslmode` says, then `synchronous_commit = on` (a commit returns only once
/// the server has flushed it, whatever the database's default) and UTC.
fn open(config: &PostgresConfig) -> Result<Client, SqlError> {
    let mut pg = ::postgres::Config::new();
    if config.host.starts_with('/') {
        #[cfg(unix)]
        pg.host_path(&config.host);
        #[cfg(not(unix))]
        pg.host(&config.host);
    } else {
        pg.host(&config.host);
    }
    pg.port(config.port)
        .user(&config.user)
        .dbname(&config.dbname)
        .application_name(&config.application_name)
        .connect_timeout(config.connect_timeout)
        // A server that vanished without closing the connection (a machine lost, a network cut) is noticed
        // in seconds, not after the system's two hours of TCP keepalive: unacknowledged writes time out
        // after 30 s, and an idle connection is probed every 15 s.
        .tcp_user_timeout(Duration::from_secs(30))
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(15))
        .keepalives_interval(Duration::from_secs(5))
        .keepalives_retries(3)
        .ssl_mode(match config.sslmode {
            SslMode::Disable => ::postgres::config::SslMode::Disable,
            SslMode::Prefer => ::postgres::config::SslMode::Prefer,
            _ => ::postgres::config::SslMode::Require,
        });
    if let Some(options) = &config.options {
        pg.options(options);
    }
    if let Some(password) = &config.password {
        pg.password(password.expose_secret().as_bytes());
    }
    let unavailable = |e: ::postgres::Error| {
        let reason = format!("cannot connect to {}: {}", config.redacted(), describe(&e));
        // The server answered and said no (a wrong password, no such database or role, no right to
        // connect): not a database that is away, and retrying will not help.
        let refused = e.code().is_some_and(|c| {
            let code = c.code();
            code.starts_with("28") || code == "3D000" || code == "42501"
        });
        if refused {
            SqlError::Refused(reason)
        } else {
            SqlError::Unavailable(reason)
        }
    };
    let mut client = if config.sslmode == SslMode::Disable {
        pg.connect(::postgres::NoTls).map_err(unavailable)?
    } else {
        let tls = super::tls::MakeRustls::new(config.sslmode, config.sslrootcert.as_deref())
            .map_err(|e| SqlError::Unavailable(format!("TLS to {}: {e}", config.redacted())))?;
        pg.connect(tls).map_err(unavailable)?
    };
    client
        .batch_execute("SET synchronous_commit = on; SET TIME ZONE 'UTC'")
        .map_err(SqlError::Postgres)?;
    Ok(client)
}

/// An error with its causes, and the server's detail for a database error (rust-postgres' `Display` says
/// only "db error" or "error connecting to server").
pub(crate) fn describe(e: &::postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
        if let Some(detail) = db.detail() {
            s.push_str(": ");
            s.push_str(detail);
        }
        return s;
    }
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// A serialization failure or a deadlock: the transaction may be run again.
pub(crate) fn is_retryable(e: &::postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// The connection failed (closed, I/O, the server shutting down or refusing connections), not a statement.
pub(crate) fn is_connection(e: &::postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(c) => {
            let code = c.code();
            // 08: connection exception; 57P01-57P03: admin/crash shutdown, cannot connect now.
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
        }
        // No SQLSTATE: told by rust-postgres' kind, which only its message shows (an I/O error, a closed
        // connection, TLS, connecting, a timeout) — not a parameter that could not be bound or read.
        None => {
            let message = e.to_string();
            [
                "error communicating with the server",
                "connection closed",
                "error performing TLS handshake",
                "error connecting to server",
                "timeout waiting for server",
            ]
            .iter()
            .any(|kind| message.starts_with(kind))
        }
    }
}

fn owned_row(r: &::postgres::Row) -> Result<Row, SqlError> {
    let mut values = Vec::with_capacity(r.len());
    for (i, column) in r.columns().iter().enumerate() {
        let ty = column.type_();
        let conv = |e: ::postgres::Error| {
            SqlError::Conversion(format!("column {} ({ty}): {}", column.name(), describe(&e)))
        };
        let v = match *ty {
            Type::INT8 => r
                .try_get::<_, Option<i64>>(i)
                .map_err(conv)?
                .map(Value::Int),
            Type::INT4 => r
                .try_get::<_, Option<i32>>(i)
                .map_err(conv)?
                .map(|n| Value::Int(n.into())),
            Type::INT2 => r
                .try_get::<_, Option<i16>>(i)
                .map_err(conv)?
                .map(|n| Value::Int(n.into())),
            Type::BOOL => r
                .try_get::<_, Option<bool>>(i)
                .map_err(conv)?
                .map(|b| Value::Int(b.into())),
            Type::FLOAT8 => r
                .try_get::<_, Option<f64>>(i)
                .map_err(conv)?
                .map(Value::Real),
            Type::FLOAT4 => r
                .try_get::<_, Option<f32>>(i)
                .map_err(conv)?
                .map(|x| Value::Real(x.into())),
            Type::VOID => None,
            _ => r
                .try_get::<_, Option<String>>(i)
                .map_err(conv)?
                .map(Value::Text),
        };
        values.push(v.unwrap_or(Value::Null));
    }
    Ok(Row(values))
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

/// PostgreSQL's `text` cannot hold the NUL character, which a JSON string can (`\u0000`): it is stored as
/// U+FFFD (the replacement character). Only parsed fields can have one; a raw body keeps it escaped.
pub(crate) fn scrub_nul(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        std::borrow::Cow::Owned(s.replace('\0', "\u{fffd}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// Binds a [`Value`] as the type PostgreSQL inferred for the parameter (an integer compared with an `int4`
/// column is sent as one; a boolean 0/1 as a `bool`), so the ledger's SQL needs no casts.
impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Self::Null => Ok(IsNull::Yes),
            Self::Int(n) => match *ty {
                Type::INT8 => n.to_sql(ty, out),
                Type::INT4 => i32::try_from(*n)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*n)?.to_sql(ty, out),
                #[allow(clippy::cast_precision_loss)]
                Type::FLOAT8 => (*n as f64).to_sql(ty, out),
                Type::BOOL => (*n != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR | Type::UNKNOWN => n.to_string().to_sql(ty, out),
                _ => Err(format!("an integer cannot be bound as {ty}").into()),
            },
            Self::Real(x) => match *ty {
                Type::FLOAT8 => x.to_sql(ty, out),
                #[allow(clippy::cast_possible_truncation)]
                Type::FLOAT4 => (*x as f32).to_sql(ty, out),
                _ => Err(format!("a number cannot be bound as {ty}").into()),
            },
            Self::Text(s) => match *ty {
                // PostgreSQL's text cannot hold NUL (see `scrub_nul`).
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    scrub_nul(s).as_ref().to_sql(ty, out)
                }
                _ => Err(format!("text cannot be bound as {ty}").into()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    ::postgres::types::to_sql_checked!();
}
