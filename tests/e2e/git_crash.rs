//! A real `weft` stopped (SIGABRT, as abrupt as SIGKILL) at each of versioning's crash points
//! (`WEFT_CRASH_AT`, debug builds only: see host/src/crash.rs), then restarted: the repository
//! passes `git fsck --strict` and the project's files equal a commit or what they were before.
//! One test kills `weft` with SIGKILL while a large push streams in.

use crate::on_both_backends;
use crate::support::git::{GitUser, assert_fsck};
use crate::support::{Backend, Site, call};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::os::unix::process::ExitStatusExt as _;
use std::time::Duration;

on_both_backends!(
    a_crash_in_a_push_completes_the_files_on_restart,
    a_crash_in_a_checkout_completes_it_on_restart,
    a_crash_in_a_commit_leaves_the_files_uncommitted,
    a_sigkill_in_the_middle_of_a_push_leaves_a_sound_repository
);

/// Writes `text` to `a.txt` of project `id` through the host at `base`.
async fn put(site: &Site, base: &str, id: &str, text: &str) {
    let url = format!("{base}/api/v1/projects/{id}/files/a.txt");
    let put = site
        .client
        .put(url)
        .bearer_auth(&site.token)
        .body(text.to_string());
    assert!(put.send().await.unwrap().status().is_success());
}

/// Commits project `id`'s files through the host at `base`, asserting 201.
async fn commit(site: &Site, base: &str, id: &str, message: &str) {
    let body = json!({ "project_id": id, "message": message });
    let (status, commit) = call(
        &site.client,
        base,
        &site.token,
        Method::POST,
        "/api/v1/git/commit",
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{commit}");
}

/// A site whose admin has project "p" with `a.txt` committed; returns its id.
async fn prepared(site: &Site) -> String {
    let mut host = site.serve(&[]);
    let base = host.base_url();
    let body = Some(json!({ "name": "p" }));
    let (_, project) = call(
        &site.client,
        &base,
        &site.token,
        Method::POST,
        "/api/v1/projects",
        body,
    )
    .await;
    let id = project["id"].as_str().expect("project id").to_string();
    put(site, &base, &id, "one\n").await;
    commit(site, &base, &id, "one").await;
    host.terminate(Duration::from_secs(30));
    id
}

/// Restarts the site; returns the project's status (its first use completes what was cut
/// short) and `a.txt`'s text, after checking the repository.
async fn after_restart(site: &Site, id: &str) -> (Value, String) {
    let mut host = site.serve(&[]);
    let base = host.base_url();
    let (status, state) = call(
        &site.client,
        &base,
        &site.token,
        Method::GET,
        &format!("/api/v1/git/status?project_id={id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{state}");
    let response = site
        .client
        .get(format!("{base}/api/v1/projects/{id}/files/a.txt"))
        .bearer_auth(&site.token)
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    host.terminate(Duration::from_secs(30));
    assert_fsck(&site.data_dir().join("git").join(format!("{id}.git"))).await;
    (state, text)
}

/// Waits for a host started with `WEFT_CRASH_AT=point` to stop there.
fn stopped_at(host: &mut crate::support::WeftProcess, point: &str) {
    let status = host.wait_exit(Duration::from_secs(60));
    assert_eq!(status.signal(), Some(6), "SIGABRT at {point}: {status:?}");
    assert!(host.stderr_contains(&format!("crash point {point} reached")));
}

/// Stopped after the push updated the branch, before the files followed: the restarted host
/// makes them the pushed commit's.
async fn a_crash_in_a_push_completes_the_files_on_restart(backend: Backend) {
    let site = Site::new(backend).await;
    let id = prepared(&site).await;
    let mut host = site.serve(&[("WEFT_CRASH_AT", "git-push-received")]);
    let git = GitUser::new();
    let url = format!(
        "http://x:{}@{}/git/{id}.git",
        site.token,
        host.base_url().trim_start_matches("http://")
    );
    let clone = git.clone_into(&url, "c").await;
    std::fs::write(clone.join("a.txt"), "pushed\n").unwrap();
    git.ok(&clone, &["commit", "-qam", "pushed"]).await;
    let _ = git.run(&clone, &["push", "origin", "main"]).await;
    stopped_at(&mut host, "git-push-received");
    let (state, text) = after_restart(&site, &id).await;
    assert_eq!(text, "pushed\n");
    assert_eq!(state["changes"], json!([]), "{state}");
}

/// Stopped half way through a checkout's change of the files: the restarted host completes
/// it, so the files are the checked-out commit's.
async fn a_crash_in_a_checkout_completes_it_on_restart(backend: Backend) {
    let site = Site::new(backend).await;
    let id = prepared(&site).await;
    let mut host = site.serve(&[]);
    let base = host.base_url();
    let branch = Some(json!({ "project_id": id, "name": "old" }));
    call(
        &site.client,
        &base,
        &site.token,
        Method::POST,
        "/api/v1/git/branch",
        branch,
    )
    .await;
    put(&site, &base, &id, "two\n").await;
    commit(&site, &base, &id, "two").await;
    host.terminate(Duration::from_secs(30));
    let mut host = site.serve(&[("WEFT_CRASH_AT", "git-files-half")]);
    let checkout = json!({ "project_id": id, "ref": "old" });
    let url = format!("{}/api/v1/git/checkout", host.base_url());
    let _ = site
        .client
        .post(url)
        .bearer_auth(&site.token)
        .json(&checkout)
        .send()
        .await;
    stopped_at(&mut host, "git-files-half");
    let (state, text) = after_restart(&site, &id).await;
    assert_eq!(
        (state["branch"].as_str(), text.as_str()),
        (Some("old"), "one\n")
    );
    assert_eq!(state["changes"], json!([]), "{state}");
}

/// Stopped after a commit's objects were written, before any ref named them: the commit did
/// not happen and the files' change is still uncommitted.
async fn a_crash_in_a_commit_leaves_the_files_uncommitted(backend: Backend) {
    let site = Site::new(backend).await;
    let id = prepared(&site).await;
    let mut host = site.serve(&[("WEFT_CRASH_AT", "git-commit-objects")]);
    let base = host.base_url();
    put(&site, &base, &id, "two\n").await;
    let commit = json!({ "project_id": id, "message": "two" });
    let _ = site
        .client
        .post(format!("{base}/api/v1/git/commit"))
        .bearer_auth(&site.token)
        .json(&commit)
        .send()
        .await;
    stopped_at(&mut host, "git-commit-objects");
    let (state, text) = after_restart(&site, &id).await;
    assert_eq!(text, "two\n");
    assert_eq!(
        state["changes"],
        json!([{ "path": "a.txt", "change": "modified" }]),
        "{state}"
    );
}

/// Whether a push is being received into the repository at `repo` (its quarantine exists).
fn receiving(repo: &std::path::Path) -> bool {
    std::fs::read_dir(repo.join("objects")).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("tmp_objdir-incoming")
        })
    })
}

