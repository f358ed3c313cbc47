//! Configuration files of the Musubi programs: one TOML file each
//! (`/etc/musubi/<program>.toml`), read with a size limit, checked with each
//! fault placed at `FILE:LINE:COLUMN`, and overridable setting by setting
//! from the environment (`<PREFIX><SETTING>`, `__` between the names of a
//! nested table and its setting). Secrets come from files or the
//! environment, never from the command line: [`secret`].

use std::path::{Path, PathBuf};

/// Largest configuration file accepted.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Largest secret file accepted (a PIN or a password).
pub const MAX_SECRET_BYTES: u64 = 4096;

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfFileError {
    /// The file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// The file is larger than [`MAX_FILE_BYTES`] (or a secret file than [`MAX_SECRET_BYTES`]).
    #[error("{path} is {len} bytes; the limit is {limit} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// A setting is wrong: `place` is `FILE:LINE:COLUMN` when the fault has a
    /// position in the file, else the file (and the variables that overrode it).
    #[error("{place}: {message}")]
    Invalid {
        /// Where.
        place: String,
        /// What is wrong.
        message: String,
    },
    /// An environment variable cannot be used.
    #[error("{variable}: {message}")]
    Env {
        /// The variable.
        variable: String,
        /// What is wrong.
        message: String,
    },
}

/// A configuration file as read, with the environment's overrides applied.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    /// The settings.
    pub value: T,
    /// The same as a TOML table, overrides included.
    pub table: toml::Table,
    /// Settings the environment overrode, each as `key (VARIABLE)`, sorted.
    pub overridden: Vec<String>,
}

impl<T> Loaded<T> {
    /// What `check-config` prints for the file at `path`: how many settings
    /// it gives and which ones the environment overrode.
    pub fn summary(&self, path: &Path) -> String {
        let mut summary = format!("{}: {} settings, valid", path.display(), self.table.len());
        if !self.overridden.is_empty() {
            summary.push_str(&format!("; from the environment: {}", self.overridden.join(", ")));
        }
        summary
    }
}

/// Reads `path` (at most [`MAX_FILE_BYTES`]) and parses it as `T` with every
/// fault placed at its line and column; then applies the overrides among
/// `vars` whose names start with `prefix` and parses again. `stand_ins` are
/// values for required settings that the program fills in later (from its
/// state folder): they are used only when the file and the environment leave
/// the setting out, and are not in the returned table.
pub fn load<T: serde::de::DeserializeOwned>(
    path: &Path,
    prefix: &str,
    vars: impl IntoIterator<Item = (String, String)>,
    stand_ins: &[(&str, &str)],
) -> Result<Loaded<T>, ConfFileError> {
    let text = read_limited(path, MAX_FILE_BYTES)?;
    let text = String::from_utf8(text).map_err(|e| ConfFileError::Invalid {
        place: path.display().to_string(),
        message: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
    })?;
    let mut table: toml::Table = toml::from_str(&text).map_err(|e| placed(path, &text, 0, &e))?;
    // Stand-ins ahead of the file's own text, so that every position after
    // them is the file's.
    let missing: Vec<&(&str, &str)> = stand_ins.iter().filter(|(k, _)| !table.contains_key(*k)).collect();
    let head: String = missing.iter().map(|(k, v)| format!("{k} = {}\n", toml::Value::from(*v))).collect();
    let value: T = toml::from_str(&format!("{head}{text}")).map_err(|e| placed(path, &text, head.len(), &e))?;
    let overridden = apply_env(&mut table, prefix, vars)?;
    if overridden.is_empty() {
        return Ok(Loaded { value, table, overridden });
    }
    let mut with = table.clone();
    for (k, v) in stand_ins {
        with.entry(*k).or_insert_with(|| toml::Value::from(*v));
    }
    let value = with.try_into::<T>().map_err(|e| ConfFileError::Invalid {
        place: format!("{} with the environment's {}", path.display(), overridden.join(", ")),
        message: e.message().to_owned(),
    })?;
    Ok(Loaded { value, table, overridden })
}

