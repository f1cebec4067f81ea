//! Strategies for batch/v1 kinds.

use k8s_openapi::api::batch::v1::{CronJob, Job};

use crate::strategy::KindStrategy;

impl KindStrategy for CronJob {}
impl KindStrategy for Job {}