/// How many processes work in the folder `dir` (git runs in the repository).
fn working_in(dir: &std::path::Path) -> usize {
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return 0;
    };
    processes
        .flatten()
        .filter(|p| std::fs::read_link(p.path().join("cwd")).is_ok_and(|cwd| cwd == dir))
        .count()
}

/// SIGKILL while a 64 MB push is being received: after a restart the repository is sound and
/// the files are a commit's (the push's, if it had landed, or the one before).
async fn a_sigkill_in_the_middle_of_a_push_leaves_a_sound_repository(backend: Backend) {
    use std::io::Read as _;
    let site = Site::new(backend).await;
    let id = prepared(&site).await;
    let mut host = site.serve(&[]);
    let git = GitUser::new();
    let address = host.base_url().trim_start_matches("http://").to_string();
    let clone = git
        .clone_into(
            &format!("http://x:{}@{address}/git/{id}.git", site.token),
            "c",
        )
        .await;
    let mut noise = vec![0u8; 64 << 20];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut noise)
        .unwrap();
    std::fs::write(clone.join("noise.bin"), &noise).unwrap();
    std::fs::write(clone.join("a.txt"), "pushed\n").unwrap();
    git.ok(&clone, &["add", "-A"]).await;
    git.ok(&clone, &["commit", "-qm", "big"]).await;
    let pushed = tokio::spawn(async move { git.run(&clone, &["push", "origin", "main"]).await });
    let repo = site.data_dir().join("git").join(format!("{id}.git"));
    let watched = repo.clone();
    crate::support::wait::until("the push to be received", Duration::from_secs(60), || {
        let (receiving, done) = (receiving(&watched), pushed.is_finished());
        async move {
            if receiving || done {
                Ok(())
            } else {
                Err("no push yet")
            }
        }
    })
    .await;
    host.kill();
    let _ = pushed.await;
    // A receive-pack the killed host started ends on its own (its input closed).
    crate::support::wait::until(
        "the push's git processes to end",
        Duration::from_secs(60),
        || {
            let left = working_in(&repo);
            async move { if left > 0 { Err(left) } else { Ok(()) } }
        },
    )
    .await;
    let (state, text) = after_restart(&site, &id).await;
    assert!(text == "one\n" || text == "pushed\n", "{text}");
    assert_eq!(
        state["changes"],
        json!([]),
        "the files are a commit's: {state}"
    );
}
