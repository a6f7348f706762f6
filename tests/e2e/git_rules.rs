//! What versioning brings into a project's files obeys the project's rules: its limits (a
//! push refused with git's own message, a checkout with 30209) and its `.gitignore` files;
//! and it works the same with the files in an S3 bucket.

use crate::on_both_backends;
use crate::support::git::{GitUser, clone_url};
use crate::support::{Backend, TestServer, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    a_push_over_the_project_s_limits_is_refused,
    a_commit_honours_the_project_s_gitignore
);

/// The paths a commit changed.
fn changed(commit: &Value) -> Vec<&str> {
    commit["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["path"].as_str().expect("a path"))
        .collect()
}

/// A push to the current branch whose files would break the project's limits (a file over
/// the size limit, more files than it may hold) is refused with git's message and changes
/// nothing; pushed to another branch it is stored, and checking that out answers 30209.
async fn a_push_over_the_project_s_limits_is_refused(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.workspaces.max_file_bytes = 1000;
        c.workspaces.project_max_files = 3;
    })
    .await;
    let (_, bob) = server.user("bob").await;
    let project = server.project(&bob, "thesis").await;
    server.put_file(&bob, &project, "readme.md", "hi\n").await;
    server.commit(&bob, &project, "first").await;
    let git = GitUser::new();
    let clone = git
        .clone_into(&clone_url(&server, &bob, "bob/thesis"), "c")
        .await;
    std::fs::write(clone.join("big.bin"), vec![b'x'; 1001]).unwrap();
    git.ok(&clone, &["add", "-A"]).await;
    git.ok(&clone, &["commit", "-qm", "big"]).await;
    let (ok, _, err) = git.run(&clone, &["push", "origin", "main"]).await;
    assert!(!ok, "the push went through");
    let why = "big.bin is 1001 bytes, over the file size limit of the project (1000 bytes)";
    assert!(err.contains(why), "{err}");
    assert!(err.contains("[remote rejected]"), "{err}");
    git.ok(&clone, &["reset", "-q", "--hard", "HEAD~1"]).await;
    for name in ["a.py", "b.py", "c.py"] {
        std::fs::write(clone.join(name), "x = 1\n").unwrap();
    }
    git.ok(&clone, &["add", "-A"]).await;
    git.ok(&clone, &["commit", "-qm", "many"]).await;
    let (ok, _, err) = git.run(&clone, &["push", "origin", "main"]).await;
    assert!(!ok, "the push went through");
    assert!(
        err.contains("would hold 4 files, over its limit of 3 files"),
        "{err}"
    );
    assert_eq!(server.file_paths(&bob, &project).await, ["readme.md"]);
    git.ok(&clone, &["push", "-q", "origin", "main:many"]).await;
    let checkout = json!({ "project_id": project, "ref": "many" });
    let (status, refused) = server.git_post(&bob, "checkout", checkout).await;
    assert_error(status, &refused, 409, "30209");
    assert_eq!(refused["details"]["max_files"], 3, "{refused}");
    assert_eq!(server.file_paths(&bob, &project).await, ["readme.md"]);
    let (_, status) = server
        .git_get(&bob, &format!("status?project_id={project}"))
        .await;
    assert_eq!(status["branch"], "main", "{status}");
}

/// A commit leaves out what the project's `.gitignore` files match (nested files, folders,
/// negations) unless a commit tracks it already; `status` does not list
/// it, a checkout leaves it in place, a clone does not have it.
async fn a_commit_honours_the_project_s_gitignore(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, bob) = server.user("bob").await;
    let project = server.project(&bob, "p").await;
    for (path, text) in [
        (".gitignore", "*.log\n!keep.log\nbuild/\n"),
        ("main.py", "print(1)\n"),
        ("debug.log", "noise\n"),
        ("build/out.bin", "built\n"),
        ("logs/.gitignore", "scratch.txt\n"),
        ("logs/keep.log", "kept\n"),
        ("logs/scratch.txt", "noise\n"),
    ] {
        server.put_file(&bob, &project, path, text).await;
    }
    let first = server.commit(&bob, &project, "first").await;
    let versioned = [".gitignore", "logs/.gitignore", "logs/keep.log", "main.py"];
    assert_eq!(changed(&first), versioned, "{first}");
    let status_path = format!("status?project_id={project}");
    let (_, status) = server.git_get(&bob, &status_path).await;
    assert_eq!(status["changes"], json!([]), "{status}");
    server
        .put_file(
            &bob,
            &project,
            ".gitignore",
            "*.log\n!keep.log\nbuild/\nmain.py\n",
        )
        .await;
    server
        .put_file(&bob, &project, "main.py", "print(2)\n")
        .await;
    let second = server.commit(&bob, &project, "tracked stays").await;
    assert_eq!(changed(&second), [".gitignore", "main.py"], "{second}");
    let checkout = json!({ "project_id": project, "ref": first["commit_id"] });
    let (status, done) = server.git_post(&bob, "checkout", checkout).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(
        server.file_text(&bob, &project, "main.py").await,
        "print(1)\n"
    );
    let mut kept = server.file_paths(&bob, &project).await;
    kept.retain(|p| !versioned.contains(&p.as_str()));
    assert_eq!(kept, ["build/out.bin", "debug.log", "logs/scratch.txt"]);
    let git = GitUser::new();
    let clone = git
        .clone_into(&clone_url(&server, &bob, &project), "c")
        .await;
    assert!(clone.join("logs/keep.log").exists());
    assert!(!clone.join("debug.log").exists() && !clone.join("build").exists());
}

/// With the files in an S3 bucket (moto's server, a stand-in for S3): a checkout writes and
/// deletes objects (nothing staged is left) and a push moves them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versioning_with_the_files_in_s3() {
    let s3 = crate::support::s3::S3Server::start().await;
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        s3.store_projects(c, "/weft");
    })
    .await;
    let (_, bob) = server.user("bob").await;
    let project = server.project(&bob, "cloud").await;
    server.put_file(&bob, &project, "a.txt", "one\n").await;
    server.put_file(&bob, &project, "dir/b.txt", "two\n").await;
    let first = server.commit(&bob, &project, "first").await;
    server.put_file(&bob, &project, "a.txt", "changed\n").await;
    server.remove_file(&bob, &project, "dir/b.txt").await;
    server.put_file(&bob, &project, "c.txt", "new\n").await;
    server.commit(&bob, &project, "second").await;
    let checkout = json!({ "project_id": project, "ref": first["commit_id"] });
    let (status, done) = server.git_post(&bob, "checkout", checkout).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(
        (done["written"].clone(), done["deleted"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(server.file_text(&bob, &project, "a.txt").await, "one\n");
    let mut keys = s3.keys().await;
    keys.sort();
    let key = |p: &str| format!("weft/{project}/{p}");
    assert_eq!(
        keys,
        [key("a.txt"), key("dir/b.txt")],
        "nothing staged is left"
    );
    let checkout = json!({ "project_id": project, "ref": "main" });
    let (status, done) = server.git_post(&bob, "checkout", checkout).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let git = GitUser::new();
    let clone = git
        .clone_into(&clone_url(&server, &bob, &project), "c")
        .await;
    std::fs::write(clone.join("a.txt"), "pushed\n").unwrap();
    git.ok(&clone, &["commit", "-qam", "pushed"]).await;
    git.ok(&clone, &["push", "-q", "origin", "main"]).await;
    assert_eq!(server.file_text(&bob, &project, "a.txt").await, "pushed\n");
}
