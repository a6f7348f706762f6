//! Compiled components, cached on disk by content hash and engine compatibility, and in memory.

use crate::error::LoadError;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where a component came from on this load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheOutcome {
    /// Already loaded in this process.
    Memory,
    /// Deserialized from a precompiled artifact on disk.
    Disk,
    /// Compiled now (and written to disk).
    Compiled,
}

#[derive(Clone)]
pub(crate) struct ComponentCache {
    dir: PathBuf,
    /// Engine configuration and version: artifacts from another build are never reused.
    engine_key: String,
    loaded: Arc<Mutex<HashMap<String, Component>>>,
}

impl ComponentCache {
    pub(crate) fn new(engine: &Engine, dir: PathBuf) -> wasmtime::Result<Self> {
        // Only this user may write here: what is in this folder is loaded as native code.
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&dir)?;
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
            loaded: Arc::default(),
        })
    }

    /// The compiled component for `bytes`, from memory, disk, or a fresh compile.
    pub(crate) fn get_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
    ) -> Result<(Component, CacheOutcome), LoadError> {
        let hash = crate::content_hash(bytes);
        if let Some(component) = self.loaded.lock().expect("cache lock").get(&hash) {
            return Ok((component.clone(), CacheOutcome::Memory));
        }
        let path = self.dir.join(format!("{hash}-{}.cwasm", self.engine_key));
        let (component, outcome) = match self.read_disk(engine, &path) {
            Some(component) => (component, CacheOutcome::Disk),
            None => {
                let component = Component::new(engine, bytes)
                    .map_err(|e| LoadError::Invalid(crate::error::chain(&e)))?;
                self.write(&component, &path)?;
                (component, CacheOutcome::Compiled)
            }
        };
        self.loaded
            .lock()
            .expect("cache lock")
            .insert(hash, component.clone());
        Ok((component, outcome))
    }

    fn read_disk(&self, engine: &Engine, path: &std::path::Path) -> Option<Component> {
        if !path.is_file() {
            return None;
        }
        // SAFETY: the file was written by `write` below from `Component::serialize` of an
        // engine with the same compatibility key (it is part of the name), in a folder only
        // Weft writes. A damaged file fails to deserialize and is recompiled.
        match unsafe { Component::deserialize_file(engine, path) } {
            Ok(component) => Some(component),
            Err(err) => {
                tracing::warn!(path = %path.display(), err = %crate::error::chain(&err), "discarding unusable cached component");
                let _ = std::fs::remove_file(path);
                None
            }
        }
    }

    fn write(&self, component: &Component, path: &std::path::Path) -> Result<(), LoadError> {
        let bytes = component
            .serialize()
            .map_err(|e| LoadError::Cache(crate::error::chain(&e)))?;
        // Unique per writer: threads of one process and other processes may compile the same
        // component at once; each renames its own complete file into place.
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| LoadError::Cache(format!("{}: {e}", path.display())))
    }
}
