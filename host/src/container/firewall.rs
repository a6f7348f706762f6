//! The host firewall between Weft's containers and everything that is not theirs, with
//! iptables on the engine's host.
//!
//! Two chains, rewritten whole (atomically, by `iptables-restore --noflush`) at every start:
//! - `WEFT-HOST`, jumped to from `INPUT` for packets coming in on a Weft bridge (`weft+`):
//!   answers to connections the host opened pass, so do the configured `host_ports` (TCP);
//!   everything else a container sends to the host itself, on any of its addresses (the
//!   bridge's gateway included), is refused.
//! - `WEFT-OUT`, jumped to from `DOCKER-USER` (the engine's chain for admins' rules, ahead of
//!   its own) for packets a Weft bridge forwards: refused towards another Weft bridge (another
//!   user's containers; the engine's own isolation drops that too) and towards the configured
//!   `deny` networks (link-local, where cloud metadata services answer, by default).
//!
//! Refusing (REJECT) rather than dropping makes a blocked connection fail at once instead of
//! timing out. A missing or failing iptables is logged and reported (`GET /resources`,
//! `engine.firewall`), never fatal. Not here: which network a container joins
//! ([`super::network`]).

use super::config::FirewallConfig;
use super::network::BRIDGE_PREFIX;
use serde::Serialize;
use std::process::Command;
use utoipa::ToSchema;

/// The chain guarding the host.
pub(crate) const HOST_CHAIN: &str = "WEFT-HOST";
/// The chain guarding what containers reach through the host.
pub(crate) const OUT_CHAIN: &str = "WEFT-OUT";

/// The firewall's state, as `GET /resources` reports it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FirewallReport {
    /// `active`; `disabled` by configuration; `not_local` when the engine runs on another host
    /// (its host needs the rules); `failed` (see `error`).
    pub status: String,
    /// TCP ports of the host containers may reach.
    pub host_ports: Vec<u16>,
    /// Networks containers may not reach.
    pub deny: Vec<String>,
    pub error: Option<String>,
}

/// What `iptables-restore --noflush` is given: both chains, emptied and filled.
pub(crate) fn rules(config: &FirewallConfig) -> String {
    let bridges = format!("{BRIDGE_PREFIX}+");
    let mut out = format!("*filter\n:{HOST_CHAIN} - [0:0]\n:{OUT_CHAIN} - [0:0]\n");
    out.push_str(&format!(
        "-A {HOST_CHAIN} -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN\n"
    ));
    for port in &config.host_ports {
        out.push_str(&format!(
            "-A {HOST_CHAIN} -p tcp --dport {port} -j RETURN\n"
        ));
    }
    out.push_str(&format!("-A {HOST_CHAIN} -j REJECT\n"));
    out.push_str(&format!("-A {OUT_CHAIN} -o {bridges} -j REJECT\n"));
    for net in config
        .deny
        .iter()
        .filter(|n| matches!(n, ipnet::IpNet::V4(_)))
    {
        out.push_str(&format!("-A {OUT_CHAIN} -d {net} -j REJECT\n"));
    }
    out.push_str("COMMIT\n");
    out
}

/// Whether the engine at `address` runs on this host (only then do this host's rules guard
/// its containers).
pub(crate) fn engine_is_local(address: &str) -> bool {
    if address.starts_with("unix://") {
        return true;
    }
    let host = address
        .split("://")
        .nth(1)
        .unwrap_or(address)
        .rsplit_once(':')
        .map_or(address, |(host, _)| host);
    host == "localhost" || host.starts_with("127.") || host == "[::1]"
}

