//! Plugin runtime benchmark: prints figures, asserts nothing.
//!
//! `cargo bench -p weft --bench runtime` measures, for the built-in `fibo` node:
//! a cold compile of the component, a load of the precompiled artifact from the disk cache, and
//! instantiate + call of `fibo(10)`; medians over many runs.

use std::sync::Arc;
use std::time::{Duration, Instant};
use weft_runtime::{Grants, Limits, NoServices, Plugin, Runtime, RuntimeConfig, Value};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    tokio.block_on(bench())
}

async fn bench() -> anyhow::Result<()> {
    let (_, fibo) = weft_builtins::BUILTIN
        .iter()
        .find(|(name, _)| name.ends_with("fibo"))
        .expect("the fibo plugin is built in");
    let scratch = tempfile::tempdir()?;

    let mut compile = Vec::new();
    for i in 0..5 {
        let runtime = Runtime::new(RuntimeConfig::new(scratch.path().join(format!("cold{i}"))))
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let start = Instant::now();
        runtime.compile(fibo).await?;
        compile.push(start.elapsed());
    }

    let cache = scratch.path().join("warm");
    Runtime::new(RuntimeConfig::new(cache.clone()))
        .map_err(|e| anyhow::anyhow!("{e:?}"))?
        .compile(fibo)
        .await?;
    let mut disk = Vec::new();
    for _ in 0..50 {
        // A fresh runtime has an empty memory cache, so this is a load from disk.
        let runtime = Runtime::new(RuntimeConfig::new(cache.clone()))
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let start = Instant::now();
        runtime.compile(fibo).await?;
        disk.push(start.elapsed());
    }

    let runtime = Runtime::new(RuntimeConfig::new(cache)).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let (Plugin::Node(node), _) = runtime.load(fibo).await? else {
        anyhow::bail!("fibo is not a node");
    };
    let config = serde_json::json!({ "n": 10 });
    let services = Arc::new(NoServices {
        plugin: "bench".into(),
    });
    let (limits, grants) = (Limits::default(), Grants::default());
    let mut calls = Vec::new();
    for i in 0..2_000 {
        let start = Instant::now();
        let out = node
            .run(
                &runtime,
                &config,
                Vec::new(),
                &limits,
                &grants,
                services.clone(),
            )
            .await?;
        let elapsed = start.elapsed();
        if i == 0 {
            assert_eq!(out[0].1, Value::from_json(&55.into()));
        }
        calls.push(elapsed);
    }

    let (compile, disk, call) = (median(compile), median(disk), median(calls));
    println!("component: built-in fibo ({} KiB)", fibo.len() / 1024);
    println!(
        "cold compile        median {:>10.3} ms",
        compile.as_secs_f64() * 1e3
    );
    println!(
        "load from disk      median {:>10.3} ms  ({:.0}x faster than a cold compile)",
        disk.as_secs_f64() * 1e3,
        compile.as_secs_f64() / disk.as_secs_f64()
    );
    println!(
        "instantiate + call  median {:>10.1} us  (fibo(10), 2000 calls)",
        call.as_secs_f64() * 1e6
    );
    Ok(())
}
