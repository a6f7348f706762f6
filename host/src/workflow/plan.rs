//! Validation: a [`Definition`] checked against the registered plugins becomes a [`Plan`], or
//! every fault found is reported (not just the first), each naming its node or edge.

use super::model::{Definition, EdgeSpec, NodeSpec};
use crate::registry::{Plugins, ResolvedNode};
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use utoipa::ToSchema;
use weft_runtime::{Port, port_names};

/// One thing wrong with a definition.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub(crate) struct Fault {
    /// Where: a JSON path into the definition, such as `nodes[2].config` or `edges[0]`.
    pub path: String,
    /// A stable name for the fault (`unknown-type`, `cycle`, ...).
    pub kind: &'static str,
    pub message: String,
    /// The node at fault, if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The index of the edge at fault, if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edge: Option<usize>,
    /// For `cycle`: the nodes of the cycle in order (the last one leads back to the first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycle: Option<Vec<String>>,
}

impl Fault {
    fn node(index: usize, id: &str, field: &str, kind: &'static str, message: String) -> Self {
        let path = if field.is_empty() {
            format!("nodes[{index}]")
        } else {
            format!("nodes[{index}].{field}")
        };
        Self {
            path,
            kind,
            message,
            node: Some(id.to_string()),
            edge: None,
            cycle: None,
        }
    }

    pub(super) fn workflow(path: &str, kind: &'static str, message: String) -> Self {
        Self {
            path: path.into(),
            kind,
            message,
            node: None,
            edge: None,
            cycle: None,
        }
    }

    fn edge(index: usize, kind: &'static str, message: String) -> Self {
        Self {
            path: format!("edges[{index}]"),
            kind,
            message,
            node: None,
            edge: Some(index),
            cycle: None,
        }
    }
}

/// An input fed by an edge.
#[derive(Debug, Clone)]
pub struct Wire {
    /// Index of the source node in [`Plan::nodes`].
    pub source: usize,
    pub source_port: String,
    pub target_port: String,
}

/// A node ready to run: its spec, its plugin pinned to a version, what feeds it.
#[derive(Clone)]
pub struct PlannedNode {
    pub spec: NodeSpec,
    pub plugin: ResolvedNode,
    /// Every node that must finish first (data and ordering edges), without repeats.
    pub after: Vec<usize>,
    pub wires: Vec<Wire>,
}

impl PlannedNode {
    /// `name@version` of the plugin, as pinned for a run.
    pub fn pinned_type(&self) -> String {
        format!("{}@{}", self.plugin.name, self.plugin.version)
    }

    /// Required inputs no edge feeds: a run must supply them.
    pub fn open_inputs(&self) -> impl Iterator<Item = &Port> {
        self.plugin
            .plugin
            .description()
            .inputs
            .iter()
            .filter(|p| !p.optional && !self.wires.iter().any(|w| w.target_port == p.name))
    }
}

/// A valid workflow bound to loaded plugins.
#[derive(Clone)]
pub struct Plan {
    pub definition: Definition,
    pub nodes: Vec<PlannedNode>,
}

impl Plan {
    /// The index of node `id`.
    pub fn index(&self, id: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.spec.id == id)
    }

    /// The definition with every node's type pinned to the version this plan uses, for a run
    /// (without the editor's layout: the engine has no use for it).
    pub fn pinned_definition(&self) -> Definition {
        let mut definition = self.definition.clone();
        definition.ui = None;
        for (spec, node) in definition.nodes.iter_mut().zip(&self.nodes) {
            spec.kind = node.pinned_type();
        }
        definition
    }
}

/// Limits on what one definition may hold.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    pub max_nodes: usize,
}

