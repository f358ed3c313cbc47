//! Signatures already verified. Whether a key signed some bytes never changes,
//! so a security server need not redo the same verification for every message:
//! a peer's certificate and its OCSP response arrive unchanged with thousands of
//! messages. Only the mathematics is remembered, and only when it succeeded
//! (so failing input cannot fill the memo); every check that depends on time,
//! trust or status still runs each time.

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

/// Most remembered verifications; the memo starts afresh when it is full.
const CAPACITY: usize = 4096;

static VERIFIED: LazyLock<Mutex<HashSet<[u8; 32]>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

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

/// `verify()`, unless the same `parts` (algorithm, key, data, signature)
/// verified before.
pub(crate) fn verified<E>(parts: &[&[u8]], verify: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
    let k = key(parts);
    if VERIFIED.lock().unwrap_or_else(|p| p.into_inner()).contains(&k) {
        return Ok(());
    }
    verify()?;
    let mut set = VERIFIED.lock().unwrap_or_else(|p| p.into_inner());
    if set.len() >= CAPACITY {
        set.clear();
    }
    set.insert(k);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_successes_are_remembered_and_parts_are_kept_apart() {
        let mut calls = 0;
        let mut check = |parts: &[&[u8]], ok: bool| {
            verified(parts, || {
                calls += 1;
                if ok { Ok(()) } else { Err(()) }
            })
        };
        // A failure is not remembered: the next call verifies again.
        assert_eq!(check(&[b"memo-test-a", b"bc"], false), Err(()));
        assert_eq!(check(&[b"memo-test-a", b"bc"], true), Ok(()));
        // A success is: the same parts pass without verifying.
        assert_eq!(check(&[b"memo-test-a", b"bc"], false), Ok(()));
        // The same bytes split differently are other parts.
        assert_eq!(check(&[b"memo-test-ab", b"c"], false), Err(()));
        assert_eq!(calls, 3);
    }
}
