//! X-Road hash chains (`http://cyber.ee/hashchain`, `hashchain.xsd`): how one
//! signature or one time stamp covers many messages (batch signatures, batch
//! time stamps).
//!
//! A `HashChainResult` names a step (`/hashchain.xml#STEP0`) and the digest of
//! that step's value. A step's value is the DER encoding of
//! `SEQUENCE OF SEQUENCE { OCTET STRING digest, UTF8String digestMethod, SEQUENCE {} }`
//! over its children in order: a `HashValue` gives its digest, a `StepRef` the
//! digest of the referenced step's value, a `DataRef` the digest of a data
//! part — the caller's digest when it supplies one, else the resolved data
//! (after a C14N transform if named), which must then match the stated value.
//! Every input the caller supplies must be referenced.

use std::collections::{HashMap, HashSet};

use crate::der::tlv as der;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::digest;
use xml_sec::document::XmlDocument;

use crate::fault::Code;

/// Hash chain namespace.
pub const HASHCHAIN_NS: &str = "http://cyber.ee/hashchain";
const DS_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// Largest chain document accepted.
pub const MAX_CHAIN_BYTES: usize = 1024 * 1024;
const MAX_STEPS: usize = 10_000;
const MAX_DEPTH: usize = 64;

/// Why a hash chain was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct HashChainError {
    /// `malformed_hash_chain`, `invalid_hash_chain`, `invalid_hash_chain_ref` or `hashchain_unused_inputs`.
    pub code: Code,
    /// What was wrong.
    pub message: String,
}

fn err(code: Code, message: impl Into<String>) -> HashChainError {
    HashChainError { code, message: message.into() }
}

fn malformed(message: impl Into<String>) -> HashChainError {
    err(Code::MALFORMED_HASH_CHAIN, message)
}

fn algorithm(uri: &str) -> Result<&'static digest::Algorithm, HashChainError> {
    match uri {
        "http://www.w3.org/2001/04/xmlenc#sha256" => Ok(&digest::SHA256),
        "http://www.w3.org/2001/04/xmldsig-more#sha384" => Ok(&digest::SHA384),
        "http://www.w3.org/2001/04/xmlenc#sha512" => Ok(&digest::SHA512),
        other => Err(malformed(format!("digest method {other:?} is not supported"))),
    }
}

/// A data part the chain must cover: its URI and, optionally, its digest
/// (algorithm URI, digest) when the caller has it already.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// `/message.xml`, `/attachment1`, …
    pub uri: &'a str,
    /// (digest method URI, digest), or `None` to resolve the data.
    pub digest: Option<(&'a str, Vec<u8>)>,
}

#[derive(Debug, Clone)]
enum Child {
    HashValue { method: Option<String>, digest: Vec<u8> },
    StepRef { method: Option<String>, uri: String },
    DataRef { method: Option<String>, uri: String, transform: Option<String>, digest: Vec<u8> },
}

#[derive(Debug)]
struct Chain {
    default_method: Option<String>,
    steps: HashMap<String, Vec<Child>>,
}

fn clean_b64(text: &str) -> Result<Vec<u8>, HashChainError> {
    B64.decode(text.split_whitespace().collect::<String>()).map_err(|_| malformed("DigestValue is not base64"))
}

