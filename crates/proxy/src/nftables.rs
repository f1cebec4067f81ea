//! The nftables data plane: run the `nft` binary to swap in a rendered table
//! ([`crate::render`]) in one transaction, read back what must survive the swap (ClientIP
//! affinity entries), and delete the table on `skiff reset`.
//!
//! `nft` runs as a child process of the calling thread, so it acts on that thread's network
//! namespace (how [`crate::ProxyConfig::netns`] works). It is spawned with tokio's process
//! API from the calling thread rather than through `spawn_blocking`, whose pool threads would
//! be in the process' namespace instead.

use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::render::CarriedAffinity;

/// How long one `nft` run may take before it is killed; a transaction for thousands of
/// Services takes well under a second.
const NFT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why running `nft` failed.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// The binary does not exist: the proxy falls back to userspace forwarding.
    #[error("{}: not found", path.display())]
    NotInstalled {
        /// The configured binary.
        path: PathBuf,
    },
    /// Spawning `nft` or talking to it failed.
    #[error("running {}: {source}", path.display())]
    Io {
        /// The configured binary.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `nft` ran and reported an error.
    #[error("nft {args} failed ({status}): {stderr}")]
    Failed {
        /// The arguments, for the log.
        args: String,
        /// Exit status.
        status: String,
        /// What nft printed.
        stderr: String,
    },
    /// `nft` ran longer than [`NFT_TIMEOUT`] and was killed.
    #[error("nft {0} timed out")]
    Timeout(String),
    /// `nft -j` printed something that is not its JSON.
    #[error("reading nft's JSON: {0}")]
    Json(#[source] serde_json::Error),
}

impl NftError {
    /// nftables cannot be used on this host at all: no binary, or a kernel without
    /// nf_tables (or without an expression the rules need). The proxy then serves Services
    /// from userspace.
    pub(crate) fn nftables_unusable(&self) -> bool {
        match self {
            NftError::NotInstalled { .. } => true,
            NftError::Failed { stderr, .. } => {
                stderr.contains("Protocol not supported") || stderr.contains("Operation not supported")
            }
            _ => false,
        }
    }

    /// The object (table, set) does not exist.
    fn is_missing(&self) -> bool {
        matches!(self, NftError::Failed { stderr, .. } if stderr.contains("No such file or directory"))
    }
}

/// The `nft` binary and the table the proxy owns.
pub(crate) struct Nft {
    path: PathBuf,
    table: String,
}

impl Nft {
    pub(crate) fn new(path: &Path, table: &str) -> Nft {
        Nft { path: path.to_path_buf(), table: table.to_string() }
    }

    /// Apply a rendered rule set: one transaction (`nft -f -`), so packets see either the
    /// old table or the new one.
    pub(crate) async fn apply(&self, rules: &str) -> Result<(), NftError> {
        self.run(&["-f", "-"], Some(rules)).await.map(drop)
    }

    /// The ClientIP affinity entries in the current table, with their remaining lifetime;
    /// empty when the table does not exist yet.
    pub(crate) async fn affinity(&self) -> Result<CarriedAffinity, NftError> {
        match self.run(&["-j", "list", "sets", "table", "inet", &self.table], None).await {
            Ok(out) => parse_affinity(&out).map_err(NftError::Json),
            Err(e) if e.is_missing() => Ok(CarriedAffinity::new()),
            Err(e) => Err(e),
        }
    }

    async fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<String, NftError> {
        let mut child = tokio::process::Command::new(&self.path)
            .args(args)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| spawn_error(&self.path, e))?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // A write error means nft exited early; its stderr says why.
            let _ = pipe.write_all(input.as_bytes()).await;
            drop(pipe);
        }
        let out = tokio::time::timeout(NFT_TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| NftError::Timeout(args.join(" ")))?
            .map_err(|source| NftError::Io { path: self.path.clone(), source })?;
        check(args, out)
    }
}

fn spawn_error(path: &Path, e: io::Error) -> NftError {
    if e.kind() == io::ErrorKind::NotFound {
        NftError::NotInstalled { path: path.to_path_buf() }
    } else {
        NftError::Io { path: path.to_path_buf(), source: e }
    }
}

