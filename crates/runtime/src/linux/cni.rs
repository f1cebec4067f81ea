//! Pod networking through standard CNI plugins (spec 0.4/1.0), used instead of the built-in
//! bridge when `cni_bin_dir` and `cni_conf_dir` are configured: the first `*.conflist` /
//! `*.conf` / `*.json` of the conf dir (in name order) is the network; ADD runs its plugins in
//! order chaining `prevResult`, DEL runs them in reverse. What DEL needs (the network config,
//! the plugin dir, the ADD result) is kept in the sandbox record, so `skiff reset` can run it
//! without the runtime's configuration.

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

/// A loaded network configuration list.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CniConfig {
    bin_dir: PathBuf,
    /// The whole network config list (`name`, `cniVersion`, `plugins`).
    list: Value,
}

/// What a sandbox's CNI network consists of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CniAttachment {
    pub(crate) ips: Vec<IpAddr>,
    pub(crate) bin_dir: PathBuf,
    /// The network config list and the final ADD result, as JSON text.
    pub(crate) list: String,
    pub(crate) result: String,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl CniConfig {
    pub(crate) fn load(bin_dir: &Path, conf_dir: &Path) -> io::Result<Self> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(conf_dir)
            .map_err(|e| io::Error::new(e.kind(), format!("CNI conf dir {}: {e}", conf_dir.display())))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("conflist" | "conf" | "json")))
            .collect();
        files.sort();
        let file = files.first().ok_or_else(|| invalid(format!("no CNI network config in {}", conf_dir.display())))?;
        let text = std::fs::read_to_string(file)?;
        let v: Value = serde_json::from_str(&text).map_err(|e| invalid(format!("{}: {e}", file.display())))?;
        Ok(CniConfig {
            bin_dir: bin_dir.to_path_buf(),
            list: Self::normalize(v).map_err(|e| invalid(format!("{}: {e}", file.display())))?,
        })
    }

    /// A single-plugin `.conf` becomes a one-element list.
    fn normalize(v: Value) -> Result<Value, String> {
        let obj = v.as_object().ok_or("not a JSON object")?;
        let name = obj.get("name").and_then(Value::as_str).ok_or("missing \"name\"")?;
        let version = obj.get("cniVersion").and_then(Value::as_str).unwrap_or("0.4.0");
        if let Some(plugins) = obj.get("plugins") {
            let plugins = plugins.as_array().ok_or("\"plugins\" is not a list")?;
            if plugins.is_empty() || plugins.iter().any(|p| p.get("type").and_then(Value::as_str).is_none()) {
                return Err("every plugin needs a \"type\"".into());
            }
            Ok(v.clone())
        } else {
            if obj.get("type").and_then(Value::as_str).is_none() {
                return Err("missing \"type\"".into());
            }
            Ok(serde_json::json!({ "name": name, "cniVersion": version, "plugins": [v] }))
        }
    }

    fn plugins(list: &Value) -> Vec<Value> {
        list.get("plugins").and_then(Value::as_array).cloned().unwrap_or_default()
    }

    /// Run ADD; returns the pod's addresses and what DEL will need.
    pub(crate) async fn add(&self, container_id: &str, netns: &Path) -> io::Result<CniAttachment> {
        let mut prev: Option<Value> = None;
        let plugins = Self::plugins(&self.list);
        for (i, plugin) in plugins.iter().enumerate() {
            match invoke(&self.bin_dir, &self.list, plugin, "ADD", container_id, netns, prev.as_ref()).await {
                Ok(r) => prev = Some(r),
                Err(e) => {
                    // Undo the plugins that succeeded.
                    for p in plugins[..i].iter().rev() {
                        let _ = invoke(&self.bin_dir, &self.list, p, "DEL", container_id, netns, prev.as_ref()).await;
                    }
                    return Err(e);
                }
            }
        }
        let result = prev.unwrap_or(Value::Null);
        Ok(CniAttachment {
            ips: result_ips(&result),
            bin_dir: self.bin_dir.clone(),
            list: self.list.to_string(),
            result: result.to_string(),
        })
    }
}

