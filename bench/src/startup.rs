//! (d) Start-up: spawn → first successful readiness probe (`/readyz` → `ok` for skiff, etcd's
//! `/health` → `{"health":"true"}`), on a fresh data dir each time, and the idle resident memory
//! a second after becoming ready.

use std::time::Duration;

use anyhow::Result;

use crate::servers::{Env, Kind, Server};

/// Result for one peer.
#[derive(Clone, Debug)]
pub(crate) struct Startup {
    pub ready: Vec<Duration>,
    /// VmRSS one second after ready, KiB.
    pub idle_rss_kib: Vec<u64>,
}

/// How long a fresh server is left idle before its memory is read.
pub(crate) const SETTLE: Duration = Duration::from_secs(1);

pub(crate) async fn run(env: &Env, kind: Kind, starts: usize) -> Result<Startup> {
    let mut out = Startup { ready: Vec::with_capacity(starts), idle_rss_kib: Vec::with_capacity(starts) };
    for i in 0..starts {
        let server = Server::start(env, kind, &format!("{}-start-{i}", kind.name())).await?;
        out.ready.push(server.start_to_ready);
        tokio::time::sleep(SETTLE).await;
        out.idle_rss_kib.push(server.memory()?.rss);
        server.stop().await?;
    }
    Ok(out)
}
