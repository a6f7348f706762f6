//! A version's files as one stored value, so that listing 100,000 files is one read of one
//! row rather than 100,000 rows through the database driver.
//!
//! The encoding is compact and sorted by path: a format byte, the count, then per file the
//! bytes its path shares with the previous one, the rest of the path, the md5 (16 raw bytes
//! when it is 32 lowercase hex digits, as every md5 DVC writes is; else spelled out), and the
//! size, numbers as LEB128 varints. Not here: which version a list belongs to (`records`).

use super::service::DatasetFile;
use crate::error::{Error, Result};
use serde::ser::{Error as _, SerializeSeq as _};
use serde::{Serialize, Serializer};

/// The first byte of every list this module writes.
const FORMAT: u8 = 1;
/// An md5 that follows as 16 raw bytes.
const RAW_MD5: u8 = 0;
/// An md5 that follows spelled out (length, then its text).
const TEXT_MD5: u8 = 1;

/// `files` (sorted by path here) as one value.
pub(super) fn encode(files: &[DatasetFile]) -> Vec<u8> {
    let mut sorted: Vec<&DatasetFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut out = Vec::with_capacity(16 + files.len() * 32);
    out.push(FORMAT);
    put_varint(&mut out, files.len() as u64);
    let mut previous: &[u8] = &[];
    for file in sorted {
        let path = file.path.as_bytes();
        let shared = previous
            .iter()
            .zip(path)
            .take_while(|(a, b)| a == b)
            .count();
        put_varint(&mut out, shared as u64);
        put_varint(&mut out, (path.len() - shared) as u64);
        out.extend_from_slice(&path[shared..]);
        match raw_md5(&file.md5) {
            Some(raw) => {
                out.push(RAW_MD5);
                out.extend_from_slice(&raw);
            }
            None => {
                out.push(TEXT_MD5);
                put_varint(&mut out, file.md5.len() as u64);
                out.extend_from_slice(file.md5.as_bytes());
            }
        }
        put_varint(&mut out, file.size as u64);
        previous = path;
    }
    out
}

/// A version's files as stored, read from its row without decoding: serialised straight
/// from the encoded bytes (one entry at a time, nothing allocated per file), so that a listing
/// of 100,000 files costs one pass over them rather than 200,000 strings.
#[derive(Debug, Clone)]
pub(super) struct FileList {
    encoded: Vec<u8>,
}

impl FileList {
    /// The list as read from its row.
    pub(super) fn stored(encoded: Vec<u8>) -> Self {
        Self { encoded }
    }

    /// The list of a version without files.
    pub(super) fn empty() -> Self {
        Self::stored(encode(&[]))
    }

    /// The files it holds, by path.
    pub(super) fn decode(&self) -> Result<Vec<DatasetFile>> {
        let mut files = Vec::new();
        walk(&self.encoded, corrupt, |path, md5, size| {
            files.push(DatasetFile {
                path: path.to_string(),
                md5: md5.to_string(),
                size,
            });
            Ok(())
        })?;
        Ok(files)
    }
}

/// As a JSON array of [`DatasetFile`]s, by path; a damaged list is an error, not a panic.
impl Serialize for FileList {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        /// [`DatasetFile`] borrowed: the same fields in the same order.
        #[derive(Serialize)]
        struct Entry<'a> {
            path: &'a str,
            md5: &'a str,
            size: i64,
        }
        let mut seq = serializer.serialize_seq(None)?;
        walk(
            &self.encoded,
            |what| S::Error::custom(format!("a stored file list is corrupt: {what}")),
            |path, md5, size| seq.serialize_element(&Entry { path, md5, size }),
        )?;
        seq.end()
    }
}

