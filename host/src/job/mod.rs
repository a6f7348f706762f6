//! Container jobs: what the `jobs` capability of the WIT contract runs. A workflow node
//! submits a job (image, command, working folder, environment, resources, a project of the
//! run's owner copied in, files to collect); the host runs it through the container service,
//! so the same admission, hardening, per-user limits and network apply, for the run's owner.
//! While the host lacks room the job waits in a fair [`queue`], its position told in the run's
//! events; its lines go to the run's events as they come; its container is removed when it
//! ends, or when the call ends first (a run cancelled, a node timed out), and after a restart
//! the same attempt of the node adopts its job, while jobs nobody will come back for are
//! removed ([`Jobs::sweep`]).
//!
//! Not here: how a node gets the capability (the registry's grants) or what it does with the
//! outcome (the `container-job` and `python-script` plugins).

mod inputs;
mod output;
mod pin;
mod queue;
mod records;

pub(crate) use records::JobScope;

use crate::container::{Containers, NewContainer, ResourceRequest};
use crate::error::{Code, Error, Result};
use crate::git::Git;
use crate::store::{Store, new_id};
use crate::workspace::Projects;
use crate::workspace::sessions::owner as as_owner;
use futures::StreamExt;
use output::Lines;
use queue::Queue;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, watch};
use weft_runtime::{JobExit, JobSpec};

/// Labels a job's container with the job's id.
pub(crate) const LABEL_JOB: &str = "weft.job";
/// The working folder when the spec names none.
const DEFAULT_WORKDIR: &str = "/workspace";
/// The largest file a job output may be.
const MAX_OUTPUT_BYTES: u64 = 64 << 20;
/// Lines read back from the engine for a job's end (the tail keeps their last 64 KiB).
const TAIL_LINES: u64 = 2_000;

/// Where a call's job events go (the call's log and the run's live events).
pub(crate) type Emit = Arc<dyn Fn(serde_json::Value) + Send + Sync>;

/// The jobs service; cheap to clone.
#[derive(Clone)]
pub(crate) struct Jobs {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    containers: Containers,
    projects: Projects,
    git: Git,
    queue: Queue,
}

