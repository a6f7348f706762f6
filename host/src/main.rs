//! The `weft` binary: parses the command line and runs the command ([`weft::cli`]).

use clap::Parser as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = weft::cli::Cli::parse();
    // A simulated task instance is one small process among many on a machine (like a
    // single-threaded Python instance): one thread, no cross-thread wake-ups.
    let runtime = if cli.single_threaded() {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    }
    .enable_all()
    .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(cli.run()),
        Err(err) => Err(anyhow::anyhow!("cannot start the async runtime: {err}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
