//! The real `git` client over Weft's smart HTTP: clone (by owner and name, by id, shallow),
//! push (the project's files follow the current branch; uncommitted changes refuse it), pull,
//! and who may reach a repository.

use crate::on_both_backends;
use crate::support::git::{GitUser, assert_fsck, clone_url, repository};
use crate::support::{Backend, TestServer};
use reqwest::StatusCode;
use serde_json::json;

on_both_backends!(
    a_clone_takes_the_commits_and_a_push_moves_the_files,
    a_push_over_uncommitted_changes_is_refused_with_git_s_message,
    pull_fetches_what_the_api_committed,
    a_shallow_clone_has_one_commit,
    a_thousand_files_clone_and_push_back,
    only_the_owner_s_token_reaches_a_repository,
    without_git_the_git_paths_say_what_is_missing
);

/// Bob, his project "thesis" (id) with `readme.md` committed.
async fn thesis(backend: Backend) -> (TestServer, String, String) {
    let server = TestServer::start(backend).await;
    let (_, bob) = server.user("bob").await;
    let project = server.project(&bob, "thesis").await;
    server
        .put_file(&bob, &project, "readme.md", "hello\n")
        .await;
    server.commit(&bob, &project, "first").await;
    (server, bob, project)
}

/// `git clone` by owner and name, a commit pushed back: the project's files follow, the API's
/// history shows it, the repository stays sound.
async fn a_clone_takes_the_commits_and_a_push_moves_the_files(backend: Backend) {
    let (server, bob, project) = thesis(backend).await;
    let git = GitUser::new();
    let clone = git
        .clone_into(&clone_url(&server, &bob, "bob/thesis"), "thesis")
        .await;
    assert_eq!(
        std::fs::read_to_string(clone.join("readme.md")).unwrap(),
        "hello\n"
    );
    std::fs::write(clone.join("readme.md"), "hello, world\n").unwrap();
    std::fs::create_dir_all(clone.join("src")).unwrap();
    std::fs::write(clone.join("src/main.py"), "print(42)\n").unwrap();
    git.ok(&clone, &["add", "-A"]).await;
    git.ok(&clone, &["commit", "-m", "from my laptop"]).await;
    git.ok(&clone, &["push", "origin", "main"]).await;
    assert_eq!(
        server.file_text(&bob, &project, "readme.md").await,
        "hello, world\n"
    );
    assert_eq!(
        server.file_text(&bob, &project, "src/main.py").await,
        "print(42)\n"
    );
    let (_, history) = server
        .git_get(&bob, &format!("history?project_id={project}"))
        .await;
    assert_eq!(history["commits"][0]["message"], "from my laptop\n");
    assert_eq!(history["commits"][0]["author"], "Ada");
    let (_, status) = server
        .git_get(&bob, &format!("status?project_id={project}"))
        .await;
    assert_eq!(
        status["changes"],
        json!([]),
        "the files are the pushed commit"
    );
    git.ok(&clone, &["push", "origin", "main:other"]).await;
    let (_, branches) = server
        .git_get(&bob, &format!("branch?project_id={project}"))
        .await;
    assert_eq!(branches[1]["name"], "other");
    let by_id = git
        .clone_into(&clone_url(&server, &bob, &project), "by-id")
        .await;
    assert!(by_id.join("src/main.py").exists());
    assert_fsck(&repository(&server, &project)).await;
}

