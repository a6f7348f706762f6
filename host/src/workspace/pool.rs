//! Warm pools: per session kind, `[workspaces.pool]` containers started ahead of time, idle
//! and unassigned, so that opening a session takes one (its project's files copied in, handed
//! to the user) instead of waiting for a server to start.
//!
//! A pooled container is made for a session id drawn ahead (its `weft.session` label): its
//! server's secret and origin are that session's from the start, so the session that takes it
//! needs no restart of it. Until taken it belongs to [`POOL_OWNER`]: it sits on the pool's own
//! network (no user's), counts against the host's capacity and no user's quota, and gives way
//! when a user's container needs the room (see `Containers::admit_new`). Taken, it is the
//! session's for good: a stopped session's container is removed, never pooled again.
//!
//! After a take the pool refills in the background (after [`SETTLE`], so that the take does not
//! compete with a new server's start), within admission; after a pooled container
//! gave way to a user's, refilling waits [`PRESSURE_BACKOFF`] so the pool does not take the room
//! back at once.
//!
//! Restarts: pooled containers are left running when Weft stops. At start, each one that is
//! running the configured image and answers with its secret is adopted (up to the configured
//! size); the others are removed. Setting a size to 0 and restarting removes that pool.
//!
//! Not here: handing a container over (`Containers::hand_over`), a session's start and stop
//! (`super::sessions`).

use super::sessions::{LABEL_SESSION, Session, SessionKind, Sessions, owner};
use crate::container::{Container, POOL_OWNER};
use crate::error::{Code, Result};
use crate::store::now_ms;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::broadcast;

/// Labels a pooled container with the kind of session it serves.
pub(crate) const LABEL_POOL: &str = "weft.pool";

/// How long refilling waits after a pooled container gave way to a user's.
const PRESSURE_BACKOFF: Duration = Duration::from_secs(60);

/// How often the pools are looked at when nothing wakes them (after pressure, a failed start).
const ROUND: Duration = Duration::from_secs(15);

/// How long the refill waits after a take before it starts a new container.
const SETTLE: Duration = Duration::from_secs(2);

/// How long an adopted container has to answer at start.
const ADOPT_TIMEOUT: Duration = Duration::from_secs(5);

/// A started container whose server answers, waiting for a session.
#[derive(Debug, Clone)]
pub(crate) struct Pooled {
    /// The id of the session it was made for.
    pub session_id: String,
    /// Its Weft container id.
    pub container_id: String,
}

/// The idle containers of the pools, and what wakes the refill.
#[derive(Default)]
pub(crate) struct Pool {
    idle: Mutex<HashMap<SessionKind, Vec<Pooled>>>,
    wake: tokio::sync::Notify,
}

const KINDS: [SessionKind; 2] = [SessionKind::Jupyter, SessionKind::CodeServer];

impl Sessions {
    /// How many idle containers the pool of `kind` should hold.
    fn pool_size(&self, kind: SessionKind) -> usize {
        let sizes = self.config().pool;
        match kind {
            SessionKind::Jupyter => sizes.jupyter,
            SessionKind::CodeServer => sizes.code_server,
        }
        .try_into()
        .unwrap_or(usize::MAX)
    }

    /// The idle containers in the pool of `kind` now.
    pub fn pool_idle(&self, kind: SessionKind) -> usize {
        self.pool()
            .idle
            .lock()
            .expect("pool poisoned")
            .get(&kind)
            .map_or(0, Vec::len)
    }

    /// The longest idle container of `kind` for a new session, if the pool has one; the
    /// refill is woken.
    pub(super) fn pool_take(&self, kind: SessionKind) -> Option<Pooled> {
        let taken = self
            .pool()
            .idle
            .lock()
            .expect("pool poisoned")
            .get_mut(&kind)
            // The oldest first: adopted ones before new ones.
            .and_then(|idle| (!idle.is_empty()).then(|| idle.remove(0)));
        if taken.is_some() {
            self.pool().wake.notify_one();
        }
        taken
    }

