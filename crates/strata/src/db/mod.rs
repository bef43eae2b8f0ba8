//! The database layer: connections, TLS, catalog queries and redaction.
//!
//! **Architecture Invariant:** this is the only module that imports
//! `tokio_postgres`. It decides nothing: callers (the engine) decide what to
//! run; this module runs it and turns server errors into [`DbError`]s with
//! the server's code, message, detail and hint.
//!
//! **Architecture Invariant:** a connection string is never shown unredacted;
//! every message that mentions one goes through [`redact`].

pub mod activity;
pub mod catalog;
mod conninfo;
pub mod dependents;
mod tls;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use conninfo::{redact, SslMode, TlsSettings};
pub use tokio_postgres::types::ToSql;
pub use tokio_postgres::Row;

/// A parsed database target: where to connect and how.
#[derive(Clone)]
pub struct Target {
    config: tokio_postgres::Config,
    tls: TlsSettings,
    display: String,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({})", self.display)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

impl Target {
    /// Parses a libpq URL or `key=value` string (TLS modes up to
    /// `verify-full`). The error never contains the password.
    pub fn parse(conninfo: &str) -> Result<Target, DbError> {
        let display = conninfo::redact_conninfo(conninfo);
        let bad = |message: String| DbError::BadTarget {
            target: display.clone(),
            message,
        };
        if conninfo.trim().is_empty() {
            return Err(bad("the URL is empty".into()));
        }
        let (rest, tls) = conninfo::split_tls(conninfo).map_err(bad)?;
        let mut config: tokio_postgres::Config = rest
            .parse()
            .map_err(|e: tokio_postgres::Error| bad(redact(&e.to_string())))?;
        if let Some(password) = config.get_password() {
            conninfo::remember_secret(&String::from_utf8_lossy(password));
        }
        if config.get_application_name().is_none() {
            config.application_name("strata");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_hosts().is_empty() {
            // libpq's default: the local socket directory.
            config.host("/var/run/postgresql");
        }
        if config.get_user().is_none() {
            if let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::geteuid()) {
                config.user(&user.name);
            }
        }
        Ok(Target {
            config,
            tls,
            display,
        })
    }

    /// The database name, if one is set.
    pub fn dbname(&self) -> Option<&str> {
        self.config.get_dbname()
    }

    /// The user name the connection will use.
    pub fn user(&self) -> Option<&str> {
        self.config.get_user()
    }

    /// A copy of this target pointing at another database on the same server.
    pub fn with_dbname(&self, dbname: &str) -> Target {
        let mut t = self.clone();
        t.config.dbname(dbname);
        t.display = format!("{} (database {dbname})", self.display);
        t
    }

    /// A copy with another `application_name`.
    pub fn with_application_name(&self, name: &str) -> Target {
        let mut t = self.clone();
        t.config.application_name(name);
        t
    }

    /// Which server this is, whatever the database and user: hosts and
    /// ports. Keys caches of per-server measurements.
    pub fn server_key(&self) -> String {
        let (hosts, ports) = self.hosts_and_ports();
        format!("{}:{}", hosts.join(","), ports.join(","))
    }

