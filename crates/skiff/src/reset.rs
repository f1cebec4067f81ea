//! `skiff reset`: remove everything skiff created on this host for a data dir — the container
//! runtime's processes, mounts, network links and cgroups, the data dir itself and skiff's
//! entries in the kubeconfig it merged into. Safe to run twice; refuses while a server still
//! runs on the data dir (containers left running by a stopped server are killed: reset is the
//! end of fail-static).

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::{datadir, kubeconfig};

#[derive(Args, Debug)]
pub(crate) struct ResetArgs {
    /// The data dir to remove.
    #[arg(long, default_value = "/var/lib/skiff", env = "SKIFF_DATA_DIR")]
    pub data_dir: PathBuf,
}

pub(crate) fn run(args: ResetArgs) -> Result<()> {
    let dir = &args.data_dir;
    if !dir.exists() {
        println!("nothing to reset: {} does not exist", dir.display());
        return Ok(());
    }
    if dir.parent().is_none() || dir == &PathBuf::from("/") {
        bail!("refusing to remove {}", dir.display());
    }
    let lock_path = dir.join("server.lock");
    if let Ok(f) = fs::OpenOptions::new().write(true).open(&lock_path)
        && nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).is_err()
    {
        bail!("a skiff server is still running on {}; stop it first", dir.display());
    }
    // The service proxy's table and interface (kept across restarts, fail-static).
    let table = crate::agent::proxy_table(&std::path::absolute(dir).unwrap_or_else(|_| dir.clone()));
    if let Err(e) = skiff_proxy::cleanup(&table, std::path::Path::new("nft")) {
        eprintln!("removing the service proxy's rules (table inet {table}): {e}");
    }
    let runtime = skiff_runtime::linux::reset(dir);
    if runtime.killed > 0 {
        println!("killed {} container processes", runtime.killed);
    }
    if !runtime.unmounted.is_empty() {
        println!("unmounted {} mounts", runtime.unmounted.len());
    }
    for link in &runtime.links_deleted {
        println!("deleted network link {link}");
    }
    if let Some(cg) = &runtime.cgroup_root {
        println!("removed cgroup {cg}");
    }
    for e in &runtime.errors {
        eprintln!("warning: {e}");
    }
    if let Some(kc) = datadir::merged_kubeconfig(dir)
        && let Some(cfg) = kubeconfig::read(&kc)?
    {
        kubeconfig::write(&kc, &kubeconfig::unmerge(cfg))?;
        println!("removed the skiff context from {}", kc.display());
    }
    fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    println!("removed {}", dir.display());
    Ok(())
}
