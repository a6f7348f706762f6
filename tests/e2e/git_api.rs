//! The versioning API (`/api/v1/git`): commits of a project's files, history, branches, diffs,
//! old versions, checkout, merge and revert; every repository passes `git fsck --strict`.

use crate::on_both_backends;
use crate::support::git::{assert_fsck, repository};
use crate::support::{Backend, TestServer, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    a_commit_records_the_files_and_nothing_new_is_409,
    history_is_newest_first_paginated_and_by_path,
    branches_are_made_listed_and_deleted_by_git_rules,
    diffs_trees_and_blobs_read_old_versions,
    checkout_switches_the_files_and_refuses_uncommitted_changes,
    a_checkout_turns_a_folder_into_a_file_and_back,
    a_clean_merge_commits_and_moves_the_files,
    a_conflicting_merge_changes_nothing_and_names_the_hunks,
    a_revert_undoes_a_commit,
    another_users_project_is_not_found,
    concurrent_commits_land_one_after_the_other,
    a_project_older_than_versioning_gets_its_files_committed_on_first_use
);

/// A server, user bob (token) and bob's project "thesis" (id) with `files` committed as
/// "first".
async fn committed(backend: Backend, files: &[(&str, &str)]) -> (TestServer, String, String) {
    let server = TestServer::start(backend).await;
    let (_, bob) = server.user("bob").await;
    let project = server.project(&bob, "thesis").await;
    for (path, content) in files {
        server.put_file(&bob, &project, path, content).await;
    }
    server.commit(&bob, &project, "first").await;
    (server, bob, project)
}

