//! Bodies that may be too large to hold in memory. A multipart body is read as
//! it arrives: each part is hashed on the way, small parts stay in memory and
//! larger ones go to a file under `<state_dir>/spool`, deleted when the last
//! reference to it is dropped. Outgoing bodies are sent piece by piece, files
//! read in chunks, so a 10 MB attachment costs a security server about one
//! chunk of memory per exchange, not its size.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use musubi_protocol::mime::{ContentType, MimeError, MultipartLimits, MultipartStream, StreamEvent};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};

/// Parts up to this size stay in memory; larger ones are spooled to a file.
pub(crate) const IN_MEMORY: usize = 64 * 1024;
/// Chunks in which spooled files are written and read.
const CHUNK: usize = 32 * 1024;

/// A file in the spool directory, removed when dropped.
#[derive(Debug)]
pub(crate) struct SpoolFile {
    path: PathBuf,
    len: u64,
}

impl SpoolFile {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SpoolFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A part's body: bytes in memory, or a spooled file.
#[derive(Debug, Clone)]
pub(crate) enum Blob {
    Memory(Bytes),
    File(Arc<SpoolFile>),
}

impl Blob {
    pub(crate) fn len(&self) -> u64 {
        match self {
            Blob::Memory(b) => b.len() as u64,
            Blob::File(f) => f.len,
        }
    }

