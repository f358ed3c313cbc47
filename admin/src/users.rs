//! People who log in to the web UI: local users with X-Road's roles, their
//! password hashes (Argon2id, memory-hard), sessions with secure cookies and
//! a CSRF token each, a growing delay and a temporary lockout after failed
//! logins, and the one-time setup token that lets the person at the server
//! make the first user (in a file only the server's user reads; the log
//! names the file).
//!
//! Users are kept in `users` (JSON, mode 0600): name, roles and the PHC
//! string of the password hash. Sessions live in memory: a restart of the
//! process logs everyone out, which is what an operator expects of a
//! restarted server. Within one process they outlive the admin API that made
//! them, so the person running the setup wizard stays logged in when the
//! security server switches from its setup API to the running server.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::AdminError;
use crate::access::{Caller, Role};

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 10;
/// Longest password accepted (the KDF's input stays bounded).
pub const MAX_PASSWORD: usize = 256;
/// A session ends after this long without a request.
pub const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);
/// A session ends after this long in any case.
pub const SESSION_MAX: Duration = Duration::from_secs(12 * 60 * 60);
/// How long the setup token made at first start is valid.
pub const SETUP_TOKEN_VALID: Duration = Duration::from_secs(30 * 60);

/// The file in the admin folder that holds the setup token while no user
/// exists (readable by the server's user only; removed once it is used).
pub const SETUP_TOKEN_FILE: &str = "ui-setup-token";
/// Failed logins before each further attempt must wait.
const FREE_FAILURES: u32 = 3;
/// Failed logins in a row that lock the user name.
pub const LOCK_AFTER: u32 = 10;
/// How long a locked user name stays locked.
pub const LOCKED_FOR: Duration = Duration::from_secs(15 * 60);
/// Longest wait between attempts before the lock.
const MAX_DELAY: Duration = Duration::from_secs(60);
/// Most users kept.
const MAX_USERS: usize = 1000;
/// Most sessions at once (the oldest goes first).
const MAX_SESSIONS: usize = 10_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct User {
    id: u32,
    name: String,
    roles: Vec<Role>,
    hash: String,
}

#[derive(Debug, Clone)]
struct Session {
    caller: Caller,
    csrf: String,
    created: Instant,
    seen: Instant,
}

/// The setup token's hash and the end of its validity.
type SetupToken = ([u8; 32], Instant);

#[derive(Debug, Default, Clone, Copy)]
struct Failures {
    count: u32,
    not_before: Option<Instant>,
}

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginError {
    /// Wrong user name or password.
    Wrong,
    /// Too soon after failed attempts: wait this long.
    Wait(Duration),
    /// Locked after too many failures, for this much longer.
    Locked(Duration),
}

/// A started session: the cookie's value and the CSRF token.
#[derive(Debug, Clone)]
pub struct Started {
    /// The session cookie's value.
    pub token: String,
    /// What the UI sends back in `X-CSRF-Token` with every change.
    pub csrf: String,
    /// Who logged in.
    pub caller: Caller,
}

/// The users, sessions and login throttle of one admin API.
#[derive(Debug, Clone)]
pub struct Users {
    path: PathBuf,
    users: Arc<RwLock<Vec<User>>>,
    sessions: SessionMap,
    failures: FailureMap,
    setup: Arc<Mutex<Option<SetupToken>>>,
}

type SessionMap = Arc<Mutex<HashMap<[u8; 32], Session>>>;
type FailureMap = Arc<Mutex<HashMap<String, Failures>>>;

/// The sessions and login failures of each users file this process opened
/// (a handful of entries: one per admin API).
fn kept_for(path: &Path) -> (SessionMap, FailureMap) {
    static KEPT: std::sync::OnceLock<Mutex<HashMap<PathBuf, (SessionMap, FailureMap)>>> = std::sync::OnceLock::new();
    let key = std::fs::canonicalize(path.parent().unwrap_or(path)).unwrap_or_else(|_| path.to_path_buf());
    let mut kept = KEPT.get_or_init(Mutex::default).lock().unwrap_or_else(|p| p.into_inner());
    kept.entry(key).or_default().clone()
}

