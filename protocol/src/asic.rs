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
    // X-Road reads a non-ZIP stream as an empty container.
    if let Err(e) = zip::ZipArchive::new(std::io::Cursor::new(bytes)) {
        return Err(err(Code::ASIC_MIME_TYPE_NOT_FOUND, format!("not a ZIP container ({e}); no mimetype entry")));
    }
    let entries = read_zip(bytes, limits)?;
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

/// Writes a plain ZIP of named files (deflated), e.g. several containers.
pub fn write_zip(entries: &[(&str, &[u8])]) -> Result<Vec<u8>, AsicError> {
    zip_entries(None, entries, "archive")
}

/// A ZIP of `entries` (deflated) after `stored`, which goes first uncompressed.
fn zip_entries(stored: Option<(&str, &[u8])>, entries: &[(&str, &[u8])], what: &str) -> Result<Vec<u8>, AsicError> {
    use std::io::Write as _;
    use zip::write::SimpleFileOptions;
    let io = |e: &dyn std::fmt::Display| err(Code::ASIC_INVALID_CONTAINER, format!("cannot write {what}: {e}"));
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    if let Some((name, data)) = stored {
        w.start_file(name, SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored))
            .map_err(|e| io(&e))?;
        w.write_all(data).map_err(|e| io(&e))?;
    }
    let deflated = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        if !safe_name(name) {
            return Err(err(Code::ASIC_INVALID_CONTAINER, format!("entry name {name:?} is not a plain relative path")));
        }
        w.start_file(*name, deflated).map_err(|e| io(&e))?;
        w.write_all(data).map_err(|e| io(&e))?;
    }
    Ok(w.finish().map_err(|e| io(&e))?.into_inner())
}

/// The entry count of the ZIP's end-of-central-directory record (none for
/// ZIP64, whose count lives elsewhere).
fn directory_entry_count(bytes: &[u8]) -> Option<usize> {
    const EOCD: [u8; 4] = [0x50, 0x4b, 0x05, 0x06];
    let from = bytes.len().saturating_sub(22 + 65_535);
    let at = bytes[from..].windows(4).rposition(|w| w == EOCD)? + from;
    let count = u16::from_le_bytes([*bytes.get(at + 10)?, *bytes.get(at + 11)?]);
    (count != 0xFFFF).then_some(usize::from(count))
}

/// Reads the files of a plain ZIP with the same limits as containers.
pub fn read_zip(bytes: &[u8], limits: &Limits) -> Result<Vec<(String, Vec<u8>)>, AsicError> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| err(Code::ASIC_INVALID_CONTAINER, format!("not a ZIP archive: {e}")))?;
    // The ZIP reader keeps one entry per name; the directory's own count shows
    // entries it dropped, which a reader and a verifier could see differently.
    if let Some(listed) = directory_entry_count(bytes)
        && listed != zip.len()
    {
        return Err(err(
            Code::ASIC_INVALID_CONTAINER,
            format!(
                "the ZIP directory lists {listed} entries but only {} distinct names: entry names repeat",
                zip.len()
            ),
        ));
    }
    if zip.len() > limits.max_entries {
        return Err(err(
            Code::ASIC_INVALID_CONTAINER,
            format!("{} entries exceed the limit of {}", zip.len(), limits.max_entries),
        ));
    }
    let mut out = Vec::new();
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
        out.push((name, data));
    }
    Ok(out)
}