    /// The hosts (names or socket directories) and ports, as libpq writes them.
    fn hosts_and_ports(&self) -> (Vec<String>, Vec<String>) {
        use tokio_postgres::config::Host;
        let hosts = self
            .config
            .get_hosts()
            .iter()
            .map(|h| match h {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        let ports = self
            .config
            .get_ports()
            .iter()
            .map(|p| p.to_string())
            .collect();
        (hosts, ports)
    }

    /// The target as libpq environment variables (`PGHOST`, `PGPORT`,
    /// `PGUSER`, `PGDATABASE`, `PGPASSWORD`, `PGSSLMODE`, ...), for client
    /// tools such as `pg_dump`. Handing them over in the environment keeps
    /// the password out of the process list, where an argument would show.
    pub fn libpq_env(&self) -> Vec<(&'static str, String)> {
        let (hosts, ports) = self.hosts_and_ports();
        let mut env = vec![("PGHOST", hosts.join(","))];
        if !ports.is_empty() {
            env.push(("PGPORT", ports.join(",")));
        }
        if let Some(user) = self.config.get_user() {
            env.push(("PGUSER", user.to_owned()));
        }
        if let Some(db) = self.config.get_dbname() {
            env.push(("PGDATABASE", db.to_owned()));
        }
        if let Some(password) = self.config.get_password() {
            env.push(("PGPASSWORD", String::from_utf8_lossy(password).into_owned()));
        }
        env.push(("PGAPPNAME", "strata".to_owned()));
        env.push(("PGSSLMODE", self.tls.mode.libpq_name().to_owned()));
        let paths = [
            ("PGSSLROOTCERT", &self.tls.root_cert),
            ("PGSSLCERT", &self.tls.client_cert),
            ("PGSSLKEY", &self.tls.client_key),
        ];
        for (name, path) in paths {
            if let Some(p) = path {
                env.push((name, p.display().to_string()));
            }
        }
        if let Some(timeout) = self.config.get_connect_timeout() {
            env.push(("PGCONNECT_TIMEOUT", timeout.as_secs().max(1).to_string()));
        }
        env
    }

    /// Opens a connection. Notices from the server are kept for
    /// [`Connection::take_notices`]; errors are
    /// classified so the user learns whether the server is unreachable, the
    /// password is wrong, or the database does not exist.
    pub async fn connect(&self) -> Result<Connection, DbError> {
        // Unix sockets and sslmode=disable never use TLS. Otherwise the
        // connector is built only if the server agrees to TLS, once per
        // process (see `tls`): building it loads the system CA bundle.
        let tcp = self
            .config
            .get_hosts()
            .iter()
            .any(|h| matches!(h, tokio_postgres::config::Host::Tcp(_)));
        let notices = Arc::new(Mutex::new(Notices::default()));
        let client = if tcp && self.tls.mode != SslMode::Disable {
            let tls = tls::connector(&self.tls).map_err(|message| DbError::BadTarget {
                target: self.display.clone(),
                message,
            })?;
            self.connect_with(tls, notices.clone()).await?
        } else {
            self.connect_with(tokio_postgres::NoTls, notices.clone())
                .await?
        };
        let pid = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .map_err(|e| DbError::from_pg(&e))?
            .get::<_, i32>(0);
        Ok(Connection {
            client,
            pid,
            target: self.display.clone(),
            server: self.server_key(),
            notices,
            name: self
                .config
                .get_application_name()
                .unwrap_or("strata")
                .to_owned(),
            trips: AtomicU64::new(2),
        })
    }

    async fn connect_with<T>(
        &self,
        tls: T,
        notices: Arc<Mutex<Notices>>,
    ) -> Result<tokio_postgres::Client, DbError>
    where
        T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket> + 'static,
        T::Stream: Send + 'static,
    {
        let (client, connection) = self
            .config
            .connect(tls)
            .await
            .map_err(|e| DbError::connect(&self.display, &e))?;
        // Driven by hand rather than awaited, so that the server's NOTICE
        // and WARNING messages (RAISE NOTICE in a migration) reach the
        // user. The connection reads its stream in order, so a statement's
        // notices are stored before its result reaches the client.
        let mut connection = connection;
        tokio::spawn(async move {
            let end = std::future::poll_fn(|cx| loop {
                match connection.poll_message(cx) {
                    std::task::Poll::Ready(Some(Ok(tokio_postgres::AsyncMessage::Notice(n)))) => {
                        if let Ok(mut kept) = notices.lock() {
                            kept.push(Notice::from_pg(&n));
                        }
                    }
                    std::task::Poll::Ready(Some(Ok(_))) => {}
                    std::task::Poll::Ready(Some(Err(e))) => return std::task::Poll::Ready(Err(e)),
                    std::task::Poll::Ready(None) => return std::task::Poll::Ready(Ok(())),
                    std::task::Poll::Pending => return std::task::Poll::Pending,
                }
            })
            .await;
            if let Err(e) = end {
                tracing::debug!("connection closed: {}", redact(&e.to_string()));
            }
        });
        Ok(client)
    }
}

/// An open connection.
pub struct Connection {
    client: tokio_postgres::Client,
    pid: i32,
    target: String,
    server: String,
    notices: Arc<Mutex<Notices>>,
    /// `application_name`, for the round-trip count.
    name: String,
    /// Round trips so far (see [`Connection::round_trips`]); the pid
    /// query counts two.
    trips: AtomicU64,
}

impl Drop for Connection {
    /// Says how many round trips the connection made: the runner's cost
    /// per migration is counted in round trips, and `-vv` shows it.
    fn drop(&mut self) {
        tracing::debug!(
            "connection {} (pid {}): {} round trips",
            self.name,
            self.pid,
            self.round_trips()
        );
    }
}

/// A NOTICE or WARNING the server sent while running our SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// `NOTICE`, `WARNING`, `INFO`, ...
    pub severity: String,
    /// The message.
    pub message: String,
    /// DETAIL, if any.
    pub detail: Option<String>,
    /// HINT, if any.
    pub hint: Option<String>,
    /// Raised by the SQL itself (PL/pgSQL `RAISE`), rather than a remark of
    /// the server's about a statement ("table ... does not exist, skipping").
    pub raised: bool,
}

impl Notice {
    fn from_pg(n: &tokio_postgres::error::DbError) -> Notice {
        Notice {
            severity: n.severity().to_owned(),
            message: n.message().to_owned(),
            detail: n.detail().map(str::to_owned),
            hint: n.hint().map(str::to_owned),
            raised: n.routine() == Some("exec_stmt_raise"),
        }
    }
}

/// Notices not yet taken. Bounded: a connection nobody drains (or a loop
/// that raises millions) keeps the first [`Notices::KEEP`] and counts the rest.
#[derive(Debug, Default)]
struct Notices {
    kept: Vec<Notice>,
    dropped: usize,
}

impl Notices {
    const KEEP: usize = 10_000;