fn digest(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref());
    out
}

/// Constant-time equality of two strings' bytes.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hash_password(password: &str) -> Result<String, AdminError> {
    use argon2::password_hash::{PasswordHasher as _, SaltString};
    use ring::rand::SecureRandom as _;
    let mut salt = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut salt).map_err(|_| AdminError::Tls("no randomness for a salt".into()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AdminError::Tls(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AdminError::Tls(format!("hashing a password: {e}")))
}

fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier as _};
    PasswordHash::new(phc).is_ok_and(|h| argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// Checks a new user name and password; the problem names the field.
pub fn check_new(name: &str, password: &str) -> Result<(), (&'static str, String)> {
    let name_ok =
        !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_alphanumeric() || "._-@".contains(c));
    if !name_ok {
        return Err(("username", "1 to 64 letters, digits and . _ - @".into()));
    }
    let len = password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&len) {
        return Err(("password", format!("{MIN_PASSWORD} to {MAX_PASSWORD} characters")));
    }
    Ok(())
}

impl Users {
    /// Reads `dir/users`. When there is no user yet, makes a one-time setup
    /// token (valid [`SETUP_TOKEN_VALID`]), writes it to `dir/`[`SETUP_TOKEN_FILE`]
    /// (mode 0600; the log names the file, never the token) and returns it.
    pub fn open(dir: &Path) -> Result<(Self, Option<String>), AdminError> {
        let path = dir.join("users");
        let users: Vec<User> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| AdminError::Tls(format!("{}: not a users file: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
            Err(error) => return Err(AdminError::File { path, error }),
        };
        let (sessions, failures) = kept_for(&path);
        let this = Self { path, users: Arc::new(RwLock::new(users)), sessions, failures, setup: Arc::default() };
        let token = if this.is_empty() {
            let token = crate::access::new_token()?;
            crate::replace_secret(&this.setup_file(), token.as_bytes())?;
            *this.setup.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((digest(&token), Instant::now() + SETUP_TOKEN_VALID));
            Some(token)
        } else {
            this.forget_setup_file();
            None
        };
        Ok((this, token))
    }

    /// Where the setup token waits for the person at the console.
    pub fn setup_file(&self) -> PathBuf {
        self.path.with_file_name(SETUP_TOKEN_FILE)
    }

    fn forget_setup_file(&self) {
        let file = self.setup_file();
        if let Err(e) = std::fs::remove_file(&file)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("{}: the used setup token could not be removed: {e}", file.display());
        }
    }

    /// Whether no user exists yet (the setup wizard's first step).
    pub fn is_empty(&self) -> bool {
        self.users.read().unwrap_or_else(|p| p.into_inner()).is_empty()
    }

    /// Whether a setup token is still waiting to be used.
    pub fn setup_pending(&self) -> bool {
        self.setup.lock().unwrap_or_else(|p| p.into_inner()).is_some_and(|(_, until)| Instant::now() < until)
    }

    fn save(&self) -> Result<(), AdminError> {
        let users = self.users.read().unwrap_or_else(|p| p.into_inner()).clone();
        let bytes = serde_json::to_vec_pretty(&users).map_err(|e| AdminError::Tls(e.to_string()))?;
        crate::replace_secret(&self.path, &bytes)
    }

    /// Makes a user; false when the name is taken.
    pub fn create(&self, name: &str, password: &str, roles: &[Role]) -> Result<bool, AdminError> {
        let hash = hash_password(password)?;
        {
            let mut users = self.users.write().unwrap_or_else(|p| p.into_inner());
            if users.iter().any(|u| u.name == name) {
                return Ok(false);
            }
            if users.len() >= MAX_USERS {
                return Err(AdminError::Tls(format!("at most {MAX_USERS} users")));
            }
            let id = users.iter().map(|u| u.id).max().unwrap_or(0) + 1;
            users.push(User { id, name: name.into(), roles: roles.to_vec(), hash });
        }
        self.save()?;
        Ok(true)
    }