    /// The whole body in memory (for parts that must be parsed, such as a
    /// large SOAP part); refused above `max` bytes.
    pub(crate) async fn bytes(&self, max: usize) -> io::Result<Bytes> {
        if self.len() > max as u64 {
            return Err(io::Error::other(format!("a part of {} bytes exceeds the limit of {max} bytes", self.len())));
        }
        match self {
            Blob::Memory(b) => Ok(b.clone()),
            Blob::File(f) => tokio::fs::read(&f.path).await.map(Bytes::from),
        }
    }
}

/// One received part.
#[derive(Debug)]
pub(crate) struct Received {
    /// Header lines as (name, value).
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Blob,
    /// The body's digest with the spooler's digest method.
    pub(crate) digest: Vec<u8>,
    /// The parts of a nested multipart part (whose own body is then empty).
    pub(crate) nested: Vec<Received>,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Header lines as borrowed pairs.
    pub(crate) fn header_refs(&self) -> Vec<(&str, &str)> {
        self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }
}

/// Why a body could not be received.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReceiveError {
    /// The connection failed or the body exceeded its limit.
    #[error("cannot read the body: {0}")]
    Read(String),
    /// The multipart structure is broken.
    #[error(transparent)]
    Mime(#[from] MimeError),
    /// The body held nothing but whitespace.
    #[error("the body is empty")]
    Blank,
    /// A part could not be spooled.
    #[error("cannot spool a part to disk: {0}")]
    Spool(#[from] io::Error),
}

/// Where and how parts are spooled.
#[derive(Debug, Clone)]
pub(crate) struct Spooler {
    dir: PathBuf,
    /// The digest method (XML-DSig URI) parts are hashed with.
    pub(crate) method: &'static str,
    algorithm: &'static ring::digest::Algorithm,
}

/// The digest algorithm a transport message's `x-hash-algorithm` names
/// (a name such as `SHA-512` or an XML-DSig URI); SHA-512 when absent or unknown.
pub(crate) fn digest_method(announced: Option<&str>) -> (&'static str, &'static ring::digest::Algorithm) {
    let a = announced.unwrap_or_default().to_ascii_lowercase();
    if a.ends_with("sha256") || a == "sha-256" {
        ("http://www.w3.org/2001/04/xmlenc#sha256", &ring::digest::SHA256)
    } else if a.ends_with("sha384") || a == "sha-384" {
        ("http://www.w3.org/2001/04/xmldsig-more#sha384", &ring::digest::SHA384)
    } else {
        (musubi_protocol::xades::SHA512, &ring::digest::SHA512)
    }
}

impl Spooler {
    /// A spooler writing to `dir`, hashing with SHA-512.
    pub(crate) fn new(dir: PathBuf) -> Self {
        let (method, algorithm) = digest_method(None);
        Self { dir, method, algorithm }
    }

    /// Empties the spool directory (files left by a crash) and creates it.
    pub(crate) fn prepare(&self) -> io::Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        std::fs::create_dir_all(&self.dir)
    }

    /// The same spooler hashing with the method a peer announced.
    pub(crate) fn hashing(&self, announced: Option<&str>) -> Self {
        let (method, algorithm) = digest_method(announced);
        Self { dir: self.dir.clone(), method, algorithm }
    }

    /// Digest of bytes in memory with this spooler's method.
    pub(crate) fn digest(&self, data: &[u8]) -> Vec<u8> {
        ring::digest::digest(self.algorithm, data).as_ref().to_vec()
    }

    /// Reads a multipart body of boundary `boundary`, at most `max` bytes in
    /// all. With `nest`, a part that is itself multipart is read into
    /// [`Received::nested`] (one level). Returns the parts and whether more
    /// than whitespace followed the closing delimiter.
    pub(crate) async fn receive<B>(
        &self,
        mut body: B,
        boundary: &str,
        max: usize,
        nest: bool,
    ) -> Result<(Vec<Received>, bool), ReceiveError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        let mut outer = MultipartStream::new(boundary, MultipartLimits::default());
        let mut parts = Vec::new();
        let mut current: Option<Current> = None;
        let mut total = 0usize;
        let mut eof = false;
        let mut blank = true;
        loop {
            loop {
                let event = match outer.next_event() {
                    Ok(Some(event)) => event,
                    Ok(None) => break,
                    Err(MimeError::BoundaryNotFound(_)) if blank => return Err(ReceiveError::Blank),
                    Err(e) => return Err(e.into()),
                };
                match event {
                    StreamEvent::Headers(headers) => {
                        let nested = if nest { nested_boundary(&headers) } else { None };
                        current = Some(match nested {
                            Some(b) => Current::Nested {
                                headers,
                                parser: MultipartStream::new(&b, MultipartLimits::default()),
                                parts: Vec::new(),
                                part: None,
                            },
                            None => Current::Part(Sink::new(self, headers)),
                        });
                    }
                    StreamEvent::Data(data) => match current.as_mut() {
                        Some(Current::Part(sink)) => sink.write(data).await?,
                        Some(Current::Nested { parser, parts, part, .. }) => {
                            parser.push(data);
                            self.drain_nested(parser, parts, part).await?;
                        }
                        None => return Err(MimeError::Malformed("data outside a part".into()).into()),
                    },
                    StreamEvent::PartEnd => match current.take() {
                        Some(Current::Part(sink)) => parts.push(sink.finish().await?),
                        Some(Current::Nested { headers, mut parser, parts: mut inner, mut part }) => {
                            parser.finish();
                            if self.drain_nested(&mut parser, &mut inner, &mut part).await? {
                                return Err(MimeError::Malformed("data after the nested multipart's end".into()).into());
                            }
                            let digest = self.digest(&[]);
                            parts.push(Received { headers, body: Blob::Memory(Bytes::new()), digest, nested: inner });
                        }
                        None => {}
                    },
                    StreamEvent::End { trailing } => return Ok((parts, trailing)),
                }
            }
            if eof {
                // The parser asks for more after the end of input only if it is broken.
                return Err(MimeError::Malformed("the body ended inside the multipart".into()).into());
            }
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        total += data.len();
                        if total > max {
                            return Err(ReceiveError::Read(format!("the body exceeds the limit of {max} bytes")));
                        }
                        blank = blank && data.iter().all(u8::is_ascii_whitespace);
                        outer.push(&data);
                    }
                }
                Some(Err(e)) => return Err(ReceiveError::Read(e.to_string())),
                None => {
                    outer.finish();
                    eof = true;
                }
            }
        }
    }

    /// Takes the events of a nested multipart; true if it ended with trailing data.
    async fn drain_nested(
        &self,
        parser: &mut MultipartStream,
        parts: &mut Vec<Received>,
        part: &mut Option<Sink>,
    ) -> Result<bool, ReceiveError> {
        while let Some(event) = parser.next_event()? {
            match event {
                StreamEvent::Headers(headers) => *part = Some(Sink::new(self, headers)),
                StreamEvent::Data(data) => {
                    if let Some(sink) = part.as_mut() {
                        sink.write(data).await?;
                    }
                }
                StreamEvent::PartEnd => {
                    if let Some(sink) = part.take() {
                        parts.push(sink.finish().await?);
                    }
                }
                StreamEvent::End { trailing } => return Ok(trailing),
            }
        }
        Ok(false)
    }
}