    /// Puts `pooled` in the pool of `kind` (new, or taken for a session that could not be
    /// recorded).
    pub(super) fn pool_return(&self, kind: SessionKind, pooled: Pooled) {
        self.pool()
            .idle
            .lock()
            .expect("pool poisoned")
            .entry(kind)
            .or_default()
            .push(pooled);
    }

    /// Makes `session` the owner of pooled container `pooled`: handed over to its owner under
    /// the session's limits, the project's files copied in, its server answering.
    pub(super) async fn take_over(&self, session: &mut Session, pooled: &Pooled) -> Result<()> {
        session.container_id = Some(pooled.container_id.clone());
        self.save(session).await?;
        let limits = self.containers().limits(&self.resources())?;
        let container = self
            .containers()
            .hand_over(&pooled.container_id, &session.owner_id, limits)
            .await?;
        let engine_id = engine_id(&container)?;
        self.copy_project_in(session, &engine_id).await?;
        self.wait_answering(session.kind, &session.session_id, &engine_id)
            .await?;
        tracing::info!(session = %session.session_id, container = %pooled.container_id, "session took a pooled container");
        Ok(())
    }

    /// Removes a pooled container a session could not take (wherever the hand-over stopped).
    pub(super) async fn discard_pooled(&self, pooled: &Pooled, owner_id: &str) {
        for whose in [owner_id, POOL_OWNER] {
            match self
                .containers()
                .discard(&owner(whose), &pooled.container_id)
                .await
            {
                Err(e) if e.code == Code::ContainerNotFound => continue,
                Err(e) => {
                    tracing::warn!(container = %pooled.container_id, error = %e, "cannot remove a pooled container");
                    return;
                }
                Ok(()) => return,
            }
        }
    }