    /// Makes the first user with every role, if `setup_token` is the one
    /// printed at start and still valid; the token is used up.
    pub fn create_first(&self, setup_token: &str, name: &str, password: &str) -> Result<bool, AdminError> {
        {
            let mut setup = self.setup.lock().unwrap_or_else(|p| p.into_inner());
            let valid = setup.is_some_and(|(h, until)| Instant::now() < until && h == digest(setup_token));
            if !valid || !self.is_empty() {
                return Ok(false);
            }
            *setup = None;
        }
        let made = self.create(name, password, &Role::ALL)?;
        self.forget_setup_file();
        Ok(made)
    }

    /// Deletes a user and ends their sessions; false when there is none.
    pub fn delete(&self, name: &str) -> Result<bool, AdminError> {
        let found = {
            let mut users = self.users.write().unwrap_or_else(|p| p.into_inner());
            let before = users.len();
            users.retain(|u| u.name != name);
            users.len() != before
        };
        if found {
            self.save()?;
            self.sessions.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, s| s.caller.name != name);
        }
        Ok(found)
    }

    /// (name, roles) of every user.
    pub fn list(&self) -> Vec<(String, Vec<Role>)> {
        self.users.read().unwrap_or_else(|p| p.into_inner()).iter().map(|u| (u.name.clone(), u.roles.clone())).collect()
    }

    /// Checks a login at `now`, with the growing delay and the lockout; on
    /// success starts a session. Blocking: the KDF takes tens of milliseconds.
    pub fn login(&self, name: &str, password: &str, now: Instant) -> Result<Started, LoginError> {
        let key = name.to_lowercase();
        let past = self.failures.lock().unwrap_or_else(|p| p.into_inner()).get(&key).copied().unwrap_or_default();
        if let Some(not_before) = past.not_before
            && now < not_before
        {
            let left = not_before - now;
            return Err(if past.count >= LOCK_AFTER { LoginError::Locked(left) } else { LoginError::Wait(left) });
        }
        let user = self.users.read().unwrap_or_else(|p| p.into_inner()).iter().find(|u| u.name == name).cloned();
        // An unknown name costs the same as a wrong password.
        let ok = match &user {
            Some(u) => verify_password(password, &u.hash),
            None => {
                let _ = verify_password(password, DUMMY_HASH);
                false
            }
        };
        let Some(user) = user.filter(|_| ok) else {
            let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            let f = failures.entry(key).or_default();
            f.count += 1;
            f.not_before = if f.count >= LOCK_AFTER {
                Some(now + LOCKED_FOR)
            } else if f.count >= FREE_FAILURES {
                Some(now + Duration::from_secs(1 << (f.count - FREE_FAILURES)).min(MAX_DELAY))
            } else {
                None
            };
            return Err(LoginError::Wrong);
        };
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        let caller = Caller { id: user.id, name: user.name, roles: user.roles, session: true };
        self.start(caller, now).map_err(|_| LoginError::Wrong)
    }

    fn start(&self, caller: Caller, now: Instant) -> Result<Started, AdminError> {
        let (token, csrf) = (crate::access::new_token()?, crate::access::new_token()?);
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, s| alive(s, now));
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.seen).map(|(k, _)| *k)
        {
            sessions.remove(&oldest);
        }
        sessions
            .insert(digest(&token), Session { caller: caller.clone(), csrf: csrf.clone(), created: now, seen: now });
        Ok(Started { token, csrf, caller })
    }

    /// Starts a session for the first user right after the setup wizard made it.
    pub fn start_first(&self, name: &str, now: Instant) -> Result<Started, AdminError> {
        let user = self.users.read().unwrap_or_else(|p| p.into_inner()).iter().find(|u| u.name == name).cloned();
        let user = user.ok_or_else(|| AdminError::Tls(format!("no user {name}")))?;
        self.start(Caller { id: user.id, name: user.name, roles: user.roles, session: true }, now)
    }

    /// The session of a cookie's value, kept alive by this request; with its CSRF token.
    pub fn session(&self, token: &str, now: Instant) -> Option<(Caller, String)> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let key = digest(token);
        let s = sessions.get_mut(&key)?;
        if !alive(s, now) {
            sessions.remove(&key);
            return None;
        }
        s.seen = now;
        Some((s.caller.clone(), s.csrf.clone()))
    }

    /// Ends a session.
    pub fn logout(&self, token: &str) {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(&digest(token));
    }

    /// Whether `sent` is the session's CSRF token.
    pub fn csrf_ok(expected: &str, sent: Option<&str>) -> bool {
        sent.is_some_and(|s| same(expected, s))
    }
}