/// Checks `definition` and binds it to plugins, or reports every fault.
pub(super) async fn plan(
    plugins: &Plugins,
    definition: &Definition,
    bounds: Bounds,
) -> Result<Plan, Vec<Fault>> {
    let mut faults = Vec::new();
    if definition.name.trim().is_empty() || definition.name.len() > 200 {
        faults.push(Fault::workflow(
            "name",
            "invalid-name",
            "the workflow's name must be 1-200 characters".into(),
        ));
    }
    if definition.nodes.is_empty() {
        faults.push(Fault::workflow(
            "nodes",
            "empty",
            "a workflow needs at least one node".into(),
        ));
    }
    if definition.nodes.len() > bounds.max_nodes {
        faults.push(Fault::workflow(
            "nodes",
            "too-large",
            format!(
                "{} nodes; at most {} are allowed",
                definition.nodes.len(),
                bounds.max_nodes
            ),
        ));
        return Err(faults);
    }

    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut resolved: HashMap<&str, Result<Arc<Resolved>, String>> = HashMap::new();
    let mut nodes: Vec<Option<ResolvedNode>> = Vec::with_capacity(definition.nodes.len());
    for (i, spec) in definition.nodes.iter().enumerate() {
        if !valid_id(&spec.id) {
            faults.push(Fault::node(
                i,
                &spec.id,
                "id",
                "invalid-id",
                format!(
                    "node id '{}' must be 1-64 characters of letters, digits, '-' and '_'",
                    spec.id
                ),
            ));
        } else if let Some(first) = ids.insert(&spec.id, i) {
            ids.insert(&spec.id, first);
            faults.push(Fault::node(
                i,
                &spec.id,
                "id",
                "duplicate-id",
                format!("node id '{}' is already used by nodes[{first}]", spec.id),
            ));
        }
        if let Some(retry) = &spec.retry
            && !(1..=100).contains(&retry.max_attempts)
        {
            faults.push(Fault::node(
                i,
                &spec.id,
                "retry.max_attempts",
                "invalid-retry",
                "max_attempts must be between 1 and 100".into(),
            ));
        }
        if spec.timeout.is_some_and(|t| t.is_zero()) {
            faults.push(Fault::node(
                i,
                &spec.id,
                "timeout",
                "invalid-timeout",
                "the timeout must be positive".into(),
            ));
        }
        let entry = match resolved.get(spec.kind.as_str()) {
            Some(entry) => entry.clone(),
            None => {
                let entry = resolve(plugins, &spec.kind).await;
                resolved.insert(&spec.kind, entry.clone());
                entry
            }
        };
        match entry {
            Ok(r) => {
                for message in r.config_errors(&spec.config) {
                    faults.push(Fault::node(
                        i,
                        &spec.id,
                        "config",
                        "invalid-config",
                        message,
                    ));
                }
                nodes.push(Some(r.node.clone()));
            }
            Err(message) => {
                faults.push(Fault::node(i, &spec.id, "type", "unknown-type", message));
                nodes.push(None);
            }
        }
    }

    if let Some(layout) = &definition.ui {
        faults.extend(super::layout::faults(layout, &ids));
    }

    let mut graph: DiGraph<usize, ()> = DiGraph::with_capacity(nodes.len(), definition.edges.len());
    let indices: Vec<NodeIndex> = (0..nodes.len()).map(|i| graph.add_node(i)).collect();
    let mut wires: Vec<Vec<Wire>> = vec![Vec::new(); nodes.len()];
    let mut after: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    let mut seen_edges = HashSet::new();
    for (e, edge) in definition.edges.iter().enumerate() {
        let source = ids.get(edge.source.as_str()).copied();
        let target = ids.get(edge.target.as_str()).copied();
        for (end, id, found) in [
            ("source", &edge.source, source),
            ("target", &edge.target, target),
        ] {
            if found.is_none() {
                faults.push(Fault::edge(
                    e,
                    "missing-node",
                    format!("edge {end} '{id}' is not a node of this workflow"),
                ));
            }
        }
        let (Some(s), Some(t)) = (source, target) else {
            continue;
        };
        if !seen_edges.insert(edge.clone()) {
            faults.push(Fault::edge(
                e,
                "duplicate-edge",
                format!("edge {} -> {} is declared twice", edge.source, edge.target),
            ));
            continue;
        }
        if !after[t].contains(&s) {
            after[t].push(s);
            graph.add_edge(indices[s], indices[t], ());
        }
        if let (Some(src), Some(dst)) = (&nodes[s], &nodes[t]) {
            match wire(e, edge, s, src, dst, &wires[t]) {
                Ok(Some(w)) => wires[t].push(w),
                Ok(None) => {}
                Err(fault) => faults.push(*fault),
            }
        }
    }
    for cycle in cycles(&graph) {
        let names: Vec<String> = cycle
            .iter()
            .map(|&i| definition.nodes[i].id.clone())
            .collect();
        let message = format!(
            "the edges form a cycle: {} -> {}",
            names.join(" -> "),
            names[0]
        );
        faults.push(Fault {
            node: Some(names[0].clone()),
            cycle: Some(names),
            ..Fault::workflow("edges", "cycle", message)
        });
    }

    if !faults.is_empty() {
        return Err(faults);
    }
    let nodes = definition
        .nodes
        .iter()
        .zip(nodes)
        .zip(after.into_iter().zip(wires))
        .map(|((spec, plugin), (after, wires))| PlannedNode {
            spec: spec.clone(),
            plugin: plugin.expect("no faults means every plugin resolved"),
            after,
            wires,
        })
        .collect();
    Ok(Plan {
        definition: definition.clone(),
        nodes,
    })
}