/// Writes a container with the given entries after `mimetype` (stored, first,
/// as ASiC requires); the others are deflated.
pub fn write(entries: &[(&str, &[u8])]) -> Result<Vec<u8>, AsicError> {
    zip_entries(Some(("mimetype", MIMETYPE.as_bytes())), entries, "container")
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
        // A batch time stamp comes with an ASiC manifest over the hash chain result.
        let record = MessageRecord {
            message: b"<m/>",
            signature: b"<s/>",
            sig_hash_chain: None,
            timestamp: Some((b"token", Some((b"<result/>", b"<chain/>")))),
            attachments: &[b"first", b"second"],
        };
        let built = read(&build_message_container(&record).unwrap(), &Limits::default()).unwrap();
        assert!(built.get("META-INF/ASiCManifest.xml").is_some());
        assert_eq!((built.get("attachment1"), built.get("attachment2")), (Some(&b"first"[..]), Some(&b"second"[..])));
        check_asic_manifest(&built).unwrap();
        let mut changed = built.clone();
        for (name, bytes) in &mut changed.entries {
            if name == "ts-hashchainresult.xml" {
                *bytes = b"<other/>".to_vec();
            }
        }
        let e = check_asic_manifest(&changed).unwrap_err();
        assert!(e.message.contains("the digest of ts-hashchainresult.xml does not match"), "{e}");
        changed.entries.retain(|(n, _)| n != "ts-hashchainresult.xml");
        assert!(check_asic_manifest(&changed).unwrap_err().message.contains("which the container lacks"));
        // Truncated containers are refused, never a panic.
        let good = minimal(&[]);
        for cut in [0, 10, good.len() / 2, good.len() - 1] {
            assert!(read(&good[..cut], &Limits::default()).is_err());
        }
    }
}

/// A (hash chain result, hash chain) pair.
pub type Chain<'a> = (&'a [u8], &'a [u8]);

/// The parts of one logged message from which its container is built.
#[derive(Debug, Clone, Copy)]
pub struct MessageRecord<'a> {
    /// The message as logged (`message.xml`).
    pub message: &'a [u8],
    /// The signature document (`META-INF/signatures.xml`).
    pub signature: &'a [u8],
    /// A batch signature's (hash chain result, hash chain).
    pub sig_hash_chain: Option<Chain<'a>>,
    /// The time-stamp token and, for a batch time stamp, its (hash chain result, hash chain).
    pub timestamp: Option<(&'a [u8], Option<Chain<'a>>)>,
    /// The attachments, stored as `attachment1`, `attachment2`, … (what the
    /// signature calls `/attachment1`, …).
    pub attachments: &'a [&'a [u8]],
}

/// Builds a container with X-Road's message-log layout. A non-batch time
/// stamp goes into the signature's unsigned properties as
/// `xades:SignatureTimeStamp` (which leaves the signature valid); a batch one
/// is `META-INF/timestamp.tst` with `ts-hashchainresult.xml` and `ts-hashchain.xml`.
pub fn build_message_container(r: &MessageRecord<'_>) -> Result<Vec<u8>, AsicError> {
    let names: Vec<String> = (1..=r.attachments.len()).map(|n| format!("attachment{n}")).collect();
    let mut entries: Vec<(&str, Vec<u8>)> = vec![("message.xml", r.message.to_vec())];
    let mut signature = r.signature.to_vec();
    match r.timestamp {
        Some((token, Some((result, chain)))) => {
            entries.push(("ts-hashchainresult.xml", result.to_vec()));
            entries.push(("ts-hashchain.xml", chain.to_vec()));
            entries.push(("META-INF/timestamp.tst", token.to_vec()));
            entries.push(("META-INF/ASiCManifest.xml", asic_manifest(result).into_bytes()));
        }
        Some((token, None)) => signature = with_signature_timestamp(r.signature, token)?,
        None => {}
    }
    entries.push(("META-INF/signatures.xml", signature));
    if let Some((result, chain)) = r.sig_hash_chain {
        entries.push(("sig-hashchainresult.xml", result.to_vec()));
        entries.push(("sig-hashchain.xml", chain.to_vec()));
    }
    for (name, bytes) in names.iter().zip(r.attachments) {
        entries.push((name.as_str(), bytes.to_vec()));
    }
    let mut manifest = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><manifest:manifest \
xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\"><manifest:file-entry \
manifest:full-path=\"/\" manifest:media-type=\"application/vnd.etsi.asic-e+zip\"/>",
    );
    for (name, _) in &entries {
        if !name.starts_with("META-INF/") {
            let media = if name.starts_with("attachment") { "application/octet-stream" } else { "text/xml" };
            manifest.push_str(&format!(
                "<manifest:file-entry manifest:full-path=\"{name}\" manifest:media-type=\"{media}\"/>"
            ));
        }
    }
    manifest.push_str("</manifest:manifest>");
    entries.push(("META-INF/manifest.xml", manifest.into_bytes()));
    let borrowed: Vec<(&str, &[u8])> = entries.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    write(&borrowed)
}

