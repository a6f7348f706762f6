//! The workflow definition format: `{name, nodes:[{id,type,config}], edges:[{source,target}]}`
//! with optional ports, per-node retry, timeout and failure policy, and an optional layout for
//! visual editors (`ui`, see `super::layout`).

use super::layout::Layout;
use serde::{Deserialize, Deserializer, Serialize};
use std::time::Duration;
use utoipa::ToSchema;

/// A workflow as clients write it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub nodes: Vec<NodeSpec>,
    #[serde(default)]
    pub edges: Vec<EdgeSpec>,
    /// Where a visual editor drew the nodes (optional; the engine ignores it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ui: Option<Layout>,
}

/// One node: an instance of a registered node plugin.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub id: String,
    /// A node plugin: `name` (its newest version) or `name@version`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Wall-clock limit of one attempt: seconds, or a string such as `"500ms"`, `"2m"`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "duration_opt"
    )]
    #[schema(value_type = Option<String>)]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub on_error: OnError,
}

/// An edge: `target` runs after `source`. With `target_port`, the source's output
/// (`source_port`, or its only output) becomes that input of the target.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct EdgeSpec {
    pub source: String,
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_port: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<String>,
}

/// How often a failing node is tried and how long to wait in between.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles after each further failure.
    #[serde(default = "default_backoff", with = "duration")]
    #[schema(value_type = String)]
    pub backoff: Duration,
    /// The longest wait between attempts.
    #[serde(default = "default_max_backoff", with = "duration")]
    #[schema(value_type = String)]
    pub max_backoff: Duration,
    /// Wait a random 50-100% of the backoff, so retries of many runs spread out.
    #[serde(default = "yes")]
    pub jitter: bool,
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let doubled = self
            .backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let delay = doubled.min(self.max_backoff);
        if self.jitter {
            delay.mul_f64(rand::random_range(0.5..=1.0))
        } else {
            delay
        }
    }
}

/// What a node's final failure does to the rest of the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Fail the run: nothing new starts, running nodes are stopped.
    #[default]
    Fail,
    /// Skip everything downstream of the node; other branches go on.
    SkipDependents,
    /// Treat the failure as done: dependents run without the node's outputs.
    Continue,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

fn default_backoff() -> Duration {
    Duration::from_secs(1)
}

fn default_max_backoff() -> Duration {
    Duration::from_secs(60)
}

fn yes() -> bool {
    true
}

/// A duration written as seconds (a number) or with a unit (`"250ms"`, `"1m 30s"`).
fn parse_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(f64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Seconds(s) if (0.0..1e9).contains(&s) => Ok(Duration::from_secs_f64(s)),
        Raw::Seconds(s) => Err(serde::de::Error::custom(format!(
            "{s} is not a duration in seconds"
        ))),
        Raw::Text(t) => humantime::parse_duration(&t).map_err(|e| {
            serde::de::Error::custom(format!(
                "'{t}' is not a duration ({e}); write e.g. 30, \"500ms\" or \"2m\""
            ))
        }),
    }
}

fn format_duration(d: &Duration) -> String {
    humantime::format_duration(*d).to_string()
}

mod duration {
    use super::*;

    pub(super) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(d))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        parse_duration(d)
    }
}

mod duration_opt {
    use super::*;

    pub(super) fn serialize<S: serde::Serializer>(
        d: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format_duration(d)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        parse_duration(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_seed_format_and_the_extensions() {
        let def: Definition = serde_json::from_value(json!({
            "name": "w",
            "nodes": [
                {"id": "a", "type": "fibo", "config": {"n": 3}},
                {"id": "b", "type": "fibo@0.1.0", "timeout": "250ms", "on_error": "continue",
                 "retry": {"max_attempts": 3, "backoff": 0.5}}
            ],
            "edges": [{"source": "a", "target": "b"}]
        }))
        .unwrap();
        assert_eq!(def.nodes[1].timeout, Some(Duration::from_millis(250)));
        assert_eq!(def.nodes[1].on_error, OnError::Continue);
        let retry = def.nodes[1].retry.as_ref().unwrap();
        assert_eq!(retry.backoff, Duration::from_millis(500));
        assert_eq!(retry.max_backoff, Duration::from_secs(60));
        assert_eq!(def.nodes[0].on_error, OnError::Fail);
        // Round trip keeps the meaning.
        let again: Definition =
            serde_json::from_value(serde_json::to_value(&def).unwrap()).unwrap();
        assert_eq!(again.nodes[1].timeout, def.nodes[1].timeout);
    }

    #[test]
    fn rejects_unknown_fields_and_bad_durations() {
        let err = serde_json::from_value::<Definition>(
            json!({"name": "w", "nodes": [{"id": "a", "type": "x", "colour": 1}]}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
        let err = serde_json::from_value::<Definition>(
            json!({"name": "w", "nodes": [{"id": "a", "type": "x", "timeout": "soon"}]}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("not a duration"), "{err}");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            max_attempts: 10,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            jitter: false,
        };
        let waits: Vec<u128> = (1..=4).map(|a| policy.delay(a).as_millis()).collect();
        assert_eq!(waits, [100, 200, 350, 350]);
        let jittered = RetryPolicy {
            jitter: true,
            ..policy
        };
        for _ in 0..100 {
            let d = jittered.delay(2).as_millis();
            assert!((100..=200).contains(&d), "{d}");
        }
    }
}