/// Installs (or rewrites) the chains and their jumps, once per host at a time; reports how
/// it went and logs a warning when it did not.
pub(crate) async fn install(config: &FirewallConfig, engine_address: &str) -> FirewallReport {
    let mut report = FirewallReport {
        status: "active".into(),
        host_ports: config.host_ports.clone(),
        deny: config.deny.iter().map(ToString::to_string).collect(),
        error: None,
    };
    if !config.enabled {
        report.status = "disabled".into();
        return report;
    }
    if !engine_is_local(engine_address) {
        report.status = "not_local".into();
        report.error = Some(format!(
            "the engine at {engine_address} runs on another host: its host needs these rules"
        ));
        tracing::warn!(
            engine = engine_address,
            "the container firewall is not installed: the engine is on another host"
        );
        return report;
    }
    let rules = rules(config);
    let outcome = tokio::task::spawn_blocking(move || apply(&rules))
        .await
        .unwrap_or_else(|e| Err(format!("the installer panicked: {e}")));
    if let Err(error) = outcome {
        tracing::warn!(%error, "the container firewall could not be installed: containers can reach the host's services and link-local addresses");
        report.status = "failed".into();
        report.error = Some(error);
    }
    report
}

/// Runs the iptables commands, holding a lock file so two Weft processes on one host do not
/// both add a jump.
fn apply(rules: &str) -> Result<(), String> {
    let lock_path = std::env::temp_dir().join("weft-firewall.lock");
    let lock = std::fs::File::create(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    // The engine makes DOCKER-USER when it starts; make it first if Weft is first.
    if iptables(&["-L", "DOCKER-USER", "-n"]).is_err() {
        iptables(&["-N", "DOCKER-USER"])?;
    }
    restore(rules)?;
    let bridges = format!("{BRIDGE_PREFIX}+");
    for (parent, chain) in [("INPUT", HOST_CHAIN), ("DOCKER-USER", OUT_CHAIN)] {
        let jump = ["-i", bridges.as_str(), "-j", chain];
        let check: Vec<&str> = ["-C", parent].iter().chain(&jump).copied().collect();
        if iptables(&check).is_err() {
            let insert: Vec<&str> = ["-I", parent, "1"].iter().chain(&jump).copied().collect();
            iptables(&insert)?;
        }
    }
    Ok(())
}

fn iptables(args: &[&str]) -> Result<(), String> {
    let out = Command::new("iptables")
        .arg("-w")
        .args(args)
        .output()
        .map_err(|e| {
            format!("cannot run iptables ({e}); install it (Debian: apt-get install iptables)")
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "iptables {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn restore(rules: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = Command::new("iptables-restore")
        .args(["-w", "--noflush"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run iptables-restore ({e}); install iptables"))?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(rules.as_bytes())
        .map_err(|e| format!("cannot feed iptables-restore: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("iptables-restore: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "iptables-restore failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_allow_answers_and_ports_and_refuse_the_rest() {
        let config = FirewallConfig {
            enabled: true,
            host_ports: vec![8080, 443],
            deny: vec![
                "169.254.0.0/16".parse().unwrap(),
                "10.0.0.0/8".parse().unwrap(),
                "fe80::/10".parse().unwrap(),
            ],
        };
        assert_eq!(
            rules(&config),
            "*filter\n\
             :WEFT-HOST - [0:0]\n\
             :WEFT-OUT - [0:0]\n\
             -A WEFT-HOST -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN\n\
             -A WEFT-HOST -p tcp --dport 8080 -j RETURN\n\
             -A WEFT-HOST -p tcp --dport 443 -j RETURN\n\
             -A WEFT-HOST -j REJECT\n\
             -A WEFT-OUT -o weft+ -j REJECT\n\
             -A WEFT-OUT -d 169.254.0.0/16 -j REJECT\n\
             -A WEFT-OUT -d 10.0.0.0/8 -j REJECT\n\
             COMMIT\n"
        );
    }

    #[test]
    fn local_engines() {
        assert!(engine_is_local("unix:///var/run/docker.sock"));
        assert!(engine_is_local("tcp://127.0.0.1:2375"));
        assert!(engine_is_local("tcp://localhost:2375"));
        assert!(!engine_is_local("tcp://docker.example:2376"));
    }
}
