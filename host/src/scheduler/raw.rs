//! JSON the scheduler passes through unread (task inputs, metadata, results), kept as its text:
//! a task's input is checked once when it arrives and then forwarded, stored and shown without
//! being parsed into a tree, copied or printed again.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use std::sync::{Arc, LazyLock};

/// Valid JSON text, cheap to clone.
#[derive(Debug, Clone)]
pub struct RawJson(Arc<RawValue>);

impl RawJson {
    /// Checks `text` is JSON.
    pub fn from_text(text: String) -> serde_json::Result<Self> {
        RawValue::from_string(text).map(|raw| Self(Arc::from(raw)))
    }

    /// `{}` (one shared copy).
    pub fn empty_object() -> Self {
        static EMPTY: LazyLock<RawJson> =
            LazyLock::new(|| RawJson::from_text("{}".to_string()).expect("{} is JSON"));
        EMPTY.clone()
    }

    /// The JSON text (no surrounding whitespace).
    pub fn get(&self) -> &str {
        self.0.get()
    }

    pub fn is_object(&self) -> bool {
        self.get().starts_with('{')
    }
}

impl Serialize for RawJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RawJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(deserializer).map(|raw| Self(Arc::from(raw)))
    }
}

/// Deserializes a [`RawJson`] that must be an object.
pub(crate) fn object<'de, D: Deserializer<'de>>(deserializer: D) -> Result<RawJson, D::Error> {
    let raw = RawJson::deserialize(deserializer)?;
    if raw.is_object() {
        Ok(raw)
    } else {
        Err(D::Error::custom(format!(
            "invalid type: expected a JSON object, found {}",
            raw.get().chars().take(40).collect::<String>()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Body {
        #[serde(deserialize_with = "object")]
        input: RawJson,
    }

    #[test]
    fn keeps_the_text_and_refuses_what_is_not_an_object() {
        let body: Body = serde_json::from_str(r#"{"input":  {"a": [1, 2.50]} }"#).unwrap();
        assert_eq!(body.input.get(), r#"{"a": [1, 2.50]}"#);
        assert_eq!(
            serde_json::to_string(&body.input).unwrap(),
            r#"{"a": [1, 2.50]}"#
        );
        assert!(serde_json::from_str::<Body>(r#"{"input": [1]}"#).is_err());
        assert!(RawJson::from_text("{".into()).is_err());
        assert!(RawJson::empty_object().is_object());
    }
}
