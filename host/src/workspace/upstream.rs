//! Talking to servers a user controls (their Jupyter or code-server, reached at their
//! container's address): no redirect is followed, since a user's server answering
//! `302 Location: http://127.0.0.1:...` must not make Weft fetch host-local addresses; bodies
//! are read with a bound; and what such a server says reaches a caller only as a short, cleaned
//! excerpt.

use bytes::{Bytes, BytesMut};
use std::time::Duration;

/// Characters of an upstream's words shown to a caller, at most.
pub const EXCERPT_CHARS: usize = 200;

/// An HTTP client for users' servers: redirects are answers, not instructions.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client")
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// Longer than the limit (in bytes); nothing past it was read.
    TooLarge(u64),
    /// The connection failed or the body could not be read.
    Failed(reqwest::Error),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge(limit) => write!(f, "its answer is longer than {limit} bytes"),
            BodyError::Failed(e) => write!(f, "its answer broke off: {e}"),
        }
    }
}

/// The body of `response`, read while it is at most `limit` bytes.
pub async fn read_limited(mut response: reqwest::Response, limit: u64) -> Result<Bytes, BodyError> {
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge(limit));
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Failed)? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(BodyError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The first `limit` bytes of `response`'s body (less if it is shorter or breaks off): for
/// error answers, of which only an excerpt is shown.
pub async fn read_prefix(mut response: reqwest::Response, limit: usize) -> Bytes {
    let mut body = BytesMut::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk[..chunk.len().min(limit - body.len())])
            }
            _ => break,
        }
    }
    body.freeze()
}

/// At most [`EXCERPT_CHARS`] characters of `text`, control characters and runs of white space
/// made single spaces, with `...` when cut.
pub fn excerpt(text: &str) -> String {
    let mut out = String::new();
    let mut chars = 0;
    let mut space = false;
    for c in text.chars() {
        if c.is_control() || c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if chars == EXCERPT_CHARS {
            out.push_str("...");
            return out;
        }
        if std::mem::take(&mut space) {
            out.push(' ');
            chars += 1;
        }
        out.push(c);
        chars += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_and_clean() {
        assert_eq!(excerpt("  a\r\n\x1b[31mb\x00  c \n"), "a [31mb c");
        let long = excerpt(&"x".repeat(10_000));
        assert_eq!(long.len(), EXCERPT_CHARS + 3);
        assert!(long.ends_with("..."));
        assert_eq!(excerpt(""), "");
    }
}