/// The error `e` from parsing `head` + `text`, placed in `text`.
fn placed(path: &Path, text: &str, head: usize, e: &toml::de::Error) -> ConfFileError {
    let place = match e.span().filter(|r| r.start >= head) {
        Some(r) => {
            let before = &text[..(r.start - head).min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{}:{line}:{column}", path.display())
        }
        None => path.display().to_string(),
    };
    ConfFileError::Invalid { place, message: e.message().trim_end().to_owned() }
}

/// Applies the overrides among `vars` to `table`: `<prefix>MAX_BODY_BYTES=1048576`
/// sets `max_body_bytes`, `<prefix>NET__PORT=3610` sets `port` in the table
/// `[net]`. Values are read as TOML values (numbers, booleans, arrays, inline
/// tables, quoted strings), or else taken as text. Returns the settings
/// overridden, each as `key (VARIABLE)`, sorted.
pub fn apply_env(
    table: &mut toml::Table,
    prefix: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<String>, ConfFileError> {
    let mut applied = Vec::new();
    for (name, value) in vars {
        let Some(key) = name.strip_prefix(prefix) else { continue };
        let bad = |message: &str| ConfFileError::Env { variable: name.clone(), message: message.into() };
        let path: Vec<String> = key.split("__").map(str::to_ascii_lowercase).collect();
        let well_formed =
            |p: &String| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !path.iter().all(well_formed) || key.bytes().any(|b| b.is_ascii_lowercase()) {
            return Err(bad("not a setting name (upper case, digits and _, with __ between a table and its setting)"));
        }
        let Some((last, tables)) = path.split_last() else { continue };
        let mut at = &mut *table;
        for t in tables {
            let entry = at.entry(t.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            at = match entry {
                toml::Value::Table(inner) => inner,
                _ => return Err(bad(&format!("{t} is a setting, not a table of settings"))),
            };
        }
        let parsed = toml::from_str::<toml::Table>(&format!("v = {value}")).ok().and_then(|mut t| t.remove("v"));
        at.insert(last.clone(), parsed.unwrap_or(toml::Value::String(value)));
        applied.push(format!("{} ({name})", path.join(".")));
    }
    applied.sort();
    Ok(applied)
}

/// A secret (a PIN or a password): the contents of `file` without its final
/// line break when a file is named, else the environment variable
/// `variable`, else none. The file may be a systemd credential
/// (`LoadCredential=`); a file that others than its owner and group can
/// read is refused.
pub fn secret(file: Option<&Path>, variable: &str) -> Result<Option<zeroize::Zeroizing<String>>, ConfFileError> {
    use std::os::unix::fs::PermissionsExt as _;
    let Some(path) = file else {
        return Ok(std::env::var(variable).ok().map(zeroize::Zeroizing::new));
    };
    let meta = std::fs::metadata(path).map_err(|error| ConfFileError::Read { path: path.into(), error })?;
    if meta.permissions().mode() & 0o007 != 0 {
        return Err(ConfFileError::Invalid {
            place: path.display().to_string(),
            message: format!(
                "a secret file must not be readable by others (mode {:o}; chmod 0600 or 0640)",
                meta.permissions().mode() & 0o777
            ),
        });
    }
    let bytes = zeroize::Zeroizing::new(read_limited(path, MAX_SECRET_BYTES)?);
    let text = std::str::from_utf8(&bytes).map_err(|_| ConfFileError::Invalid {
        place: path.display().to_string(),
        message: "a secret file must hold UTF-8 text".into(),
    })?;
    Ok(Some(zeroize::Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_owned())))
}

/// `url` (`postgres://user@host/db`) with `password` put in, percent-encoded.
/// A URL that has a password already is refused: it is given in one place.
pub fn with_password(url: &str, password: &str) -> Result<String, String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("the database URL has no scheme (postgres://user@host/db)".into());
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return Err("the database URL names no user (postgres://user@host/db) to give the password of".into());
    };
    let user = &rest[..at];
    if user.contains(':') {
        return Err("the database URL has a password already; give it in one place".into());
    }
    let mut encoded = String::with_capacity(password.len() * 3);
    for b in password.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(format!("{scheme}://{user}:{encoded}{}", &rest[at..]))
}

fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, ConfFileError> {
    use std::io::Read as _;
    let read_err = |error| ConfFileError::Read { path: path.into(), error };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(read_err)?;
    let len = bytes.len() as u64;
    if len > limit {
        let len = std::fs::metadata(path).map_or(len, |m| m.len());
        return Err(ConfFileError::TooLarge { path: path.into(), len, limit });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Conf {
        name: String,
        #[serde(default)]
        size: u32,
        #[serde(default)]
        net: Net,
    }
    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Net {
        #[serde(default)]
        port: u16,
    }

    fn file(text: &str) -> (tempdir::Dir, PathBuf) {
        let dir = tempdir::Dir::new();
        let path = dir.0.join("c.toml");
        std::fs::write(&path, text).ok();
        (dir, path)
    }

    mod tempdir {
        pub(super) struct Dir(pub(super) std::path::PathBuf);
        impl Dir {
            pub(super) fn new() -> Self {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let p = std::env::temp_dir().join(format!(
                    "musubi-conffile-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&p).ok();
                Dir(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                std::fs::remove_dir_all(&self.0).ok();
            }
        }
    }

    fn vars(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect()
    }

    #[test]
    fn faults_are_placed_at_their_line_and_column_even_with_stand_ins() {
        let (_d, path) = file("size = 3\n\n  colour = 1\n");
        let err = load::<Conf>(&path, "T_", vars(&[]), &[("name", "x")]).err().map(|e| e.to_string());
        let expected = format!("{}:3:3: unknown field `colour`, expected one of `name`, `size`, `net`", path.display());
        assert_eq!(err, Some(expected));
        let (_d, path) = file("name = \"a\"\nsize = \"big\"\n");
        let err = load::<Conf>(&path, "T_", vars(&[]), &[]).err().map(|e| e.to_string());
        assert!(err.as_deref().is_some_and(|e| e.starts_with(&format!("{}:2:8: invalid type", path.display()))));
    }

    #[test]
    fn stand_ins_are_used_only_when_the_setting_is_missing_and_stay_out_of_the_table() {
        let (_d, path) = file("size = 3\n");
        let l = load::<Conf>(&path, "T_", vars(&[]), &[("name", "stand-in")]).ok();
        assert_eq!(l.as_ref().map(|l| l.value.name.as_str()), Some("stand-in"));
        assert_eq!(l.map(|l| l.table.contains_key("name")), Some(false));
        let (_d, path) = file("name = \"own\"\n");
        let l = load::<Conf>(&path, "T_", vars(&[]), &[("name", "stand-in")]).ok();
        assert_eq!(l.map(|l| l.value.name), Some("own".to_owned()));
    }

    #[test]
    fn the_environment_overrides_top_level_and_nested_settings() {
        let (_d, path) = file("name = \"a\"\nsize = 3\n");
        let env = vars(&[("T_SIZE", "7"), ("T_NET__PORT", "3610"), ("OTHER", "x"), ("T_NAME", "plain text")]);
        let l = load::<Conf>(&path, "T_", env, &[]).ok();
        assert_eq!(
            l.as_ref().map(|l| (l.value.size, l.value.net.port, l.value.name.as_str())),
            Some((7, 3610, "plain text"))
        );
        assert_eq!(
            l.map(|l| l.overridden),
            Some(vec!["name (T_NAME)".to_owned(), "net.port (T_NET__PORT)".to_owned(), "size (T_SIZE)".to_owned()])
        );
        let err = load::<Conf>(&path, "T_", vars(&[("T_SIZE", "many")]), &[]).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("with the environment's size (T_SIZE): invalid type")));
        let err = load::<Conf>(&path, "T_", vars(&[("T_SIZE__X", "1")]), &[]).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("T_SIZE__X: size is a setting, not a table of settings"));
        let err = load::<Conf>(&path, "T_", vars(&[("T_size", "1")]), &[]).err();
        assert!(matches!(err, Some(ConfFileError::Env { .. })));
    }

    #[test]
    fn oversized_and_unreadable_files_are_refused() {
        let (_d, path) = file(&"#".repeat(usize::try_from(MAX_FILE_BYTES).unwrap_or(0) + 1));
        assert!(matches!(load::<Conf>(&path, "T_", vars(&[]), &[]), Err(ConfFileError::TooLarge { .. })));
        let missing = path.with_file_name("none.toml");
        assert!(matches!(load::<Conf>(&missing, "T_", vars(&[]), &[]), Err(ConfFileError::Read { .. })));
    }

    #[test]
    fn secrets_come_from_private_files_without_their_line_break() {
        use std::os::unix::fs::PermissionsExt as _;
        let (_d, path) = file("s3cret:/@\n");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).ok();
        assert_eq!(secret(Some(&path), "UNUSED").ok().flatten().map(|s| s.to_string()), Some("s3cret:/@".into()));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).ok();
        let err = secret(Some(&path), "UNUSED").err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("must not be readable by others (mode 644")));
    }

    #[test]
    fn passwords_are_put_into_database_urls_percent_encoded() {
        assert_eq!(
            with_password("postgres://musubi@db.example:5432/log?sslmode=require", "p@ss w/:"),
            Ok("postgres://musubi:p%40ss%20w%2F%3A@db.example:5432/log?sslmode=require".into())
        );
        assert!(with_password("postgres://musubi:old@db/log", "new").is_err_and(|e| e.contains("one place")));
        assert!(with_password("postgres://db/log", "x").is_err_and(|e| e.contains("names no user")));
        assert!(with_password("db/log", "x").is_err());
    }
}