fn alive(s: &Session, now: Instant) -> bool {
    now.saturating_duration_since(s.seen) < SESSION_IDLE && now.saturating_duration_since(s.created) < SESSION_MAX
}

/// A hash of nothing anyone knows, verified for unknown user names.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3Yd9nNw9M0jOIcLMyFbHMFiJ3n8tPpm7IR0NaYgFUXY";

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("musubi-users-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn the_first_user_needs_the_setup_token_once() {
        let d = dir("first");
        let (users, token) = Users::open(&d).unwrap();
        let token = token.expect("no user yet: a setup token");
        assert!(users.setup_pending());
        // The token waits in a file only the server's user reads.
        let file = d.join(SETUP_TOKEN_FILE);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), token);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert!(!users.create_first("guess", "admin", "long enough password").unwrap());
        assert!(file.exists(), "a wrong guess leaves the token");
        assert!(users.create_first(&token, "admin", "long enough password").unwrap());
        assert!(!file.exists(), "a used token is removed");
        assert!(!users.create_first(&token, "second", "long enough password").unwrap(), "used up");
        let text = std::fs::read_to_string(d.join("users")).unwrap();
        assert!(text.contains("$argon2id$") && !text.contains("long enough password"), "{text}");
        let (again, token) = Users::open(&d).unwrap();
        assert!(token.is_none() && !again.is_empty());
        let started = again.login("admin", "long enough password", Instant::now()).unwrap();
        assert_eq!(started.caller.roles, Role::ALL.to_vec());
        let (caller, csrf) = again.session(&started.token, Instant::now()).unwrap();
        assert_eq!((caller.name.as_str(), csrf), ("admin", started.csrf.clone()));
        assert!(again.session(&started.token, Instant::now() + SESSION_IDLE + Duration::from_secs(1)).is_none());
    }

    #[test]
    fn failed_logins_wait_longer_then_lock() {
        let d = dir("throttle");
        let (users, token) = Users::open(&d).unwrap();
        users.create_first(&token.unwrap(), "ops", "correct horse battery").unwrap();
        let mut now = Instant::now();
        for _ in 0..FREE_FAILURES {
            assert_eq!(users.login("ops", "wrong password", now).unwrap_err(), LoginError::Wrong);
        }
        // Now each attempt must wait, even with the right password, and the wait grows.
        assert_eq!(
            users.login("ops", "correct horse battery", now).unwrap_err(),
            LoginError::Wait(Duration::from_secs(1))
        );
        let mut waits = Vec::new();
        for _ in FREE_FAILURES..LOCK_AFTER {
            now += MAX_DELAY;
            assert_eq!(users.login("ops", "wrong password", now).unwrap_err(), LoginError::Wrong);
            match users.login("ops", "x", now) {
                Err(LoginError::Wait(w) | LoginError::Locked(w)) => waits.push(w),
                other => panic!("{other:?}"),
            }
        }
        assert!(waits.windows(2).all(|w| w[0] <= w[1]), "the delay grows: {waits:?}");
        assert_eq!(waits.last(), Some(&LOCKED_FOR));
        assert!(matches!(users.login("ops", "correct horse battery", now + MAX_DELAY), Err(LoginError::Locked(_))));
        let later = now + LOCKED_FOR + Duration::from_secs(1);
        assert!(users.login("ops", "correct horse battery", later).is_ok(), "the lock ends by itself");
        assert_eq!(users.login("nobody", "x", later).unwrap_err(), LoginError::Wrong);
    }

    #[test]
    fn the_dummy_hash_parses() {
        assert!(argon2::password_hash::PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