/// A push to the current branch while the project has uncommitted changes is refused, with
/// the reason in git's output; nothing changes. Another branch still takes pushes.
async fn a_push_over_uncommitted_changes_is_refused_with_git_s_message(backend: Backend) {
    let (server, bob, project) = thesis(backend).await;
    let git = GitUser::new();
    let clone = git
        .clone_into(&clone_url(&server, &bob, "bob/thesis"), "c")
        .await;
    std::fs::write(clone.join("readme.md"), "pushed\n").unwrap();
    git.ok(&clone, &["commit", "-am", "pushed"]).await;
    server
        .put_file(&bob, &project, "notes.txt", "not committed\n")
        .await;
    let (ok, _, err) = git.run(&clone, &["push", "origin", "main"]).await;
    assert!(!ok, "the push went through");
    assert!(err.contains("uncommitted changes: notes.txt"), "{err}");
    assert!(err.contains("[remote rejected]"), "{err}");
    assert_eq!(
        server.file_text(&bob, &project, "readme.md").await,
        "hello\n"
    );
    let (_, history) = server
        .git_get(&bob, &format!("history?project_id={project}"))
        .await;
    assert_eq!(history["commits"].as_array().unwrap().len(), 1);
    git.ok(&clone, &["push", "origin", "main:elsewhere"]).await;
    assert_eq!(
        server.file_text(&bob, &project, "notes.txt").await,
        "not committed\n"
    );
}

/// `git pull` brings a commit made through the API.
async fn pull_fetches_what_the_api_committed(backend: Backend) {
    let (server, bob, project) = thesis(backend).await;
    let git = GitUser::new();
    let clone = git
        .clone_into(&clone_url(&server, &bob, "bob/thesis"), "c")
        .await;
    server
        .put_file(&bob, &project, "readme.md", "changed in weft\n")
        .await;
    server.commit(&bob, &project, "in weft").await;
    git.ok(&clone, &["pull", "--ff-only"]).await;
    assert_eq!(
        std::fs::read_to_string(clone.join("readme.md")).unwrap(),
        "changed in weft\n"
    );
    let log = git.ok(&clone, &["log", "--format=%an <%ae> %s"]).await;
    assert_eq!(
        log,
        "bob <bob@weft.local> in weft\nbob <bob@weft.local> first\n"
    );
}

/// `git clone --depth 1` takes only the newest commit.
async fn a_shallow_clone_has_one_commit(backend: Backend) {
    let (server, bob, project) = thesis(backend).await;
    for i in 0..3 {
        server
            .put_file(&bob, &project, "readme.md", &format!("v{i}\n"))
            .await;
        server.commit(&bob, &project, &format!("v{i}")).await;
    }
    let git = GitUser::new();
    let url = clone_url(&server, &bob, "bob/thesis");
    git.ok(git.home.path(), &["clone", "--depth", "1", &url, "c"])
        .await;
    let clone = git.dir("c");
    assert_eq!(
        git.ok(&clone, &["rev-list", "--count", "HEAD"])
            .await
            .trim(),
        "1"
    );
    assert_eq!(
        std::fs::read_to_string(clone.join("readme.md")).unwrap(),
        "v2\n"
    );
    git.ok(&clone, &["fetch", "--deepen", "2"]).await;
    assert_eq!(
        git.ok(&clone, &["rev-list", "--count", "HEAD"])
            .await
            .trim(),
        "3"
    );
}

/// A project of 1,000 files (written straight into its folder) commits, clones whole, and a
/// push changing 10 and deleting 10 of them moves exactly those.
async fn a_thousand_files_clone_and_push_back(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, bob) = server.user("bob").await;
    let project = server.project(&bob, "big").await;
    let folder = server.config.data_dir.join("projects").join(&project);
    for i in 0..1000 {
        let dir = folder.join(format!("d{}", i % 10));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("f{i}.txt")), format!("file {i}\n")).unwrap();
    }
    let commit = server.commit(&bob, &project, "a thousand").await;
    assert_eq!(commit["changes"].as_array().unwrap().len(), 1000);
    let git = GitUser::new();
    let clone = git
        .clone_into(&clone_url(&server, &bob, "bob/big"), "c")
        .await;
    let listed = git.ok(&clone, &["ls-files"]).await;
    assert_eq!(listed.lines().count(), 1000);
    for i in 0..10 {
        std::fs::write(clone.join(format!("d0/f{}.txt", i * 10)), "changed\n").unwrap();
        std::fs::remove_file(clone.join(format!("d1/f{}.txt", i * 10 + 1))).unwrap();
    }
    git.ok(&clone, &["commit", "-qam", "ten and ten"]).await;
    git.ok(&clone, &["push", "-q", "origin", "main"]).await;
    assert_eq!(
        std::fs::read_to_string(folder.join("d0/f20.txt")).unwrap(),
        "changed\n"
    );
    assert!(!folder.join("d1/f21.txt").exists());
    assert_eq!(server.file_paths(&bob, &project).await.len(), 990);
    let (_, status) = server
        .git_get(&bob, &format!("status?project_id={project}"))
        .await;
    assert_eq!(status["changes"], json!([]));
    assert_fsck(&repository(&server, &project)).await;
}