/// A plugin resolved once per validation, with its compiled config schema.
struct Resolved {
    node: ResolvedNode,
    schema: Result<jsonschema::Validator, String>,
}

impl Resolved {
    fn config_errors(&self, config: &serde_json::Value) -> Vec<String> {
        match &self.schema {
            Ok(validator) => validator
                .iter_errors(config)
                .map(|e| {
                    let at = e.instance_path().to_string();
                    if at.is_empty() {
                        e.to_string()
                    } else {
                        format!("{at}: {e}")
                    }
                })
                .collect(),
            Err(e) => vec![format!("the plugin's config schema is unusable: {e}")],
        }
    }
}

async fn resolve(plugins: &Plugins, reference: &str) -> Result<Arc<Resolved>, String> {
    let node = plugins.node(reference).await.map_err(|e| {
        let mut message = e.message;
        if let Some(hint) = e.hint {
            message = format!("{message} ({hint})");
        }
        message
    })?;
    let schema = jsonschema::validator_for(&node.plugin.description().config_schema)
        .map_err(|e| e.to_string());
    Ok(Arc::new(Resolved { node, schema }))
}

/// The data wire an edge makes, if it names a target port.
fn wire(
    e: usize,
    edge: &EdgeSpec,
    source: usize,
    src: &ResolvedNode,
    dst: &ResolvedNode,
    existing: &[Wire],
) -> Result<Option<Wire>, Box<Fault>> {
    let fault = |kind, message| Box::new(Fault::edge(e, kind, message));
    let outputs = &src.plugin.description().outputs;
    let inputs = &dst.plugin.description().inputs;
    let Some(target_port) = &edge.target_port else {
        if edge.source_port.is_some() {
            return Err(fault(
                "missing-port",
                format!(
                    "source_port is set but target_port is not; name the input of '{}' it feeds ({})",
                    edge.target,
                    port_names(inputs)
                ),
            ));
        }
        return Ok(None);
    };
    let out = match &edge.source_port {
        Some(name) => outputs.iter().find(|p| &p.name == name).ok_or_else(|| {
            fault(
                "missing-port",
                format!(
                    "'{}' ({}) has no output '{name}' (outputs: {})",
                    edge.source,
                    src.name,
                    port_names(outputs)
                ),
            )
        })?,
        None if outputs.len() == 1 => &outputs[0],
        None => {
            return Err(fault(
                "ambiguous-port",
                format!(
                    "'{}' ({}) has {} outputs; set source_port to one of: {}",
                    edge.source,
                    src.name,
                    outputs.len(),
                    port_names(outputs)
                ),
            ));
        }
    };
    let input = inputs
        .iter()
        .find(|p| &p.name == target_port)
        .ok_or_else(|| {
            fault(
                "missing-port",
                format!(
                    "'{}' ({}) has no input '{target_port}' (inputs: {})",
                    edge.target,
                    dst.name,
                    port_names(inputs)
                ),
            )
        })?;
    if !out.kind.fits(input.kind) {
        return Err(fault(
            "port-kind-mismatch",
            format!(
                "output '{}' of '{}' is {:?} but input '{}' of '{}' takes {:?}",
                out.name, edge.source, out.kind, input.name, edge.target, input.kind
            )
            .to_lowercase(),
        ));
    }
    if existing.iter().any(|w| &w.target_port == target_port) {
        return Err(fault(
            "duplicate-input",
            format!(
                "input '{target_port}' of '{}' is already fed by another edge",
                edge.target
            ),
        ));
    }
    Ok(Some(Wire {
        source,
        source_port: out.name.clone(),
        target_port: target_port.clone(),
    }))
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// One cycle per strongly connected component that has one, as node weights in order.
fn cycles(graph: &DiGraph<usize, ()>) -> Vec<Vec<usize>> {
    let mut found = Vec::new();
    for component in petgraph::algo::tarjan_scc(graph) {
        let start = component[0];
        if component.len() == 1 && graph.find_edge(start, start).is_none() {
            continue;
        }
        let members: HashSet<NodeIndex> = component.iter().copied().collect();
        // Breadth-first from `start` inside the component until an edge leads back to it.
        let mut previous: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut last = None;
        'search: while let Some(at) = queue.pop_front() {
            for next in graph.neighbors(at) {
                if next == start {
                    last = Some(at);
                    break 'search;
                }
                if members.contains(&next) && !previous.contains_key(&next) {
                    previous.insert(next, at);
                    queue.push_back(next);
                }
            }
        }
        let mut path = Vec::new();
        let mut at = last.expect("a strongly connected component has a cycle through start");
        while at != start {
            path.push(graph[at]);
            at = previous[&at];
        }
        path.push(graph[start]);
        path.reverse();
        found.push(path);
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(n: usize, edges: &[(usize, usize)]) -> DiGraph<usize, ()> {
        let mut g = DiGraph::new();
        let idx: Vec<_> = (0..n).map(|i| g.add_node(i)).collect();
        for &(a, b) in edges {
            g.add_edge(idx[a], idx[b], ());
        }
        g
    }

    #[test]
    fn finds_each_cycle_in_order() {
        assert!(cycles(&graph(3, &[(0, 1), (1, 2)])).is_empty());
        let found = cycles(&graph(4, &[(0, 1), (1, 2), (2, 3), (3, 1)]));
        assert_eq!(found.len(), 1);
        let cycle = &found[0];
        assert_eq!(cycle.len(), 3);
        // Consecutive members are joined by edges, and the last leads back to the first.
        let edges = [(1, 2), (2, 3), (3, 1)];
        for (i, &a) in cycle.iter().enumerate() {
            let b = cycle[(i + 1) % cycle.len()];
            assert!(edges.contains(&(a, b)), "{cycle:?}");
        }
        assert_eq!(cycles(&graph(2, &[(1, 1)])), vec![vec![1]]);
        assert_eq!(
            cycles(&graph(4, &[(0, 1), (1, 0), (2, 3), (3, 2)])).len(),
            2
        );
    }

    #[test]
    fn ids_are_plain() {
        assert!(valid_id("fetch_1"));
        assert!(valid_id("A-b"));
        assert!(!valid_id(""));
        assert!(!valid_id("a b"));
        assert!(!valid_id(&"x".repeat(65)));
    }
}
