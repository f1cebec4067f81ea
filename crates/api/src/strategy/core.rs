//! Strategies for core/v1 kinds. The pod spec (shared with every workload's template) lives in
//! [`pod_spec`] and [`volumes`]; each other file holds the kinds named in its doc comment.

pub(crate) mod cluster;
mod config;
mod pod;
pub(crate) mod pod_spec;
mod service;
pub(crate) mod storage;
pub(crate) mod volumes;
pub(crate) mod warnings;

#[cfg(test)]
mod tests;
