//! The message log: every request and response, with its signature, stored in
//! SQLite before the response is released (time stamps and archives come with
//! the message-log issue). Writes use WAL with `synchronous=FULL`, so a record
//! that was acknowledged survives a crash.
//!
//! Records are written by one task with group commit: whatever records are
//! waiting when a transaction starts go into it together, and each writer is
//! answered once that transaction is durable. Concurrent exchanges share one
//! commit (and one fsync) instead of queueing for SQLite's write lock.

use std::path::Path;

use sqlx::any::AnyPoolOptions;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool};
use tokio::sync::{mpsc, oneshot};

/// Which proxy wrote a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client proxy (consumer's server).
    Client,
    /// The server proxy (provider's server).
    Server,
}

/// One record to store.
#[derive(Debug)]
pub struct Record<'a> {
    /// The query id.
    pub query_id: &'a str,
    /// Client identifier.
    pub client: &'a str,
    /// Service identifier.
    pub service: &'a str,
    /// Which proxy.
    pub side: Side,
    /// Request or response.
    pub response: bool,
    /// The SOAP message bytes.
    pub message: &'a [u8],
    /// The signature XML.
    pub signature: &'a [u8],
    /// For a batch signature: the hash chain result and the message's hash chain.
    pub hash_chain: Option<(&'a [u8], &'a [u8])>,
    /// The attachments (`/attachment1`, …), in order.
    pub attachments: &'a [Attachment<'a>],
}

/// An attachment to log: bytes in memory, or a file (a spooled part) that
/// must exist until [`MessageLog::write`] returns.
#[derive(Debug, Clone, Copy)]
pub enum Attachment<'a> {
    /// The bytes.
    Bytes(&'a [u8]),
    /// A file holding the bytes.
    File(&'a std::path::Path),
}

/// An attachment on its way to the writer task.
#[derive(Debug)]
enum OwnedAttachment {
    Bytes(Vec<u8>),
    File(std::path::PathBuf),
}

/// Largest attachment chunk stored in one row.
const CHUNK_BYTES: usize = 1024 * 1024;

type TokenRow = (Vec<u8>, Option<Vec<u8>>);

/// A (hash chain result, hash chain) pair.
pub type OwnedChain = (Vec<u8>, Vec<u8>);

/// What a message-log search asks for (each field optional).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Search {
    /// The query id.
    pub query_id: Option<String>,
    /// The client, as `SUBSYSTEM:…`.
    pub client: Option<String>,
    /// The service, as `SERVICE:…`.
    pub service: Option<String>,
    /// Logged at or after (RFC 3339, UTC).
    pub from: Option<String>,
    /// Logged at or before (RFC 3339, UTC).
    pub to: Option<String>,
    /// Most records answered (default 100, at most 500).
    #[serde(default = "default_limit")]
    pub limit: i64,
}

fn default_limit() -> i64 {
    100
}

/// A search's row: id, query id, client, service, side, direction, time, time stamp.
type FoundRow = (i64, String, String, String, String, String, String, Option<i64>);

/// One record found by a search (without its content).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Found {
    /// The record's number.
    pub id: i64,
    /// The query id.
    pub query_id: String,
    /// The client.
    pub client: String,
    /// The service.
    pub service: String,
    /// Which proxy logged it (`client` or `server`).
    pub side: String,
    /// Whether it is the response.
    pub response: bool,
    /// When it was logged.
    pub created_at: String,
    /// Whether it has its time stamp (and so can be exported).
    pub time_stamped: bool,
}

/// A logged record with what its container needs.
#[derive(Debug, Clone)]
pub struct LoggedRecord {
    /// The client identifier.
    pub client: String,
    /// Whether it is the response.
    pub response: bool,
    /// When it was logged.
    pub created_at: String,
    /// The message as logged.
    pub message: Vec<u8>,
    /// The signature document.
    pub signature: Vec<u8>,
    /// A batch signature's (hash chain result, hash chain).
    pub sig_hash_chain: Option<OwnedChain>,
    /// (token, for a batch time stamp: (hash chain result, this record's hash chain)).
    pub timestamp: Option<(Vec<u8>, Option<OwnedChain>)>,
    /// The attachments, in order.
    pub attachments: Vec<Vec<u8>>,
}