fn parse_chain(bytes: &[u8]) -> Result<Chain, HashChainError> {
    if bytes.len() > MAX_CHAIN_BYTES {
        return Err(malformed(format!("hash chain of {} bytes exceeds {MAX_CHAIN_BYTES}", bytes.len())));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| malformed("hash chain is not UTF-8"))?;
    if text.contains("<!DOCTYPE") {
        return Err(malformed("DOCTYPE is not allowed in a hash chain"));
    }
    let doc = XmlDocument::parse(text).map_err(|e| malformed(format!("hash chain XML does not parse: {e}")))?;
    doc.with_view(|view| {
        let d = view.document();
        let root = d.root_element();
        if root.tag_name().name() != "HashChain" || root.tag_name().namespace() != Some(HASHCHAIN_NS) {
            return Err(malformed("the root element is not hc:HashChain"));
        }
        let mut chain = Chain { default_method: None, steps: HashMap::new() };
        for el in root.children().filter(|n| n.is_element()) {
            match (el.tag_name().namespace(), el.tag_name().name()) {
                (Some(HASHCHAIN_NS), "DefaultDigestMethod") => {
                    chain.default_method = el.attribute("Algorithm").map(str::to_owned);
                }
                (Some(HASHCHAIN_NS), "HashStep") => {
                    if chain.steps.len() >= MAX_STEPS {
                        return Err(malformed(format!("more than {MAX_STEPS} hash steps")));
                    }
                    let id = el.attribute("id").ok_or_else(|| malformed("a HashStep has no id"))?.to_owned();
                    let mut children = Vec::new();
                    for c in el.children().filter(|n| n.is_element()) {
                        let child: Result<Child, HashChainError> = (|| {
                            if c.tag_name().namespace() != Some(HASHCHAIN_NS) {
                                return Err(malformed(format!(
                                    "unexpected element <{}> in HashStep",
                                    c.tag_name().name()
                                )));
                            }
                            let kind = c.tag_name().name();
                            let mut method = None;
                            let mut transform = None;
                            let mut value = None;
                            for g in c.children().filter(|n| n.is_element()) {
                                match (g.tag_name().namespace(), g.tag_name().name()) {
                                    (Some(DS_NS), "DigestMethod") => {
                                        method = g.attribute("Algorithm").map(str::to_owned)
                                    }
                                    (Some(DS_NS), "Transforms") if kind != "StepRef" => {
                                        transform = g
                                            .children()
                                            .find(|t| t.is_element() && t.tag_name().name() == "Transform")
                                            .and_then(|t| t.attribute("Algorithm"))
                                            .map(str::to_owned);
                                    }
                                    (Some(DS_NS), "DigestValue") if kind != "StepRef" => {
                                        value = Some(clean_b64(
                                            &g.children().filter_map(|t| t.text()).collect::<String>(),
                                        )?);
                                    }
                                    (_, other) => {
                                        return Err(malformed(format!("unexpected element <{other}> in {kind}")));
                                    }
                                }
                            }
                            let uri = || {
                                c.attribute("URI")
                                    .map(str::to_owned)
                                    .ok_or_else(|| malformed(format!("{kind} has no URI")))
                            };
                            let value = || value.clone().ok_or_else(|| malformed(format!("{kind} has no DigestValue")));
                            match kind {
                                "HashValue" => Ok(Child::HashValue { method, digest: value()? }),
                                "StepRef" => Ok(Child::StepRef { method, uri: uri()? }),
                                "DataRef" => Ok(Child::DataRef { method, uri: uri()?, transform, digest: value()? }),
                                other => Err(malformed(format!("unexpected element <{other}> in HashStep"))),
                            }
                        })();
                        children.push(child?);
                    }
                    chain.steps.insert(id, children);
                }
                (_, other) => return Err(malformed(format!("unexpected element <{other}> in HashChain"))),
            }
        }
        Ok(chain)
    })
}

/// The DER step value of (digest, method) pairs.
fn step_value(items: &[(Vec<u8>, String)]) -> Vec<u8> {
    let mut seq = Vec::new();
    for (digest, method) in items {
        let mut inner = der(0x04, digest);
        inner.extend(der(0x0c, method.as_bytes()));
        inner.extend(der(0x30, &[]));
        seq.extend(der(0x30, &inner));
    }
    der(0x30, &seq)
}

struct Verifier<'a> {
    resolve: &'a dyn Fn(&str) -> Option<Vec<u8>>,
    inputs: &'a [Input<'a>],
    docs: HashMap<String, Chain>,
    used: HashSet<String>,
}

