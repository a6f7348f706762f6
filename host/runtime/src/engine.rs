//! The process-wide engine: pooling allocator, epoch ticks for CPU limits, the two linkers and
//! the component cache.

use crate::bindings::node::weft::plugin::{artifacts, host, jobs, secrets};
use crate::cache::{CacheOutcome, ComponentCache};
use crate::error::LoadError;
use crate::state::PluginState;
use crate::{NodePlugin, Plugin, StrategyPlugin};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the engine's epoch advances; CPU limits are counted in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Runtime settings fixed at start.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Folder for compiled components.
    pub cache_dir: PathBuf,
    /// Instances that may exist at once (pool size).
    pub max_instances: u32,
    /// The most memory any plugin may be given, in bytes (per-plugin limits stay below).
    pub max_memory_bytes: u64,
}

impl RuntimeConfig {
    /// Defaults with the cache in `cache_dir`.
    pub fn new(cache_dir: PathBuf) -> Self {
        Self {
            cache_dir,
            max_instances: 256,
            max_memory_bytes: 1 << 30,
        }
    }
}

/// One per process: compiles, caches and instantiates plugins.
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) node_linker: Linker<PluginState>,
    pub(crate) strategy_linker: Linker<PluginState>,
    cache: ComponentCache,
    config: RuntimeConfig,
    ticking: Arc<AtomicBool>,
}

impl Runtime {
    /// Builds the engine and linkers and starts the epoch ticker.
    pub fn new(config: RuntimeConfig) -> wasmtime::Result<Arc<Self>> {
        let mut pool = PoolingAllocationConfig::new();
        let n = config.max_instances;
        pool.total_component_instances(n)
            .total_core_instances(n * 8)
            .total_memories(n * 2)
            .total_tables(n * 8)
            .total_stacks(n)
            .max_core_instances_per_component(32)
            .max_memories_per_component(4)
            .max_tables_per_component(16)
            .max_memory_size(usize::try_from(config.max_memory_bytes)?);
        let mut wasm = wasmtime::Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm)?;

        let mut node_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut node_linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut node_linker)?;
        host::add_to_linker::<_, HasSelf<PluginState>>(&mut node_linker, |s| s)?;
        secrets::add_to_linker::<_, HasSelf<PluginState>>(&mut node_linker, |s| s)?;
        artifacts::add_to_linker::<_, HasSelf<PluginState>>(&mut node_linker, |s| s)?;
        jobs::add_to_linker::<_, HasSelf<PluginState>>(&mut node_linker, |s| s)?;

        let mut strategy_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut strategy_linker)?;
        host::add_to_linker::<_, HasSelf<PluginState>>(&mut strategy_linker, |s| s)?;

        let ticking = Arc::new(AtomicBool::new(true));
        let (ticker_engine, flag) = (engine.clone(), ticking.clone());
        std::thread::Builder::new()
            .name("weft-epoch".into())
            .spawn(move || {
                while flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticker_engine.increment_epoch();
                }
            })?;

        let cache = ComponentCache::new(&engine, config.cache_dir.clone())?;
        Ok(Arc::new(Self {
            engine,
            node_linker,
            strategy_linker,
            cache,
            config,
            ticking,
        }))
    }

    /// The runtime's settings.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Compiles (or loads from the cache) a component, checks its world and describes it.
    pub async fn load(self: &Arc<Self>, bytes: &[u8]) -> Result<(Plugin, CacheOutcome), LoadError> {
        self.load_described(bytes, None).await
    }

    /// [`Runtime::load`], taking the description stored when the component was added instead
    /// of calling its `describe` again: a slow `describe` must not delay every start. A
    /// description that does not fit the component's world is asked for again.
    pub async fn load_described(
        self: &Arc<Self>,
        bytes: &[u8],
        stored: Option<&serde_json::Value>,
    ) -> Result<(Plugin, CacheOutcome), LoadError> {
        let (component, outcome) = self.compile(bytes).await?;
        // Read in place: `&Value` is a deserializer, so the stored description is not copied.
        use serde::Deserialize as _;
        let plugin = match world_of(&self.engine, &component)? {
            World::Node => {
                let known = stored.and_then(|d| crate::NodeDescription::deserialize(d).ok());
                Plugin::Node(NodePlugin::new(self, &component, known).await?)
            }
            World::Strategy => {
                let known = stored.and_then(|d| crate::StrategyDescription::deserialize(d).ok());
                Plugin::Strategy(StrategyPlugin::new(self, &component, known).await?)
            }
        };
        Ok((plugin, outcome))
    }

    /// Compiles or loads from the cache, without checking the world (benchmarks use this).
    pub async fn compile(&self, bytes: &[u8]) -> Result<(Component, CacheOutcome), LoadError> {
        if !wasmparser::Parser::is_component(bytes) {
            return Err(if wasmparser::Parser::is_core_wasm(bytes) {
                LoadError::CoreModule
            } else {
                LoadError::NotWasm
            });
        }
        let (engine, cache, bytes) = (self.engine.clone(), self.cache.clone(), bytes.to_vec());
        tokio::task::spawn_blocking(move || cache.get_or_compile(&engine, &bytes))
            .await
            .map_err(|e| LoadError::Invalid(format!("compilation task failed: {e}")))?
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticking.store(false, Ordering::Relaxed);
    }
}

enum World {
    Node,
    Strategy,
}

fn world_of(engine: &Engine, component: &Component) -> Result<World, LoadError> {
    let exports: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let has = |iface: &str| exports.iter().any(|e| e.split('@').next() == Some(iface));
    match (has("weft:plugin/node-api"), has("weft:plugin/strategy-api")) {
        (true, false) => Ok(World::Node),
        (false, true) => Ok(World::Strategy),
        (true, true) => Err(LoadError::WrongWorld {
            world: "node or strategy",
            reason: "the component exports both weft:plugin/node-api and weft:plugin/strategy-api; build one plugin per world".into(),
        }),
        (false, false) => Err(LoadError::WrongWorld {
            world: "node or strategy",
            reason: format!(
                "missing export weft:plugin/node-api@0.1.0 (node world) or weft:plugin/strategy-api@0.1.0 (strategy world); the component exports [{}]",
                exports.join(", ")
            ),
        }),
    }
}