/// No token: 401 with a Basic challenge (git asks for one); a wrong token: 401; another
/// user's token: 404 on every git path, clone and push alike; an admin's: allowed.
async fn only_the_owner_s_token_reaches_a_repository(backend: Backend) {
    let (server, bob, project) = thesis(backend).await;
    let (_, eve) = server.user("eve").await;
    let refs = server.url("/git/bob/thesis.git/info/refs?service=git-upload-pack");
    let response = server.client.get(&refs).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.starts_with("Basic"), "{challenge}");
    let wrong = server
        .client
        .get(&refs)
        .basic_auth("x", Some("weft_wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    for (method, path) in [
        ("GET", "info/refs?service=git-upload-pack"),
        ("GET", "info/refs?service=git-receive-pack"),
        ("POST", "git-upload-pack"),
        ("POST", "git-receive-pack"),
    ] {
        for repo in ["bob/thesis", project.as_str()] {
            let url = server.url(&format!("/git/{repo}.git/{path}"));
            let request = server.client.request(method.parse().unwrap(), url);
            let response = request.basic_auth("eve", Some(&eve)).send().await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::NOT_FOUND,
                "{method} {repo} {path}"
            );
        }
    }
    let git = GitUser::new();
    let anonymous = format!("http://{}/git/bob/thesis.git", server.addr);
    let (ok, _, err) = git.run(git.home.path(), &["clone", &anonymous, "a"]).await;
    assert!(!ok && err.contains("could not read Username"), "{err}");
    let (ok, _, err) = git
        .run(
            git.home.path(),
            &["clone", &clone_url(&server, &eve, "bob/thesis"), "e"],
        )
        .await;
    assert!(!ok && err.contains("not found"), "{err}");
    let (ok, _, err) = git
        .run(
            git.home.path(),
            &[
                "clone",
                &clone_url(&server, "weft_wrong", "bob/thesis"),
                "w",
            ],
        )
        .await;
    assert!(!ok && err.contains("Authentication failed"), "{err}");
    let admin = clone_url(&server, &server.admin_token, "bob/thesis");
    git.clone_into(&admin, "admin").await;
    let dumb = server
        .client
        .get(server.url("/git/bob/thesis.git/HEAD"))
        .basic_auth("b", Some(&bob))
        .send()
        .await
        .unwrap();
    assert_eq!(
        dumb.status(),
        StatusCode::NOT_FOUND,
        "the dumb protocol is not served"
    );
}

/// With no `git` to run, the `/git/` paths answer 503 naming what is missing; the API works.
async fn without_git_the_git_paths_say_what_is_missing(backend: Backend) {
    let server =
        TestServer::start_with(backend, |c| c.git.binary = "/nonexistent/git".into()).await;
    let (_, bob) = server.user("bob").await;
    let project = server.project(&bob, "thesis").await;
    server.put_file(&bob, &project, "a.txt", "1").await;
    server.commit(&bob, &project, "works without git").await;
    let refs = server.url("/git/bob/thesis.git/info/refs?service=git-upload-pack");
    let response = server
        .client
        .get(refs)
        .basic_auth("b", Some(&bob))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "30101");
    assert!(
        body["message"].as_str().unwrap().contains("install git"),
        "{body}"
    );
}
