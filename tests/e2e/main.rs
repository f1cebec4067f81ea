//! One test binary for everything above unit level (see STYLE.md: one integration crate).
//!
//! - `component`: the API server in process over the in-memory store;
//! - `kubectl`: the built `skiff` binary driven by real kubectl 1.32.

mod component;
mod kubectl;
