//! Workspace images built here, with no registry: a debootstrap'd Debian with Jupyter Server
//! from PyPI, or with code-server from the npm registry. Each recipe is a shell script run as
//! root (debootstrap and chroot need it); its `##STEP` lines report progress.

use std::path::Path;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A kind of workspace image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ImageKind {
    Jupyter,
    #[value(name = "code-server")]
    CodeServer,
}

const COMMON: &str = include_str!("images/common.sh");

impl ImageKind {
    /// The tag built by default, which the session configuration names by default.
    pub(crate) fn default_tag(self) -> &'static str {
        match self {
            ImageKind::Jupyter => "weft/jupyter:2",
            ImageKind::CodeServer => "weft/code-server:2",
        }
    }

    fn recipe(self) -> &'static str {
        match self {
            ImageKind::Jupyter => include_str!("images/jupyter.sh"),
            ImageKind::CodeServer => include_str!("images/code-server.sh"),
        }
    }

    /// How many `##STEP` lines the recipe prints.
    pub(crate) fn steps(self) -> u64 {
        (COMMON.matches("    step \"").count() + self.recipe().matches("\nstep \"").count()) as u64
    }
}

/// What a running build reports.
pub(crate) enum Progress<'a> {
    /// A new step began.
    Step(&'a str),
    /// A line of the build's output (kept in the log file).
    Output,
}

/// Builds `kind` as `tag`, working in `work_dir` (emptied first; it needs ~1 GB), logging every
/// line of output to `log`. Errors carry the last lines of output.
pub(crate) async fn build(
    kind: ImageKind,
    tag: &str,
    work_dir: &Path,
    log: &Path,
    mut progress: impl FnMut(Progress<'_>),
) -> anyhow::Result<()> {
    for tool in ["debootstrap", "chroot", "docker"] {
        if which(tool).is_none() {
            anyhow::bail!(
                "`{tool}` is not on PATH (Debian: apt-get install debootstrap docker.io, and run as \
                 root with /usr/sbin on PATH); image builds need it"
            );
        }
    }
    let root = work_dir.join("root");
    if root.exists() {
        // A mounted /proc left by an interrupted build must go before the folder can.
        let _ = tokio::process::Command::new("umount")
            .arg(root.join("proc"))
            .status()
            .await;
        tokio::fs::remove_dir_all(&root).await?;
    }
    tokio::fs::create_dir_all(&root).await?;
    let script = format!("{COMMON}\n{}", kind.recipe());
    let mut child = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("WEFT_IMAGE", tag)
        .env("WEFT_ROOT", &root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut log_file = tokio::fs::File::create(log).await?;
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    for output in [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        child
            .stderr
            .take()
            .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = lines_tx.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(output).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let _ = tx.send(line);
            }
        });
    }
    drop(lines_tx);
    let mut tail = std::collections::VecDeque::with_capacity(30);
    while let Some(line) = lines.recv().await {
        log_file.write_all(line.as_bytes()).await?;
        log_file.write_all(b"\n").await?;
        match line.strip_prefix("##STEP ") {
            Some(step) => progress(Progress::Step(step)),
            None => progress(Progress::Output),
        }
        if tail.len() == 30 {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    let status = child.wait().await?;
    let _ = tokio::fs::remove_dir_all(&root).await;
    if !status.success() {
        anyhow::bail!(
            "building {tag} failed ({status}); the last lines of {}:\n{}",
            log.display(),
            Vec::from(tail).join("\n")
        );
    }
    Ok(())
}

/// Where `tool` is on PATH. Only there: the recipe runs each tool by its name, so one found
/// elsewhere (root's /usr/sbin when PATH lacks it) would pass this check and fail the build.
fn which(tool: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(tool))
            .find(|p| p.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_counts_match_the_recipes() {
        // debootstrap + pack, plus each recipe's own steps.
        assert_eq!(ImageKind::Jupyter.steps(), 4);
        assert_eq!(ImageKind::CodeServer.steps(), 6);
    }
}