/// Calls `each` with the path, md5 and size of every file of `encoded`, by path; a damage
/// found is `corrupt(what)`.
fn walk<E>(
    encoded: &[u8],
    corrupt: impl Fn(&'static str) -> E,
    mut each: impl FnMut(&str, &str, i64) -> Result<(), E>,
) -> Result<(), E> {
    let mut input = Input { bytes: encoded };
    if input.byte().map_err(&corrupt)? != FORMAT {
        return Err(corrupt("an unknown format"));
    }
    let count = input.varint().map_err(&corrupt)?;
    let mut path = Vec::new();
    let mut hex_md5 = [0u8; 32];
    for _ in 0..count {
        let shared = input.varint().map_err(&corrupt)? as usize;
        let rest = input.varint().map_err(&corrupt)? as usize;
        if shared > path.len() {
            return Err(corrupt("a path sharing more than the previous one has"));
        }
        path.truncate(shared);
        path.extend_from_slice(input.take(rest).map_err(&corrupt)?);
        let md5 = match input.byte().map_err(&corrupt)? {
            RAW_MD5 => {
                let raw = input.take(16).map_err(&corrupt)?;
                hex::encode_to_slice(raw, &mut hex_md5)
                    .map_err(|_| corrupt("an md5 of the wrong length"))?;
                &hex_md5[..]
            }
            TEXT_MD5 => {
                let len = input.varint().map_err(&corrupt)? as usize;
                input.take(len).map_err(&corrupt)?
            }
            _ => return Err(corrupt("an unknown md5 kind")),
        };
        let md5 = std::str::from_utf8(md5).map_err(|_| corrupt("an md5 that is not UTF-8"))?;
        let size = input.varint().map_err(&corrupt)? as i64;
        let path = std::str::from_utf8(&path).map_err(|_| corrupt("a path that is not UTF-8"))?;
        each(path, md5, size)?;
    }
    if !input.bytes.is_empty() {
        return Err(corrupt("bytes after the last file"));
    }
    Ok(())
}

/// The 16 bytes an md5 in lowercase hex spells (uppercase would not come back the same).
fn raw_md5(md5: &str) -> Option<[u8; 16]> {
    if md5.len() != 32 || md5.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut raw = [0u8; 16];
    hex::decode_to_slice(md5, &mut raw).ok()?;
    Some(raw)
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn corrupt(what: &str) -> Error {
    Error::internal(format!("a stored file list is corrupt: {what}"))
}

/// What is left to read of a list.
struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if n > self.bytes.len() {
            return Err("cut short");
        }
        let (taken, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(taken)
    }

    fn byte(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u64, &'static str> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err("a number longer than 64 bits")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, md5: &str, size: i64) -> DatasetFile {
        DatasetFile {
            path: path.into(),
            md5: md5.into(),
            size,
        }
    }

    fn decode(encoded: &[u8]) -> Result<Vec<DatasetFile>> {
        FileList::stored(encoded.to_vec()).decode()
    }

    #[test]
    fn lists_come_back_sorted_and_whole() {
        let files = vec![
            file(
                "shard1/b.bin",
                "0123456789abcdef0123456789abcdef",
                200 << 10,
            ),
            file("shard1/a.bin", "d41d8cd98f00b204e9800998ecf8427e", 0),
            file("é/naïve name.csv", "not-an-md5", i64::MAX),
            file("shard1/ABC", "0123456789ABCDEF0123456789ABCDEF", 1),
            file("shard10/a.bin", "ffffffffffffffffffffffffffffffff", 300),
        ];
        let encoded = encode(&files);
        let mut sorted = files.clone();
        sorted.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(decode(&encoded).unwrap(), sorted);
        assert_eq!(decode(&encode(&[])).unwrap(), vec![]);
        assert_eq!(FileList::empty().decode().unwrap(), vec![]);
    }

    #[test]
    fn a_list_serialises_as_its_decoded_files_do() {
        let files = vec![
            file(
                "quote\"d \\ back\\slash",
                "d41d8cd98f00b204e9800998ecf8427e",
                1,
            ),
            file(
                "tab\tnew\nline\r\u{8}\u{c}\u{1}\u{1f}\u{7f}",
                "not-an-md5",
                2,
            ),
            file("é/naïve 名前 😀.csv", "0123456789ABCDEF0123456789ABCDEF", 3),
            file(
                "é/naïve 名前 😁.csv",
                "ffffffffffffffffffffffffffffffff",
                -1,
            ),
            file("</script>/a.bin", "with \"quotes\" and \\", i64::MAX),
        ];
        let list = FileList::stored(encode(&files));
        let json = serde_json::to_vec(&list).unwrap();
        assert_eq!(json, serde_json::to_vec(&list.decode().unwrap()).unwrap());
        let back: Vec<serde_json::Value> = serde_json::from_slice(&json).unwrap();
        assert_eq!(back.len(), files.len());
        assert_eq!(
            back[2]["path"],
            "tab\tnew\nline\r\u{8}\u{c}\u{1}\u{1f}\u{7f}"
        );
        assert_eq!(back[2]["md5"], "not-an-md5");
        assert_eq!(back[0]["md5"], "with \"quotes\" and \\");
        assert_eq!(back[0]["size"], i64::MAX);
        assert_eq!(serde_json::to_string(&FileList::empty()).unwrap(), "[]");
    }

    #[test]
    fn a_list_takes_a_fraction_of_its_rows() {
        let files: Vec<DatasetFile> = (0..1000)
            .map(|n| {
                file(
                    &format!("shard{:02}/sample{n:06}.bin", n % 100),
                    &format!("{:032x}", n as u128 * 0x9e37_79b9_7f4a_7c15),
                    4096,
                )
            })
            .collect();
        let encoded = encode(&files);
        // 16 bytes of md5, about 10 of path and 5 of framing each.
        assert!(encoded.len() < 32 * files.len(), "{}", encoded.len());
        assert_eq!(decode(&encoded).unwrap().len(), 1000);
    }

    #[test]
    fn damaged_lists_are_errors_not_panics() {
        let encoded = encode(&[file("a", "d41d8cd98f00b204e9800998ecf8427e", 7)]);
        let damaged = |bytes: &[u8]| {
            let list = FileList::stored(bytes.to_vec());
            list.decode().is_err() && serde_json::to_vec(&list).is_err()
        };
        for cut in 0..encoded.len() {
            assert!(damaged(&encoded[..cut]), "cut at {cut}");
        }
        let mut extra = encoded.clone();
        extra.push(0);
        assert!(damaged(&extra));
        assert!(damaged(&[FORMAT, 1, 5, 1, b'a']), "shares too much");
        assert!(
            damaged(&[FORMAT, 1, 0, 1, 0xff, TEXT_MD5, 0, 0]),
            "not UTF-8"
        );
        assert!(damaged(&[9]), "unknown format");
    }
}