/// Run DEL for an attachment (plugins in reverse order); the first error is returned after
/// every plugin has had its turn.
pub(crate) async fn del(container_id: &str, netns: &Path, att: &CniAttachment) -> io::Result<()> {
    let list: Value = serde_json::from_str(&att.list).map_err(|e| invalid(e.to_string()))?;
    let prev: Value = serde_json::from_str(&att.result).unwrap_or(Value::Null);
    let mut first = None;
    for p in CniConfig::plugins(&list).iter().rev() {
        if let Err(e) = invoke(&att.bin_dir, &list, p, "DEL", container_id, netns, Some(&prev)).await
            && first.is_none()
        {
            first = Some(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// The addresses of a CNI result (`ips[].address`, CIDR notation).
pub(crate) fn result_ips(result: &Value) -> Vec<IpAddr> {
    result
        .get("ips")
        .and_then(Value::as_array)
        .map(|ips| ips.iter().filter_map(|ip| ip.get("address")?.as_str()?.split('/').next()?.parse().ok()).collect())
        .unwrap_or_default()
}

/// The network config one plugin gets on stdin.
pub(crate) fn plugin_config(list: &Value, plugin: &Value, prev: Option<&Value>) -> Value {
    let mut conf = plugin.clone();
    if let Some(obj) = conf.as_object_mut() {
        obj.insert("name".into(), list.get("name").cloned().unwrap_or(Value::Null));
        obj.insert("cniVersion".into(), list.get("cniVersion").cloned().unwrap_or_else(|| "0.4.0".into()));
        if let Some(p) = prev.filter(|p| !p.is_null()) {
            obj.insert("prevResult".into(), p.clone());
        }
    }
    conf
}

async fn invoke(
    bin_dir: &Path,
    list: &Value,
    plugin: &Value,
    command: &str,
    container_id: &str,
    netns: &Path,
    prev: Option<&Value>,
) -> io::Result<Value> {
    let kind = plugin.get("type").and_then(Value::as_str).unwrap_or_default();
    if kind.is_empty() || kind.contains('/') {
        return Err(invalid(format!("bad CNI plugin type {kind:?}")));
    }
    let conf = plugin_config(list, plugin, prev);
    let mut child = tokio::process::Command::new(bin_dir.join(kind))
        .env_clear()
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", container_id)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", bin_dir)
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("CNI plugin {kind}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A plugin that fails early may not read its config: its answer tells why.
        let _ = stdin.write_all(conf.to_string().as_bytes()).await;
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("CNI plugin {kind} {command} timed out")))??;
    let stdout: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    if !out.status.success() {
        let msg = stdout
            .get("msg")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&out.stderr).trim().to_string());
        return Err(io::Error::other(format!("CNI plugin {kind} {command}: {msg}")));
    }
    Ok(stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_the_first_config_and_normalizes_single_plugins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("20-b.conf"), r#"{"cniVersion":"1.0.0","name":"b","type":"bridge"}"#).unwrap();
        std::fs::write(dir.path().join("README"), "ignored").unwrap();
        let c = CniConfig::load(Path::new("/opt/cni/bin"), dir.path()).unwrap();
        assert_eq!(c.list["name"], "b");
        assert_eq!(c.list["plugins"][0]["type"], "bridge");
        std::fs::write(
            dir.path().join("10-a.conflist"),
            r#"{"cniVersion":"1.0.0","name":"a","plugins":[{"type":"bridge"},{"type":"portmap"}]}"#,
        )
        .unwrap();
        let c = CniConfig::load(Path::new("/x"), dir.path()).unwrap();
        assert_eq!(c.list["name"], "a");
        assert_eq!(CniConfig::plugins(&c.list).len(), 2);
    }

    #[test]
    fn bad_configs_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(CniConfig::load(Path::new("/x"), dir.path()).is_err());
        std::fs::write(dir.path().join("a.conf"), r#"{"name":"x"}"#).unwrap();
        assert!(CniConfig::load(Path::new("/x"), dir.path()).unwrap_err().to_string().contains("type"));
        std::fs::write(dir.path().join("a.conf"), "{").unwrap();
        assert!(CniConfig::load(Path::new("/x"), dir.path()).is_err());
        assert!(CniConfig::load(Path::new("/x"), Path::new("/nonexistent")).is_err());
    }

    #[test]
    fn plugin_config_carries_name_version_and_prev_result() {
        let list = serde_json::json!({"name":"n","cniVersion":"1.0.0","plugins":[{"type":"bridge","bridge":"cni0"}]});
        let prev = serde_json::json!({"ips":[{"address":"10.22.0.5/16"}]});
        let c = plugin_config(&list, &list["plugins"][0], Some(&prev));
        assert_eq!(c["name"], "n");
        assert_eq!(c["cniVersion"], "1.0.0");
        assert_eq!(c["bridge"], "cni0");
        assert_eq!(c["prevResult"], prev);
        assert_eq!(result_ips(&prev), vec!["10.22.0.5".parse::<IpAddr>().unwrap()]);
        assert!(plugin_config(&list, &list["plugins"][0], None).get("prevResult").is_none());
    }

    #[tokio::test]
    async fn a_failing_plugin_reports_its_message() {
        let dir = tempfile::tempdir().unwrap();
        let plugin = dir.path().join("fail");
        std::fs::write(&plugin, "#!/bin/sh\necho '{\"code\":7,\"msg\":\"no such network\"}'\nexit 1\n").unwrap();
        std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let c = CniConfig {
            bin_dir: dir.path().to_path_buf(),
            list: serde_json::json!({"name":"n","cniVersion":"1.0.0","plugins":[{"type":"fail"}]}),
        };
        let e = c.add("abc", Path::new("/proc/self/ns/net")).await.unwrap_err();
        assert!(e.to_string().contains("no such network"), "{e}");
    }
}
