//! A version's files as one stored value, so that listing 100,000 files is one read of one
//! row rather than 100,000 rows through the database driver.
//!
//! The encoding is compact and sorted by path: a format byte, the count, then per file the
//! bytes its path shares with the previous one, the rest of the path, the md5 (16 raw bytes
//! when it is 32 lowercase hex digits, as every md5 DVC writes is; else spelled out), and the
//! size, numbers as LEB128 varints. Not here: which version a list belongs to (`records`).

use super::service::DatasetFile;
use crate::error::{Error, Result};

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

/// The files `encoded` holds, by path.
pub(super) fn decode(encoded: &[u8]) -> Result<Vec<DatasetFile>> {
    let mut input = Input { bytes: encoded };
    if input.byte()? != FORMAT {
        return Err(corrupt("an unknown format"));
    }
    let count = input.varint()? as usize;
    // Each file takes at least 4 bytes: no count can claim more files than there are bytes.
    let mut files = Vec::with_capacity(count.min(encoded.len() / 4));
    let mut path = Vec::new();
    for _ in 0..count {
        let shared = input.varint()? as usize;
        let rest = input.varint()? as usize;
        if shared > path.len() {
            return Err(corrupt("a path sharing more than the previous one has"));
        }
        path.truncate(shared);
        path.extend_from_slice(input.take(rest)?);
        let md5 = match input.byte()? {
            RAW_MD5 => hex::encode(input.take(16)?),
            TEXT_MD5 => {
                let len = input.varint()? as usize;
                text(input.take(len)?)?
            }
            _ => return Err(corrupt("an unknown md5 kind")),
        };
        files.push(DatasetFile {
            path: text(&path)?,
            md5,
            size: input.varint()? as i64,
        });
    }
    if !input.bytes.is_empty() {
        return Err(corrupt("bytes after the last file"));
    }
    Ok(files)
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

fn text(bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| corrupt("a path that is not UTF-8"))
}

/// What is left to read of a list.
struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.bytes.len() {
            return Err(corrupt("cut short"));
        }
        let (taken, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(taken)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(corrupt("a number longer than 64 bits"))
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
        for cut in 0..encoded.len() {
            assert!(decode(&encoded[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = encoded.clone();
        extra.push(0);
        assert!(decode(&extra).is_err());
        assert!(decode(&[FORMAT, 1, 5, 1, b'a']).is_err(), "shares too much");
        assert!(decode(&[9]).is_err(), "unknown format");
    }
}