fn paths(changes: &Value) -> Vec<(String, String)> {
    changes
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().into(),
                c["change"].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// A commit names its author, time and changes (lines counted); with nothing changed it is
/// refused, not made empty.
async fn a_commit_records_the_files_and_nothing_new_is_409(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, bob) = server.user("bob").await;
    let project = server.project(&bob, "thesis").await;
    server
        .put_file(&bob, &project, "main.py", "print(1)\n")
        .await;
    server
        .put_file(&bob, &project, "data/notes.md", "a\nb\n")
        .await;
    let first = server.commit(&bob, &project, "first").await;
    assert_eq!(first["author"], "bob");
    assert_eq!(first["author_email"], "bob@weft.local");
    assert_eq!(first["message"], "first\n");
    assert!(first["timestamp"].is_string() && first["commit_id"].as_str().unwrap().len() == 40);
    assert_eq!(
        paths(&first["changes"]),
        [
            ("data/notes.md".into(), "added".into()),
            ("main.py".into(), "added".into())
        ]
    );
    let body = json!({ "project_id": project, "message": "again" });
    let (status, refused) = server.git_post(&bob, "commit", body).await;
    assert_error(status, &refused, 409, "30201");
    server
        .put_file(&bob, &project, "data/notes.md", "a\nB\nc\n")
        .await;
    let second = server.commit(&bob, &project, "second").await;
    let change = &second["changes"][0];
    assert_eq!(
        (change["path"].as_str(), change["change"].as_str()),
        (Some("data/notes.md"), Some("modified"))
    );
    assert_eq!(
        (change["additions"].as_u64(), change["deletions"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(second["parents"][0], first["commit_id"]);
    let (status, empty) = server
        .git_post(
            &bob,
            "commit",
            json!({ "project_id": project, "message": " " }),
        )
        .await;
    assert_error(status, &empty, 422, "90402");
    assert_fsck(&repository(&server, &project)).await;
}

/// History lists commits newest first, a page at a time, and with a path only those that
/// changed it.
async fn history_is_newest_first_paginated_and_by_path(backend: Backend) {
    let (server, bob, project) = committed(backend, &[("a.txt", "1"), ("b.txt", "1")]).await;
    server.put_file(&bob, &project, "a.txt", "2").await;
    server.commit(&bob, &project, "a two").await;
    server.put_file(&bob, &project, "b.txt", "2").await;
    server.commit(&bob, &project, "b two").await;
    let (status, all) = server
        .git_get(&bob, &format!("history?project_id={project}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let messages: Vec<&str> = all["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["b two\n", "a two\n", "first\n"]);
    assert!(all["next_cursor"].is_null());
    let (_, page) = server
        .git_get(&bob, &format!("history?project_id={project}&limit=2"))
        .await;
    assert_eq!(page["commits"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().expect("a next page");
    // A commit made meanwhile does not shift the pages.
    server.put_file(&bob, &project, "c.txt", "1").await;
    server.commit(&bob, &project, "c").await;
    let (_, rest) = server
        .git_get(
            &bob,
            &format!("history?project_id={project}&limit=2&cursor={cursor}"),
        )
        .await;
    assert_eq!(rest["commits"][0]["message"], "first\n");
    assert!(rest["next_cursor"].is_null());
    let (_, by_path) = server
        .git_get(
            &bob,
            &format!("history?project_id={project}&path=a.txt&changes=true"),
        )
        .await;
    let messages: Vec<&str> = by_path["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["a two\n", "first\n"]);
    assert_eq!(by_path["commits"][0]["changes"][0]["path"], "a.txt");
    let (status, bad) = server
        .git_get(&bob, &format!("history?project_id={project}&cursor=nope"))
        .await;
    assert_error(status, &bad, 400, "90405");
}

/// Branches follow git's name rules; the current one cannot be deleted.
async fn branches_are_made_listed_and_deleted_by_git_rules(backend: Backend) {
    let (server, bob, project) = committed(backend, &[("a.txt", "1")]).await;
    let make = |name: &str| json!({ "project_id": project, "name": name });
    let (status, feature) = server.git_post(&bob, "branch", make("feature/x")).await;
    assert_eq!(status, StatusCode::CREATED, "{feature}");
    assert_eq!(feature["current"], false);
    for bad in ["a..b", "-x", "a b", "x.lock", "HEAD", "a~1", "end/"] {
        let (status, refused) = server.git_post(&bob, "branch", make(bad)).await;
        assert_error(status, &refused, 422, "30401");
    }
    let (status, exists) = server.git_post(&bob, "branch", make("feature/x")).await;
    assert_error(status, &exists, 409, "30203");
    let (status, from_nowhere) = server
        .git_post(
            &bob,
            "branch",
            json!({ "project_id": project, "name": "y", "from": "nope" }),
        )
        .await;
    assert_error(status, &from_nowhere, 404, "30202");
    let (_, listed) = server
        .git_get(&bob, &format!("branch?project_id={project}"))
        .await;
    let names: Vec<(&str, bool)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["name"].as_str().unwrap(), b["current"].as_bool().unwrap()))
        .collect();
    assert_eq!(names, [("feature/x", false), ("main", true)]);
    let delete = |name: &str| {
        server.with_token(
            &bob,
            reqwest::Method::DELETE,
            &format!("/api/v1/git/branch?project_id={project}&name={name}"),
        )
    };
    let (status, current) = crate::support::send(delete("main")).await;
    assert_error(status, &current, 409, "30204");
    let (status, deleted) = crate::support::send(delete("feature/x")).await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    let (_, listed) = server
        .git_get(&bob, &format!("branch?project_id={project}"))
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

/// The diff between two commits lists files and shows a unified diff (binary files named as
/// such); tree and blob read a file as an older commit has it.
async fn diffs_trees_and_blobs_read_old_versions(backend: Backend) {
    let (server, bob, project) = committed(
        backend,
        &[("src/app.py", "x = 1\n"), ("logo.bin", "\0\x01")],
    )
    .await;
    let (_, first) = server
        .git_get(&bob, &format!("history?project_id={project}"))
        .await;
    let first = first["commits"][0]["commit_id"]
        .as_str()
        .unwrap()
        .to_string();
    server
        .put_file(&bob, &project, "src/app.py", "x = 2\n")
        .await;
    server.put_file(&bob, &project, "logo.bin", "\0\x02").await;
    let second = server.commit(&bob, &project, "second").await;
    let to = second["commit_id"].as_str().unwrap();
    let (status, diff) = server
        .git_get(
            &bob,
            &format!("diff?project_id={project}&from={first}&to={to}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{diff}");
    let patch = diff["patch"].as_str().unwrap();
    assert!(patch.contains("-x = 1\n+x = 2\n"), "{patch}");
    assert!(
        patch.contains("Binary files a/logo.bin and b/logo.bin differ"),
        "{patch}"
    );
    assert_eq!(diff["files"][0]["binary"], true);
    assert_eq!(diff["files"][1]["additions"], 1);
    let (_, default) = server
        .git_get(&bob, &format!("diff?project_id={project}"))
        .await;
    assert_eq!(default["from"], first.as_str());
    let (_, root) = server
        .git_get(&bob, &format!("tree?project_id={project}&ref={first}"))
        .await;
    let kinds: Vec<(&str, &str)> = root["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["path"].as_str().unwrap(), e["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, [("logo.bin", "file"), ("src", "folder")]);
    let (_, all) = server
        .git_get(&bob, &format!("tree?project_id={project}&recursive=true"))
        .await;
    assert_eq!(all["entries"][1]["path"], "src/app.py");
    assert_eq!(all["entries"][1]["size"], 6);
    let old = server
        .download(
            &bob,
            &format!("/api/v1/git/blob?project_id={project}&ref={first}&path=src/app.py"),
        )
        .await;
    assert_eq!(old, "x = 1\n");
    let (status, missing) = server
        .git_get(&bob, &format!("blob?project_id={project}&path=nope.txt"))
        .await;
    assert_error(status, &missing, 404, "30207");
    let (status, unknown) = server
        .git_get(&bob, &format!("diff?project_id={project}&from=nope"))
        .await;
    assert_error(status, &unknown, 404, "30202");
}

/// A checkout makes the files a branch's or commit's; uncommitted changes refuse it (listed)
/// unless forced.
async fn checkout_switches_the_files_and_refuses_uncommitted_changes(backend: Backend) {
    let (server, bob, project) = committed(backend, &[("a.txt", "main"), ("gone.txt", "x")]).await;
    server
        .git_post(
            &bob,
            "branch",
            json!({ "project_id": project, "name": "feature" }),
        )
        .await;
    let checkout =
        |rev: &str, force: bool| json!({ "project_id": project, "ref": rev, "force": force });
    let (status, done) = server
        .git_post(&bob, "checkout", checkout("feature", false))
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["branch"], "feature");
    server.put_file(&bob, &project, "a.txt", "feature").await;
    server.remove_file(&bob, &project, "gone.txt").await;
    server.commit(&bob, &project, "on feature").await;
    let (_, done) = server
        .git_post(&bob, "checkout", checkout("main", false))
        .await;
    assert_eq!(
        (done["written"].as_u64(), done["deleted"].as_u64()),
        (Some(2), Some(0)),
        "{done}"
    );
    assert_eq!(server.file_text(&bob, &project, "a.txt").await, "main");
    assert_eq!(server.file_text(&bob, &project, "gone.txt").await, "x");
    server.put_file(&bob, &project, "a.txt", "edited").await;
    server.put_file(&bob, &project, "new.txt", "new").await;
    let (status, refused) = server
        .git_post(&bob, "checkout", checkout("feature", false))
        .await;
    assert_error(status, &refused, 409, "30205");
    assert_eq!(refused["details"]["count"], 2);
    assert_eq!(
        refused["details"]["changes"][0],
        json!({ "path": "a.txt", "change": "modified" })
    );
    assert_eq!(
        server.file_text(&bob, &project, "a.txt").await,
        "edited",
        "nothing changed"
    );
    let (status, forced) = server
        .git_post(&bob, "checkout", checkout("feature", true))
        .await;
    assert_eq!(status, StatusCode::OK, "{forced}");
    assert_eq!(server.file_text(&bob, &project, "a.txt").await, "feature");
    assert_eq!(server.file_paths(&bob, &project).await, ["a.txt"]);
    let (_, status) = server
        .git_get(&bob, &format!("status?project_id={project}"))
        .await;
    assert_eq!(status["branch"], "feature");
    assert_eq!(status["changes"], json!([]));
    assert_fsck(&repository(&server, &project)).await;
}

/// A folder on one branch and a file of the same name on another: each checkout leaves the
/// one it needs, with no empty folder in the way of the file.
async fn a_checkout_turns_a_folder_into_a_file_and_back(backend: Backend) {
    let (server, bob, project) = committed(backend, &[("a/b.txt", "in a folder")]).await;
    let checkout = |rev: &str| json!({ "project_id": project, "ref": rev });
    server
        .git_post(
            &bob,
            "branch",
            json!({ "project_id": project, "name": "flat" }),
        )
        .await;
    server.git_post(&bob, "checkout", checkout("flat")).await;
    server.remove_file(&bob, &project, "a/b.txt").await;
    server.put_file(&bob, &project, "a", "a file").await;
    server.commit(&bob, &project, "a is a file").await;
    for (rev, paths, path, text) in [
        ("main", ["a/b.txt"], "a/b.txt", "in a folder"),
        ("flat", ["a"], "a", "a file"),
        ("main", ["a/b.txt"], "a/b.txt", "in a folder"),
    ] {
        let (status, done) = server.git_post(&bob, "checkout", checkout(rev)).await;
        assert_eq!(status, StatusCode::OK, "checkout {rev}: {done}");
        assert_eq!(server.file_paths(&bob, &project).await, paths, "on {rev}");
        assert_eq!(server.file_text(&bob, &project, path).await, text);
    }
    let (_, status) = server
        .git_get(&bob, &format!("status?project_id={project}"))
        .await;
    assert_eq!(status["changes"], json!([]), "{status}");
}

/// `committed` with `files`, then `on_main` (path, content) committed on main and `on_feature`
/// on a branch "feature" made before it; main is current again. Returns main's and
/// feature's commits too.
async fn diverged(
    backend: Backend,
    files: &[(&str, &str)],
    on_main: (&str, &str),
    on_feature: (&str, &str),
) -> (TestServer, String, String, Value, Value) {
    let (server, bob, project) = committed(backend, files).await;
    let branch = json!({ "project_id": project, "name": "feature" });
    server.git_post(&bob, "branch", branch).await;
    server.put_file(&bob, &project, on_main.0, on_main.1).await;
    let main = server.commit(&bob, &project, "main's").await;
    let checkout = |rev: &str| json!({ "project_id": project, "ref": rev });
    server.git_post(&bob, "checkout", checkout("feature")).await;
    server
        .put_file(&bob, &project, on_feature.0, on_feature.1)
        .await;
    let feature = server.commit(&bob, &project, "feature's").await;
    let (status, back) = server.git_post(&bob, "checkout", checkout("main")).await;
    assert_eq!(status, StatusCode::OK, "{back}");
    (server, bob, project, main, feature)
}

/// Two branches that changed different files merge into a commit with both parents, and the
/// current branch's files follow.
async fn a_clean_merge_commits_and_moves_the_files(backend: Backend) {
    let files = [("a.txt", "a\n"), ("b.txt", "b\n")];
    let (server, bob, project, main, feature) = diverged(
        backend,
        &files,
        ("a.txt", "a on main\n"),
        ("b.txt", "b on feature\n"),
    )
    .await;
    let merge = json!({ "project_id": project, "source": "feature", "target": "main" });
    let (status, merged) = server.git_post(&bob, "merge", merge.clone()).await;
    assert_eq!(status, StatusCode::OK, "{merged}");
    assert_eq!(merged["result"], "merged");
    assert_eq!(
        paths(&merged["changes"]),
        [("b.txt".into(), "modified".into())]
    );
    assert_eq!(
        server.file_text(&bob, &project, "a.txt").await,
        "a on main\n"
    );
    assert_eq!(
        server.file_text(&bob, &project, "b.txt").await,
        "b on feature\n"
    );
    let (_, history) = server
        .git_get(&bob, &format!("history?project_id={project}&limit=1"))
        .await;
    let parents = &history["commits"][0]["parents"];
    assert_eq!(*parents, json!([main["commit_id"], feature["commit_id"]]));
    let (_, again) = server.git_post(&bob, "merge", merge).await;
    assert_eq!(again["result"], "up_to_date");
    let back = json!({ "project_id": project, "source": "main", "target": "feature" });
    let (_, ff) = server.git_post(&bob, "merge", back).await;
    assert_eq!(ff["result"], "fast_forward");
    assert_fsck(&repository(&server, &project)).await;
}

/// Both branches changed the same line: 409 with the file and its hunk (ours, base, theirs);
/// neither the branch nor the files change.
async fn a_conflicting_merge_changes_nothing_and_names_the_hunks(backend: Backend) {
    let files = [("a.txt", "one\ntwo\nthree\n")];
    let (server, bob, project, main, _) = diverged(
        backend,
        &files,
        ("a.txt", "one\nTWO\nthree\n"),
        ("a.txt", "one\n2\nthree\n"),
    )
    .await;
    let merge = json!({ "project_id": project, "source": "feature", "target": "main" });
    let (status, refused) = server.git_post(&bob, "merge", merge).await;
    assert_error(status, &refused, 409, "30206");
    let conflict = &refused["details"]["conflicts"][0];
    assert_eq!(conflict["path"], "a.txt");
    assert_eq!(conflict["kind"], "content");
    let hunk = &conflict["hunks"][0];
    assert_eq!(hunk["line"], 2);
    assert_eq!(
        (
            hunk["ours"].as_str(),
            hunk["base"].as_str(),
            hunk["theirs"].as_str()
        ),
        (Some("TWO\n"), Some("two\n"), Some("2\n"))
    );
    let (_, branches) = server
        .git_get(&bob, &format!("branch?project_id={project}"))
        .await;
    assert_eq!(branches[1]["commit_id"], main["commit_id"]);
    assert_eq!(
        server.file_text(&bob, &project, "a.txt").await,
        "one\nTWO\nthree\n"
    );
    let (_, status) = server
        .git_get(&bob, &format!("status?project_id={project}"))
        .await;
    assert_eq!(status["changes"], json!([]));
}

/// A revert commits the undoing of an older commit on the current branch, files included.
async fn a_revert_undoes_a_commit(backend: Backend) {
    let (server, bob, project) = committed(backend, &[("a.txt", "1\n"), ("b.txt", "1\n")]).await;
    server.put_file(&bob, &project, "a.txt", "2\n").await;
    let undone = server.commit(&bob, &project, "a two").await;
    server.put_file(&bob, &project, "b.txt", "2\n").await;
    server.commit(&bob, &project, "b two").await;
    let body = json!({ "project_id": project, "commit": undone["commit_id"] });
    let (status, revert) = server.git_post(&bob, "revert", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{revert}");
    assert!(
        revert["message"]
            .as_str()
            .unwrap()
            .starts_with("Revert \"a two\"")
    );
    assert_eq!(
        paths(&revert["changes"]),
        [("a.txt".into(), "modified".into())]
    );
    assert_eq!(server.file_text(&bob, &project, "a.txt").await, "1\n");
    assert_eq!(server.file_text(&bob, &project, "b.txt").await, "2\n");
    let (status, again) = server.git_post(&bob, "revert", body).await;
    assert_error(status, &again, 409, "30201");
    assert_fsck(&repository(&server, &project)).await;
}

/// Another user's project is not found on any versioning path.
async fn another_users_project_is_not_found(backend: Backend) {
    let (server, _bob, project) = committed(backend, &[("a.txt", "1")]).await;
    let (_, eve) = server.user("eve").await;
    for path in [
        "history",
        "branch",
        "status",
        "diff",
        "tree",
        "blob?path=a.txt",
    ] {
        let (path, extra) = path.split_once('?').unwrap_or((path, ""));
        let (status, body) = server
            .git_get(&eve, &format!("{path}?project_id={project}&{extra}"))
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("10205")),
            "{path}"
        );
    }
    let id = json!(project);
    for (path, body) in [
        ("commit", json!({ "project_id": id, "message": "m" })),
        ("branch", json!({ "project_id": id, "name": "x" })),
        ("checkout", json!({ "project_id": id, "ref": "main" })),
        (
            "merge",
            json!({ "project_id": id, "source": "main", "target": "main" }),
        ),
        ("revert", json!({ "project_id": id, "commit": "main" })),
    ] {
        let (status, refused) = server.git_post(&eve, path, body).await;
        assert_error(status, &refused, 404, "10205");
    }
    let (status, admin) = server
        .git_get(
            &server.admin_token,
            &format!("history?project_id={project}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "admins see every project: {admin}");
}

/// Commits at once on one branch land one after the other: none is lost.
async fn concurrent_commits_land_one_after_the_other(backend: Backend) {
    let (server, bob, project) = committed(backend, &[("a.txt", "0")]).await;
    let mut made = 0;
    for round in 0..4 {
        for i in 0..4 {
            server
                .put_file(&bob, &project, &format!("f{i}.txt"), &format!("{round}"))
                .await;
        }
        let commits = (0..4).map(|i| {
            let body = json!({ "project_id": project, "message": format!("{round}.{i}"), "paths": [format!("f{i}.txt")] });
            server.git_post(&bob, "commit", body)
        });
        for (status, commit) in futures::future::join_all(commits).await {
            assert_eq!(status, StatusCode::CREATED, "{commit}");
            made += 1;
        }
    }
    let (_, history) = server
        .git_get(&bob, &format!("history?project_id={project}&limit=100"))
        .await;
    let commits = history["commits"].as_array().unwrap();
    assert_eq!(commits.len(), made + 1);
    for pair in commits.windows(2) {
        assert_eq!(
            pair[0]["parents"][0], pair[1]["commit_id"],
            "one line of commits"
        );
    }
    assert_fsck(&repository(&server, &project)).await;
}

/// A project without a repository (made before versioning) gets one on first use, with a
/// first commit of its files by its owner.
async fn a_project_older_than_versioning_gets_its_files_committed_on_first_use(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, bob) = server.user("bob").await;
    let project = server.project(&bob, "old").await;
    server
        .put_file(&bob, &project, "notes/a.md", "kept\n")
        .await;
    std::fs::remove_dir_all(repository(&server, &project)).unwrap();
    let (status, history) = server
        .git_get(&bob, &format!("history?project_id={project}&changes=true"))
        .await;
    assert_eq!(status, StatusCode::OK, "{history}");
    let first = &history["commits"][0];
    assert_eq!(history["commits"].as_array().unwrap().len(), 1);
    assert_eq!(first["author"], "bob");
    assert_eq!(
        paths(&first["changes"]),
        [("notes/a.md".into(), "added".into())]
    );
    let (_, status) = server
        .git_get(&bob, &format!("status?project_id={project}"))
        .await;
    assert_eq!(
        (status["branch"].as_str(), &status["changes"]),
        (Some("main"), &json!([]))
    );
    assert_fsck(&repository(&server, &project)).await;
}
