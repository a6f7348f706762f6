//! Capabilities: deny by default; a plugin may use what it declared AND an admin granted.

use serde::{Deserialize, Serialize};

/// A host capability a node can declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    /// Outgoing HTTP to the granted hosts.
    Http,
    /// Reading the granted secrets.
    Secrets,
    /// Storing and reading artifacts.
    Artifacts,
}

impl Capability {
    /// Parses a declared capability name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "http" => Some(Capability::Http),
            "secrets" => Some(Capability::Secrets),
            "artifacts" => Some(Capability::Artifacts),
            _ => None,
        }
    }
}

/// What an admin granted a plugin. Empty means nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Grants {
    /// Hosts the plugin may reach over HTTP: `example.com`, `example.com:8443`, `*.example.com`.
    pub http: Vec<String>,
    /// Secret names the plugin may read; `*` for all.
    pub secrets: Vec<String>,
    /// Whether the plugin may store and read artifacts.
    pub artifacts: bool,
}

impl Grants {
    /// Keeps only what `declared` asks for: a grant for an undeclared capability is void.
    pub fn restricted_to(&self, declared: &[Capability]) -> Grants {
        Grants {
            http: if declared.contains(&Capability::Http) {
                self.http.clone()
            } else {
                Vec::new()
            },
            secrets: if declared.contains(&Capability::Secrets) {
                self.secrets.clone()
            } else {
                Vec::new()
            },
            artifacts: self.artifacts && declared.contains(&Capability::Artifacts),
        }
    }

    /// Whether a request to `host` (and `port`) is allowed.
    pub fn allows_host(&self, host: &str, port: Option<u16>) -> bool {
        let host = host.to_ascii_lowercase();
        self.http.iter().any(|pattern| {
            let pattern = pattern.to_ascii_lowercase();
            let (pat_host, pat_port) = match pattern.rsplit_once(':') {
                Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => {
                    (h.to_string(), p.parse::<u16>().ok())
                }
                _ => (pattern.clone(), None),
            };
            let host_ok = match pat_host.strip_prefix("*.") {
                Some(domain) => host.ends_with(&format!(".{domain}")),
                None => host == pat_host,
            };
            host_ok && (pat_port.is_none() || pat_port == port)
        })
    }

    /// Whether the secret `name` may be read.
    pub fn allows_secret(&self, name: &str) -> bool {
        self.secrets.iter().any(|s| s == "*" || s == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_exactly_by_port_or_by_wildcard() {
        let grants = Grants {
            http: vec![
                "api.example.com".into(),
                "*.internal".into(),
                "127.0.0.1:8080".into(),
            ],
            ..Grants::default()
        };
        assert!(grants.allows_host("api.example.com", Some(443)));
        assert!(grants.allows_host("API.example.com", None));
        assert!(!grants.allows_host("evil.example.com", None));
        assert!(!grants.allows_host("example.com.evil", None));
        assert!(grants.allows_host("db.internal", Some(5432)));
        assert!(!grants.allows_host("internal", None));
        assert!(grants.allows_host("127.0.0.1", Some(8080)));
        assert!(!grants.allows_host("127.0.0.1", Some(8081)));
    }

    #[test]
    fn grants_for_undeclared_capabilities_are_void() {
        let grants = Grants {
            http: vec!["a".into()],
            secrets: vec!["*".into()],
            artifacts: true,
        };
        let none = grants.restricted_to(&[]);
        assert_eq!(none, Grants::default());
        let http = grants.restricted_to(&[Capability::Http]);
        assert!(http.allows_host("a", None));
        assert!(!http.allows_secret("x"));
    }
}