impl Jobs {
    pub(crate) fn new(store: Store, containers: Containers, projects: Projects, git: Git) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                containers,
                projects,
                git,
                queue: Queue::new(),
            }),
        }
    }

    /// Removes the containers of unfinished jobs whose run is over or gone (a host stopped
    /// mid-job whose run was then cancelled, or a node run directly): nobody comes back for
    /// them. Jobs of runs that go on are left for their node to adopt.
    pub(crate) async fn sweep(&self) -> Result<()> {
        for job in records::orphaned(&self.inner.store).await? {
            self.discard(&job.id, &job.owner_id, job.container_id.as_deref(), "lost")
                .await;
        }
        Ok(())
    }

    /// Pins, for run `run_id` of `owner` at its start, the current commit of each project its
    /// nodes name (ids or names): its jobs then see the files as they are now. A name that is no
    /// project of the owner is left for the job naming it to refuse.
    pub(crate) async fn pin_run(&self, run_id: &str, owner: &str, projects: &[String]) {
        for name in projects {
            let Ok(id) = self.inner.projects.owned(owner, name).await.map(|p| p.id) else {
                continue;
            };
            let caller = as_owner(owner);
            let pinned = pin::pin_commit(
                &self.inner.store,
                &self.inner.git,
                &caller,
                Some(run_id),
                &id,
            )
            .await;
            if let Err(e) = pinned {
                tracing::warn!(run = %run_id, project = %id, err = %e.message, "cannot pin a project's commit for a run");
            }
        }
    }

    /// The jobs of one node call, for `owner`; `scope` names the run's node and attempt.
    pub(crate) fn call(&self, owner: &str, scope: Option<JobScope>, emit: Emit) -> CallJobs {
        CallJobs {
            jobs: self.clone(),
            owner: owner.to_string(),
            scope,
            emit,
            seq: AtomicU32::new(0),
            handles: Mutex::new(Vec::new()),
        }
    }

    /// Stops and removes a job's container (SIGTERM, then SIGKILL after the stop grace) and
    /// marks it ended with `status`; failures are logged, the reconciliation catches up.
    async fn discard(&self, id: &str, owner: &str, container: Option<&str>, status: &str) {
        if let Some(container) = container {
            match self
                .inner
                .containers
                .remove(&as_owner(owner), container)
                .await
            {
                Ok(()) => {}
                Err(e) if e.code == Code::ContainerNotFound => {}
                Err(e) => {
                    tracing::warn!(job = %id, %container, err = %e.message, "cannot remove a job's container")
                }
            }
        }
        // A call dropped while its container was being made may have left one the record
        // does not know (yet): the engine's labels tell.
        self.remove_labelled(id, owner).await;
        if let Err(e) = records::ended(&self.inner.store, id, status, None, None, None).await {
            tracing::warn!(job = %id, err = %e.message, "cannot store a job's end");
        }
        self.inner.queue.wake();
    }

    /// Removes the containers labelled as job `id`'s from the engine, and their records.
    async fn remove_labelled(&self, id: &str, owner: &str) {
        let labels = BTreeMap::from([(LABEL_JOB.to_string(), id.to_string())]);
        let driver = self.inner.containers.driver();
        let found = match driver.list(&labels).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(job = %id, err = %e.message, "cannot list a job's containers");
                return;
            }
        };
        for engine in found {
            if let Some(record) = engine.labels.get(crate::container::LABEL_CONTAINER) {
                let _ = self.inner.containers.remove(&as_owner(owner), record).await;
            }
            // The engine refuses while a start the dropped call asked for is under way.
            for retry in 1..=3 {
                match driver.remove(&engine.id).await {
                    Ok(()) => break,
                    Err(e) if retry == 3 => {
                        tracing::warn!(job = %id, err = %e.message, "cannot remove a job's container");
                    }
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
                }
            }
        }
    }

    /// Starts `spec` for `call` as its `seq`-th job: adopts the job a restarted host left for
    /// this attempt, else queues for room, creates the container, copies the project in and
    /// starts it.
    async fn submit(&self, call: &CallJobs, spec: JobSpec, seq: u32) -> Result<u32> {
        let caller = as_owner(&call.owner);
        let workdir = spec
            .workdir
            .clone()
            .unwrap_or_else(|| DEFAULT_WORKDIR.into());
        if let Some(scope) = &call.scope
            && let Some(found) = records::same_attempt(&self.inner.store, scope, seq).await?
        {
            let fresh = Running::new(
                found.id.clone(),
                String::new(),
                spec.outputs.clone(),
                workdir.clone(),
            );
            if let Some(running) = self.adopt(call, &found, fresh, seq).await {
                return Ok(call.register(running));
            }
            self.discard(
                &found.id,
                &found.owner_id,
                found.container_id.as_deref(),
                "lost",
            )
            .await;
        }
        let request = NewContainer {
            image: spec.image.clone(),
            command: (!spec.command.is_empty()).then(|| spec.command.clone()),
            resources: ResourceRequest {
                cpu: spec.cpu.clone(),
                memory: spec.memory.clone(),
                gpu: spec.gpu.clone(),
            },
            environment: spec.env.iter().cloned().collect(),
            workdir: Some(workdir.clone()),
            start: false,
        };
        let project = match &spec.project {
            Some(name) => {
                let id = self.inner.projects.owned(&call.owner, name).await?.id;
                let run = call.scope.as_ref().map(|s| s.run_id.as_str());
                let commit =
                    pin::pin_commit(&self.inner.store, &self.inner.git, &caller, run, &id)
                        .await?
                        .ok_or_else(|| {
                            Error::new(Code::GitEmpty, format!("project '{name}' has no commit yet"))
                                .hint("a job gets the project's files as committed: commit them first (POST /api/v1/git/commit)")
                        })?;
                Some((id, commit))
            }
            None => None,
        };
        let inputs = (!spec.inputs.is_empty())
            .then(|| inputs::tar(&spec.inputs))
            .transpose()?;
        self.inner.containers.could_fit(&request.resources).await?;
        let id = new_id();
        records::insert(
            &self.inner.store,
            &id,
            &call.owner,
            call.scope.as_ref(),
            seq,
            &spec.image,
        )
        .await?;
        let labels = BTreeMap::from([(LABEL_JOB.to_string(), id.clone())]);
        let created = self.queued(call, &caller, request, labels).await;
        let container = match created {
            Ok(container) => container,
            Err(e) => {
                let _ = records::ended(
                    &self.inner.store,
                    &id,
                    "failed",
                    None,
                    Some(&e.message),
                    None,
                )
                .await;
                return Err(e);
            }
        };
        let running = Running::new(
            id.clone(),
            container.id.clone(),
            spec.outputs.clone(),
            workdir.clone(),
        );
        // From here the call owns the container: a failure, or the call dropped even while this
        // runs, removes it.
        let handle = call.register(running.clone());
        let prepared = async {
            let engine_id = container
                .engine_id
                .clone()
                .ok_or_else(|| Error::internal("the job's container has no engine id"))?;
            if let Some((project, commit)) = &project {
                let files = self.inner.git.archive(&caller, project, commit).await?;
                self.inner
                    .containers
                    .driver()
                    .copy_in(&engine_id, &workdir, files)
                    .await?;
            }
            if let Some(inputs) = inputs {
                self.inner
                    .containers
                    .driver()
                    .copy_in(&engine_id, &workdir, inputs)
                    .await?;
            }
            self.inner
                .containers
                .start_job(&caller, &container.id)
                .await?;
            records::started(&self.inner.store, &id, &container.id).await?;
            Ok::<_, Error>(engine_id)
        };
        match prepared.await {
            Ok(engine_id) => {
                running.follow(self, &engine_id, call.emit.clone(), seq);
                Ok(handle)
            }
            Err(e) => {
                running.done();
                self.discard(&id, &call.owner, Some(&container.id), "failed")
                    .await;
                Err(e)
            }
        }
    }

    /// Creates the job's container once there is room, telling the call its place meanwhile.
    async fn queued(
        &self,
        call: &CallJobs,
        caller: &crate::auth::Caller,
        request: NewContainer,
        labels: BTreeMap<String, String>,
    ) -> Result<crate::container::Container> {
        let containers = &self.inner.containers;
        // In the queue before the first try, so no job overtakes one that tried just before.
        let mut ticket = self.inner.queue.join(&call.owner);
        let mut told = None;
        loop {
            let position = ticket.position();
            if position == 0 {
                match containers
                    .create_labelled(caller, request.clone(), labels.clone(), "")
                    .await
                {
                    Err(e) if waits(&e) => ticket.blocked(e.code == Code::ContainerQuota),
                    done => {
                        if done.is_ok() && told.is_some() {
                            (call.emit)(serde_json::json!({
                                "type": "log", "level": "info",
                                "message": "weft: the job got room on the host",
                            }));
                        }
                        return done;
                    }
                }
            }
            let position = ticket.position();
            if told != Some(position) {
                told = Some(position);
                (call.emit)(serde_json::json!({
                    "type": "queued",
                    "position": position,
                    "message": format!("the job waits for room on the host ({position} ahead of it)"),
                }));
            }
            ticket.changed().await;
        }
    }

    /// Follows the job a previous host started for the same attempt, if its container is
    /// still on the engine (running or ended).
    async fn adopt(
        &self,
        call: &CallJobs,
        found: &records::ActiveJob,
        fresh: Arc<Running>,
        seq: u32,
    ) -> Option<Arc<Running>> {
        let container_id = found.container_id.as_deref()?;
        let container = self
            .inner
            .containers
            .get(&as_owner(&call.owner), container_id)
            .await
            .ok()?;
        let engine_id = container.engine_id.clone()?;
        self.inner
            .containers
            .driver()
            .inspect(&engine_id)
            .await
            .ok()
            .flatten()?;
        tracing::info!(job = %found.id, container = %container_id, "adopting a job after a restart");
        (call.emit)(serde_json::json!({
            "type": "log", "level": "info",
            "message": "weft: adopted the job's container after a restart",
        }));
        let running = Running::new(
            found.id.clone(),
            container_id.to_string(),
            fresh.outputs.clone(),
            fresh.workdir.clone(),
        );
        running.follow(self, &engine_id, call.emit.clone(), seq);
        Some(running)
    }

    /// Waits for `job` to end, collects `outputs` and removes its container.
    async fn finish(&self, call: &CallJobs, job: &Running, outputs: &[String]) -> Result<JobExit> {
        let mut ended = job.ended.subscribe();
        while !*ended.borrow_and_update() {
            if ended.changed().await.is_err() {
                break;
            }
        }
        let caller = as_owner(&call.owner);
        let container = self
            .inner
            .containers
            .get(&caller, &job.container_id)
            .await?;
        let engine_id = container.engine_id.clone().unwrap_or_default();
        let driver = self.inner.containers.driver();
        let engine = driver.inspect(&engine_id).await?;
        let exit_code = engine.as_ref().and_then(|e| e.exit_code).unwrap_or(-1);
        let workdir = if job.workdir.is_empty() {
            DEFAULT_WORKDIR
        } else {
            &job.workdir
        };
        let mut files = Vec::with_capacity(outputs.len());
        for path in outputs {
            let full = if path.starts_with('/') {
                path.clone()
            } else {
                format!("{workdir}/{path}")
            };
            let data = match output::single_file(
                driver.copy_out(&engine_id, &full),
                path,
                MAX_OUTPUT_BYTES,
            )
            .await
            {
                Ok(data) => data,
                Err(e)
                    if e.code == Code::ContainerNotFound
                        || e.message.contains("No such")
                        || e.message.contains("not found") =>
                {
                    None
                }
                Err(e) => return Err(e),
            };
            files.push((path.clone(), data));
        }
        let log_tail = match self.final_tail(&engine_id).await {
            Some(tail) => tail,
            None => job.lines.lock().expect("lines lock").tail(),
        };
        job.done();
        self.inner
            .containers
            .remove(&caller, &job.container_id)
            .await
            .or_else(|e| {
                if e.code == Code::ContainerNotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            })?;
        let status = if exit_code == 0 {
            "succeeded"
        } else {
            "failed"
        };
        records::ended(
            &self.inner.store,
            &job.id,
            status,
            Some(exit_code),
            None,
            Some(&log_tail),
        )
        .await?;
        self.inner.queue.wake();
        Ok(JobExit {
            exit_code,
            log_tail,
            outputs: files,
        })
    }
}

