//! Backup and restore of a security server: its configuration file, its state
//! folder (the token's keys, certificates, admin API keys and users, saved OCSP
//! responses and global configuration), the files its configuration names
//! outside that folder, and the message log (SQLite: a consistent copy taken
//! while the server runs, by `VACUUM INTO`).
//!
//! The backup is one file, encrypted and authenticated as a whole with a key
//! derived from a passphrase (Argon2id, then AES-256-GCM over 1 MiB chunks,
//! each bound to its position and to whether it is the last, so that a
//! reordered, cut or altered backup is refused). The token's keys inside are
//! also still encrypted with the token PIN, which the backup does not hold.
//!
//! Inside, after decryption: entries, each a JSON header line
//! (`{"kind":…,"path":…,"mode":…,"size":…}`) and `size` bytes, closed by an
//! `end` entry that counts them.

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};

use ring::aead;
use serde::{Deserialize, Serialize};

use crate::conf::ServerConf;

const MAGIC: &[u8; 16] = b"MUSUBI-BACKUP-1\n";
const CHUNK: usize = 1024 * 1024;
const TAG: usize = 16;
/// Argon2id costs of new backups: 64 MiB, 3 passes, 1 lane.
const ARGON2: (u32, u32, u32) = (64 * 1024, 3, 1);
/// Most an entry's header line may be.
const MAX_HEADER: usize = 4096;
/// Most entries one backup may hold.
const MAX_ENTRIES: usize = 1_000_000;
/// Shortest passphrase taken.
pub const MIN_PASSPHRASE: usize = 12;
/// Where a restore decrypts the backup before it places anything: a folder in
/// the state folder, removed afterwards.
const STAGING: &str = ".restoring";

/// Why a backup or restore failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// Reading or writing a file failed.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
    /// The file is not a Musubi backup.
    #[error("not a Musubi backup (no MUSUBI-BACKUP-1 header)")]
    NotABackup,
    /// Decryption failed: a wrong passphrase, or a damaged or altered file.
    #[error("the passphrase is wrong, or the backup is damaged or altered (chunk {0} does not authenticate)")]
    Authentication(u64),
    /// The backup ends before its last chunk.
    #[error("the backup is cut short (no final chunk)")]
    Truncated,
    /// The decrypted content is not what a backup holds.
    #[error("the backup's content is malformed: {0}")]
    Format(String),
    /// The passphrase is unusable.
    #[error("the passphrase: {0}")]
    Passphrase(String),
    /// The restore would overwrite or escape what it may touch.
    #[error("{0}")]
    Refused(String),
    /// The message log could not be copied.
    #[error("copying the message log: {0}")]
    Database(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |error| BackupError::Io { path: path.to_path_buf(), error }
}

