//! MIME multipart bodies, parsed whole (`parse_multipart`, as the transport
//! message, directory and management decoders do) and as a stream
//! (`MultipartStream`, as the security server spools large messages) in
//! chunks of the sizes the input gives. Both must agree: the same parts, the
//! same epilogue verdict, or both an error. Content types parse too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi_fuzz::split;
use musubi_protocol::mime::{self, ContentType, MultipartLimits, MultipartStream, StreamEvent};

type Parts = Vec<(Vec<(String, String)>, Vec<u8>)>;

fn streamed(body: &[u8], boundary: &str, chunks: &[u8], limits: MultipartLimits) -> Result<(Parts, bool), String> {
    let mut s = MultipartStream::new(boundary, limits);
    let mut parts: Parts = Vec::new();
    let mut sizes = chunks.iter().map(|c| usize::from(*c) + 1).cycle();
    let mut rest = body;
    loop {
        loop {
            match s.next_event().map_err(|e| e.to_string())? {
                None => break,
                Some(StreamEvent::Headers(h)) => parts.push((h, Vec::new())),
                Some(StreamEvent::Data(d)) => match parts.last_mut() {
                    Some(p) => p.1.extend_from_slice(d),
                    None => panic!("data before any part"),
                },
                Some(StreamEvent::PartEnd) => {}
                Some(StreamEvent::End { trailing }) => return Ok((parts, trailing)),
            }
        }
        if rest.is_empty() {
            s.finish();
            continue;
        }
        let n = sizes.next().unwrap_or(7).min(rest.len());
        s.push(&rest[..n]);
        rest = &rest[n..];
    }
}

fuzz_target!(|data: &[u8]| {
    let [boundary, body, chunks] = split(data, 3)[..] else { return };
    let Ok(boundary) = std::str::from_utf8(boundary) else { return };
    if let Ok(ct) = ContentType::parse(boundary) {
        let _ = (ct.boundary(), ct.is_multipart(), ct.param("charset"));
    }
    if boundary.is_empty() || boundary.len() > 70 {
        return;
    }
    let limits = MultipartLimits { max_parts: 32, max_header_bytes: 1024 };
    let whole = mime::parse_multipart(body, boundary, &limits).map(|m| {
        let parts: Parts = m
            .parts
            .iter()
            .map(|p| (p.headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(), p.body.to_vec()))
            .collect();
        (parts, m.has_trailing_data())
    });
    let stream = streamed(body, boundary, chunks, limits);
    match (&whole, &stream) {
        (Ok(w), Ok(s)) => assert_eq!(w, s, "whole and streamed parses differ"),
        (Err(_), Err(_)) => {}
        _ => panic!("whole and streamed parses disagree: {whole:?} / {stream:?}"),
    }
});
