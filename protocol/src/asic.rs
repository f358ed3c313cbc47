//! ASiC-E containers with X-Road's message-log layout: `mimetype`,
//! `message.xml`, `META-INF/signatures.xml`, hash-chain files, time stamp,
//! manifests, attachments.
//!
//! Reading is bounded: at most [`Limits::max_entries`] entries, each at most
//! [`Limits::max_entry_bytes`] uncompressed and all together at most
//! [`Limits::max_total_bytes`] (zip bombs stop at the limit, whatever the
//! entries declare), and entry names must be plain relative paths (no `..`,
//! no absolute paths, no backslashes). Structure checks follow X-Road's
//! `AsicContainer`: mimetype, message, signature, then manifest.

use std::io::Read as _;

use crate::fault::Code;

/// The ASiC-E mime type.
pub const MIMETYPE: &str = "application/vnd.etsi.asic-e+zip";

/// Limits for reading a container.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most entries.
    pub max_entries: usize,
    /// Largest uncompressed entry.
    pub max_entry_bytes: u64,
    /// Largest uncompressed total.
    pub max_total_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_entries: 1024, max_entry_bytes: 256 * 1024 * 1024, max_total_bytes: 512 * 1024 * 1024 }
    }
}

/// Why a container was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AsicError {
    /// X-Road's code (`asic_mime_type_not_found`, …).
    pub code: Code,
    /// What was wrong.
    pub message: String,
}

fn err(code: Code, message: impl Into<String>) -> AsicError {
    AsicError { code, message: message.into() }
}

/// A container's entries, in ZIP order.
#[derive(Debug, Clone)]
pub struct Container {
    /// (name, bytes).
    pub entries: Vec<(String, Vec<u8>)>,
}

impl Container {
    /// The entry named `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, b)| b.as_slice())
    }
    /// `message.xml`.
    pub fn message(&self) -> &[u8] {
        self.get("message.xml").unwrap_or_default()
    }
    /// `META-INF/signatures.xml`.
    pub fn signature(&self) -> &[u8] {
        self.get("META-INF/signatures.xml").unwrap_or_default()
    }
}

fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && !name.contains('\\')
        && !name.contains('\0')
        && !name.split('/').any(|p| p == "..")
        && !name.contains(':')
}

/// Reads and checks a container.
pub fn read(bytes: &[u8], limits: &Limits) -> Result<Container, AsicError> {
    let mut zip = match zip::ZipArchive::new(std::io::Cursor::new(bytes)) {
        Ok(z) => z,
        // X-Road reads a non-ZIP stream as an empty container.
        Err(e) => {
            return Err(err(Code::ASIC_MIME_TYPE_NOT_FOUND, format!("not a ZIP container ({e}); no mimetype entry")));
        }
    };
    if zip.len() > limits.max_entries {
        return Err(err(
            Code::ASIC_INVALID_CONTAINER,
            format!("{} entries exceed the limit of {}", zip.len(), limits.max_entries),
        ));
    }
    let mut entries = Vec::with_capacity(zip.len());
    let mut total = 0u64;
    for i in 0..zip.len() {
        let file = zip.by_index(i).map_err(|e| err(Code::ASIC_INVALID_CONTAINER, format!("entry {i}: {e}")))?;
        let name = file
            .name()
            .map_err(|e| err(Code::ASIC_INVALID_CONTAINER, format!("entry {i} has an unreadable name: {e}")))?
            .into_owned();
        if !safe_name(&name) {
            return Err(err(Code::ASIC_INVALID_CONTAINER, format!("entry name {name:?} is not a plain relative path")));
        }
        if file.is_dir() {
            continue;
        }
        let allowed = limits.max_entry_bytes.min(limits.max_total_bytes - total);
        let mut data = Vec::new();
        // Read one byte past the limit: the declared size is not trusted.
        file.take(allowed + 1)
            .read_to_end(&mut data)
            .map_err(|e| err(Code::ASIC_INVALID_CONTAINER, format!("entry {name:?} does not decompress: {e}")))?;
        if data.len() as u64 > allowed {
            return Err(err(
                Code::ASIC_INVALID_CONTAINER,
                format!("entry {name:?} is larger than allowed ({allowed} bytes)"),
            ));
        }
        total += data.len() as u64;
        entries.push((name, data));
    }
    let c = Container { entries };
    match c.get("mimetype") {
        None => return Err(err(Code::ASIC_MIME_TYPE_NOT_FOUND, "the container has no mimetype entry")),
        Some(m) if m != MIMETYPE.as_bytes() => {
            return Err(err(
                Code::ASIC_INVALID_MIME_TYPE,
                format!("mimetype is {:?}; expected {MIMETYPE}", String::from_utf8_lossy(m)),
            ));
        }
        Some(_) => {}
    }
    if c.get("message.xml").is_none() {
        return Err(err(Code::ASIC_MESSAGE_NOT_FOUND, "the container has no message.xml"));
    }
    if c.get("META-INF/signatures.xml").is_none() {
        return Err(err(Code::ASIC_SIGNATURE_NOT_FOUND, "the container has no META-INF/signatures.xml"));
    }
    if c.get("META-INF/manifest.xml").is_none() {
        return Err(err(Code::ASIC_MANIFEST_NOT_FOUND, "the container has no META-INF/manifest.xml"));
    }
    Ok(c)
}