impl LoggedRecord {
    /// The record's ASiC-E container (X-Road's message-log layout).
    pub fn container(&self) -> Result<Vec<u8>, musubi_protocol::asic::AsicError> {
        let attachments: Vec<&[u8]> = self.attachments.iter().map(Vec::as_slice).collect();
        musubi_protocol::asic::build_message_container(&musubi_protocol::asic::MessageRecord {
            message: &self.message,
            signature: &self.signature,
            sig_hash_chain: self.sig_hash_chain.as_ref().map(|(a, b)| (a.as_slice(), b.as_slice())),
            timestamp: self
                .timestamp
                .as_ref()
                .map(|(t, b)| (t.as_slice(), b.as_ref().map(|(x, y)| (x.as_slice(), y.as_slice())))),
            attachments: &attachments,
        })
    }
}

/// The columns and tables of a [`RecordRow`] (a macro, so queries stay literal SQL).
macro_rules! record_columns {
    () => {
        "m.id, m.client, m.direction, m.created_at, b.message, b.signature, b.hash_chain_result, b.hash_chain, \
         m.ts_hash_chain, b.attachments FROM message_log m JOIN message_log_body b ON b.record_id = m.id"
    };
}

/// One logged record as stored.
#[derive(sqlx::FromRow)]
struct RecordRow {
    id: i64,
    client: String,
    direction: String,
    created_at: String,
    message: Vec<u8>,
    signature: Vec<u8>,
    hash_chain_result: Option<Vec<u8>>,
    hash_chain: Option<Vec<u8>>,
    ts_hash_chain: Option<Vec<u8>>,
    attachments: Option<Vec<u8>>,
}

impl RecordRow {
    /// With its time stamp: (token, batch hash chain result).
    fn into_record(self, stamp: Option<TokenRow>) -> LoggedRecord {
        LoggedRecord {
            client: self.client,
            response: self.direction == "response",
            created_at: self.created_at,
            message: self.message,
            signature: self.signature,
            sig_hash_chain: self.hash_chain_result.zip(self.hash_chain),
            timestamp: stamp.map(|(token, result)| (token, result.zip(self.ts_hash_chain))),
            attachments: decode_attachments(self.attachments),
        }
    }
}

/// The attachments of a record logged before migration 0009, all in one column: for
/// each, its length (8 bytes, big-endian) and bytes. A damaged column yields the parts
/// before the damage.
fn decode_attachments(bytes: Option<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let Some(bytes) = bytes else { return out };
    let mut rest = bytes.as_slice();
    while let Some((len, tail)) = rest.split_first_chunk::<8>() {
        let Ok(len) = usize::try_from(u64::from_be_bytes(*len)) else { break };
        let Some((part, tail)) = tail.split_at_checked(len) else { break };
        out.push(part.to_vec());
        rest = tail;
    }
    out
}

/// A time stamp of a record: (token, the bytes its imprint covers).
pub type Stamp = (Vec<u8>, Vec<u8>);

/// The message log store.
#[derive(Debug, Clone)]
pub struct MessageLog {
    pool: AnyPool,
    writer: mpsc::Sender<Job>,
}

/// Why a record was not stored.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct WriteError(String);

/// A record on its way to the writer task, owned.
struct Row {
    query_id: String,
    client: String,
    service: String,
    side: &'static str,
    direction: &'static str,
    message: Vec<u8>,
    signature: Vec<u8>,
    hash_chain: Option<OwnedChain>,
    created_at: String,
    attachments: Vec<OwnedAttachment>,
}

impl Row {
    /// Bytes the row holds in memory (files are read chunk by chunk).
    fn bytes(&self) -> usize {
        let attachments: usize = self
            .attachments
            .iter()
            .map(|a| match a {
                OwnedAttachment::Bytes(b) => b.len(),
                OwnedAttachment::File(_) => 0,
            })
            .sum();
        self.message.len() + self.signature.len() + attachments
    }
}

