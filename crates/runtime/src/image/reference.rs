//! Image references with docker's normalization (`busybox` →
//! `docker.io/library/busybox:latest`), the form every name is stored and matched in, and
//! the plain-HTTP policy for the registry they name.

use std::net::IpAddr;

use super::ImageError;
use super::digest::Digest;

/// A normalized reference: `registry/repository` plus a tag, a digest or both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Name {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Name {
    /// Parse and normalize; a reference without tag and digest gets `:latest`.
    pub(crate) fn parse(s: &str) -> Result<Name, ImageError> {
        let invalid = |reason: String| ImageError::InvalidReference { reference: s.to_string(), reason };
        // A bare `sha256:…` is an image id, not a name; docker rejects it as a name too.
        if s.starts_with("sha256:") {
            return Err(invalid("an image id is not a name".into()));
        }
        let r = oci_client::Reference::try_from(s).map_err(|e| invalid(e.to_string()))?;
        let digest = match r.digest() {
            Some(d) => Some(Digest::parse(d).map_err(|_| invalid(format!("unsupported digest {d}")))?),
            None => None,
        };
        Ok(Name {
            registry: r.registry().to_string(),
            repository: r.repository().to_string(),
            tag: r.tag().map(str::to_string),
            digest,
        })
    }

    /// `registry/repository`.
    pub(crate) fn repo(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The key this reference is stored under: `repo@digest` when it has a digest (the digest
    /// wins over a tag, as in docker), else `repo:tag`.
    pub(crate) fn key(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => format!("{}@{d}", self.repo()),
            (None, Some(t)) => format!("{}:{t}", self.repo()),
            (None, None) => format!("{}:latest", self.repo()),
        }
    }

    pub(crate) fn to_oci(&self) -> oci_client::Reference {
        match &self.digest {
            Some(d) => {
                oci_client::Reference::with_digest(self.registry.clone(), self.repository.clone(), d.to_string())
            }
            None => oci_client::Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                self.tag.clone().unwrap_or_else(|| "latest".into()),
            ),
        }
    }
}

/// The repository of a stored name key (`repo:tag` or `repo@digest`).
pub(crate) fn repo_of_key(key: &str) -> &str {
    if let Some((repo, _)) = key.split_once('@') {
        return repo;
    }
    // The tag separator is the last ':' after the last '/' (a registry port has a '/' after it).
    let slash = key.rfind('/').unwrap_or(0);
    match key[slash..].rfind(':') {
        Some(i) => &key[..slash + i],
        None => key,
    }
}

/// Whether a name key is a tag (`repo:tag`) rather than a digest reference.
pub(crate) fn is_tag_key(key: &str) -> bool {
    !key.contains('@')
}

/// Plain HTTP is allowed only to loopback registries and those the user listed as insecure
/// (`host` or `host:port`), as docker and containerd do.
pub(crate) fn plain_http_allowed(registry: &str, insecure: &[String]) -> bool {
    if insecure.iter().any(|i| i == registry) {
        return true;
    }
    let host = host_of(registry);
    if insecure.iter().any(|i| i == host) {
        return true;
    }
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The host part of `host`, `host:port`, `[v6]` or `[v6]:port`.
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match registry.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => registry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn normalizes_like_docker() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("library/busybox", "docker.io/library/busybox:latest"),
            ("docker.io/busybox", "docker.io/library/busybox:latest"),
            ("index.docker.io/busybox", "docker.io/library/busybox:latest"),
            ("user/app:v1", "docker.io/user/app:v1"),
            ("127.0.0.1:5000/library/busybox:1.36", "127.0.0.1:5000/library/busybox:1.36"),
            ("localhost/app", "localhost/app:latest"),
            ("ghcr.io/org/sub/app:1.0-rc.1", "ghcr.io/org/sub/app:1.0-rc.1"),
        ];
        for (input, want) in cases {
            assert_eq!(Name::parse(input).unwrap().key(), want, "{input}");
        }
        let d = format!("busybox@sha256:{HEX}");
        assert_eq!(Name::parse(&d).unwrap().key(), format!("docker.io/library/busybox@sha256:{HEX}"));
        let both = format!("busybox:1.36@sha256:{HEX}");
        let n = Name::parse(&both).unwrap();
        assert_eq!(n.tag.as_deref(), Some("1.36"));
        assert_eq!(n.key(), format!("docker.io/library/busybox@sha256:{HEX}"));
    }

    #[test]
    fn rejects_bad_references() {
        for bad in ["", "BusyBox", "busybox:", "a b", &format!("sha256:{HEX}"), "busybox@sha256:abc", "busybox@md5:abc"]
        {
            assert!(matches!(Name::parse(bad), Err(ImageError::InvalidReference { .. })), "{bad:?}");
        }
    }

    #[test]
    fn keys_split_back_into_repos() {
        assert_eq!(repo_of_key("docker.io/library/busybox:latest"), "docker.io/library/busybox");
        assert_eq!(repo_of_key("127.0.0.1:5000/busybox:1.36"), "127.0.0.1:5000/busybox");
        assert_eq!(repo_of_key(&format!("127.0.0.1:5000/busybox@sha256:{HEX}")), "127.0.0.1:5000/busybox");
        assert!(is_tag_key("127.0.0.1:5000/busybox:1.36"));
        assert!(!is_tag_key(&format!("a/b@sha256:{HEX}")));
    }

    #[test]
    fn plain_http_only_for_loopback_or_insecure() {
        assert!(plain_http_allowed("127.0.0.1:5000", &[]));
        assert!(plain_http_allowed("localhost:5000", &[]));
        assert!(plain_http_allowed("[::1]:5000", &[]));
        assert!(!plain_http_allowed("registry.example:5000", &[]));
        assert!(!plain_http_allowed("docker.io", &[]));
        assert!(plain_http_allowed("registry.example:5000", &["registry.example".into()]));
        assert!(plain_http_allowed("registry.example:5000", &["registry.example:5000".into()]));
        assert!(!plain_http_allowed("registry.example:5000", &["registry.example:6000".into()]));
    }
}
