//! What a job prints and leaves behind: its lines for the node that reads them (a bounded
//! buffer), the tail kept for its end, and the files collected from its container.

use crate::error::{Error, Result};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use std::collections::VecDeque;
use std::io::Read as _;

/// Lines kept for the node between two reads; more are dropped for it.
const READER_LINES: usize = 1_000;
/// Bytes of the last lines kept for the job's end.
const TAIL_BYTES: usize = 64 << 10;

/// A job's output so far.
#[derive(Default)]
pub(super) struct Lines {
    unread: VecDeque<String>,
    dropped: u64,
    tail: VecDeque<String>,
    tail_bytes: usize,
    /// Half a line per stream (stdout, stderr), until its newline comes.
    partial: [String; 2],
    pub ended: bool,
}

impl Lines {
    /// Adds a chunk of `stream` (0: stdout, 1: stderr); returns the complete lines in it.
    pub(super) fn push(&mut self, stream: usize, text: &str) -> Vec<String> {
        let pending = &mut self.partial[stream];
        pending.push_str(text);
        let mut lines = Vec::new();
        while let Some(at) = pending.find('\n') {
            let line: String = pending.drain(..=at).collect();
            lines.push(line.trim_end_matches(['\n', '\r']).to_string());
        }
        for line in &lines {
            self.keep(line.clone());
        }
        lines
    }

    /// The output ended: unfinished lines count as lines.
    pub(super) fn finish(&mut self) -> Vec<String> {
        let rest: Vec<String> = self
            .partial
            .iter_mut()
            .map(std::mem::take)
            .filter(|p| !p.is_empty())
            .collect();
        for line in &rest {
            self.keep(line.clone());
        }
        self.ended = true;
        rest
    }

    fn keep(&mut self, line: String) {
        if self.unread.len() >= READER_LINES {
            self.unread.pop_front();
            self.dropped += 1;
        }
        self.unread.push_back(line.clone());
        self.tail_bytes += line.len() + 1;
        self.tail.push_back(line);
        while self.tail_bytes > TAIL_BYTES && self.tail.len() > 1 {
            let gone = self.tail.pop_front().expect("not empty");
            self.tail_bytes -= gone.len() + 1;
        }
    }

    /// The lines not read yet (a note first when some were dropped).
    pub(super) fn take_unread(&mut self) -> Vec<String> {
        let mut lines = Vec::with_capacity(self.unread.len() + 1);
        if self.dropped > 0 {
            lines.push(format!(
                "[weft: {} lines were dropped for this reader]",
                std::mem::take(&mut self.dropped)
            ));
        }
        lines.extend(self.unread.drain(..));
        lines
    }

    /// The last lines, at most 64 KiB.
    pub(super) fn tail(&self) -> String {
        let mut text = self.tail.iter().fold(String::new(), |mut text, line| {
            text.push_str(line);
            text.push('\n');
            text
        });
        if text.len() > TAIL_BYTES {
            let mut start = text.len() - TAIL_BYTES;
            while !text.is_char_boundary(start) {
                start += 1;
            }
            text.drain(..start);
        }
        text
    }
}

/// The one file in a tar archive as the engine hands it out, read up to `max` bytes; `None`
/// when the archive holds no regular file (a folder was named).
pub(super) async fn single_file(
    mut archive: BoxStream<'static, Result<Bytes>>,
    path: &str,
    max: u64,
) -> Result<Option<Vec<u8>>> {
    let mut tar = Vec::new();
    while let Some(chunk) = archive.next().await {
        tar.extend_from_slice(&chunk?);
        // The archive is the file plus headers and padding.
        if tar.len() as u64 > max + 64 * 1024 {
            return Err(too_large(path, max));
        }
    }
    let mut archive = tar::Archive::new(tar.as_slice());
    let unreadable = |e: std::io::Error| Error::internal(format!("output '{path}': {e}"));
    for entry in archive.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        if entry.header().entry_type().is_file() {
            if entry.size() > max {
                return Err(too_large(path, max));
            }
            let mut data = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut data).map_err(unreadable)?;
            return Ok(Some(data));
        }
    }
    Ok(None)
}

fn too_large(path: &str, max: u64) -> Error {
    Error::invalid_field(
        "outputs",
        format!("output '{path}' is larger than the {max} bytes a job output may be"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_per_stream_and_the_reader_gets_each_once() {
        let mut lines = Lines::default();
        assert!(lines.push(0, "hel").is_empty());
        assert_eq!(lines.push(1, "oops\n"), ["oops"]);
        assert_eq!(lines.push(0, "lo\nworld\n"), ["hello", "world"]);
        assert_eq!(lines.finish(), Vec::<String>::new());
        assert_eq!(lines.take_unread(), ["oops", "hello", "world"]);
        assert!(lines.take_unread().is_empty());
        assert_eq!(lines.tail(), "oops\nhello\nworld\n");
    }

    #[test]
    fn a_slow_reader_loses_the_oldest_lines_and_is_told() {
        let mut lines = Lines::default();
        for i in 0..READER_LINES + 5 {
            lines.push(0, &format!("{i}\n"));
        }
        let read = lines.take_unread();
        assert_eq!(read[0], "[weft: 5 lines were dropped for this reader]");
        assert_eq!(read[1], "5");
        assert!(lines.tail().ends_with(&format!("{}\n", READER_LINES + 4)));
    }
}
