//! `weft image build`: workspace images made on this host, with no registry.

use crate::workspace::images::{self, ImageKind, Progress};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub(super) struct ImageArgs {
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// Build a workspace image on the local Docker engine (as root: debootstrap and chroot).
    Build {
        /// jupyter (Jupyter Server + ipykernel from PyPI) or code-server (from npm).
        kind: ImageKind,
        /// The image's tag [default: weft/jupyter:2 or weft/code-server:2].
        #[arg(long)]
        tag: Option<String>,
        /// Build even if the tag already exists.
        #[arg(long)]
        force: bool,
        /// Working folder (needs ~1 GB) [default: a folder under the system's temp folder].
        #[arg(long, value_name = "DIR")]
        work_dir: Option<PathBuf>,
    },
}

impl ImageArgs {
    pub(super) async fn run(self) -> anyhow::Result<()> {
        let ImageCommand::Build {
            kind,
            tag,
            force,
            work_dir,
        } = self.command;
        let tag = tag.unwrap_or_else(|| kind.default_tag().to_string());
        if !force && image_exists(&tag).await {
            println!("{tag} is already on this host's engine (--force to build it again)");
            return Ok(());
        }
        let work_dir = work_dir.unwrap_or_else(|| {
            std::env::temp_dir().join(format!("weft-image-{}", tag.replace(['/', ':'], "-")))
        });
        tokio::fs::create_dir_all(&work_dir).await?;
        let log = work_dir.join("build.log");
        let steps = kind.steps();
        let bar = ProgressBar::new(steps).with_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:20} {pos}/{len} {msg}",
            )
            .expect("valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        // Without a terminal the bar draws nothing (a log, CI): each step is a line instead.
        let lines = bar.is_hidden();
        let began = Instant::now();
        let mut step = 0;
        let result = images::build(kind, &tag, &work_dir, &log, |progress| match progress {
            Progress::Step(text) => {
                step += 1;
                if lines {
                    eprintln!("[{step}/{steps}] {text}");
                }
                bar.set_position(step - 1);
                bar.set_message(text.to_string());
            }
            Progress::Output => bar.tick(),
        })
        .await;
        match result {
            Ok(()) => {
                let built = format!("built {tag} in {:.0} s", began.elapsed().as_secs_f64());
                if lines {
                    println!("{built}");
                }
                bar.finish_with_message(built);
                Ok(())
            }
            Err(e) => {
                bar.abandon_with_message("failed");
                Err(e)
            }
        }
    }
}

async fn image_exists(tag: &str) -> bool {
    tokio::process::Command::new("docker")
        .args(["image", "inspect", tag])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}
