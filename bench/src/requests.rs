//! API requests the server handled, read from its `/metrics` (`apiserver_request_total`), so a
//! benchmark can report what one operation cost in requests (upstream's scalability tests
//! count them the same way).

use std::collections::BTreeMap;

use anyhow::Result;
use http::Method;

use crate::servers::Server;

/// Requests by `"VERB resource[/subresource]"`, all response codes together.
#[derive(Clone, Debug, Default)]
pub(crate) struct Counts(pub BTreeMap<String, u64>);

impl Counts {
    /// Reads them over a new connection (the server closes connections idle for 30 s).
    pub(crate) async fn read(server: &Server) -> Result<Counts> {
        let body = server.endpoint.connect().await?.call_ok(Method::GET, "/metrics", None).await?;
        Ok(Counts::parse(&String::from_utf8_lossy(&body)))
    }

    fn parse(text: &str) -> Counts {
        let mut out = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("apiserver_request_total{") else { continue };
            let Some((labels, value)) = rest.split_once("} ") else { continue };
            let label = |name: &str| {
                labels.split(',').find_map(|kv| kv.strip_prefix(name)?.strip_prefix("=\"")?.strip_suffix('"'))
            };
            let (Some(verb), Some(resource)) = (label("verb"), label("resource")) else { continue };
            let n: f64 = value.trim().parse().unwrap_or(0.0);
            let resource = if resource.is_empty() { "(non-resource)" } else { resource };
            *out.entry(format!("{verb} {resource}")).or_insert(0) += n as u64;
        }
        Counts(out)
    }

    /// What was handled since `before`, largest first, without watches (long-lived).
    pub(crate) fn since(&self, before: &Counts) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self
            .0
            .iter()
            .filter(|(k, _)| !k.starts_with("WATCH "))
            .map(|(k, n)| (k.clone(), n.saturating_sub(before.0.get(k).copied().unwrap_or(0))))
            .filter(|(_, n)| *n > 0)
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }
}

/// `"12,345 (POST pods 10,000, …)"`.
pub(crate) fn summary(counts: &[(String, u64)]) -> String {
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    format!("{total} ({})", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_diffs_the_request_counter() {
        let before =
            Counts::parse("apiserver_request_total{verb=\"POST\",group=\"\",resource=\"pods\",code=\"201\"} 5\n");
        let after = Counts::parse(concat!(
            "# HELP apiserver_request Counter\n",
            "apiserver_request_total{verb=\"POST\",group=\"\",resource=\"pods\",code=\"201\"} 15\n",
            "apiserver_request_total{verb=\"POST\",group=\"\",resource=\"pods\",code=\"409\"} 2\n",
            "apiserver_request_total{verb=\"WATCH\",group=\"\",resource=\"pods\",code=\"200\"} 3\n",
            "apiserver_request_total{verb=\"PATCH\",group=\"\",resource=\"pods/status\",code=\"200\"} 4\n",
        ));
        let d = after.since(&before);
        assert_eq!(d, vec![("POST pods".to_string(), 12), ("PATCH pods/status".to_string(), 4)]);
        assert_eq!(summary(&d), "16 (POST pods 12, PATCH pods/status 4)");
    }
}