    fn push(&mut self, n: Notice) {
        if self.kept.len() < Self::KEEP {
            self.kept.push(n);
        } else {
            self.dropped += 1;
        }
    }
}

/// A statement prepared once and executed many times.
pub type Prepared = tokio_postgres::Statement;

/// One request of [`Connection::pipeline`].
pub enum Request<'a> {
    /// SQL text run with the simple query protocol (several statements
    /// allowed), as [`Connection::batch`] runs it.
    Simple(&'a str),
    /// A prepared statement with its bind parameters, as
    /// [`Connection::execute_prepared`] runs it.
    Prepared(&'a Prepared, &'a [&'a (dyn ToSql + Sync)]),
}

impl Connection {
    /// The server process id of this connection.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The server's notices since the last call, oldest first, and how
    /// many more were not kept.
    pub fn take_notices(&self) -> (Vec<Notice>, usize) {
        match self.notices.lock() {
            Ok(mut n) => (std::mem::take(&mut n.kept), std::mem::take(&mut n.dropped)),
            Err(_) => (Vec::new(), 0),
        }
    }

    /// The redacted target, for messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// See [`Target::server_key`].
    pub fn server_key(&self) -> &str {
        &self.server
    }

    /// Runs SQL with the simple query protocol: no parameters, several
    /// statements allowed, and exactly what a migration file says.
    pub async fn batch(&self, sql: &str) -> Result<(), DbError> {
        self.trip(1);
        self.client
            .batch_execute(sql)
            .await
            .map_err(|e| DbError::from_pg(&e))
    }

    /// Runs one statement with bind parameters.
    pub async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, DbError> {
        self.trip(2);
        self.client
            .execute(sql, params)
            .await
            .map_err(|e| DbError::from_pg(&e))
    }

    /// Runs a query with bind parameters.
    pub async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, DbError> {
        self.trip(2);
        self.client
            .query(sql, params)
            .await
            .map_err(|e| DbError::from_pg(&e))
    }

    /// Prepares a statement for repeated execution.
    pub async fn prepare(&self, sql: &str) -> Result<Prepared, DbError> {
        self.trip(1);
        self.client
            .prepare(sql)
            .await
            .map_err(|e| DbError::from_pg(&e))
    }

    /// Executes a prepared statement.
    pub async fn execute_prepared(
        &self,
        stmt: &Prepared,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, DbError> {
        self.trip(1);
        self.client
            .execute(stmt, params)
            .await
            .map_err(|e| DbError::from_pg(&e))
    }

    /// Runs a prepared query.
    pub async fn query_prepared(
        &self,
        stmt: &Prepared,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, DbError> {
        self.trip(1);
        self.client
            .query(stmt, params)
            .await
            .map_err(|e| DbError::from_pg(&e))
    }

    /// Runs a query that returns at most one row.
    pub async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, DbError> {
        self.trip(2);
        self.client
            .query_opt(sql, params)
            .await
            .map_err(|e| DbError::from_pg(&e))
    }

    /// Sends the simple query `then` right behind the request that `first`
    /// (a call on this connection) makes, without waiting for `first`'s
    /// answer: one round trip for both. The server runs them in order and
    /// each keeps its own result, so an error still says which failed and
    /// where. `first` must send its request when first polled, as every
    /// method here does, and must make only one.
    pub async fn batch_behind<T>(
        &self,
        first: impl std::future::Future<Output = Result<T, DbError>>,
        then: &str,
    ) -> (Result<T, DbError>, Result<(), DbError>) {
        let then = async {
            self.client
                .batch_execute(then)
                .await
                .map_err(|e| DbError::from_pg(&e))
        };
        tokio::join!(first, then)
    }

    /// Sends every request before reading any answer (pipelining: one
    /// round trip for all of them) and returns each one's own result, in
    /// order. The server runs them in order, so a failing request's error
    /// (and its position) is its own; after an error inside a transaction
    /// block, the later requests fail with 25P02 and a `COMMIT` among them
    /// rolls back, so nothing after a failure can commit.
    pub async fn pipeline(&self, requests: &[Request<'_>]) -> Vec<Result<(), DbError>> {
        use std::future::Future;
        use std::pin::Pin;
        use std::task::Poll;
        type Pending<'f> =
            Pin<Box<dyn Future<Output = Result<(), tokio_postgres::Error>> + Send + 'f>>;
        self.trip(1);
        // Each request is sent when its future is first polled, and the
        // loop below polls them in order: they go out in order.
        let mut futures: Vec<Pending<'_>> = requests
            .iter()
            .map(|r| -> Pending<'_> {
                match *r {
                    Request::Simple(sql) => Box::pin(self.client.batch_execute(sql)),
                    Request::Prepared(stmt, params) => {
                        Box::pin(async move { self.client.execute(stmt, params).await.map(|_| ()) })
                    }
                }
            })
            .collect();
        let mut results: Vec<Option<Result<(), tokio_postgres::Error>>> =
            requests.iter().map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut waiting = false;
            for (future, result) in futures.iter_mut().zip(results.iter_mut()) {
                if result.is_none() {
                    match future.as_mut().poll(cx) {
                        Poll::Ready(r) => *result = Some(r),
                        Poll::Pending => waiting = true,
                    }
                }
            }
            if waiting {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
        results
            .into_iter()
            .map(|r| match r {
                Some(r) => r.map_err(|e| DbError::from_pg(&e)),
                // Not reached: the loop ends once every request has its result.
                None => Err(DbError::Io("a pipelined request got no answer".into())),
            })
            .collect()
    }

    /// How many times this connection has waited for the server so far
    /// (a query with unprepared parameters counts two: it is prepared first).
    pub fn round_trips(&self) -> u64 {
        self.trips.load(Ordering::Relaxed)
    }

    fn trip(&self, n: u64) {
        self.trips.fetch_add(n, Ordering::Relaxed);
    }

    /// True once the connection is unusable.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

/// A database error, classified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The connection string could not be parsed.
    #[error("invalid database URL {target}: {message}")]
    BadTarget {
        /// The redacted connection string.
        target: String,
        /// What is wrong with it.
        message: String,
    },
    /// Connecting failed.
    #[error("cannot connect to {target}: {message}")]
    Connect {
        /// The redacted target.
        target: String,
        /// The reason, redacted.
        message: String,
        /// What to check.
        help: &'static str,
    },
    /// The server rejected a statement.
    #[error("{severity} {code}: {message}{}{}", .detail.as_ref().map(|d| format!("\n  detail: {d}")).unwrap_or_default(), .hint.as_ref().map(|h| format!("\n  hint: {h}")).unwrap_or_default())]
    Server {
        /// ERROR, FATAL, ...
        severity: String,
        /// The SQLSTATE code.
        code: String,
        /// The primary message.
        message: String,
        /// DETAIL, if any.
        detail: Option<String>,
        /// HINT, if any.
        hint: Option<String>,
        /// 1-based character position in the statement, if reported.
        position: Option<u32>,
    },
    /// The connection broke or another client-side failure happened.
    #[error("database connection error: {0}")]
    Io(String),
}

impl DbError {
    fn from_pg(e: &tokio_postgres::Error) -> DbError {
        match e.as_db_error() {
            Some(db) => DbError::Server {
                severity: db.severity().to_owned(),
                code: db.code().code().to_owned(),
                message: db.message().to_owned(),
                detail: db.detail().map(str::to_owned),
                hint: db.hint().map(str::to_owned),
                position: match db.position() {
                    Some(tokio_postgres::error::ErrorPosition::Original(p)) => Some(*p),
                    _ => None,
                },
            },
            None => DbError::Io(redact(&source_chain(e))),
        }
    }

    fn connect(target: &str, e: &tokio_postgres::Error) -> DbError {
        let (message, help) = match e.as_db_error() {
            Some(db) => {
                let help = match db.code().code() {
                    "28P01" | "28000" => "check the user name and password in the database URL",
                    "3D000" => "create the database first, or fix the database name in the URL",
                    "53300" => "the server has no free connection slots; try again later",
                    _ => "check the database URL and the server's log",
                };
                (db.message().to_owned(), help)
            }
            None => (
                redact(&source_chain(e)),
                "is the server running, and are host and port right? (`strata local start` starts a local one)",
            ),
        };
        DbError::Connect {
            target: target.to_owned(),
            message,
            help,
        }
    }

    /// The SQLSTATE, for server errors.
    pub fn code(&self) -> Option<&str> {
        match self {
            DbError::Server { code, .. } => Some(code),
            _ => None,
        }
    }

    /// How to fix it, where known.
    pub fn help(&self) -> Option<&str> {
        match self {
            DbError::Connect { help, .. } => Some(help),
            DbError::Server { hint, .. } => hint.as_deref(),
            _ => None,
        }
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// Quotes an identifier for SQL (`"my ""table"""`).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal for SQL, for the display-only SQL of dry runs.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}