fn check(args: &[&str], out: std::process::Output) -> Result<String, NftError> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(NftError::Failed {
            args: args.join(" "),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Delete `table inet <table>` (blocking; for `skiff reset`). A missing table or a missing
/// `nft` binary is success: there is nothing this process could delete.
pub(crate) fn delete_table(nft: &Path, table: &str) -> Result<(), NftError> {
    let args = ["delete", "table", "inet", table];
    let out = std::process::Command::new(nft).args(args).stdin(Stdio::null()).output();
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            return match spawn_error(nft, e) {
                NftError::NotInstalled { .. } => Ok(()),
                other => Err(other),
            };
        }
    };
    match check(&args, out) {
        Err(e) if e.is_missing() => Ok(()),
        other => other.map(drop),
    }
}

/// The `affinity-…` sets of `nft -j list sets` output: client address and seconds left.
pub(crate) fn parse_affinity(json: &str) -> Result<CarriedAffinity, serde_json::Error> {
    let doc: serde_json::Value = serde_json::from_str(json)?;
    let mut out = CarriedAffinity::new();
    for item in doc.get("nftables").and_then(|v| v.as_array()).into_iter().flatten() {
        let Some(set) = item.get("set") else { continue };
        let Some(name) = set.get("name").and_then(|n| n.as_str()).filter(|n| n.starts_with("affinity-")) else {
            continue;
        };
        let entries: Vec<(Ipv4Addr, u64)> = set
            .get("elem")
            .and_then(|e| e.as_array())
            .into_iter()
            .flatten()
            .filter_map(|e| {
                // Entries with a timeout are objects; a bare address has none left to carry.
                let e = e.get("elem")?;
                let ip = e.get("val")?.as_str()?.parse().ok()?;
                let left = e.get("expires")?.as_u64()?;
                Some((ip, left))
            })
            .collect();
        if !entries.is_empty() {
            out.insert(name.to_string(), entries);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinity_entries_are_read_from_nft_json() {
        // Shape of `nft -j list sets table inet T` (nftables 1.0.6).
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
            {"set": {"family": "inet", "name": "cluster-ips", "table": "t", "type": "ipv4_addr", "elem": ["10.43.0.10"]}},
            {"set": {"family": "inet", "name": "affinity-ABC-default/web/tcp/http__10.42.0.3/8080", "table": "t",
                     "type": "ipv4_addr", "flags": ["timeout"], "timeout": 10800,
                     "elem": [{"elem": {"val": "10.42.0.2", "expires": 10798}}, {"elem": {"val": "10.42.0.9", "expires": 99}}]}},
            {"set": {"family": "inet", "name": "affinity-empty", "table": "t", "type": "ipv4_addr"}}]}"#;
        let carried = parse_affinity(json).expect("parses");
        assert_eq!(carried.len(), 1);
        assert_eq!(
            carried["affinity-ABC-default/web/tcp/http__10.42.0.3/8080"],
            [(Ipv4Addr::new(10, 42, 0, 2), 10798), (Ipv4Addr::new(10, 42, 0, 9), 99)]
        );
        assert!(parse_affinity("not json").is_err());
    }

    #[test]
    fn which_failures_mean_no_nftables() {
        assert!(NftError::NotInstalled { path: "nft".into() }.nftables_unusable());
        let failed = |stderr: &str| NftError::Failed {
            args: "-f -".into(),
            status: "exit status: 1".into(),
            stderr: stderr.into(),
        };
        assert!(failed("Error: Could not process rule: Operation not supported").nftables_unusable());
        assert!(!failed("Error: syntax error, unexpected newline").nftables_unusable());
        assert!(failed("Error: No such file or directory").is_missing());
    }

    #[tokio::test]
    async fn a_missing_binary_is_reported_as_not_installed() {
        let nft = Nft::new(Path::new("/nonexistent/nft"), "t");
        let err = nft.apply("table inet t {}").await.expect_err("no binary");
        assert!(matches!(err, NftError::NotInstalled { .. }), "{err}");
        assert!(delete_table(Path::new("/nonexistent/nft"), "t").is_ok(), "nothing to delete without nft");
    }
}
