//! The layout part of a definition (`"ui": {"positions": {...}}`): where a visual editor drew
//! each node, saved with the workflow so reopening a version shows the nodes where they were.
//! The engine never reads it (runs keep their definition without it); validation checks that it
//! names only the definition's nodes and that its coordinates are in a sane range, so its size
//! is bounded by the number of nodes.

use super::plan::Fault;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use utoipa::ToSchema;

/// The largest coordinate, in canvas units either way from the origin.
pub(super) const MAX_COORDINATE: f64 = 10_000_000.0;

/// What a visual editor keeps with a definition; ignored by the engine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// Node id -> the top-left corner of the node on the canvas. Only the definition's nodes,
    /// each coordinate within ±10,000,000.
    #[serde(default)]
    pub positions: BTreeMap<String, Position>,
}

/// A point on the canvas.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Position {
    /// Rightwards.
    pub x: f64,
    /// Downwards.
    pub y: f64,
}

/// What is wrong with `layout`, given the definition's node ids.
pub(super) fn faults(layout: &Layout, ids: &HashMap<&str, usize>) -> Vec<Fault> {
    let mut faults = Vec::new();
    for (id, at) in &layout.positions {
        let path = format!("ui.positions.{id}");
        if !ids.contains_key(id.as_str()) {
            faults.push(Fault::workflow(
                &path,
                "unknown-node",
                format!("the layout places '{id}', which is not a node of this workflow"),
            ));
        } else if ![at.x, at.y]
            .iter()
            .all(|v| v.is_finite() && v.abs() <= MAX_COORDINATE)
        {
            faults.push(Fault::workflow(
                &path,
                "invalid-position",
                format!("the position of '{id}' must be within ±{MAX_COORDINATE} either way"),
            ));
        }
    }
    faults
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(positions: &[(&str, f64, f64)]) -> Layout {
        Layout {
            positions: positions
                .iter()
                .map(|&(id, x, y)| (id.to_string(), Position { x, y }))
                .collect(),
        }
    }

    #[test]
    fn places_only_the_definitions_nodes_within_range() {
        let ids = HashMap::from([("a", 0), ("b", 1)]);
        assert_eq!(
            faults(&layout(&[("a", 10.0, -20.5), ("b", 0.0, 0.0)]), &ids),
            []
        );
        let found = faults(
            &layout(&[("a", 1e8, 0.0), ("ghost", 0.0, 0.0), ("b", 0.0, f64::NAN)]),
            &ids,
        );
        let kinds: Vec<(&str, &str)> = found.iter().map(|f| (f.path.as_str(), f.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("ui.positions.a", "invalid-position"),
                ("ui.positions.b", "invalid-position"),
                ("ui.positions.ghost", "unknown-node"),
            ]
        );
    }

    #[test]
    fn refuses_unknown_fields() {
        let err = serde_json::from_str::<Layout>(r#"{"positions": {}, "zoom": 2}"#).unwrap_err();
        assert!(err.to_string().contains("zoom"), "{err}");
        let err =
            serde_json::from_str::<Layout>(r#"{"positions": {"a": {"x": 1, "y": 2, "z": 3}}}"#)
                .unwrap_err();
        assert!(err.to_string().contains('z'), "{err}");
    }
}
