//! The session reaper: every `reap_interval_secs` it stops (after syncing) sessions idle for
//! `idle_timeout_secs` or older than `max_lifetime_secs` (warning `warn_before_secs` ahead),
//! counts a busy Jupyter kernel as activity (against the idle timeout only), and ends sessions whose container died (syncing
//! what the stopped container still holds). At start it fails sessions a restart interrupted
//! while starting.

use super::sessions::{Session, SessionKind, SessionStatus, Sessions, owner};
use crate::error::Result;
use crate::store::now_ms;
use std::collections::HashSet;
use std::time::Duration;

/// Starts the reaper.
pub(crate) fn spawn(sessions: Sessions) {
    tokio::spawn(async move {
        if let Err(e) = sessions.recover().await {
            tracing::warn!(error = %e, "cannot recover sessions interrupted by a restart");
        }
        let mut warned = HashSet::new();
        let every = Duration::from_secs(sessions.config().reap_interval_secs.max(1));
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = sessions.reap(&mut warned).await {
                tracing::warn!(error = %e, "the session reaper failed a round");
            }
        }
    });
}

impl Sessions {
    /// Sessions a restart caught while starting: failed, their containers removed.
    async fn recover(&self) -> Result<()> {
        for mut session in self
            .with_status(&[SessionStatus::Pending, SessionStatus::Starting])
            .await?
        {
            let _lock = self.lock(&session.owner_id, &session.project_id).await;
            tracing::warn!(session = %session.session_id, "a restart interrupted this session's start");
            self.shut(
                &mut session,
                SessionStatus::Failed,
                Some("interrupted by a restart of Weft while starting".into()),
            )
            .await?;
        }
        Ok(())
    }

    /// One round of the reaper.
    pub async fn reap(&self, warned: &mut HashSet<String>) -> Result<()> {
        let config = self.config();
        let now = now_ms();
        for listed in self.with_status(&[SessionStatus::Ready]).await? {
            let _lock = self.lock(&listed.owner_id, &listed.project_id).await;
            let Some(mut session) = self
                .by_id(&listed.session_id)
                .await?
                .filter(|s| s.status == SessionStatus::Ready)
            else {
                continue;
            };
            if !self.container_running(&session).await? {
                // Docker still copies from a stopped container: save what it holds.
                let reason = "the session's container stopped".to_string();
                if let Err(e) = self
                    .shut(&mut session, SessionStatus::Failed, Some(reason))
                    .await
                {
                    tracing::warn!(session = %session.session_id, error = %e, "cannot save a dead session's files; its container is kept");
                }
                continue;
            }
            let idle_ms = now - session.last_activity_at.timestamp_millis();
            let age_ms = now
                - session
                    .ready_at
                    .unwrap_or(session.created_at)
                    .timestamp_millis();
            let max_ms = (config.max_lifetime_secs * 1000) as i64;
            // Session time left in the quota period (no store read without a quota).
            let left_ms = if config.quota_minutes > 0.0 {
                self.usage(&session.owner_id)
                    .await?
                    .remaining_seconds
                    .map(|s| (s * 1000.0) as i64)
            } else {
                None
            };
            let (ending, reason) = if left_ms.is_some_and(|left| left <= 0) {
                (
                    true,
                    format!(
                        "the {} session time quota is spent",
                        config.quota_period.as_str()
                    ),
                )
            } else if age_ms >= max_ms {
                (
                    true,
                    format!(
                        "reached the maximum lifetime of {} s",
                        config.max_lifetime_secs
                    ),
                )
            } else if idle_ms >= (config.idle_timeout_secs * 1000) as i64 {
                // A running cell is activity: it postpones the idle timeout, never the maximum
                // lifetime or the quota (a `sleep` forever must not keep a session alive).
                if session.kind == SessionKind::Jupyter && self.kernel_busy(&session).await {
                    self.touch(&session.session_id).await?;
                    (false, String::new())
                } else {
                    (true, format!("idle for {} s", config.idle_timeout_secs))
                }
            } else {
                (false, String::new())
            };
            if ending {
                warned.remove(&session.session_id);
                if let Err(e) = self
                    .shut(&mut session, SessionStatus::Stopped, Some(reason))
                    .await
                {
                    tracing::warn!(session = %session.session_id, error = %e, "cannot reap a session; it stays open");
                }
            } else {
                let warn_ms = (config.warn_before_secs * 1000) as i64;
                let quota_soon = left_ms.filter(|left| *left <= warn_ms && *left < max_ms - age_ms);
                let lifetime_soon = (age_ms >= max_ms - warn_ms).then_some(max_ms - age_ms);
                let warning = match (quota_soon, lifetime_soon) {
                    (Some(left), _) => Some(format!(
                        "the session stops in {} s (time quota)",
                        left.max(0) / 1000
                    )),
                    (None, Some(left)) => Some(format!(
                        "the session stops in {} s (maximum lifetime)",
                        left.max(0) / 1000
                    )),
                    (None, None) => None,
                };
                if let Some(warning) = warning
                    && warned.insert(session.session_id.clone())
                {
                    self.announce(&session, "warning", Some(warning), None);
                }
            }
        }
        Ok(())
    }

    async fn container_running(&self, session: &Session) -> Result<bool> {
        let Some(id) = &session.container_id else {
            return Ok(false);
        };
        let container = match self.containers().get(&owner(&session.owner_id), id).await {
            Ok(container) => container,
            Err(e) if e.code == crate::error::Code::ContainerNotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let Some(engine_id) = container.engine_id else {
            return Ok(false);
        };
        Ok(self
            .containers()
            .driver()
            .inspect(&engine_id)
            .await?
            .is_some_and(|e| e.is_running()))
    }

    /// Whether a kernel of the session's Jupyter server is running code.
    async fn kernel_busy(&self, session: &Session) -> bool {
        let Ok(upstream) = self.upstream_of(session).await else {
            return false;
        };
        let mut request = self.http().get(format!("{}/api/kernels", upstream.base));
        if let Some(authorization) = upstream.authorization() {
            request = request.header("authorization", authorization);
        }
        let answer = request.send().await;
        let Ok(answer) = answer else { return false };
        let Ok(body) = super::upstream::read_limited(answer, 1024 * 1024).await else {
            return false;
        };
        let kernels: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap_or_default();
        kernels.iter().any(|k| k["execution_state"] == "busy")
    }
}
