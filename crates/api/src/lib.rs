//! `skiff-api`: what the API server knows about resources, without doing any I/O.
//!
//! - [`resources`]: the table of built-in resources (names, scope, verbs, subresources);
//! - [`strategy`]: per-kind defaulting and validation behind the [`ObjectStrategy`] seam;
//! - [`field`] and [`validation`]: upstream-shaped field errors and generic checks;
//! - [`table`]: the `kubectl get` columns and cells (server-side `Table` printing);
//! - [`schema`] and [`patch`]: the OpenAPI metadata cursor and the PATCH content types;
//! - [`fieldpath`] and [`apply`]: field ownership sets (`managedFields`) and server-side apply;
//! - [`openapi`]: the OpenAPI v3 documents kubectl validates and explains against;
//! - [`selector`]: label and field selectors;
//! - [`compact`]: decoded objects shrunk for components that keep many in memory;
//! - [`crd`]: CustomResourceDefinitions: their validation and status, and the schema-driven
//!   strategy, tables, OpenAPI and scale of custom resources.
//!
//! See `docs/data-path.md` for where each piece runs in a request.

pub mod apply;
pub mod cidr;
pub mod compact;
pub mod crd;
pub mod field;
pub mod fieldpath;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod quantity;
pub mod resources;
pub mod schema;
pub mod selector;
pub mod strategy;
pub mod table;
pub mod validation;

pub use field::{ErrorList, FieldError, Path};
pub use patch::PatchError;
pub use resources::{Resource, ResourceInfo, SubresourceInfo};
pub use schema::Schema;
pub use strategy::{Admitted, KindStrategy, NameRule, ObjectStrategy, Operation, StrategyError};