#[derive(Serialize, Deserialize, Debug)]
struct Header {
    kind: Kind,
    #[serde(default)]
    path: String,
    #[serde(default)]
    mode: u32,
    #[serde(default)]
    size: u64,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Kind {
    /// The configuration file (TOML).
    Config,
    /// A file of the state folder, by its path inside it.
    State,
    /// A file the configuration names outside the state folder, by its absolute path.
    File,
    /// The SQLite message log.
    Database,
    /// The end, with the number of entries before it in `size`.
    End,
}

fn key(passphrase: &[u8], salt: &[u8], (m, t, p): (u32, u32, u32)) -> Result<aead::LessSafeKey, BackupError> {
    let params = argon2::Params::new(m, t, p, Some(32)).map_err(|e| BackupError::Format(e.to_string()))?;
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(passphrase, salt, bytes.as_mut())
        .map_err(|e| BackupError::Passphrase(e.to_string()))?;
    let unbound =
        aead::UnboundKey::new(&aead::AES_256_GCM, bytes.as_ref()).map_err(|_| BackupError::Format("key".into()))?;
    Ok(aead::LessSafeKey::new(unbound))
}

fn nonce(prefix: &[u8; 7], counter: u64, last: bool) -> aead::Nonce {
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(prefix);
    // 32 bits of counter: 4 PiB of 1 MiB chunks.
    n[7..11].copy_from_slice(&(counter as u32).to_be_bytes());
    n[11] = u8::from(last);
    aead::Nonce::assume_unique_for_key(n)
}

/// Encrypts what is written to it, chunk by chunk, into `out`.
struct Sealer<W: Write> {
    out: W,
    key: aead::LessSafeKey,
    prefix: [u8; 7],
    counter: u64,
    buf: Vec<u8>,
}

impl<W: Write> Sealer<W> {
    fn new(mut out: W, passphrase: &[u8]) -> std::io::Result<Self> {
        let rng = ring::rand::SystemRandom::new();
        let mut salt = [0u8; 16];
        let mut prefix = [0u8; 7];
        ring::rand::SecureRandom::fill(&rng, &mut salt).map_err(|_| std::io::Error::other("no randomness"))?;
        ring::rand::SecureRandom::fill(&rng, &mut prefix).map_err(|_| std::io::Error::other("no randomness"))?;
        let key = key(passphrase, &salt, ARGON2).map_err(std::io::Error::other)?;
        out.write_all(MAGIC)?;
        out.write_all(&salt)?;
        for v in [ARGON2.0, ARGON2.1, ARGON2.2] {
            out.write_all(&v.to_be_bytes())?;
        }
        out.write_all(&prefix)?;
        Ok(Self { out, key, prefix, counter: 0, buf: Vec::with_capacity(CHUNK + TAG) })
    }