impl Jobs {
    /// The job's last output as the engine kept it. The followed stream can end before it
    /// carried a quick job's last words (a `cat` of a short file came back empty), so the end
    /// reads them again; `None` when the engine cannot say.
    async fn final_tail(&self, engine_id: &str) -> Option<String> {
        let driver = self.inner.containers.driver();
        let mut logs = driver.logs(engine_id, false, Some(TAIL_LINES));
        let mut lines = Lines::default();
        while let Some(chunk) = logs.next().await {
            let chunk = chunk.ok()?;
            let stream = usize::from(chunk.stream == crate::container::driver::LogStream::Stderr);
            lines.push(stream, &chunk.text);
        }
        lines.finish();
        Some(lines.tail())
    }
}

/// Whether a refusal is for lack of room now (the job waits) rather than for good.
fn waits(error: &Error) -> bool {
    matches!(
        error.code,
        Code::ContainerNoResources | Code::ContainerQuota
    )
}

/// A job started in this call.
struct Running {
    id: String,
    container_id: String,
    outputs: Vec<String>,
    workdir: String,
    lines: Mutex<Lines>,
    more: Notify,
    ended: watch::Sender<bool>,
    /// Collected (or discarded) already: the call's end leaves it alone.
    finished: std::sync::atomic::AtomicBool,
    /// The tasks following the job: its output, and the engine's wait for its end.
    pump: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Running {
    fn new(id: String, container_id: String, outputs: Vec<String>, workdir: String) -> Arc<Self> {
        Arc::new(Self {
            id,
            container_id,
            outputs,
            workdir,
            lines: Mutex::default(),
            more: Notify::new(),
            ended: watch::channel(false).0,
            finished: Default::default(),
            pump: Mutex::default(),
        })
    }

    /// Reads the container's output until it ends (into the lines, and to `emit` as log
    /// events) and marks the job ended when the engine says it stopped: the output stream's
    /// own end comes later (hundreds of milliseconds for a quick job), and the end's tail is
    /// read again from the engine anyway.
    fn follow(self: &Arc<Self>, jobs: &Jobs, engine_id: &str, emit: Emit, seq: u32) {
        let driver = jobs.inner.containers.driver().clone();
        let mut logs = driver.logs(engine_id, true, None);
        let me = Arc::downgrade(self);
        let engine = engine_id.to_string();
        let waiter = tokio::spawn(async move {
            // A failed wait leaves the end to the output stream's.
            if driver.wait(&engine).await.is_ok()
                && let Some(job) = me.upgrade()
            {
                job.ended.send_replace(true);
            }
        });
        let me = Arc::downgrade(self);
        let pump = tokio::spawn(async move {
            while let Some(chunk) = logs.next().await {
                let Some(job) = me.upgrade() else { return };
                let Ok(chunk) = chunk else { break };
                let stream =
                    usize::from(chunk.stream == crate::container::driver::LogStream::Stderr);
                let lines = job
                    .lines
                    .lock()
                    .expect("lines lock")
                    .push(stream, &chunk.text);
                announce(&emit, &lines, stream, seq);
                job.more.notify_one();
            }
            if let Some(job) = me.upgrade() {
                let rest = job.lines.lock().expect("lines lock").finish();
                announce(&emit, &rest, 0, seq);
                job.more.notify_one();
                job.ended.send_replace(true);
            }
        });
        *self.pump.lock().expect("pump lock") = vec![pump, waiter];
    }

    fn done(&self) {
        self.finished.store(true, Ordering::SeqCst);
    }

    /// The next lines, waiting for some; `None` once ended and all read.
    async fn next_lines(&self) -> Option<Vec<String>> {
        loop {
            let notified = self.more.notified();
            {
                let mut lines = self.lines.lock().expect("lines lock");
                let unread = lines.take_unread();
                if !unread.is_empty() {
                    return Some(unread);
                }
                if lines.ended {
                    return None;
                }
            }
            notified.await;
        }
    }
}

fn announce(emit: &Emit, lines: &[String], stream: usize, seq: u32) {
    let level = if stream == 1 { "warn" } else { "info" };
    for line in lines {
        emit(serde_json::json!({ "type": "log", "level": level, "message": line, "job": seq }));
    }
}

/// The jobs of one node call. Dropping it (the call ended, was cancelled or timed out) removes
/// every container the call did not collect.
pub(crate) struct CallJobs {
    jobs: Jobs,
    owner: String,
    scope: Option<JobScope>,
    emit: Emit,
    seq: AtomicU32,
    handles: Mutex<Vec<Arc<Running>>>,
}

impl CallJobs {
    /// `jobs.submit`: the handle is the job's index in this call.
    pub(crate) async fn submit(&self, spec: JobSpec) -> std::result::Result<u32, String> {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst);
        self.jobs
            .submit(self, spec, seq)
            .await
            .map_err(|e| e.for_guest())
    }