impl Verifier<'_> {
    fn chain(&mut self, doc: &str) -> Result<&Chain, HashChainError> {
        if !self.docs.contains_key(doc) {
            let bytes = (self.resolve)(doc).ok_or_else(|| malformed(format!("hash chain {doc} is not available")))?;
            let chain = parse_chain(&bytes)?;
            self.docs.insert(doc.to_owned(), chain);
        }
        self.docs.get(doc).ok_or_else(|| malformed(format!("hash chain {doc} is not available")))
    }

    /// The value of step `uri` (`doc#id` or `#id` relative to `base`), and the document it is in.
    fn value(&mut self, uri: &str, base: &str, depth: usize) -> Result<(Vec<u8>, String), HashChainError> {
        if depth > MAX_DEPTH {
            return Err(malformed("hash chain steps are nested too deep (or form a loop)"));
        }
        let (doc, id) = uri.split_once('#').ok_or_else(|| malformed(format!("step reference {uri:?} has no #id")))?;
        let doc = if doc.is_empty() { base.to_owned() } else { doc.to_owned() };
        let chain = self.chain(&doc)?;
        let default = chain.default_method.clone();
        let children =
            chain.steps.get(id).cloned().ok_or_else(|| malformed(format!("hash chain {doc} has no step {id}")))?;
        let mut items = Vec::new();
        for child in children {
            let method_of = |m: &Option<String>| {
                m.clone()
                    .or_else(|| default.clone())
                    .ok_or_else(|| malformed("no digest method for a hash step element"))
            };
            match child {
                Child::HashValue { method, digest } => items.push((digest, method_of(&method)?)),
                Child::StepRef { method, uri } => {
                    let m = method_of(&method)?;
                    let (v, _) = self.value(&uri, &doc, depth + 1)?;
                    items.push((digest::digest(algorithm(&m)?, &v).as_ref().to_vec(), m));
                }
                Child::DataRef { method, uri, transform, digest: stated } => {
                    let m = method_of(&method)?;
                    self.used.insert(uri.clone());
                    let input = self.inputs.iter().find(|i| i.uri == uri);
                    let d = match input.and_then(|i| i.digest.clone()) {
                        Some((alg, d)) if alg == m => d,
                        // A part known only by a digest of another method cannot be checked.
                        Some((alg, _)) if (self.resolve)(&uri).is_none() => {
                            return Err(err(
                                Code::INVALID_HASH_CHAIN_REF,
                                format!("{uri} was hashed with {alg}, but the hash chain uses {m}"),
                            ));
                        }
                        _ => match (self.resolve)(&uri) {
                            Some(data) => {
                                let data = match &transform {
                                    Some(t) => canonical(&data, t)?,
                                    None => data,
                                };
                                let d = digest::digest(algorithm(&m)?, &data).as_ref().to_vec();
                                if d != stated {
                                    return Err(err(
                                        Code::INVALID_HASH_CHAIN_REF,
                                        format!("the digest of {uri} does not match the hash chain"),
                                    ));
                                }
                                d
                            }
                            None => stated,
                        },
                    };
                    items.push((d, m));
                }
            }
        }
        Ok((step_value(&items), doc))
    }
}

fn canonical(data: &[u8], transform: &str) -> Result<Vec<u8>, HashChainError> {
    let algo = xml_sec::c14n::C14nAlgorithm::from_uri(transform)
        .ok_or_else(|| malformed(format!("transform {transform:?} is not supported")))?;
    xml_sec::c14n::canonicalize_xml(data, &algo).map_err(|e| malformed(format!("cannot canonicalize data: {e}")))
}

