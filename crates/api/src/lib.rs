//! `skiff-api`: what the API server knows about resources, without doing any I/O.
//!
//! - [`resources`]: the table of built-in resources (names, scope, verbs, subresources);
//! - [`strategy`]: per-kind defaulting and validation behind the [`ObjectStrategy`] seam;
//! - [`field`] and [`validation`]: upstream-shaped field errors and generic checks;
//! - [`openapi`]: the OpenAPI v3 documents kubectl validates and explains against.
//!
//! See `docs/data-path.md` for where each piece runs in a request.

pub mod field;
pub mod openapi;
pub mod resources;
pub mod strategy;
pub mod validation;

pub use field::{ErrorList, FieldError, Path};
pub use resources::{Resource, ResourceInfo, SubresourceInfo};
pub use strategy::{Admitted, KindStrategy, NameRule, ObjectStrategy, Operation, StrategyError};
