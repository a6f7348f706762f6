//! An execution's outputs, kept within a byte budget (`[notebooks] max_output_bytes`): stream
//! outputs of one name that follow each other are merged (as Jupyter saves them), and past the
//! budget the oldest output goes first (a long stream loses its beginning), so what is kept is
//! the tail. A note at the top says how much was dropped.
//!
//! Not here: how outputs are announced live ([`super::kernel`] bounds that too).

use serde_json::{Value, json};

/// Outputs within a budget.
#[derive(Debug)]
pub(super) struct Outputs {
    /// Each output with its size in bytes (a stream's text, else its JSON).
    items: Vec<(Value, usize)>,
    bytes: usize,
    max: usize,
    /// Bytes dropped to stay within the budget.
    dropped: u64,
}

/// What an output weighs: a stream's text, anything else its JSON.
pub(super) fn size(output: &Value) -> usize {
    match output["text"].as_str() {
        Some(text) if output["output_type"] == "stream" => text.len(),
        _ => output.to_string().len(),
    }
}

impl Outputs {
    pub(super) fn new(max: usize) -> Self {
        Self {
            items: Vec::new(),
            bytes: 0,
            max,
            dropped: 0,
        }
    }

    /// Adds an output after the others.
    pub(super) fn push(&mut self, output: Value) {
        let weight = size(&output);
        let merged = match (self.items.last_mut(), output["text"].as_str()) {
            (Some((last, last_size)), Some(text))
                if output["output_type"] == "stream"
                    && last["output_type"] == "stream"
                    && last["name"] == output["name"] =>
            {
                match &mut last["text"] {
                    Value::String(kept) => {
                        kept.push_str(text);
                        *last_size += weight;
                        true
                    }
                    _ => false,
                }
            }
            _ => false,
        };
        if !merged {
            self.items.push((output, weight));
        }
        self.bytes += weight;
        self.trim();
    }

    /// Drops the oldest bytes until the rest fits.
    fn trim(&mut self) {
        while self.bytes > self.max && !self.items.is_empty() {
            let excess = self.bytes - self.max;
            let (first, first_size) = &mut self.items[0];
            if *first_size > excess
                && first["output_type"] == "stream"
                && let Value::String(text) = &mut first["text"]
            {
                let mut cut = excess;
                while !text.is_char_boundary(cut) {
                    cut += 1;
                }
                text.drain(..cut);
                *first_size -= cut;
                self.bytes -= cut;
                self.dropped += cut as u64;
                continue;
            }
            let (_, gone) = self.items.remove(0);
            self.bytes -= gone;
            self.dropped += gone as u64;
        }
    }

    /// Clears them all (a `clear_output`): what was cleared was not truncated.
    pub(super) fn clear(&mut self) {
        self.items.clear();
        self.bytes = 0;
        self.dropped = 0;
    }

    /// Whether some were dropped.
    pub(super) fn truncated(&self) -> bool {
        self.dropped > 0
    }

    /// The outputs kept, after a note on what was dropped when something was.
    pub(super) fn take(&mut self) -> Vec<Value> {
        let mut out = Vec::with_capacity(self.items.len() + 1);
        if self.dropped > 0 {
            out.push(note(self.dropped, self.max));
        }
        out.extend(self.items.drain(..).map(|(output, _)| output));
        self.bytes = 0;
        out
    }
}

/// The nbformat output that says outputs were dropped (a `display_data`, so that it merges with
/// no stream and validates).
pub(super) fn note(dropped: u64, max: usize) -> Value {
    json!({
        "output_type": "display_data",
        "data": {"text/plain": format!(
            "[output truncated: the first {dropped} bytes were dropped; an execution keeps its last {max} bytes of output]"
        )},
        "metadata": {"weft": {"truncated": true, "dropped_bytes": dropped}},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(name: &str, text: &str) -> Value {
        json!({"output_type": "stream", "name": name, "text": text})
    }

    #[test]
    fn consecutive_streams_of_one_name_merge() {
        let mut outputs = Outputs::new(1000);
        outputs.push(stream("stdout", "a\n"));
        outputs.push(stream("stdout", "b\n"));
        outputs.push(stream("stderr", "c\n"));
        outputs.push(stream("stdout", "d\n"));
        let kept = outputs.take();
        let texts: Vec<&str> = kept.iter().map(|o| o["text"].as_str().unwrap()).collect();
        assert_eq!(texts, ["a\nb\n", "c\n", "d\n"]);
        assert!(!outputs.truncated());
    }

    #[test]
    fn past_the_budget_the_tail_is_kept_and_a_note_says_so() {
        let mut outputs = Outputs::new(10);
        outputs.push(
            json!({"output_type": "display_data", "data": {"text/plain": "gone"}, "metadata": {}}),
        );
        for i in 0..5 {
            outputs.push(stream("stdout", &format!("{i}éxx\n")));
        }
        assert!(outputs.truncated());
        let kept = outputs.take();
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert_eq!(kept[0]["metadata"]["weft"]["truncated"], true);
        let text = kept[1]["text"].as_str().unwrap();
        assert!(text.len() <= 10 && text.ends_with("4éxx\n"), "{text:?}");
        assert!(
            kept[0]["data"]["text/plain"]
                .as_str()
                .unwrap()
                .contains("truncated")
        );
    }

    #[test]
    fn an_output_over_the_budget_alone_is_dropped_and_clear_forgets_it() {
        let mut outputs = Outputs::new(16);
        outputs.push(json!({"output_type": "display_data", "data": {"image/png": "A".repeat(100)}, "metadata": {}}));
        assert!(outputs.truncated());
        outputs.clear();
        outputs.push(stream("stdout", "ok"));
        assert!(!outputs.truncated());
        assert_eq!(outputs.take(), vec![stream("stdout", "ok")]);
    }
}