/// Verifies a hash chain result against its chains and `inputs`. `resolve`
/// returns the bytes of a chain document or data part by URI.
pub fn verify(
    result_xml: &[u8],
    resolve: &dyn Fn(&str) -> Option<Vec<u8>>,
    inputs: &[Input<'_>],
) -> Result<(), HashChainError> {
    let (uri, method, expected) = parse_result(result_xml)?;
    let mut v = Verifier { resolve, inputs, docs: HashMap::new(), used: HashSet::new() };
    let (value, _) = v.value(&uri, "", 0)?;
    if digest::digest(algorithm(&method)?, &value).as_ref() != expected.as_slice() {
        return Err(err(Code::INVALID_HASH_CHAIN, "the hash chain does not lead to the hash chain result"));
    }
    let unused: Vec<&str> = inputs.iter().map(|i| i.uri).filter(|u| !v.used.contains(*u)).collect();
    if !unused.is_empty() {
        return Err(err(
            Code::HASHCHAIN_UNUSED_INPUTS,
            format!("inputs not covered by the hash chain: {}", unused.join(", ")),
        ));
    }
    Ok(())
}

fn parse_result(xml: &[u8]) -> Result<(String, String, Vec<u8>), HashChainError> {
    let text = std::str::from_utf8(xml).map_err(|_| malformed("hash chain result is not UTF-8"))?;
    let doc = XmlDocument::parse(text).map_err(|e| malformed(format!("hash chain result does not parse: {e}")))?;
    doc.with_view(|view| {
        let root = view.document().root_element();
        if root.tag_name().name() != "HashChainResult" || root.tag_name().namespace() != Some(HASHCHAIN_NS) {
            return Err(malformed("the root element is not hc:HashChainResult"));
        }
        let uri = root.attribute("URI").ok_or_else(|| malformed("HashChainResult has no URI"))?.to_owned();
        let child = |name: &str| root.children().find(|n| n.is_element() && n.tag_name().name() == name);
        let method = child("DigestMethod")
            .and_then(|m| m.attribute("Algorithm"))
            .ok_or_else(|| malformed("HashChainResult has no DigestMethod"))?
            .to_owned();
        let value = child("DigestValue").ok_or_else(|| malformed("HashChainResult has no DigestValue"))?;
        let value = clean_b64(&value.children().filter_map(|t| t.text()).collect::<String>())?;
        Ok((uri, method, value))
    })
}

/// SHA-512, the digest method Musubi builds chains with.
pub const SHA512_URI: &str = "http://www.w3.org/2001/04/xmlenc#sha512";

/// A built batch: one result to sign or time-stamp, and for each input the
/// chain (served as `/hashchain.xml`) that links its data to the result.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The `HashChainResult` document.
    pub result: Vec<u8>,
    /// One `HashChain` document per input, in input order.
    pub chains: Vec<Vec<u8>>,
}

