//! Verifications already done. Whether a key signed some bytes never changes,
//! so a security server need not redo the same verification for every message:
//! a peer's certificate and its OCSP response arrive unchanged with thousands of
//! messages, and every message of a batch carries the same batch signature.
//! Only outcomes that succeeded are remembered (so failing input cannot fill a
//! memo); every check that depends on time, trust or status still runs each time.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// Successful outcomes of a pure check, keyed by a SHA-256 over its inputs.
/// It starts afresh when full.
pub struct Memo<V> {
    kept: Mutex<HashMap<[u8; 32], V>>,
    capacity: usize,
}

impl<V: Clone> Memo<V> {
    /// An empty memo of at most `capacity` outcomes.
    pub fn new(capacity: usize) -> Self {
        Self { kept: Mutex::new(HashMap::new()), capacity }
    }

    /// `check()`, unless the same `parts` succeeded before: then its value.
    pub fn get_or_check<E>(&self, parts: &[&[u8]], check: impl FnOnce() -> Result<V, E>) -> Result<V, E> {
        let k = key(parts);
        if let Some(v) = self.kept.lock().unwrap_or_else(|p| p.into_inner()).get(&k) {
            return Ok(v.clone());
        }
        let v = check()?;
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() >= self.capacity {
            kept.clear();
        }
        kept.insert(k, v.clone());
        Ok(v)
    }

    /// How many outcomes are kept.
    pub fn len(&self) -> usize {
        self.kept.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// SHA-256 over `parts`, each preceded by its length, so that different
/// splits of the same bytes never share a key.
fn key(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(&(p.len() as u64).to_be_bytes());
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Signature verifications of certificates and OCSP responses.
static VERIFIED: LazyLock<Memo<()>> = LazyLock::new(|| Memo::new(4096));

/// `verify()`, unless the same `parts` (algorithm, key, data, signature)
/// verified before.
pub(crate) fn verified<E>(parts: &[&[u8]], verify: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
    VERIFIED.get_or_check(parts, verify)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_successes_are_remembered_and_parts_are_kept_apart() {
        let memo = Memo::new(2);
        let calls = std::cell::Cell::new(0);
        let check = |parts: &[&[u8]], ok: bool| {
            memo.get_or_check(parts, || {
                calls.set(calls.get() + 1);
                if ok { Ok(calls.get()) } else { Err(()) }
            })
        };
        // A failure is not remembered: the next call checks again.
        assert_eq!(check(&[b"a", b"bc"], false), Err(()));
        assert_eq!(check(&[b"a", b"bc"], true), Ok(2));
        // A success is: the same parts give its value without checking.
        assert_eq!(check(&[b"a", b"bc"], false), Ok(2));
        // The same bytes split differently are other parts.
        assert_eq!(check(&[b"ab", b"c"], false), Err(()));
        assert_eq!(calls.get(), 3);
        // Full: it starts afresh.
        assert_eq!(check(&[b"x"], true), Ok(4));
        assert_eq!(memo.len(), 2);
        assert_eq!(check(&[b"y"], true), Ok(5));
        assert_eq!(memo.len(), 1);
    }
}
