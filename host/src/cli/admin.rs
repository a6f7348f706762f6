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
        #[command(flatten)]
        overrides: Overrides,
    },
}

impl AdminCommand {
    pub(super) async fn run(self, config_file: Option<&Path>) -> anyhow::Result<()> {
        match self {
            AdminCommand::Bootstrap { name, overrides } => {
                let config = Config::load(config_file, &overrides)?;
                std::fs::create_dir_all(&config.data_dir)?;
                let store = Store::open(&config.database_url()).await?;
                let result = Auth::new(store.clone(), &config.api).bootstrap(&name).await;
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