/// Builds hash chains over `inputs` (each a list of (data URI, SHA-512 digest)):
/// a binary tree whose leaves hold each input's `DataRef`s. Every chain is
/// served as `chain_uri` (X-Road: `/sig-hashchain.xml` for batch signatures)
/// and verifies with [`verify`] against the result and its own input.
pub fn build(inputs: &[Vec<(String, Vec<u8>)>], chain_uri: &str) -> Result<Batch, HashChainError> {
    if inputs.is_empty() {
        return Err(malformed("a hash chain needs at least one input"));
    }
    let m = SHA512_URI.to_owned();
    let h = |v: &[u8]| digest::digest(&digest::SHA512, v).as_ref().to_vec();
    // Level 0: leaves. Each node keeps its value and the inputs below it.
    let mut level: Vec<(Vec<u8>, Vec<usize>)> = inputs
        .iter()
        .enumerate()
        .map(|(i, parts)| (step_value(&parts.iter().map(|(_, d)| (d.clone(), m.clone())).collect::<Vec<_>>()), vec![i]))
        .collect();
    // Each inner node's children digests, base64-encoded once however many
    // chains name them; for each input, the path from its leaf upwards:
    // (the sibling's digest in `encoded`, sibling is left?) per level.
    let mut encoded: Vec<String> = Vec::new();
    let mut paths: Vec<Vec<(usize, bool)>> = vec![Vec::new(); inputs.len()];
    while level.len() > 1 {
        let mut next = Vec::new();
        let mut nodes = level.into_iter();
        while let Some((left, left_inputs)) = nodes.next() {
            match nodes.next() {
                Some((right, right_inputs)) => {
                    let (hl, hr) = (h(&left), h(&right));
                    encoded.push(B64.encode(&hl));
                    encoded.push(B64.encode(&hr));
                    let (il, ir) = (encoded.len() - 2, encoded.len() - 1);
                    for &i in &left_inputs {
                        paths[i].push((ir, false));
                    }
                    for &i in &right_inputs {
                        paths[i].push((il, true));
                    }
                    let value = step_value(&[(hl, m.clone()), (hr, m.clone())]);
                    next.push((value, [left_inputs, right_inputs].concat()));
                }
                None => next.push((left, left_inputs)),
            }
        }
        level = next;
    }
    let root = level.into_iter().next().map(|(v, _)| v).unwrap_or_default();
    let result = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><hc:HashChainResult xmlns:hc=\"{HASHCHAIN_NS}\" \
xmlns:ds=\"{DS_NS}\" URI=\"{}#STEP0\"><ds:DigestMethod Algorithm=\"{SHA512_URI}\"/>\
<ds:DigestValue>{}</ds:DigestValue></hc:HashChainResult>",
        crate::fault::escape_text(chain_uri),
        B64.encode(h(&root))
    )
    .into_bytes();
    let head = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><hc:HashChain xmlns:hc=\"{HASHCHAIN_NS}\" xmlns:ds=\"{DS_NS}\">\
<hc:DefaultDigestMethod Algorithm=\"{SHA512_URI}\"/>"
    );
    let chains = inputs
        .iter()
        .zip(&paths)
        .map(|(parts, path)| {
            // Written piece by piece: a batch has thousands of chains.
            let mut out = String::with_capacity(head.len() + path.len() * 200 + parts.len() * 200 + 16);
            out.push_str(&head);
            let step_ref = |out: &mut String, k: usize| {
                out.push_str("<hc:StepRef URI=\"#STEP");
                out.push_str(&k.to_string());
                out.push_str("\"/>");
            };
            // From the root down: step k holds the sibling's digest and a reference to step k+1.
            for (k, &(sibling, sibling_is_left)) in path.iter().rev().enumerate() {
                out.push_str("<hc:HashStep id=\"STEP");
                out.push_str(&k.to_string());
                out.push_str("\">");
                if !sibling_is_left {
                    step_ref(&mut out, k + 1);
                }
                out.push_str("<hc:HashValue><ds:DigestValue>");
                out.push_str(&encoded[sibling]);
                out.push_str("</ds:DigestValue></hc:HashValue>");
                if sibling_is_left {
                    step_ref(&mut out, k + 1);
                }
                out.push_str("</hc:HashStep>");
            }
            out.push_str("<hc:HashStep id=\"STEP");
            out.push_str(&path.len().to_string());
            out.push_str("\">");
            for (uri, d) in parts {
                out.push_str("<hc:DataRef URI=\"");
                out.push_str(&crate::fault::escape_text(uri));
                out.push_str("\"><ds:DigestValue>");
                out.push_str(&B64.encode(d));
                out.push_str("</ds:DigestValue></hc:DataRef>");
            }
            out.push_str("</hc:HashStep></hc:HashChain>");
            out.into_bytes()
        })
        .collect();
    Ok(Batch { result, chains })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(n: usize) -> Vec<Vec<(String, Vec<u8>)>> {
        (0..n)
            .map(|i| {
                let msg = format!("message {i}");
                let mut parts = vec![(
                    "/message.xml".to_owned(),
                    digest::digest(&digest::SHA512, msg.as_bytes()).as_ref().to_vec(),
                )];
                if i % 2 == 1 {
                    parts.push(("/attachment1".to_owned(), digest::digest(&digest::SHA512, b"att").as_ref().to_vec()));
                }
                parts
            })
            .collect()
    }

    #[test]
    fn built_chains_verify_for_every_input_and_no_other() {
        for n in [1, 2, 3, 5, 8, 13] {
            let ins = inputs(n);
            let batch = build(&ins, "/hashchain.xml").unwrap();
            for (i, parts) in ins.iter().enumerate() {
                let chain = batch.chains[i].clone();
                let resolve = move |uri: &str| (uri == "/hashchain.xml").then(|| chain.clone());
                let given: Vec<Input<'_>> =
                    parts.iter().map(|(u, d)| Input { uri: u, digest: Some((SHA512_URI, d.clone())) }).collect();
                verify(&batch.result, &resolve, &given).unwrap_or_else(|e| panic!("n={n} i={i}: {e}"));
                // Another input's data does not verify through this chain.
                let other = &ins[(i + 1) % n];
                if n > 1 && other[0].1 != parts[0].1 {
                    let wrong = vec![Input { uri: "/message.xml", digest: Some((SHA512_URI, other[0].1.clone())) }];
                    let r = verify(&batch.result, &resolve, &[wrong, given[1..].to_vec()].concat());
                    assert_eq!(r.unwrap_err().code, Code::INVALID_HASH_CHAIN, "n={n} i={i}");
                }
            }
        }
        assert!(build(&[], "/hashchain.xml").is_err());
    }
}