fn nested_boundary(headers: &[(String, String)]) -> Option<String> {
    let ct = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-type"))?;
    let ct = ContentType::parse(&ct.1).ok()?;
    if !ct.is_multipart() {
        return None;
    }
    ct.boundary().ok().map(str::to_owned)
}

enum Current {
    Part(Sink),
    Nested { headers: Vec<(String, String)>, parser: MultipartStream, parts: Vec<Received>, part: Option<Sink> },
}

/// One part being received: hashed, kept in memory until it outgrows
/// [`IN_MEMORY`], then written to a spool file.
struct Sink {
    headers: Vec<(String, String)>,
    memory: Vec<u8>,
    /// tokio's file copies each write and hands it to a blocking thread, so it
    /// buffers one chunk itself.
    file: Option<(tokio::fs::File, SpoolFile)>,
    digest: ring::digest::Context,
    dir: PathBuf,
}

impl Sink {
    fn new(spooler: &Spooler, headers: Vec<(String, String)>) -> Self {
        Self {
            headers,
            memory: Vec::new(),
            file: None,
            digest: ring::digest::Context::new(spooler.algorithm),
            dir: spooler.dir.clone(),
        }
    }

    async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.digest.update(data);
        if self.file.is_none() && self.memory.len() + data.len() > IN_MEMORY {
            let path = self.dir.join(unique_name());
            let file = tokio::fs::OpenOptions::new().write(true).create_new(true).open(&path).await?;
            // From here on the file is removed with the SpoolFile, also on failure.
            self.file = Some((file, SpoolFile { path, len: 0 }));
            let memory = std::mem::take(&mut self.memory);
            if let Some((w, f)) = &mut self.file {
                w.write_all(&memory).await?;
                f.len = memory.len() as u64;
            }
        }
        match &mut self.file {
            Some((w, f)) => {
                w.write_all(data).await?;
                f.len += data.len() as u64;
            }
            None => self.memory.extend_from_slice(data),
        }
        Ok(())
    }

    async fn finish(self) -> io::Result<Received> {
        let body = match self.file {
            Some((mut w, f)) => {
                w.flush().await?;
                Blob::File(Arc::new(f))
            }
            None => Blob::Memory(Bytes::from(self.memory)),
        };
        Ok(Received { headers: self.headers, body, digest: self.digest.finish().as_ref().to_vec(), nested: Vec::new() })
    }
}

/// A file name not used before by this process (the spool is emptied at start).
fn unique_name() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!("{}-{}", std::process::id(), NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// Reads a whole (non-multipart) body into memory, at most `max` bytes.
pub(crate) async fn read_whole<B>(mut body: B, max: usize) -> Result<Bytes, String>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.map_err(|e| e.to_string())?.into_data() {
            total += data.len();
            if total > max {
                return Err(format!("the body exceeds the limit of {max} bytes"));
            }
            chunks.push(data);
        }
    }
    // One chunk (the usual small body) is kept as it is, without a copy.
    if chunks.len() == 1 {
        return Ok(chunks.remove(0));
    }
    Ok(Bytes::from(chunks.concat()))
}

/// A piece of an outgoing body.
#[derive(Debug, Clone)]
pub(crate) enum Piece {
    Bytes(Bytes),
    Blob(Blob),
}

impl From<musubi_protocol::mime::Piece<Blob>> for Piece {
    fn from(p: musubi_protocol::mime::Piece<Blob>) -> Self {
        match p {
            musubi_protocol::mime::Piece::Bytes(b) => Piece::Bytes(Bytes::from(b)),
            musubi_protocol::mime::Piece::Body(b) => Piece::Blob(b),
        }
    }
}