struct Job {
    row: Row,
    done: oneshot::Sender<Result<(), WriteError>>,
}

/// Records marked time-stamped by one statement (two parameters each, well
/// under SQLite's limit of 32 766).
const MARK_PER_STATEMENT: usize = 500;

/// Most records, and most bytes, in one group commit.
const MAX_BATCH_RECORDS: usize = 256;
const MAX_BATCH_BYTES: usize = 32 * 1024 * 1024;

/// The writer task: takes every waiting record into one transaction, commits,
/// then answers each writer with the outcome.
async fn write_records(pool: AnyPool, sqlite: bool, mut jobs: mpsc::Receiver<Job>) {
    while let Some(first) = jobs.recv().await {
        let mut bytes = first.row.bytes();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_RECORDS && bytes < MAX_BATCH_BYTES {
            match jobs.try_recv() {
                Ok(job) => {
                    bytes += job.row.bytes();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        let outcome = insert_batch(&pool, sqlite, &batch).await.map_err(|e| WriteError(e.to_string()));
        for job in batch {
            let _ = job.done.send(outcome.clone());
        }
    }
}

/// A connection of its own with a transaction begun on it; [`finish`] ends it.
async fn begin(pool: &AnyPool) -> Result<PoolConnection<Any>, sqlx::Error> {
    begin_with(pool, "BEGIN").await
}

async fn begin_with(pool: &AnyPool, begin: &'static str) -> Result<PoolConnection<Any>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    sqlx::query(begin).execute(&mut *conn).await?;
    Ok(conn)
}

/// Commits `conn`'s transaction when `work` succeeded. Otherwise it rolls back
/// and closes the connection instead of returning it to the pool: after an I/O
/// error (a full disk) SQLite may already have rolled back, and no later work
/// may run inside a transaction left half open.
async fn finish<T>(mut conn: PoolConnection<Any>, work: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
    let result = match work {
        Ok(value) => sqlx::query("COMMIT").execute(&mut *conn).await.map(|_| value),
        Err(e) => Err(e),
    };
    if result.is_err() {
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        let _ = conn.close().await;
    }
    result
}

/// One group commit. In SQLite the transaction takes the write lock at once
/// (`BEGIN IMMEDIATE`), so the ids read at its start stay free until it commits.
async fn insert_batch(pool: &AnyPool, sqlite: bool, batch: &[Job]) -> Result<(), sqlx::Error> {
    let mut conn = begin_with(pool, if sqlite { "BEGIN IMMEDIATE" } else { "BEGIN" }).await?;
    let work = insert_records(&mut conn, sqlite, batch).await;
    finish(conn, work).await
}

/// `n` ids for new records: the next ones after the highest ever used
/// (SQLite, inside the write lock), or from the id sequence (PostgreSQL,
/// where several security servers may share the log).
async fn reserve_ids(conn: &mut sqlx::AnyConnection, sqlite: bool, n: usize) -> Result<Vec<i64>, sqlx::Error> {
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    if sqlite {
        // AUTOINCREMENT never reuses an id, not even one of a deleted record.
        let last: i64 = sqlx::query_scalar(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'message_log'), 0), \
             COALESCE((SELECT MAX(id) FROM message_log), 0))",
        )
        .fetch_one(&mut *conn)
        .await?;
        Ok((last + 1..=last + n).collect())
    } else {
        sqlx::query_scalar(
            "SELECT nextval(pg_get_serial_sequence('message_log', 'id')) FROM generate_series(1, CAST($1 AS INTEGER))",
        )
        .bind(n)
        .fetch_all(&mut *conn)
        .await
    }
}

/// `($1, …), ($n, …)`: the placeholders of `rows` rows of `columns` parameters each.
fn values(rows: usize, columns: usize) -> String {
    let row = |r: usize| {
        let params: Vec<String> = (1..=columns).map(|c| format!("${}", r * columns + c)).collect();
        format!("({})", params.join(", "))
    };
    (0..rows).map(row).collect::<Vec<_>>().join(", ")
}

