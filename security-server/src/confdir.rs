//! The global configuration as the configuration client keeps it on disk,
//! in X-Road's layout: `<dir>/instance-identifier` names this server's
//! instance; `<dir>/<INSTANCE>/shared-params.xml` and `private-params.xml`
//! hold the parameters, each with a `.metadata` JSON file
//! (`contentIdentifier`, `instanceIdentifier`, `expirationDate`,
//! `configurationVersion`; a file without a version is version 2).
//!
//! Files that do not parse are skipped, as X-Road skips them; a directory
//! is usable only when its own instance's shared parameters are there.

use std::path::{Path, PathBuf};

/// Whether a directory can be used (X-Road's `FSGlobalConfValidator` outcomes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirStatus {
    /// Usable.
    ReadyToInit,
    /// `instance-identifier` is missing.
    MissingInstanceIdentifier,
    /// The own instance's shared parameters are missing or unreadable.
    Malformed,
    /// The path is not a directory.
    ConfigurationError,
}

/// Shared or private parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Params {
    /// `shared-params.xml`.
    Shared,
    /// `private-params.xml`.
    Private,
}

/// One parameters file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfFile {
    /// The instance (its directory's name).
    pub instance: String,
    /// Which parameters.
    pub params: Params,
    /// Where it is.
    pub path: PathBuf,
    /// Its version (2 when the metadata names none).
    pub version: u32,
    /// `expirationDate` from the metadata.
    pub expiration: Option<String>,
}

/// A readable configuration directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfDir {
    /// This server's instance.
    pub instance: String,
    /// Every parameters file that parses, by instance.
    pub files: Vec<ConfFile>,
}

/// Largest parameters file read.
const MAX_FILE: u64 = 16 * 1024 * 1024;
/// Most instance folders read.
const MAX_INSTANCES: usize = 256;

fn parses(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else { return false };
    if meta.len() > MAX_FILE {
        return false;
    }
    let Ok(bytes) = std::fs::read(path) else { return false };
    musubi_protocol::globalconf::is_params(&bytes)
}

fn metadata(path: &Path) -> (u32, Option<String>) {
    let meta = std::fs::read(path.with_extension("xml.metadata")).ok();
    let v: Option<serde_json::Value> = meta.and_then(|m| serde_json::from_slice(&m).ok());
    let version = v
        .as_ref()
        .and_then(|v| v.get("configurationVersion"))
        .and_then(|x| {
            x.as_str().and_then(|s| s.parse().ok()).or_else(|| x.as_u64().and_then(|n| u32::try_from(n).ok()))
        })
        .unwrap_or(2);
    let expiration = v.and_then(|v| v.get("expirationDate").and_then(|x| x.as_str()).map(str::to_string));
    (version, expiration)
}

/// Checks and reads the directory at `dir`: usable only with this
/// instance's shared parameters.
pub fn read(dir: &Path) -> Result<ConfDir, DirStatus> {
    let conf = scan(dir)?;
    if conf.find(&conf.instance, Params::Shared).is_none() {
        return Err(DirStatus::Malformed);
    }
    Ok(conf)
}

/// Reads what parses in the directory at `dir`, without requiring this
/// instance's parameters.
pub fn scan(dir: &Path) -> Result<ConfDir, DirStatus> {
    if !dir.is_dir() {
        return Err(DirStatus::ConfigurationError);
    }
    let instance = std::fs::read_to_string(dir.join("instance-identifier"))
        .map_err(|_| DirStatus::MissingInstanceIdentifier)?
        .trim()
        .to_string();
    if instance.is_empty() {
        return Err(DirStatus::MissingInstanceIdentifier);
    }
    let mut files = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|_| DirStatus::ConfigurationError)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .take(MAX_INSTANCES)
        .collect();
    entries.sort();
    for sub in entries {
        let Some(name) = sub.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
        for (file, params) in [("shared-params.xml", Params::Shared), ("private-params.xml", Params::Private)] {
            let path = sub.join(file);
            if path.is_file() && parses(&path) {
                let (version, expiration) = metadata(&path);
                files.push(ConfFile { instance: name.clone(), params, path, version, expiration });
            }
        }
    }
    Ok(ConfDir { instance, files })
}

/// The outcome of checking `dir`.
pub fn validate(dir: &Path) -> DirStatus {
    read(dir).err().unwrap_or(DirStatus::ReadyToInit)
}

impl ConfDir {
    /// The `params` of `instance`.
    pub fn find(&self, instance: &str, params: Params) -> Option<&ConfFile> {
        self.files.iter().find(|f| f.instance == instance && f.params == params)
    }

    /// Every parameters file (never metadata or the instance identifier).
    pub fn configuration_files(&self) -> Vec<&Path> {
        self.files.iter().map(|f| f.path.as_path()).collect()
    }
}
