//! Capabilities: deny by default; a plugin may use what it declared AND an admin granted.

use crate::destinations::HostPattern;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

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
    /// Running container jobs for the run's owner.
    Jobs,
}

impl Capability {
    /// Parses a declared capability name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "http" => Some(Capability::Http),
            "secrets" => Some(Capability::Secrets),
            "artifacts" => Some(Capability::Artifacts),
            "jobs" => Some(Capability::Jobs),
            _ => None,
        }
    }
}

/// What an admin granted a plugin. Empty means nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Grants {
    /// Hosts the plugin may reach over HTTP: `example.com` (ports 80 and 443), `example.com:8443`,
    /// `*.example.com`, and addresses or networks (`10.0.0.5`, `10.0.0.0/8:5432`, `[fd00::/8]`).
    /// A name that resolves to a loopback, link-local, private or other special address reaches
    /// it only when an address or network entry names it too.
    pub http: Vec<String>,
    /// Secret names the plugin may read; `*` for all.
    pub secrets: Vec<String>,
    /// Whether the plugin may store and read artifacts.
    pub artifacts: bool,
    /// Whether the plugin may run container jobs (for the run's owner, under their limits).
    pub jobs: bool,
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
            jobs: self.jobs && declared.contains(&Capability::Jobs),
        }
    }

    /// Checks that every `http` entry is a host pattern; the error says which is not and why.
    pub fn validate(&self) -> Result<(), String> {
        self.http
            .iter()
            .try_for_each(|p| p.parse::<HostPattern>().map(drop))
    }

    /// The `http` entries as patterns (entries that do not parse allow nothing).
    pub(crate) fn http_patterns(&self) -> Arc<[HostPattern]> {
        self.http.iter().filter_map(|p| p.parse().ok()).collect()
    }

    /// Adds what `other` grants to what `self` grants.
    pub fn merge(&mut self, other: &Grants) {
        for host in &other.http {
            if !self.http.contains(host) {
                self.http.push(host.clone());
            }
        }
        for secret in &other.secrets {
            if !self.secrets.contains(secret) {
                self.secrets.push(secret.clone());
            }
        }
        self.artifacts |= other.artifacts;
        self.jobs |= other.jobs;
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
    fn validation_names_the_bad_entry() {
        let grants = Grants {
            http: vec!["api.example.com".into(), "http://bad/url".into()],
            ..Grants::default()
        };
        let err = grants.validate().unwrap_err();
        assert!(err.contains("http://bad/url"), "{err}");
        assert!(Grants::default().validate().is_ok());
    }

    #[test]
    fn merged_grants_add_up_without_repeats() {
        let mut a = Grants {
            http: vec!["a".into()],
            secrets: vec!["x".into()],
            artifacts: false,
            jobs: false,
        };
        a.merge(&Grants {
            http: vec!["a".into(), "b".into()],
            secrets: vec![],
            artifacts: true,
            jobs: true,
        });
        assert_eq!(a.http, ["a", "b"]);
        assert_eq!(a.secrets, ["x"]);
        assert!(a.artifacts && a.jobs);
    }

    #[test]
    fn grants_for_undeclared_capabilities_are_void() {
        let grants = Grants {
            http: vec!["a".into()],
            secrets: vec!["*".into()],
            artifacts: true,
            jobs: true,
        };
        let none = grants.restricted_to(&[]);
        assert_eq!(none, Grants::default());
        let http = grants.restricted_to(&[Capability::Http]);
        assert_eq!(http.http, ["a"]);
        assert!(!http.allows_secret("x"));
    }
}