/// An outgoing body made of pieces; spooled files are read in chunks as the
/// receiver takes them. Its exact length is known, so it is sent with a
/// `Content-Length`.
pub(crate) struct OutBody {
    pieces: VecDeque<Piece>,
    /// The file being sent and the bytes of it still to send.
    reading: Option<(tokio::fs::File, u64, Arc<SpoolFile>)>,
    remaining: u64,
}

impl OutBody {
    pub(crate) fn new(pieces: impl IntoIterator<Item = Piece>) -> Self {
        let pieces: VecDeque<Piece> = pieces.into_iter().collect();
        let remaining = pieces
            .iter()
            .map(|p| match p {
                Piece::Bytes(b) => b.len() as u64,
                Piece::Blob(b) => b.len(),
            })
            .sum();
        Self { pieces, reading: None, remaining }
    }

    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        Self::new([Piece::Bytes(bytes.into())])
    }
}

impl std::fmt::Debug for OutBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutBody").field("remaining", &self.remaining).finish()
    }
}

impl Body for OutBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        loop {
            if let Some((file, left, _)) = &mut this.reading {
                if *left == 0 {
                    this.reading = None;
                    continue;
                }
                let mut chunk = vec![0u8; CHUNK.min(*left as usize)];
                let mut buf = ReadBuf::new(&mut chunk);
                match Pin::new(file).poll_read(cx, &mut buf) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                    Poll::Ready(Ok(())) => {
                        let n = buf.filled().len();
                        if n == 0 {
                            return Poll::Ready(Some(Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "a spooled file is shorter than when it was written",
                            ))));
                        }
                        *left -= n as u64;
                        this.remaining -= n as u64;
                        chunk.truncate(n);
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))));
                    }
                }
            }
            match this.pieces.pop_front() {
                None => return Poll::Ready(None),
                Some(Piece::Bytes(b)) | Some(Piece::Blob(Blob::Memory(b))) => {
                    if b.is_empty() {
                        continue;
                    }
                    this.remaining -= b.len() as u64;
                    return Poll::Ready(Some(Ok(Frame::data(b))));
                }
                Some(Piece::Blob(Blob::File(f))) => {
                    // Opening a local file is quick; reads go through tokio's blocking pool.
                    let file = std::fs::File::open(&f.path)?;
                    this.reading = Some((tokio::fs::File::from_std(file), f.len, f));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_outgoing_body_sends_its_pieces_and_files_in_order() {
        let dir = std::env::temp_dir().join(format!("musubi-spool-test-{}", unique_name()));
        let spooler = Spooler::new(dir.clone());
        spooler.prepare().unwrap();
        let mut sink = Sink::new(&spooler, Vec::new());
        let big: Vec<u8> = (0..IN_MEMORY * 3 + 17).map(|i| (i % 251) as u8).collect();
        for c in big.chunks(10_000) {
            sink.write(c).await.unwrap();
        }
        let part = sink.finish().await.unwrap();
        assert!(matches!(part.body, Blob::File(_)), "a part above IN_MEMORY is spooled");
        assert_eq!(part.digest, spooler.digest(&big));
        let path = match &part.body {
            Blob::File(f) => f.path().to_owned(),
            Blob::Memory(_) => unreachable!(),
        };
        let body = OutBody::new([
            Piece::Bytes(Bytes::from_static(b"head")),
            Piece::Blob(part.body.clone()),
            Piece::Blob(Blob::Memory(Bytes::from_static(b"tail"))),
        ]);
        assert_eq!(body.size_hint().exact(), Some(big.len() as u64 + 8));
        let got = body.collect().await.unwrap().to_bytes();
        assert_eq!(&got[..4], b"head");
        assert_eq!(&got[4..got.len() - 4], big.as_slice());
        assert_eq!(&got[got.len() - 4..], b"tail");
        drop(part);
        assert!(!path.exists(), "the spool file goes with its last reference");
        let _ = std::fs::remove_dir_all(dir);
    }
}
