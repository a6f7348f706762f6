//! One bridge network per user: every container of a user (workspace sessions and
//! `POST /containers` alike) joins `weft-u-<user>`, created on first need.
//!
//! Separate bridges cut users apart (the engine drops traffic between its bridges, and the host
//! firewall, `super::firewall`, drops it again); inside a user's network inter-container
//! traffic is off too, so a container reaches only what it connects out to. Each network's
//! subnet is drawn from `[containers.network] subnet_pool`; its host-side bridge is named
//! `weft<hash>` so the firewall matches every Weft bridge with `weft+`. Networks are labelled
//! with the installation and the owner; reconciliation removes those no container needs.
//!
//! The warm pool's network (owner `weft-pool`) holds every idle pooled container at once, so it
//! is wider than a user's: [`POOL_WIDER`] bits shorter a prefix (a /22, 1,021 containers, with
//! the default /27), at most half the subnet pool. A pool as wide as a user's network stopped
//! growing at 29 Jupyter containers, the engine out of addresses; such a network left by an
//! older Weft is made anew once no container is on it.
//!
//! Not here: what a container may reach outside its network (the firewall's job).

use super::config::NetworkConfig;
use super::driver::{ContainerDriver, NetworkCreated, NetworkSpec};
use super::{LABEL_INSTALL, LABEL_OWNER, POOL_OWNER};
use crate::error::{Code, Error, Result};
use ipnet::{IpNet, Ipv4Net};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Marks a network as a Weft user network.
pub const LABEL_NETWORK: &str = "weft.network";

/// The prefix of every Weft bridge interface on the host.
pub const BRIDGE_PREFIX: &str = "weft";

/// How many bits shorter the pool network's prefix is than a user network's (32 times the
/// addresses).
const POOL_WIDER: u8 = 5;

/// The per-user networks of one installation.
pub struct Networks {
    driver: Arc<dyn ContainerDriver>,
    install_id: String,
    pool: Ipv4Net,
    prefix: u8,
    /// One lock per owner: creating a container on a network and removing the network do
    /// not interleave.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The name of `owner`'s network: `weft-u-` and the last 12 characters of their id (the random
/// part of a UUIDv7; the leading part is a timestamp shared by users created together).
pub fn name(owner: &str) -> String {
    let id: String = owner.chars().filter(char::is_ascii_alphanumeric).collect();
    let short = &id[id.len().saturating_sub(12)..];
    format!("weft-u-{}", short.to_ascii_lowercase())
}

/// The host-side bridge of network `name`: `weft` and 11 hex digits of its hash (Linux allows
/// 15 characters).
pub fn bridge(name: &str) -> String {
    let digest = hex::encode(Sha256::digest(name.as_bytes()));
    format!("{BRIDGE_PREFIX}{}", &digest[..11])
}

/// The warm pool network's prefix, given the subnet pool's and a user network's: `POOL_WIDER`
/// bits shorter than a user's, but at most half the subnet pool and never narrower than a
/// user's.
fn pool_prefix(subnet_pool: u8, user: u8) -> u8 {
    user.saturating_sub(POOL_WIDER)
        .max(subnet_pool.saturating_add(1))
        .min(user)
}

/// The `/prefix` subnets of `pool` none of `taken` overlaps, in order.
fn free_subnets(pool: Ipv4Net, prefix: u8, taken: &[IpNet]) -> impl Iterator<Item = Ipv4Net> {
    let overlaps = |a: Ipv4Net, b: &IpNet| match b {
        IpNet::V4(b) => a.contains(&b.network()) || b.contains(&a.network()),
        IpNet::V6(_) => false,
    };
    let taken = taken.to_vec();
    pool.subnets(prefix)
        .into_iter()
        .flatten()
        .filter(move |candidate| !taken.iter().any(|t| overlaps(*candidate, t)))
}

impl Networks {
    /// Checks the subnet settings and keeps what creating networks needs; labels carry
    /// `install_id`, so several installations can share an engine.
    pub fn new(
        driver: Arc<dyn ContainerDriver>,
        install_id: &str,
        config: &NetworkConfig,
    ) -> anyhow::Result<Self> {
        if config.subnet_prefix < config.subnet_pool.prefix_len() || config.subnet_prefix > 29 {
            anyhow::bail!(
                "[containers.network] subnet_prefix must be between the pool's prefix ({}) and 29",
                config.subnet_pool.prefix_len()
            );
        }
        Ok(Self {
            driver,
            install_id: install_id.into(),
            pool: config.subnet_pool.trunc(),
            prefix: config.subnet_prefix,
            locks: Mutex::new(HashMap::new()),
        })
    }

