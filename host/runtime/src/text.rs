//! Text a plugin hands the host, cut to size: a plugin's error, choice or summary is copied
//! into logs, stored reasons and API answers, so a 30 MB one must not be.

/// Longest error message of a plugin kept.
pub(crate) const MAX_MESSAGE: usize = 4 * 1024;
/// Longest summary (of a plugin or a port) kept.
pub(crate) const MAX_SUMMARY: usize = 1024;

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `text` cut to `max` bytes, saying how much was cut.
pub(crate) fn cap(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let kept = truncate(&text, max);
    format!("{kept}… ({} more bytes cut)", text.len() - kept.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_on_character_boundaries_and_says_so() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(cap("short".into(), 10), "short");
        assert_eq!(cap("é".repeat(10), 5), "éé… (16 more bytes cut)");
    }
}