/// The ASiC manifest of a batch time stamp: the token signs the bytes of
/// `ts-hashchainresult.xml` (X-Road's layout).
fn asic_manifest(ts_hash_chain_result: &[u8]) -> String {
    use base64::Engine as _;
    let digest = ring::digest::digest(&ring::digest::SHA512, ts_hash_chain_result);
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<asic:ASiCManifest xmlns:asic=\"{ASIC_NS}\" \
xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">\n<asic:SigReference URI=\"META-INF/timestamp.tst\" \
MimeType=\"vnd.etsi.timestamp-token\"/>\n<asic:DataObjectReference URI=\"ts-hashchainresult.xml\" \
MimeType=\"text/xml\">\n<ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha512\"/>\n\
<ds:DigestValue>{}</ds:DigestValue>\n</asic:DataObjectReference>\n</asic:ASiCManifest>",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

const ASIC_NS: &str = "http://uri.etsi.org/2918/v1.2.1#";

/// Checks `META-INF/ASiCManifest.xml` when the container has one: every data
/// object it references is in the container with the stated digest.
pub fn check_asic_manifest(c: &Container) -> Result<(), AsicError> {
    use base64::Engine as _;
    let Some(bytes) = c.get("META-INF/ASiCManifest.xml") else { return Ok(()) };
    let bad = |m: String| err(Code::ASIC_INVALID_CONTAINER, format!("META-INF/ASiCManifest.xml: {m}"));
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8".into()))?;
    if text.contains("<!DOCTYPE") {
        return Err(bad("DOCTYPE is not allowed".into()));
    }
    let doc = xml_sec::document::XmlDocument::parse(text).map_err(|e| bad(format!("does not parse: {e}")))?;
    doc.with_view(|view| {
        let refs = view
            .document()
            .descendants()
            .filter(|n| n.is_element() && n.tag_name().name() == "DataObjectReference")
            .take(1024);
        for r in refs {
            let uri = r.attribute("URI").ok_or_else(|| bad("a DataObjectReference has no URI".into()))?;
            let data = c
                .get(uri.trim_start_matches('/'))
                .ok_or_else(|| bad(format!("it references {uri}, which the container lacks")))?;
            let child = |name: &str| r.children().find(|n| n.is_element() && n.tag_name().name() == name);
            let alg = child("DigestMethod").and_then(|m| m.attribute("Algorithm")).unwrap_or_default();
            let algorithm = match alg {
                "http://www.w3.org/2001/04/xmlenc#sha256" => &ring::digest::SHA256,
                "http://www.w3.org/2001/04/xmldsig-more#sha384" => &ring::digest::SHA384,
                "http://www.w3.org/2001/04/xmlenc#sha512" => &ring::digest::SHA512,
                other => return Err(bad(format!("digest method {other:?} of {uri} is not supported"))),
            };
            let stated: String = child("DigestValue")
                .map(|v| v.children().filter_map(|t| t.text()).flat_map(str::split_whitespace).collect())
                .unwrap_or_default();
            let actual = base64::engine::general_purpose::STANDARD.encode(ring::digest::digest(algorithm, data));
            if stated != actual {
                return Err(bad(format!("the digest of {uri} does not match")));
            }
        }
        Ok(())
    })
}

fn with_signature_timestamp(signature: &[u8], token: &[u8]) -> Result<Vec<u8>, AsicError> {
    use base64::Engine as _;
    let text = std::str::from_utf8(signature)
        .map_err(|_| err(Code::ASIC_INVALID_CONTAINER, "the logged signature is not UTF-8"))?;
    let stamp = format!(
        "<xades:SignatureTimeStamp Id=\"signature-timestamp\"><xades:EncapsulatedTimeStamp>{}</xades:EncapsulatedTimeStamp>\
</xades:SignatureTimeStamp>",
        base64::engine::general_purpose::STANDARD.encode(token)
    );
    let out = if let Some(i) = text.find("</xades:UnsignedSignatureProperties>") {
        format!("{}{stamp}{}", &text[..i], &text[i..])
    } else if let Some(i) = text.find("</xades:QualifyingProperties>") {
        format!(
            "{}<xades:UnsignedProperties><xades:UnsignedSignatureProperties>{stamp}</xades:UnsignedSignatureProperties>\
</xades:UnsignedProperties>{}",
            &text[..i],
            &text[i..]
        )
    } else {
        return Err(err(Code::ASIC_INVALID_CONTAINER, "the logged signature has no XAdES qualifying properties"));
    };
    Ok(out.into_bytes())
}

/// Checks the linking information of a message-log archive (a ZIP of
/// containers with a `linkinginfo` file): the first line names the previous
/// archive's last digest (or `-`), the previous archive (or `-`) and the hash
/// algorithm; then one line per container, `<hex digest> <name>`, in ZIP
/// order, with `d_i = hex(H(d_{i-1} ‖ hex(H(container_i))))`, `d_0` the previous
/// digest (empty for a first archive). `previous` is the previous archive's
/// last digest, or `None` for the first archive. Returns this archive's last digest.
pub fn verify_archive(bytes: &[u8], previous: Option<&str>, limits: &Limits) -> Result<String, ArchiveError> {
    let files = read_zip(bytes, limits).map_err(|e| archive_err("archive_invalid", e.message))?;
    let linking = files
        .iter()
        .find(|(n, _)| n == "linkinginfo")
        .ok_or_else(|| archive_err("archive_linking_info_not_found", "the archive has no linkinginfo"))?;
    let text =
        std::str::from_utf8(&linking.1).map_err(|_| archive_err("archive_invalid", "linkinginfo is not UTF-8"))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let head: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    let [prev_digest, _prev_file, alg] = head[..] else {
        return Err(archive_err(
            "archive_invalid",
            "the first line of linkinginfo is not `<previous digest> <previous file> <algorithm>`",
        ));
    };
    let algorithm = match alg {
        "SHA-256" => &ring::digest::SHA256,
        "SHA-384" => &ring::digest::SHA384,
        "SHA-512" => &ring::digest::SHA512,
        other => return Err(archive_err("archive_invalid", format!("hash algorithm {other:?} is not supported"))),
    };
    let start = match (prev_digest, previous) {
        ("-", None) => String::new(),
        ("-", Some(_)) => {
            return Err(archive_err(
                "archive_previous_mismatch",
                "the archive starts a chain, but a previous digest was given",
            ));
        }
        (_, None) => {
            return Err(archive_err(
                "archive_previous_required",
                "the archive continues another archive; give that archive's last digest",
            ));
        }
        (d, Some(p)) if !d.eq_ignore_ascii_case(p) => {
            return Err(archive_err("archive_previous_mismatch", format!("the archive continues {d}, not {p}")));
        }
        (d, Some(_)) => d.to_ascii_lowercase(),
    };
    let listed: Vec<(String, String)> = lines
        .map(|l| {
            let mut parts = l.split_whitespace();
            (parts.next().unwrap_or_default().to_owned(), parts.next().unwrap_or_default().to_owned())
        })
        .collect();
    let containers: Vec<&(String, Vec<u8>)> = files.iter().filter(|(n, _)| n.ends_with(".asice")).collect();
    if containers.is_empty() {
        return Err(archive_err("archive_no_containers", "the archive holds no ASiC containers"));
    }
    let names: Vec<&str> = containers.iter().map(|(n, _)| n.as_str()).collect();
    let listed_names: Vec<&str> = listed.iter().map(|(_, n)| n.as_str()).collect();
    if names != listed_names {
        return Err(archive_err(
            "archive_file_mismatch",
            format!("linkinginfo lists {listed_names:?}, the archive holds {names:?}"),
        ));
    }
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut digest = start;
    for ((name, bytes), (stated, _)) in containers.iter().map(|c| (&c.0, &c.1)).zip(&listed) {
        let own = hex(ring::digest::digest(algorithm, bytes).as_ref());
        digest = hex(ring::digest::digest(algorithm, format!("{digest}{own}").as_bytes()).as_ref());
        if !digest.eq_ignore_ascii_case(stated) {
            return Err(archive_err("archive_digest_mismatch", format!("the linking digest of {name} does not match")));
        }
    }
    Ok(digest)
}

/// Why an archive's linking did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ArchiveError {
    /// What failed (`archive_digest_mismatch`, …).
    pub code: &'static str,
    /// Details.
    pub message: String,
}

fn archive_err(code: &'static str, message: impl Into<String>) -> ArchiveError {
    ArchiveError { code, message: message.into() }
}