    /// Adopts the pooled containers a previous Weft left (those running the configured image
    /// and answering, up to each pool's size) and removes the others.
    pub(crate) async fn adopt_pool(&self) {
        let left = match self.containers().list(&owner(POOL_OWNER)).await {
            Ok(left) => left,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the pooled containers left by a previous Weft");
                return;
            }
        };
        for container in left {
            let adopted = match self.adoptable(&container).await {
                Ok(Some((kind, pooled))) => {
                    let mut idle = self.pool().idle.lock().expect("pool poisoned");
                    let list = idle.entry(kind).or_default();
                    (list.len() < self.pool_size(kind))
                        .then(|| list.push(pooled))
                        .is_some()
                }
                Ok(None) => false,
                Err(e) => {
                    tracing::warn!(container = %container.id, error = %e, "cannot check a pooled container");
                    false
                }
            };
            if adopted {
                tracing::info!(container = %container.id, "pooled container adopted");
            } else if let Err(e) = self
                .containers()
                .discard(&owner(POOL_OWNER), &container.id)
                .await
            {
                tracing::warn!(container = %container.id, error = %e, "cannot remove a pooled container");
            }
        }
    }

    /// The kind and session of a pooled container, if it runs the configured image of its
    /// kind and its server answers.
    async fn adoptable(&self, container: &Container) -> Result<Option<(SessionKind, Pooled)>> {
        let Some(engine_id) = &container.engine_id else {
            return Ok(None);
        };
        let Some(engine) = self
            .containers()
            .driver()
            .inspect(engine_id)
            .await?
            .filter(|e| e.is_running())
        else {
            return Ok(None);
        };
        let kind = engine
            .labels
            .get(LABEL_POOL)
            .and_then(|k| KINDS.into_iter().find(|kind| kind.as_str() == k));
        let (Some(kind), Some(session_id)) = (kind, engine.labels.get(LABEL_SESSION)) else {
            return Ok(None);
        };
        if self.kind_config(kind).image != container.image {
            return Ok(None);
        }
        let answers = tokio::time::timeout(
            ADOPT_TIMEOUT,
            self.wait_answering(kind, session_id, engine_id),
        )
        .await;
        Ok(matches!(answers, Ok(Ok(()))).then(|| {
            (
                kind,
                Pooled {
                    session_id: session_id.clone(),
                    container_id: container.id.clone(),
                },
            )
        }))
    }

    /// Keeps the pools full in the background: after each take, and every [`ROUND`].
    pub(crate) fn spawn_pool(&self) {
        if KINDS.iter().all(|k| self.pool_size(*k) == 0) {
            return;
        }
        let sessions = self.clone();
        let mut events = self.containers().subscribe();
        tokio::spawn(async move {
            loop {
                sessions.refill().await;
                let round = tokio::time::sleep(ROUND);
                tokio::pin!(round);
                loop {
                    tokio::select! {
                        () = sessions.pool().wake.notified() => {
                            // A session is taking a container: a new server's start would
                            // compete with the take for the CPU and the engine.
                            tokio::time::sleep(SETTLE).await;
                            break;
                        }
                        () = &mut round => break,
                        event = events.recv() => match event {
                            // A pooled container that gave way leaves the pool at once.
                            Ok(event) if event.status == "removed" => {
                                sessions.pool_forget(&event.container_id);
                            }
                            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                            Err(broadcast::error::RecvError::Closed) => return,
                        },
                    }
                }
            }
        });
    }

    /// Starts containers until every pool holds its size, unless the host is short (admission
    /// refuses, or a pooled container recently gave way to a user's).
    async fn refill(&self) {
        for kind in KINDS {
            self.forget_evicted(kind).await;
            while self.pool_idle(kind) < self.pool_size(kind) {
                let since = now_ms() - self.containers().last_eviction_ms();
                if since < PRESSURE_BACKOFF.as_millis() as i64 {
                    return;
                }
                match self.fill_one(kind).await {
                    Ok(pooled) => self.pool_return(kind, pooled),
                    Err(e) => {
                        tracing::info!(kind = kind.as_str(), error = %e, "the pool cannot grow now");
                        return;
                    }
                }
            }
        }
    }

    /// Drops container `container_id` from the pools (it was removed).
    fn pool_forget(&self, container_id: &str) {
        for idle in self.pool().idle.lock().expect("pool poisoned").values_mut() {
            idle.retain(|p| p.container_id != container_id);
        }
    }

    /// Drops from the pool of `kind` the containers removed behind its back (events missed).
    async fn forget_evicted(&self, kind: SessionKind) {
        let Ok(left) = self.containers().list(&owner(POOL_OWNER)).await else {
            return;
        };
        if let Some(idle) = self
            .pool()
            .idle
            .lock()
            .expect("pool poisoned")
            .get_mut(&kind)
        {
            idle.retain(|p| left.iter().any(|c| c.id == p.container_id));
        }
    }

    /// Starts one pooled container of `kind` and waits until its server answers; a container
    /// that does not within the start timeout is removed.
    async fn fill_one(&self, kind: SessionKind) -> Result<Pooled> {
        let session_id = crate::store::new_id();
        let (request, mut labels) = self.server_request(kind, &session_id, true);
        labels.insert(LABEL_POOL.into(), kind.as_str().into());
        let pool = owner(POOL_OWNER);
        let container = self
            .containers()
            .create_labelled(&pool, request, labels, "")
            .await?;
        let pooled = Pooled {
            session_id,
            container_id: container.id.clone(),
        };
        let timeout = Duration::from_secs(self.config().start_timeout_secs);
        let answered = match engine_id(&container) {
            Ok(engine_id) => tokio::time::timeout(
                timeout,
                self.wait_answering(kind, &pooled.session_id, &engine_id),
            )
            .await
            .unwrap_or_else(|_| {
                Err(crate::error::Error::new(
                    Code::ContainerStartFailed,
                    format!("not ready within {} s", timeout.as_secs()),
                ))
            }),
            Err(e) => Err(e),
        };
        if let Err(e) = answered {
            self.discard_pooled(&pooled, POOL_OWNER).await;
            return Err(e);
        }
        tracing::info!(kind = kind.as_str(), container = %container.id, "pooled container ready");
        Ok(pooled)
    }
}

fn engine_id(container: &Container) -> Result<String> {
    container
        .engine_id
        .clone()
        .ok_or_else(|| crate::error::Error::internal("the container has no engine id"))
}