/// Writes a container with the given entries after `mimetype` (stored, first,
/// as ASiC requires); the others are deflated.
pub fn write(entries: &[(&str, &[u8])]) -> Result<Vec<u8>, AsicError> {
    use std::io::Write as _;
    use zip::write::SimpleFileOptions;
    let io = |e: &dyn std::fmt::Display| err(Code::ASIC_INVALID_CONTAINER, format!("cannot write container: {e}"));
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let deflated = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    w.start_file("mimetype", stored).map_err(|e| io(&e))?;
    w.write_all(MIMETYPE.as_bytes()).map_err(|e| io(&e))?;
    for (name, data) in entries {
        if !safe_name(name) {
            return Err(err(Code::ASIC_INVALID_CONTAINER, format!("entry name {name:?} is not a plain relative path")));
        }
        w.start_file(*name, deflated).map_err(|e| io(&e))?;
        w.write_all(data).map_err(|e| io(&e))?;
    }
    Ok(w.finish().map_err(|e| io(&e))?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal(extra: &[(&str, &[u8])]) -> Vec<u8> {
        let mut entries: Vec<(&str, &[u8])> =
            vec![("message.xml", b"<m/>"), ("META-INF/signatures.xml", b"<s/>"), ("META-INF/manifest.xml", b"<x/>")];
        entries.extend_from_slice(extra);
        write(&entries).unwrap()
    }

    #[test]
    fn round_trips_and_refuses_traversal_bombs_and_too_many_entries() {
        let c = read(&minimal(&[("attachment1", b"a")]), &Limits::default()).unwrap();
        assert_eq!(c.message(), b"<m/>");
        assert_eq!(c.get("attachment1"), Some(b"a".as_slice()));
        assert!(write(&[("../evil", b"x")]).is_err());
        // A highly compressible entry larger than the limit stops at the limit.
        let big = vec![0u8; 4 * 1024 * 1024];
        let bomb = minimal(&[("attachment1", &big)]);
        assert!(bomb.len() < 64 * 1024, "deflate squeezes it");
        let small = Limits { max_entry_bytes: 1024 * 1024, ..Limits::default() };
        assert_eq!(read(&bomb, &small).unwrap_err().code, Code::ASIC_INVALID_CONTAINER);
        let few = Limits { max_entries: 3, ..Limits::default() };
        assert_eq!(read(&minimal(&[]), &few).unwrap_err().code, Code::ASIC_INVALID_CONTAINER);
        // Truncated containers are refused, never a panic.
        let good = minimal(&[]);
        for cut in [0, 10, good.len() / 2, good.len() - 1] {
            assert!(read(&good[..cut], &Limits::default()).is_err());
        }
    }
}
