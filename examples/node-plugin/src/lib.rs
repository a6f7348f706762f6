//! Example node `text-stats`: statistics about a text.
//!
//! Input `in`: the text (a JSON string, or UTF-8 bytes). Config: `{"top": 3}`, how many of
//! the most frequent words to list (default 5, at most 100). Output `out`:
//! `{"chars": 11, "words": 2, "lines": 1, "top_words": [{"word": "hello", "count": 1}, ...]}`.
//!
//! Build: `cargo build --release --target wasm32-wasip2`, then load
//! `target/wasm32-wasip2/release/text_stats.wasm` into Weft (see `examples/README.md`).

use std::collections::BTreeMap;

use weft_sdk::node::prelude::*;

/// The node: a plain type; everything about it lives in the [`Node`] impl.
pub struct TextStats;

/// The node's config, parsed from JSON by the SDK (mistakes become `invalid-config` errors).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "five")]
    top: usize,
}

fn five() -> usize {
    5
}

/// A word and how often it occurs.
#[derive(Debug, PartialEq, serde::Serialize)]
pub struct WordCount {
    word: String,
    count: usize,
}

/// The statistics, as `out` carries them.
#[derive(Debug, PartialEq, serde::Serialize)]
pub struct Stats {
    chars: usize,
    words: usize,
    lines: usize,
    top_words: Vec<WordCount>,
}

/// The logic, in a plain function that unit tests call directly.
pub fn stats(text: &str, top: usize) -> Stats {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut words = 0;
    for word in text
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
    {
        words += 1;
        *counts.entry(word.to_lowercase()).or_default() += 1;
    }
    let mut ranked: Vec<WordCount> = counts
        .into_iter()
        .map(|(word, count)| WordCount { word, count })
        .collect();
    // Most frequent first; ties in alphabetical order (the map was sorted, the sort is stable).
    ranked.sort_by_key(|w| std::cmp::Reverse(w.count));
    ranked.truncate(top);
    Stats {
        chars: text.chars().count(),
        words,
        lines: text.lines().count(),
        top_words: ranked,
    }
}

impl Node for TextStats {
    type Config = Config;

    fn describe() -> Description {
        Description::new(
            "text-stats",
            "0.1.0",
            "Counts characters, words and lines, and lists the most frequent words",
        )
        .input(Port::new("in", Kind::Any).summary("the text: a string, or UTF-8 bytes"))
        .output(Port::new("out", Kind::Object).summary("{chars, words, lines, top_words}"))
        .config_schema(json!({
            "type": "object",
            "properties": {
                "top": {
                    "type": "integer", "minimum": 0, "maximum": 100, "default": 5,
                    "description": "how many of the most frequent words to list"
                }
            },
            "additionalProperties": false
        }))
    }

    fn run(config: Config, inputs: Inputs) -> Result<Outputs, NodeError> {
        if config.top > 100 {
            return Err(NodeError::invalid_config("`top` must be at most 100"));
        }
        let bytes = inputs.get_bytes("in")?;
        let text = String::from_utf8(bytes)
            .map_err(|_| NodeError::invalid_input("input `in` is not UTF-8 text"))?;
        weft_sdk::debug!("text-stats over {} bytes", text.len());
        Outputs::new().serialize("out", &stats(&text, config.top))
    }
}

weft_sdk::export_node!(TextStats);

#[cfg(test)]
mod tests {
    use super::*;
    use weft_sdk::node::call;

    #[test]
    fn counts_and_ranks_words() {
        let s = stats("The cat saw the dog.\nThe end", 2);
        assert_eq!((s.chars, s.words, s.lines), (28, 7, 2));
        assert_eq!(
            s.top_words,
            [
                WordCount {
                    word: "the".into(),
                    count: 3
                },
                WordCount {
                    word: "cat".into(),
                    count: 1
                },
            ]
        );
    }

    #[test]
    fn runs_like_the_host_runs_it() {
        let out = call::<TextStats>(r#"{"top": 1}"#, Inputs::new().json("in", "a b a")).unwrap();
        assert_eq!(
            out.get_json("out"),
            Some(json!({"chars": 5, "words": 3, "lines": 1,
                        "top_words": [{"word": "a", "count": 2}]}))
        );
        let err = call::<TextStats>(r#"{"top": "x"}"#, Inputs::new().json("in", "")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidConfig);
        let err = call::<TextStats>("{}", Inputs::new().json("in", 5)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
    }
}
