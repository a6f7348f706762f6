//! Where each session is served: an origin of its own, `<session>.<sessions domain>`, from the
//! `[workspaces] sessions_url` template (default `http://{session}.localhost:{port}`; browsers
//! resolve every `*.localhost` name to the loopback address).
//!
//! A session's web app runs whatever its owner put in it. On an origin of its own, its pages
//! can neither read the API's or another session's answers nor use their cookies, and a
//! service worker it registers controls only itself. This module maps session ids to origins
//! and back (from the `Host` header); it does not proxy (see [`super::proxy`]).

use anyhow::Context as _;

/// The session origins of one Weft: `scheme://<session><suffix>`.
#[derive(Debug, Clone)]
pub struct Origins {
    scheme: String,
    /// What follows the session id in the host: `.localhost:8081`, `.ws.example.com`.
    suffix: String,
}

impl Origins {
    /// Reads `template` (`scheme://{session}.domain[:port]`); `{port}` is replaced by `port`,
    /// the sessions listener's.
    pub fn new(template: &str, port: u16) -> anyhow::Result<Self> {
        let template = template.replace("{port}", &port.to_string());
        let (scheme, rest) = template
            .split_once("://")
            .context("sessions_url must start with http:// or https://")?;
        anyhow::ensure!(
            scheme == "http" || scheme == "https",
            "sessions_url must start with http:// or https://, not {scheme}://"
        );
        let suffix = rest
            .trim_end_matches('/')
            .strip_prefix("{session}")
            .context("sessions_url's host must start with {session}, e.g. http://{session}.localhost:{port}")?;
        let domain = suffix
            .strip_prefix('.')
            .context("sessions_url's host must be {session}.<domain>")?;
        anyhow::ensure!(
            !domain.is_empty()
                && domain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':')),
            "sessions_url's domain '{domain}' is not a host name (with an optional port)"
        );
        Ok(Self {
            scheme: scheme.to_string(),
            suffix: suffix.to_ascii_lowercase(),
        })
    }

    /// `scheme://<session>.<domain>` (no trailing slash), as browsers write it in `Origin`.
    pub fn origin(&self, session_id: &str) -> String {
        format!("{}://{session_id}{}", self.scheme, self.suffix)
    }

    /// Whether `origin` (an `Origin` header's value) is `session_id`'s, as [`Self::origin`]
    /// writes it; asked on every proxied request, so nothing is allocated.
    pub fn is_origin(&self, origin: &str, session_id: &str) -> bool {
        origin
            .strip_prefix(self.scheme.as_str())
            .and_then(|rest| rest.strip_prefix("://"))
            .and_then(|rest| rest.strip_prefix(session_id))
            .is_some_and(|rest| rest == self.suffix)
    }

    /// Where a session's web app opens: its origin's root.
    pub fn url(&self, session_id: &str) -> String {
        format!("{}/", self.origin(session_id))
    }

    /// The session a request's `Host` names, or `None` when it names no session of this
    /// template (another name, a nested subdomain, an IP address).
    pub fn session_of<'a>(&self, host: &'a str) -> Option<&'a str> {
        let cut = host.len().checked_sub(self.suffix.len())?;
        if !host.is_char_boundary(cut) || !host[cut..].eq_ignore_ascii_case(&self.suffix) {
            return None;
        }
        let id = &host[..cut];
        let label = !id.is_empty()
            && id.len() <= 63
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        label.then_some(id)
    }

    /// Whether sessions are served over TLS (their cookie is then `Secure`).
    pub fn secure(&self) -> bool {
        self.scheme == "https"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0193a3f0-6f1e-7c9a-8e3b-2f0c1d2e3f40";

    #[test]
    fn the_default_template_gives_a_localhost_origin_per_session() {
        let origins = Origins::new("http://{session}.localhost:{port}", 8081).unwrap();
        assert_eq!(origins.origin(ID), format!("http://{ID}.localhost:8081"));
        assert_eq!(origins.url(ID), format!("http://{ID}.localhost:8081/"));
        assert_eq!(
            origins.session_of(&format!("{ID}.localhost:8081")),
            Some(ID)
        );
        assert!(origins.is_origin(&origins.origin(ID), ID));
        for other in [
            format!("https://{ID}.localhost:8081"),
            format!("http://{ID}.localhost:8082"),
            format!("http://{ID}.localhost"),
            format!("http://x{ID}.localhost:8081"),
            "null".to_string(),
        ] {
            assert!(!origins.is_origin(&other, ID), "{other}");
        }
        assert_eq!(
            origins.session_of(&format!("{}.LOCALHOST:8081", ID)),
            Some(ID)
        );
        assert!(!origins.secure());
    }

    #[test]
    fn hosts_of_other_names_ports_and_nested_labels_name_no_session() {
        let origins = Origins::new("https://{session}.ws.example.com/", 8081).unwrap();
        assert!(origins.secure());
        assert_eq!(origins.origin("abc"), "https://abc.ws.example.com");
        assert_eq!(origins.session_of("abc.ws.example.com"), Some("abc"));
        for host in [
            "ws.example.com",
            ".ws.example.com",
            "a.b.ws.example.com",
            "abc.ws.example.com:8081",
            "abc.ws.example.org",
            "127.0.0.1:8081",
            "ABC.ws.example.com",
            "abc_d.ws.example.com",
            "évil.ws.example.com",
        ] {
            assert_eq!(origins.session_of(host), None, "{host}");
        }
    }

    #[test]
    fn templates_without_a_session_label_are_refused() {
        for bad in [
            "ftp://{session}.localhost",
            "http://localhost:{port}/s/{session}",
            "http://x{session}.localhost",
            "http://{session}",
            "http://{session}.",
            "http://{session}.local/host",
        ] {
            assert!(Origins::new(bad, 1).is_err(), "{bad}");
        }
    }
}
