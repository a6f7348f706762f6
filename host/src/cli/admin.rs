//! `weft admin`: commands that work on the store directly, e.g. creating the first admin.

use crate::auth::Auth;
use crate::config::{Config, Overrides};
use crate::store::Store;
use clap::Subcommand;
use std::path::Path;

#[derive(Debug, Subcommand)]
pub(super) enum AdminCommand {
    /// Create the first admin user and print its API token (once).
    ///
    /// Works only while no admin exists; afterwards create users and tokens through the API
    /// with an admin token.
    Bootstrap {
        /// Name of the admin user.
        #[arg(long, default_value = "admin")]
        name: String,
        /// Also set the admin's password for the web app's sign-in, read from the first line
        /// of standard input (so it shows in no process list or shell history).
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        overrides: Overrides,
    },
}

impl AdminCommand {
    pub(super) async fn run(self, config_file: Option<&Path>) -> anyhow::Result<()> {
        match self {
            AdminCommand::Bootstrap {
                name,
                password_stdin,
                overrides,
            } => {
                let password = password_stdin.then(read_password).transpose()?;
                if let Some(password) = &password {
                    crate::auth::check_password_policy(password)
                        .map_err(|e| anyhow::anyhow!("--password-stdin: {}", e.message))?;
                }
                let config = Config::load(config_file, &overrides)?;
                std::fs::create_dir_all(&config.data_dir)?;
                let store = Store::open(&config.database_url()).await?;
                let auth = Auth::new(store.clone(), &config.api);
                let result = match auth.bootstrap(&name).await {
                    Ok((user, token)) => match &password {
                        Some(password) => auth
                            .set_password(&user.id, password)
                            .await
                            .map(|()| (user, token)),
                        None => Ok((user, token)),
                    },
                    Err(e) => Err(e),
                };
                store.close().await;
                let (user, token) = result.map_err(|e| match &e.hint {
                    Some(hint) => anyhow::anyhow!("{}\nhint: {hint}", e.message),
                    None => anyhow::anyhow!("{}", e.message),
                })?;
                eprintln!(
                    "Created admin '{}' ({}). Its token is shown once; keep it safe:",
                    user.name, user.id
                );
                println!("{}", token.token);
                Ok(())
            }
        }
    }
}

/// The first line of standard input, without its line ending.
fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    anyhow::ensure!(
        !password.is_empty(),
        "--password-stdin: standard input has no password on its first line"
    );
    Ok(password)
}