/// Rows per multi-row insert: few statements per batch, each small to
/// prepare (SQLite compiles a long VALUES list into a large program).
const ROWS_PER_INSERT: usize = 32;

/// The batch: records, then their bodies, [`ROWS_PER_INSERT`] rows per
/// statement, then the attachments.
async fn insert_records(conn: &mut sqlx::AnyConnection, sqlite: bool, batch: &[Job]) -> Result<(), sqlx::Error> {
    let ids = reserve_ids(conn, sqlite, batch.len()).await?;
    for (ids, jobs) in ids.chunks(ROWS_PER_INSERT).zip(batch.chunks(ROWS_PER_INSERT)) {
        // Statements of a full chunk or a few rows are kept prepared; one for
        // every other size would crowd each connection's statement cache.
        let keep = jobs.len() == ROWS_PER_INSERT || jobs.len() <= 4;
        let sql = format!(
            "INSERT INTO message_log (id, query_id, client, service, side, direction, created_at) VALUES {}",
            values(jobs.len(), 7)
        );
        let mut records = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(keep);
        for (id, Job { row: r, .. }) in ids.iter().zip(jobs) {
            records = records
                .bind(*id)
                .bind(&r.query_id)
                .bind(&r.client)
                .bind(&r.service)
                .bind(r.side)
                .bind(r.direction)
                .bind(&r.created_at);
        }
        records.execute(&mut *conn).await?;
        let sql = format!(
            "INSERT INTO message_log_body (record_id, signature, hash_chain_result, hash_chain, message) VALUES {}",
            values(jobs.len(), 5)
        );
        let mut bodies = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(keep);
        for (id, Job { row: r, .. }) in ids.iter().zip(jobs) {
            bodies = bodies
                .bind(*id)
                .bind(&r.signature)
                .bind(r.hash_chain.as_ref().map(|(result, _)| result))
                .bind(r.hash_chain.as_ref().map(|(_, chain)| chain))
                .bind(&r.message);
        }
        bodies.execute(&mut *conn).await?;
    }
    for (id, Job { row: r, .. }) in ids.iter().zip(batch) {
        for (part, a) in (1i64..).zip(&r.attachments) {
            insert_attachment(conn, *id, part, a).await?;
        }
    }
    Ok(())
}

