//! Helpers for strategy tests: drive objects through the whole `Typed::<K>::admit` pipeline.

use serde_json::Value;

use crate::strategy::{KindStrategy, ObjectStrategy, Operation, StrategyError, Typed};

/// Admit `obj` as a create; `Ok` is the stored object, `Err` the error messages as users see them.
pub(crate) fn create<K: KindStrategy>(obj: Value) -> Result<Value, Vec<String>> {
    run::<K>(obj, Operation::Create)
}

/// Admit `obj` as an update of `old`.
pub(crate) fn update<K: KindStrategy>(obj: Value, old: &Value) -> Result<Value, Vec<String>> {
    run::<K>(obj, Operation::Update { old })
}

/// Admit `obj` as a status update of `old`.
pub(crate) fn update_status<K: KindStrategy>(obj: Value, old: &Value) -> Result<Value, Vec<String>> {
    run::<K>(obj, Operation::UpdateStatus { old })
}

fn run<K: KindStrategy>(obj: Value, op: Operation<'_>) -> Result<Value, Vec<String>> {
    match Typed::<K>::new().admit(obj, op, &mut Vec::new()) {
        Ok(a) => Ok(a.object),
        Err(StrategyError::Invalid(errs)) => Err(errs.iter().map(ToString::to_string).collect()),
        Err(StrategyError::Decode(e)) => panic!("decode error: {e}"),
    }
}

/// The errors of a failed admission (panics, with the object, if it was accepted).
pub(crate) fn errors(r: Result<Value, Vec<String>>) -> Vec<String> {
    match r {
        Ok(v) => panic!("expected errors, object was accepted: {v:#}"),
        Err(e) => e,
    }
}

/// The stored object of a successful admission (panics with the errors otherwise).
pub(crate) fn ok(r: Result<Value, Vec<String>>) -> Value {
    match r {
        Ok(v) => v,
        Err(e) => panic!("expected success, got: {e:#?}"),
    }
}

/// Assert that `errs` contains `want` exactly.
#[track_caller]
pub(crate) fn has(errs: &[String], want: &str) {
    assert!(errs.iter().any(|e| e == want), "missing error\n  {want}\nin\n  {}", errs.join("\n  "));
}

/// The warnings of an accepted create.
pub(crate) fn create_warnings<K: KindStrategy>(obj: Value) -> Vec<String> {
    match Typed::<K>::new().admit(obj, Operation::Create, &mut Vec::new()) {
        Ok(a) => a.warnings,
        Err(e) => panic!("expected success, got: {e}"),
    }
}