    /// Makes the call own `running` (its container goes when the call does); its handle.
    fn register(&self, running: Arc<Running>) -> u32 {
        let mut handles = self.handles.lock().expect("handles lock");
        handles.push(running);
        (handles.len() - 1) as u32
    }

    fn handle(&self, job: u32) -> Option<Arc<Running>> {
        self.handles
            .lock()
            .expect("handles lock")
            .get(job as usize)
            .cloned()
    }

    /// `jobs.logs`.
    pub(crate) async fn logs(&self, job: u32) -> Option<Vec<String>> {
        self.handle(job)?.next_lines().await
    }

    /// `jobs.wait`.
    pub(crate) async fn wait(&self, job: u32) -> std::result::Result<JobExit, String> {
        let running = self
            .handle(job)
            .ok_or_else(|| format!("no job {job} in this call"))?;
        if running.finished.load(Ordering::SeqCst) {
            return Err(format!("job {job} was already collected"));
        }
        let outputs = running.outputs.clone();
        self.jobs
            .finish(self, &running, &outputs)
            .await
            .map_err(|e| e.for_guest())
    }
}

impl Drop for CallJobs {
    fn drop(&mut self) {
        let handles = std::mem::take(&mut *self.handles.lock().expect("handles lock"));
        let keep: Vec<String> = handles.iter().map(|h| h.id.clone()).collect();
        let left: Vec<Arc<Running>> = handles
            .into_iter()
            .filter(|h| !h.finished.load(Ordering::SeqCst))
            .collect();
        for job in &left {
            for task in job.pump.lock().expect("pump lock").drain(..) {
                task.abort();
            }
        }
        let (jobs, owner, scope) = (self.jobs.clone(), self.owner.clone(), self.scope.clone());
        if left.is_empty() && scope.is_none() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            for job in left {
                jobs.discard(&job.id, &owner, Some(&job.container_id), "cancelled")
                    .await;
            }
            // Jobs an earlier host started for this node that this call did not adopt.
            if let Some(scope) = scope
                && let Ok(stale) = records::left_behind(&jobs.inner.store, &scope, &keep).await
            {
                for job in stale {
                    jobs.discard(&job.id, &job.owner_id, job.container_id.as_deref(), "lost")
                        .await;
                }
            }
        });
    }
}