/// Stores one attachment in rows of at most [`CHUNK_BYTES`] (one row if empty);
/// a file is read one chunk at a time.
async fn insert_attachment(
    conn: &mut sqlx::AnyConnection,
    id: i64,
    part: i64,
    a: &OwnedAttachment,
) -> Result<(), sqlx::Error> {
    let insert = |seq: i64, data: &[u8]| {
        sqlx::query("INSERT INTO message_log_attachment (record_id, part, seq, data) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(part)
            .bind(seq)
            .bind(data.to_vec())
    };
    match a {
        OwnedAttachment::Bytes(b) => {
            let mut chunks: Vec<&[u8]> = b.chunks(CHUNK_BYTES).collect();
            if chunks.is_empty() {
                chunks.push(&[]);
            }
            for (seq, chunk) in (0i64..).zip(chunks) {
                insert(seq, chunk).execute(&mut *conn).await?;
            }
        }
        OwnedAttachment::File(path) => {
            use tokio::io::AsyncReadExt as _;
            let mut file = tokio::fs::File::open(path).await?;
            let mut chunk = vec![0u8; CHUNK_BYTES];
            for seq in 0i64.. {
                let mut filled = 0;
                while filled < CHUNK_BYTES {
                    let n = file.read(&mut chunk[filled..]).await?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                if filled == 0 && seq > 0 {
                    break;
                }
                insert(seq, &chunk[..filled]).execute(&mut *conn).await?;
                if filled < CHUNK_BYTES {
                    break;
                }
            }
        }
    }
    Ok(())
}

impl MessageLog {
    /// Opens (creating if needed) the SQLite log at `path` and runs migrations.
    pub async fn open(path: &Path) -> Result<Self, sqlx::Error> {
        Self::connect(&format!("sqlite://{}?mode=rwc", path.display())).await
    }

    /// Opens the log at a database URL — `sqlite://FILE?mode=rwc` or
    /// `postgres://…` — and runs that backend's migrations (the same schema
    /// versions in each dialect). SQLite runs in WAL mode with `synchronous=FULL`.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        if let Some(file) = musubi_admin::files::sqlite_file(url) {
            musubi_admin::files::private_file(file).map_err(sqlx::Error::Io)?;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 4 } else { 8 })
            // An unreachable store fails the exchange with a clear fault soon,
            // rather than holding the client until it gives up.
            .acquire_timeout(std::time::Duration::from_secs(5))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if sqlite {
                        sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA synchronous = FULL").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA busy_timeout = 5000").execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        if sqlite {
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        } else {
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        }
        let (writer, jobs) = mpsc::channel(MAX_BATCH_RECORDS * 4);
        tokio::spawn(write_records(pool.clone(), sqlite, jobs));
        Ok(Self { pool, writer })
    }

    /// The connection pool (the server configuration shares the database).
    pub(crate) fn pool(&self) -> AnyPool {
        self.pool.clone()
    }

    /// Stores one record; returns only once it is durable (committed
    /// together with the other records waiting at the time).
    pub async fn write(&self, r: &Record<'_>) -> Result<(), WriteError> {
        let created_at =
            time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        let row = Row {
            query_id: r.query_id.to_owned(),
            client: r.client.to_owned(),
            service: r.service.to_owned(),
            side: match r.side {
                Side::Client => "client",
                Side::Server => "server",
            },
            direction: if r.response { "response" } else { "request" },
            message: r.message.to_vec(),
            signature: r.signature.to_vec(),
            hash_chain: r.hash_chain.map(|(result, chain)| (result.to_vec(), chain.to_vec())),
            created_at,
            attachments: r
                .attachments
                .iter()
                .map(|a| match a {
                    Attachment::Bytes(b) => OwnedAttachment::Bytes(b.to_vec()),
                    Attachment::File(p) => OwnedAttachment::File(p.to_path_buf()),
                })
                .collect(),
        };
        let (done, answer) = oneshot::channel();
        let stopped = || WriteError("the message log is closed".into());
        self.writer.send(Job { row, done }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// (direction, message) of every record of `query_id`, oldest first.
    pub async fn find(&self, query_id: &str) -> Result<Vec<(String, Vec<u8>)>, sqlx::Error> {
        sqlx::query_as(
            "SELECT m.direction, b.message FROM message_log m JOIN message_log_body b ON b.record_id = m.id \
             WHERE m.query_id = $1 ORDER BY m.id",
        )
        .bind(query_id)
        .fetch_all(&self.pool)
        .await
    }

    /// Records matching `f`, newest first, at most `f.limit` (≤ 500): for
    /// finding a message by time, client, service or query id.
    pub async fn search(&self, f: &Search) -> Result<Vec<Found>, sqlx::Error> {
        let rows: Vec<FoundRow> = sqlx::query_as(
            "SELECT id, query_id, client, service, side, direction, created_at, timestamp_id FROM message_log \
             WHERE (CAST($1 AS TEXT) IS NULL OR query_id = $1) AND (CAST($2 AS TEXT) IS NULL OR client = $2) \
             AND (CAST($3 AS TEXT) IS NULL OR service = $3) AND (CAST($4 AS TEXT) IS NULL OR created_at >= $4) \
             AND (CAST($5 AS TEXT) IS NULL OR created_at <= $5) ORDER BY id DESC LIMIT $6",
        )
        .bind(f.query_id.as_deref())
        .bind(f.client.as_deref())
        .bind(f.service.as_deref())
        .bind(f.from.as_deref())
        .bind(f.to.as_deref())
        .bind(f.limit.clamp(1, 500))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, query_id, client, service, side, direction, created_at, stamp)| Found {
                id,
                query_id,
                client,
                service,
                side,
                response: direction == "response",
                created_at,
                time_stamped: stamp.is_some(),
            })
            .collect())
    }

    /// How many records wait for a time stamp.
    pub async fn unstamped_count(&self) -> Result<i64, sqlx::Error> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM message_log WHERE timestamp_id IS NULL").fetch_one(&self.pool).await?;
        Ok(n)
    }

    /// Up to `limit` records without a time stamp, oldest first: (id, signature).
    pub async fn unstamped(&self, limit: i64) -> Result<Vec<(i64, Vec<u8>)>, sqlx::Error> {
        sqlx::query_as(
            "SELECT m.id, b.signature FROM message_log m JOIN message_log_body b ON b.record_id = m.id \
             WHERE m.timestamp_id IS NULL ORDER BY m.id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// Stores a time stamp and marks the records it covers, in one transaction.
    /// `records` are (record id, the record's time-stamp hash chain for a batch).
    pub async fn save_timestamp(
        &self,
        token: &[u8],
        stamped: &[u8],
        hash_chain_result: Option<&[u8]>,
        records: &[(i64, Option<Vec<u8>>)],
    ) -> Result<(), sqlx::Error> {
        let now =
            time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        let mut conn = begin(&self.pool).await?;
        let work: Result<(), sqlx::Error> = async {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO timestamps (token, stamped, hash_chain_result, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(token)
        .bind(stamped)
        .bind(hash_chain_result)
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
        // Many records per statement (a statement is a round trip to the
        // database, for SQLite through sqlx's worker thread).
        for chunk in records.chunks(MARK_PER_STATEMENT) {
            let rows: Vec<String> = (0..chunk.len()).map(|i| format!("(${}, ${})", 2 * i + 2, 2 * i + 3)).collect();
            let sql = format!(
                "UPDATE message_log SET timestamp_id = $1, ts_hash_chain = v.column2 \
                 FROM (VALUES {}) AS v WHERE message_log.id = v.column1",
                rows.join(", ")
            );
            let mut update = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id);
            for (record, chain) in chunk {
                update = update.bind(*record).bind(chain.as_deref());
            }
            update.execute(&mut *conn).await?;
        }
            Ok(())
        }
        .await;
        finish(conn, work).await
    }

    /// The time stamps of the records of `query_id`: (token, stamped data), one
    /// entry per record, `None` while a record waits for its time stamp.
    pub async fn timestamps_of(&self, query_id: &str) -> Result<Vec<Option<Stamp>>, sqlx::Error> {
        type Row = (Option<Vec<u8>>, Option<Vec<u8>>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT t.token, t.stamped FROM message_log m LEFT JOIN timestamps t ON t.id = m.timestamp_id \
             WHERE m.query_id = $1 ORDER BY m.id",
        )
        .bind(query_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(t, s)| t.zip(s)).collect())
    }

    /// Everything needed to build the containers of `query_id`'s records.
    pub async fn archived_records(&self, query_id: &str) -> Result<Vec<LoggedRecord>, sqlx::Error> {
        let rows: Vec<RecordRow> =
            sqlx::query_as(concat!("SELECT ", record_columns!(), " WHERE m.query_id = $1 ORDER BY m.id"))
                .bind(query_id)
                .fetch_all(&self.pool)
                .await?;
        let stamps = self.timestamps_full(query_id).await?;
        let mut out = Vec::with_capacity(rows.len());
        for (row, ts) in rows.into_iter().zip(stamps) {
            let id = row.id;
            out.push(self.with_attachments(id, row.into_record(ts)).await?);
        }
        Ok(out)
    }

    /// The record with its attachments from their chunks (records logged
    /// before migration 0009 have theirs in one column and no chunks).
    async fn with_attachments(&self, id: i64, mut record: LoggedRecord) -> Result<LoggedRecord, sqlx::Error> {
        let chunks: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT part, data FROM message_log_attachment WHERE record_id = $1 ORDER BY part, seq")
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
        if !chunks.is_empty() {
            record.attachments.clear();
            let mut last = 0;
            for (part, data) in chunks {
                if part != last {
                    record.attachments.push(Vec::new());
                    last = part;
                }
                if let Some(a) = record.attachments.last_mut() {
                    a.extend_from_slice(&data);
                }
            }
        }
        Ok(record)
    }

    async fn timestamps_full(&self, query_id: &str) -> Result<Vec<Option<TokenRow>>, sqlx::Error> {
        type Row = (Option<Vec<u8>>, Option<Vec<u8>>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT t.token, t.hash_chain_result FROM message_log m LEFT JOIN timestamps t ON t.id = m.timestamp_id \
             WHERE m.query_id = $1 ORDER BY m.id",
        )
        .bind(query_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(t, r)| t.map(|t| (t, r))).collect())
    }

    /// Up to `limit` time-stamped records not yet archived: (id, query id, record).
    pub async fn archivable(&self, limit: i64) -> Result<Vec<(i64, String, LoggedRecord)>, sqlx::Error> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT m.id, m.query_id FROM message_log m \
             WHERE m.timestamp_id IS NOT NULL AND m.archive_file IS NULL ORDER BY m.id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, query_id) in rows {
            let row: RecordRow = sqlx::query_as(concat!("SELECT ", record_columns!(), " WHERE m.id = $1"))
                .bind(id)
                .fetch_one(&self.pool)
                .await?;
            let stamp: TokenRow = sqlx::query_as(
                "SELECT t.token, t.hash_chain_result FROM message_log m JOIN timestamps t ON t.id = m.timestamp_id WHERE m.id = $1",
            )
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
            out.push((id, query_id, self.with_attachments(id, row.into_record(Some(stamp))).await?));
        }
        Ok(out)
    }

    /// The last linking digest and file of an archive group.
    pub async fn archive_link(&self, group: &str) -> Result<Option<(String, String)>, sqlx::Error> {
        sqlx::query_as("SELECT last_digest, last_file FROM archive_digests WHERE group_key = $1")
            .bind(group)
            .fetch_optional(&self.pool)
            .await
    }

    /// Records that `records` went into `file`, whose last digest is `digest`.
    pub async fn mark_archived(
        &self,
        group: &str,
        file: &str,
        digest: &str,
        records: &[i64],
    ) -> Result<(), sqlx::Error> {
        let mut conn = begin(&self.pool).await?;
        let work: Result<(), sqlx::Error> = async {
            for id in records {
                sqlx::query("UPDATE message_log SET archive_file = $1 WHERE id = $2")
                    .bind(file)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO archive_digests (group_key, last_digest, last_file) VALUES ($1, $2, $3) \
             ON CONFLICT (group_key) DO UPDATE SET last_digest = excluded.last_digest, last_file = excluded.last_file",
            )
            .bind(group)
            .bind(digest)
            .bind(file)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }
        .await;
        finish(conn, work).await
    }

    /// Deletes archived records logged before `before` (RFC 3339); returns how many.
    pub async fn delete_archived_before(&self, before: &str) -> Result<u64, sqlx::Error> {
        let mut conn = begin(&self.pool).await?;
        let work: Result<u64, sqlx::Error> = async {
            for table in ["message_log_attachment", "message_log_body"] {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE record_id IN \
                     (SELECT id FROM message_log WHERE archive_file IS NOT NULL AND created_at < $1)"
                )))
                .bind(before)
                .execute(&mut *conn)
                .await?;
            }
            let done = sqlx::query("DELETE FROM message_log WHERE archive_file IS NOT NULL AND created_at < $1")
                .bind(before)
                .execute(&mut *conn)
                .await?;
            Ok(done.rows_affected())
        }
        .await;
        let done = finish(conn, work).await?;
        sqlx::query("DELETE FROM timestamps WHERE id NOT IN (SELECT timestamp_id FROM message_log WHERE timestamp_id IS NOT NULL)")
            .execute(&self.pool)
            .await?;
        Ok(done)
    }

    /// Number of records of `query_id` that are archived.
    pub async fn archived_count(&self, query_id: &str) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM message_log WHERE query_id = $1 AND archive_file IS NOT NULL")
            .bind(query_id)
            .fetch_one(&self.pool)
            .await
    }

    /// Closes the pool, flushing the log.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
