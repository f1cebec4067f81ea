//! Interning of the strings a CRD contributes to [`crate::ResourceInfo`], whose fields are
//! `&'static str` (built-in resources borrow constants).
//!
//! Each distinct string (and string list) is leaked once and then reused, so deleting and
//! recreating a CRD, or re-deriving its info on every watch event, costs nothing more; memory
//! grows only with the number of distinct names ever served, which a cluster bounds in practice.
//! The lasting fix is for `ResourceInfo` to own its strings (see the module report in `crd.rs`).

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

/// Returns a `'static` copy of `s`, shared with every earlier call for an equal string.
pub(crate) fn intern(s: &str) -> &'static str {
    static SET: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let set = SET.get_or_init(|| Mutex::new(HashSet::new()));
    // A poisoned lock only means another thread panicked mid-insert; the set is still usable.
    let mut guard = set.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(existing) = guard.get(s) {
        return existing;
    }
    let leaked: &'static str = Box::leak(s.to_string().into_boxed_str());
    guard.insert(leaked);
    leaked
}

/// Returns a `'static` list equal to `items`, shared with every earlier call for an equal list.
pub(crate) fn intern_list(items: &[String]) -> &'static [&'static str] {
    static SET: OnceLock<Mutex<HashSet<&'static [&'static str]>>> = OnceLock::new();
    if items.is_empty() {
        return &[];
    }
    let interned: Vec<&'static str> = items.iter().map(|s| intern(s)).collect();
    let set = SET.get_or_init(|| Mutex::new(HashSet::new()));
    let mut guard = set.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(existing) = guard.get(interned.as_slice()) {
        return existing;
    }
    let leaked: &'static [&'static str] = Box::leak(interned.into_boxed_slice());
    guard.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_strings_share_storage() {
        let a = intern(&format!("crontab{}", 1));
        let b = intern("crontab1");
        assert!(std::ptr::eq(a, b));
        let l1 = intern_list(&["ct".to_string(), "cts".to_string()]);
        let l2 = intern_list(&["ct".to_string(), "cts".to_string()]);
        assert!(std::ptr::eq(l1, l2));
        assert_eq!(l1, ["ct", "cts"]);
        assert!(intern_list(&[]).is_empty());
    }
}