    fn seal(&mut self, last: bool) -> std::io::Result<()> {
        let n = nonce(&self.prefix, self.counter, last);
        self.key
            .seal_in_place_append_tag(n, aead::Aad::empty(), &mut self.buf)
            .map_err(|_| std::io::Error::other("encryption failed"))?;
        self.out.write_all(&(self.buf.len() as u32).to_be_bytes())?;
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.counter += 1;
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<W> {
        self.seal(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for Sealer<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.seal(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Decrypts a backup as it is read.
struct Opener<R: Read> {
    input: R,
    key: aead::LessSafeKey,
    prefix: [u8; 7],
    counter: u64,
    plain: Vec<u8>,
    at: usize,
    done: bool,
}

impl<R: Read> Opener<R> {
    fn new(mut input: R, passphrase: &[u8]) -> Result<Self, BackupError> {
        let mut head = [0u8; 16 + 16 + 12 + 7];
        input.read_exact(&mut head).map_err(|_| BackupError::NotABackup)?;
        if &head[..16] != MAGIC {
            return Err(BackupError::NotABackup);
        }
        let word = |i: usize| u32::from_be_bytes([head[32 + i], head[33 + i], head[34 + i], head[35 + i]]);
        let (m, t, p) = (word(0), word(4), word(8));
        // Costs a backup may ask of the machine restoring it: at most 1 GiB, 16 passes, 16 lanes.
        if m > 1024 * 1024 || t > 16 || p > 16 {
            return Err(BackupError::Format(format!("Argon2 costs m={m} t={t} p={p} are beyond what is taken")));
        }
        let key = key(passphrase, &head[16..32], (m, t, p))?;
        let mut prefix = [0u8; 7];
        prefix.copy_from_slice(&head[44..51]);
        Ok(Self { input, key, prefix, counter: 0, plain: Vec::new(), at: 0, done: false })
    }

    fn next_chunk(&mut self) -> Result<(), BackupError> {
        let mut len = [0u8; 4];
        if let Err(e) = self.input.read_exact(&mut len) {
            return Err(if e.kind() == std::io::ErrorKind::UnexpectedEof {
                BackupError::Truncated
            } else {
                BackupError::Io { path: PathBuf::from("(backup)"), error: e }
            });
        }
        let len = u32::from_be_bytes(len) as usize;
        if !(TAG..=CHUNK + TAG).contains(&len) {
            return Err(BackupError::Authentication(self.counter));
        }
        self.plain.resize(len, 0);
        self.input.read_exact(&mut self.plain).map_err(|_| BackupError::Truncated)?;
        // A chunk opens either as a middle chunk or as the last one.
        let mut copy = self.plain.clone();
        let opened = self
            .key
            .open_in_place(nonce(&self.prefix, self.counter, false), aead::Aad::empty(), &mut self.plain)
            .map(|p| p.len());
        let n = match opened {
            Ok(n) => n,
            Err(_) => {
                let n = self
                    .key
                    .open_in_place(nonce(&self.prefix, self.counter, true), aead::Aad::empty(), &mut copy)
                    .map_err(|_| BackupError::Authentication(self.counter))?
                    .len();
                self.plain = copy;
                self.done = true;
                n
            }
        };
        self.plain.truncate(n);
        self.at = 0;
        self.counter += 1;
        Ok(())
    }

    fn read_exact_plain(&mut self, mut out: &mut [u8]) -> Result<(), BackupError> {
        while !out.is_empty() {
            if self.at == self.plain.len() {
                if self.done {
                    return Err(BackupError::Format("an entry goes past the end".into()));
                }
                self.next_chunk()?;
                continue;
            }
            let n = out.len().min(self.plain.len() - self.at);
            out[..n].copy_from_slice(&self.plain[self.at..self.at + n]);
            self.at += n;
            out = &mut out[n..];
        }
        Ok(())
    }

    fn read_line(&mut self) -> Result<String, BackupError> {
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        loop {
            self.read_exact_plain(&mut b)?;
            if b[0] == b'\n' {
                break;
            }
            line.push(b[0]);
            if line.len() > MAX_HEADER {
                return Err(BackupError::Format("an entry header is longer than 4 KiB".into()));
            }
        }
        String::from_utf8(line).map_err(|_| BackupError::Format("an entry header is not UTF-8".into()))
    }
}

/// The backup passphrase: from `file` (readable by its owner and group only;
/// the whole file, less one final newline), or else `MUSUBI_BACKUP_PASSPHRASE`.
pub fn passphrase(file: Option<&Path>) -> Result<zeroize::Zeroizing<String>, BackupError> {
    let text = musubi_admin::conffile::secret(file, "MUSUBI_BACKUP_PASSPHRASE")
        .map_err(|e| BackupError::Passphrase(e.to_string()))?
        .ok_or_else(|| {
            BackupError::Passphrase("give it with --passphrase-file FILE or MUSUBI_BACKUP_PASSPHRASE".into())
        })?;
    if text.chars().count() < MIN_PASSPHRASE {
        return Err(BackupError::Passphrase(format!("at least {MIN_PASSPHRASE} characters")));
    }
    Ok(text)
}

/// What a backup holds, for the report.
#[derive(Debug, Default)]
pub struct Summary {
    /// Files from the state folder and the configuration.
    pub files: usize,
    /// Bytes of the message log's copy (0 without one).
    pub database_bytes: u64,
    /// Notes for the operator (what is not in the backup).
    pub notes: Vec<String>,
}

/// Files named by the configuration outside its state folder.
fn named_files(conf: &ServerConf) -> Vec<PathBuf> {
    let mut v = vec![conf.token_dir.clone(), conf.auth_cert.clone()];
    v.extend(conf.signing_keys.iter().map(|k| k.cert.clone()));
    v.extend(conf.configuration_anchor.clone());
    v.extend(conf.global_conf.clone());
    v.extend(conf.provider_ca_file.clone());
    v.retain(|p| !p.as_os_str().is_empty() && !p.starts_with(&conf.state_dir));
    v
}

/// Every file under `root` (or `root` itself when it is a file), sorted by
/// path; symbolic links are not followed.
pub fn files_under(root: &Path) -> Result<Vec<PathBuf>, BackupError> {
    let mut out = Vec::new();
    walk(root, &[], &mut out)?;
    Ok(out)
}

fn walk(root: &Path, skip: &[PathBuf], out: &mut Vec<PathBuf>) -> Result<(), BackupError> {
    let meta = std::fs::symlink_metadata(root).map_err(io(root))?;
    if meta.is_file() {
        out.push(root.to_path_buf());
        return Ok(());
    }
    if !meta.is_dir() {
        return Ok(());
    }
    let mut entries: Vec<_> =
        std::fs::read_dir(root).map_err(io(root))?.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if !skip.contains(&p) {
            walk(&p, skip, out)?;
        }
    }
    Ok(())
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).map(|m| m.permissions().mode() & 0o777).unwrap_or(0o600)
}

fn entry(w: &mut impl Write, kind: Kind, path: &str, mode: u32, file: &Path) -> Result<u64, BackupError> {
    let mut f = std::fs::File::open(file).map_err(io(file))?;
    let size = f.metadata().map_err(io(file))?.len();
    let header = serde_json::to_string(&Header { kind, path: path.to_string(), mode, size })
        .map_err(|e| BackupError::Format(e.to_string()))?;
    let werr = |e| BackupError::Io { path: PathBuf::from("(backup)"), error: e };
    w.write_all(header.as_bytes()).map_err(werr)?;
    w.write_all(b"\n").map_err(werr)?;
    let copied = std::io::copy(&mut (&mut f).take(size), w).map_err(io(file))?;
    if copied != size {
        return Err(BackupError::Format(format!("{} changed size while it was read", file.display())));
    }
    Ok(size)
}

/// Writes a backup of the server configured by `config_file` to `out`,
/// encrypted with `passphrase`. Safe while the server runs: the message log
/// (SQLite) is copied by `VACUUM INTO`, a consistent snapshot.
pub async fn backup(config_file: &Path, out: &Path, passphrase: &str) -> Result<Summary, BackupError> {
    if passphrase.chars().count() < MIN_PASSPHRASE {
        return Err(BackupError::Passphrase(format!("at least {MIN_PASSPHRASE} characters")));
    }
    let loaded = crate::conf::load(config_file, std::env::vars())
        .map_err(|e| BackupError::Refused(format!("the configuration: {e}")))?;
    let node = crate::setup::Node::new(loaded.table.clone())
        .map_err(|e| BackupError::Refused(format!("the configuration: {e}")))?;
    let conf = if node.is_complete() {
        node.server_conf().map_err(|e| BackupError::Refused(e.to_string()))?
    } else {
        loaded.value
    };
    let mut summary = Summary::default();
    // The message log's snapshot, beside the output while it is written.
    let snapshot = out.with_extension("messagelog.tmp");
    let _ = std::fs::remove_file(&snapshot);
    let postgres = std::env::var_os("MUSUBI_DATABASE_URL").is_some() || conf.database_url.is_some();
    if postgres {
        summary
            .notes
            .push("the message log is in PostgreSQL: back it up with pg_dump (it is not in this backup)".to_string());
    } else if conf.database.exists() {
        sqlite_snapshot(&conf.database, &snapshot).await?;
    }
    let file =
        std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(out).map_err(io(out))?;
    let mut w = Sealer::new(std::io::BufWriter::new(file), passphrase.as_bytes()).map_err(io(out))?;
    let result = (|| {
        let mut n = 0u64;
        entry(&mut w, Kind::Config, "config.toml", 0o640, config_file)?;
        n += 1;
        let db = &conf.database;
        let skip: Vec<PathBuf> = vec![
            conf.state_dir.join("spool"),
            conf.state_dir.join(STAGING),
            out.to_path_buf(),
            snapshot.clone(),
            db.clone(),
            PathBuf::from(format!("{}-wal", db.display())),
            PathBuf::from(format!("{}-shm", db.display())),
            PathBuf::from(format!("{}-journal", db.display())),
        ];
        let mut files = Vec::new();
        if conf.state_dir.exists() {
            walk(&conf.state_dir, &skip, &mut files)?;
        }
        for f in &files {
            let rel = f.strip_prefix(&conf.state_dir).unwrap_or(f).to_string_lossy().into_owned();
            entry(&mut w, Kind::State, &rel, mode_of(f), f)?;
            n += 1;
        }
        for named in named_files(&conf) {
            let mut found = Vec::new();
            if named.exists() {
                walk(&named, &skip, &mut found)?;
            }
            for f in found {
                entry(&mut w, Kind::File, &f.to_string_lossy(), mode_of(&f), &f)?;
                n += 1;
            }
        }
        summary.files = n as usize;
        if snapshot.exists() {
            summary.database_bytes = entry(&mut w, Kind::Database, "messagelog.sqlite", 0o600, &snapshot)?;
            n += 1;
        }
        let end = serde_json::to_string(&Header { kind: Kind::End, path: String::new(), mode: 0, size: n })
            .map_err(|e| BackupError::Format(e.to_string()))?;
        w.write_all(end.as_bytes()).and_then(|()| w.write_all(b"\n")).map_err(io(out))?;
        Ok::<_, BackupError>(())
    })();
    let _ = std::fs::remove_file(&snapshot);
    if let Err(e) = result {
        let _ = std::fs::remove_file(out);
        return Err(e);
    }
    let file = w.finish().map_err(io(out))?;
    file.into_inner()
        .map_err(|e| BackupError::Io { path: out.to_path_buf(), error: e.into_error() })?
        .sync_all()
        .map_err(io(out))?;
    if conf.pin_file.is_some() || std::env::var_os("MUSUBI_TOKEN_PIN").is_some() {
        summary.notes.push("the token PIN is not in the backup: keep it apart; the restored keys need it".into());
    }
    if let Some(a) = &conf.archive_dir
        && !a.starts_with(&conf.state_dir)
    {
        summary.notes.push(format!("archive files in {} are not in the backup", a.display()));
    }
    Ok(summary)
}

async fn sqlite_snapshot(db: &Path, to: &Path) -> Result<(), BackupError> {
    use sqlx::ConnectOptions as _;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(db).read_only(true);
    let mut conn = options.connect().await.map_err(|e| BackupError::Database(e.to_string()))?;
    let target = to.to_str().ok_or_else(|| BackupError::Database("the output path is not UTF-8".into()))?;
    // The plain copy is the owner's alone while it exists (VACUUM INTO fills an empty file).
    std::fs::OpenOptions::new().create_new(true).write(true).mode(0o600).open(to).map_err(io(to))?;
    sqlx::query("VACUUM INTO ?")
        .bind(target)
        .execute(&mut conn)
        .await
        .map_err(|e| BackupError::Database(e.to_string()))?;
    Ok(())
}

/// A relative path inside a folder: no root, no `..`.
fn inside(root: &Path, rel: &str) -> Result<PathBuf, BackupError> {
    let p = Path::new(rel);
    if rel.is_empty() || p.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(BackupError::Format(format!("the state path {rel:?} is not a plain relative path")));
    }
    Ok(root.join(p))
}

/// Restores the backup `from` onto the server configured by `config_file`,
/// which must be stopped and fresh (an empty state folder, no message log),
/// unless `force`. Files go where the current configuration puts them (state
/// folder, database); files the backed-up configuration named outside its
/// state folder go back to their paths. The backed-up configuration, when it
/// differs from the current one, is written beside it as `FILE.from-backup`.
pub fn restore(config_file: &Path, from: &Path, passphrase: &str, force: bool) -> Result<Summary, BackupError> {
    let loaded = crate::conf::load(config_file, std::env::vars())
        .map_err(|e| BackupError::Refused(format!("the configuration: {e}")))?;
    let conf = loaded.value;
    let state = conf.state_dir.clone();
    // The staging folder, inside the state folder (the server's user may not
    // write beside it: /var/lib/musubi is root's).
    let staging = state.join(STAGING);
    let held =
        std::fs::read_dir(&state).map(|d| d.filter_map(Result::ok).any(|e| e.file_name() != STAGING)).unwrap_or(false);
    if (held || conf.database.exists()) && !force {
        return Err(BackupError::Refused(format!(
            "{} or {} already holds a server: restore onto a fresh node (stop the server; --force replaces them)",
            state.display(),
            conf.database.display()
        )));
    }
    let input = std::fs::File::open(from).map_err(io(from))?;
    let mut r = Opener::new(std::io::BufReader::new(input), passphrase.as_bytes())?;
    // Decrypt into the staging folder first: nothing is replaced unless the whole backup authenticates.
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).map_err(io(&state))?;
    let result = unpack(&mut r, &staging);
    let placed = result.and_then(|(entries, old_conf)| place(&entries, &conf, config_file, &old_conf, force));
    let _ = std::fs::remove_dir_all(&staging);
    placed
}

struct Entry {
    kind: Kind,
    path: String,
    mode: u32,
    staged: PathBuf,
}

fn unpack<R: Read>(r: &mut Opener<R>, staging: &Path) -> Result<(Vec<Entry>, Option<ServerConf>), BackupError> {
    let mut entries = Vec::new();
    let mut old_conf = None;
    loop {
        let line = r.read_line()?;
        let h: Header = serde_json::from_str(&line).map_err(|e| BackupError::Format(format!("entry header: {e}")))?;
        if h.kind == Kind::End {
            if h.size != entries.len() as u64 {
                return Err(BackupError::Format(format!("{} entries, the end counts {}", entries.len(), h.size)));
            }
            break;
        }
        if entries.len() >= MAX_ENTRIES {
            return Err(BackupError::Format("more than a million entries".into()));
        }
        let staged = staging.join(format!("{}", entries.len()));
        let mut f = std::fs::File::create(&staged).map_err(io(&staged))?;
        let mut left = h.size;
        let mut buf = vec![0u8; 64 * 1024];
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            r.read_exact_plain(&mut buf[..n])?;
            f.write_all(&buf[..n]).map_err(io(&staged))?;
            left -= n as u64;
        }
        f.sync_all().map_err(io(&staged))?;
        if h.kind == Kind::Config {
            // The backed-up file, read as check-config reads it (settings the
            // state folder gives may be missing).
            let loaded = crate::conf::load(&staged, Vec::new())
                .map_err(|e| BackupError::Format(format!("the backed-up configuration: {e}")))?;
            old_conf = Some(loaded.value);
        }
        entries.push(Entry { kind: h.kind, path: h.path, mode: h.mode & 0o777, staged });
    }
    Ok((entries, old_conf))
}

fn place(
    entries: &[Entry],
    conf: &ServerConf,
    config_file: &Path,
    old_conf: &Option<ServerConf>,
    force: bool,
) -> Result<Summary, BackupError> {
    let mut summary = Summary::default();
    // Files outside the state folder may only go where the backed-up configuration named them.
    let allowed: Vec<PathBuf> = old_conf.as_ref().map(named_files).unwrap_or_default();
    if force {
        for old in std::fs::read_dir(&conf.state_dir).map_err(io(&conf.state_dir))?.filter_map(Result::ok) {
            if old.file_name() == STAGING {
                continue;
            }
            let path = old.path();
            let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            removed.map_err(io(&path))?;
        }
        for f in [conf.database.clone(), PathBuf::from(format!("{}-wal", conf.database.display()))] {
            let _ = std::fs::remove_file(f);
        }
    }
    std::fs::create_dir_all(&conf.state_dir).map_err(io(&conf.state_dir))?;
    std::fs::set_permissions(&conf.state_dir, std::fs::Permissions::from_mode(0o700)).map_err(io(&conf.state_dir))?;
    for e in entries {
        let target = match e.kind {
            Kind::State => inside(&conf.state_dir, &e.path)?,
            Kind::Database => conf.database.clone(),
            Kind::File => {
                let p = PathBuf::from(&e.path);
                let plain = p.is_absolute() && p.components().all(|c| !matches!(c, Component::ParentDir));
                if !plain || !allowed.iter().any(|a| p.starts_with(a)) {
                    return Err(BackupError::Refused(format!(
                        "the backup holds {}, which its configuration does not name; refused",
                        e.path
                    )));
                }
                p
            }
            Kind::Config => {
                let current = std::fs::read(config_file).map_err(io(config_file))?;
                let old = std::fs::read(&e.staged).map_err(io(&e.staged))?;
                if current != old {
                    // Beside the configuration, or (a folder the server's user
                    // may not write, as /etc/musubi) in the state folder.
                    let beside = PathBuf::from(format!("{}.from-backup", config_file.display()));
                    let kept = match std::fs::copy(&e.staged, &beside) {
                        Ok(_) => beside,
                        Err(_) => {
                            let inside = conf.state_dir.join("configuration.from-backup.toml");
                            std::fs::copy(&e.staged, &inside).map_err(io(&inside))?;
                            inside
                        }
                    };
                    summary.notes.push(format!(
                        "the backed-up configuration differs from {}: it is in {}",
                        config_file.display(),
                        kept.display()
                    ));
                }
                continue;
            }
            Kind::End => continue,
        };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::copy(&e.staged, &target).map_err(io(&target))?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(e.mode)).map_err(io(&target))?;
        if e.kind == Kind::Database {
            summary.database_bytes = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
        } else {
            summary.files += 1;
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_chunks_open_only_whole_in_order_and_with_the_passphrase() {
        let plain: Vec<u8> = (0..(CHUNK * 2 + 100)).map(|i| (i % 251) as u8).collect();
        let mut sealer = Sealer::new(Vec::new(), b"correct horse battery").unwrap();
        sealer.write_all(&plain).unwrap();
        let sealed = sealer.finish().unwrap();
        let mut opener = Opener::new(&sealed[..], b"correct horse battery").unwrap();
        let mut back = vec![0u8; plain.len()];
        opener.read_exact_plain(&mut back).unwrap();
        assert_eq!(back, plain);

        let wrong = Opener::new(&sealed[..], b"wrong horse battery!").unwrap().next_chunk();
        assert!(matches!(wrong, Err(BackupError::Authentication(0))), "{wrong:?}");
        // Cut after the first chunk: refused as truncated, not taken as whole.
        let first = MAGIC.len() + 16 + 12 + 7 + 4 + CHUNK + TAG;
        let mut cut = Opener::new(&sealed[..first], b"correct horse battery").unwrap();
        let mut all = vec![0u8; plain.len()];
        assert!(matches!(cut.read_exact_plain(&mut all), Err(BackupError::Truncated)));
        // One flipped bit anywhere in a chunk: refused.
        let mut altered = sealed.clone();
        let at = altered.len() - 5;
        altered[at] ^= 1;
        let mut o = Opener::new(&altered[..], b"correct horse battery").unwrap();
        assert!(o.read_exact_plain(&mut all).is_err());
        assert!(matches!(
            Opener::new(&b"not a backup at all, no sir, not at all"[..], b"x"),
            Err(BackupError::NotABackup)
        ));
    }

    #[test]
    fn state_paths_stay_inside_the_state_folder() {
        let root = Path::new("/var/lib/musubi/security-server");
        assert_eq!(inside(root, "token/keys/a.p8").unwrap(), root.join("token/keys/a.p8"));
        for bad in ["../etc/passwd", "/etc/passwd", "token/../../x", ""] {
            assert!(inside(root, bad).is_err(), "{bad}");
        }
    }
}