    /// Holds `owner`'s network still: while held, it is neither created nor removed by another
    /// task of this process.
    pub async fn lock(&self, owner: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().expect("network locks poisoned");
            locks.retain(|_, l| Arc::strong_count(l) > 1);
            locks.entry(owner.to_owned()).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// `owner`'s network, created if missing; the caller holds [`Self::lock`].
    pub async fn ensure(&self, owner: &str) -> Result<String> {
        let name = name(owner);
        let labels = BTreeMap::from([
            (LABEL_INSTALL.to_string(), self.install_id.clone()),
            (LABEL_NETWORK.to_string(), "user".to_string()),
            (LABEL_OWNER.to_string(), owner.to_string()),
        ]);
        let prefix = if owner == POOL_OWNER {
            pool_prefix(self.pool.prefix_len(), self.prefix)
        } else {
            self.prefix
        };
        let mut all = self.driver.networks(&BTreeMap::new()).await?;
        if let Some(existing) = all.iter().find(|n| n.name == name) {
            // A pool network made by an older Weft, as narrow as a user's, is made anew once
            // no container is on it.
            let narrow = existing.subnets.iter().any(|s| s.prefix_len() > prefix);
            if !(owner == POOL_OWNER && narrow && self.driver.remove_network(&name).await?) {
                return Ok(name);
            }
            tracing::info!(network = %name, "a narrow pool network removed to be made wider");
            all.retain(|n| n.name != name);
        }
        let mut taken: Vec<IpNet> = all.into_iter().flat_map(|n| n.subnets).collect();
        // Another engine client may take a subnet between the listing and the creation: the
        // engine says so, and the next free one is tried.
        loop {
            let Some(subnet) = free_subnets(self.pool, prefix, &taken).next() else {
                return Err(Error::new(
                    Code::ContainerNoResources,
                    format!(
                        "no free /{prefix} subnet is left in the pool {} for a new user network",
                        self.pool
                    ),
                )
                .details(serde_json::json!({ "resource_type": "network" }))
                .hint(
                    "an admin can widen [containers.network] subnet_pool or lengthen subnet_prefix",
                ));
            };
            let spec = NetworkSpec {
                name: name.clone(),
                bridge: bridge(&name),
                subnet,
                labels: labels.clone(),
            };
            match self.driver.create_network(&spec).await? {
                NetworkCreated::Created => {
                    tracing::info!(network = %name, %subnet, owner, "user network created");
                    return Ok(name);
                }
                NetworkCreated::Exists => return Ok(name),
                NetworkCreated::SubnetTaken => taken.push(IpNet::V4(subnet)),
            }
        }
    }

    /// Removes this installation's user networks whose owner is not in `needed`, checking each
    /// owner again under their lock with `still_needed`. Returns how many went.
    pub async fn prune<F, Fut>(&self, needed: &HashSet<String>, still_needed: F) -> Result<usize>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<bool>>,
    {
        let labels = BTreeMap::from([
            (LABEL_INSTALL.to_string(), self.install_id.clone()),
            (LABEL_NETWORK.to_string(), "user".to_string()),
        ]);
        let mut removed = 0;
        for network in self.driver.networks(&labels).await? {
            let Some(owner) = network.labels.get(LABEL_OWNER) else {
                continue;
            };
            if needed.contains(owner) {
                continue;
            }
            let _lock = self.lock(owner).await;
            if still_needed(owner.clone()).await? {
                continue;
            }
            if self.driver.remove_network(&network.name).await? {
                tracing::info!(network = %network.name, "user network removed: no container needs it");
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_bridges() {
        let owner = "0195f3a2-7c4e-7d21-9a3b-5c6d7e8f9a0b";
        assert_eq!(name(owner), "weft-u-5c6d7e8f9a0b");
        assert_eq!(name("admin"), "weft-u-admin");
        let bridge = bridge(&name(owner));
        assert!(bridge.starts_with("weft") && bridge.len() == 15, "{bridge}");
        assert_ne!(bridge, super::bridge("weft-u-other"));
    }

    #[test]
    fn subnets_skip_what_is_taken() {
        let pool: Ipv4Net = "10.213.0.0/16".parse().unwrap();
        let taken: Vec<IpNet> = vec![
            "10.213.0.0/27".parse().unwrap(),
            "10.213.0.32/28".parse().unwrap(),
            "172.17.0.0/16".parse().unwrap(),
            "fd00::/64".parse().unwrap(),
        ];
        let free: Vec<String> = free_subnets(pool, 27, &taken)
            .take(2)
            .map(|s| s.to_string())
            .collect();
        assert_eq!(free, ["10.213.0.64/27", "10.213.0.96/27"]);
        // A wider network covering the whole pool leaves nothing.
        let all: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(free_subnets(pool, 27, &all).count(), 0);
        // The pool's wider network skips the users' narrower ones it would overlap.
        let users: Vec<IpNet> = vec!["10.213.0.0/27".parse().unwrap()];
        let first = free_subnets(pool, 22, &users).next().unwrap();
        assert_eq!(first.to_string(), "10.213.4.0/22");
    }

    #[test]
    fn the_pool_network_is_wider_than_a_users() {
        // The defaults: a /22 (1,021 containers) beside /27s (29).
        assert_eq!(pool_prefix(16, 27), 22);
        // Never more than half the subnet pool, never narrower than a user's network.
        assert_eq!(pool_prefix(24, 27), 25);
        assert_eq!(pool_prefix(24, 25), 25);
        assert_eq!(pool_prefix(27, 27), 27);
        assert_eq!(pool_prefix(8, 29), 24);
    }
}
