//! A tar reader for archives that come out of a user's container, which Weft does not trust:
//! headers and extension records (GNU long names, PAX) are read with a bound, a file's content
//! is handed out in chunks as it arrives (never held whole, so memory stays flat whatever the
//! archive holds), and what it does not understand ends the archive with an error instead of
//! being guessed at.
//!
//! Not a general tar library: no writing, no GNU sparse entries (neither the engine's archives
//! nor the workspace's `tar` make them), no seeking.

use std::io;
use tokio::io::{AsyncRead, AsyncReadExt};

const BLOCK: usize = 512;

/// Longest GNU long name, long link or PAX record block accepted.
const MAX_META: u64 = 64 * 1024;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    File,
    Directory,
    Symlink,
    HardLink,
    /// Anything else (a FIFO, a device...), by its type flag.
    Other(u8),
}

/// One entry's header, its extensions applied.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    /// The raw name: not necessarily UTF-8.
    pub path: Vec<u8>,
    pub link: Vec<u8>,
    pub kind: Kind,
    pub size: u64,
}

/// Reads entries one after the other; [`Reader::read`] reads the current one's content.
pub(super) struct Reader<R> {
    inner: R,
    /// Content bytes of the current entry not read yet.
    remaining: u64,
    /// Padding after the current entry's content.
    padding: u64,
    done: bool,
}

fn malformed(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

/// A numeric field: octal (spaces and NULs around it), or base-256 when its first bit is set.
fn number(field: &[u8]) -> io::Result<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut value: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            value = value
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(b)))
                .ok_or_else(|| malformed("a base-256 number overflows"))?;
        }
        return Ok(value);
    }
    let digits: &[u8] = {
        let start = field.iter().position(|b| *b != b' ').unwrap_or(field.len());
        let rest = &field[start..];
        let end = rest
            .iter()
            .position(|b| *b == 0 || *b == b' ')
            .unwrap_or(rest.len());
        &rest[..end]
    };
    if digits.is_empty() {
        return Ok(0);
    }
    let mut value: u64 = 0;
    for &d in digits {
        if !(b'0'..=b'7').contains(&d) {
            return Err(malformed("a numeric field is not octal"));
        }
        value = value
            .checked_mul(8)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or_else(|| malformed("an octal number overflows"))?;
    }
    Ok(value)
}

/// A NUL-terminated string field.
fn text(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    &field[..end]
}

fn checksum_ok(block: &[u8; BLOCK]) -> io::Result<bool> {
    let stored = number(&block[148..156])?;
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    Ok(stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed))
}

/// The name in a header: POSIX ustar puts a prefix before it; GNU's header does not.
fn header_name(block: &[u8; BLOCK]) -> Vec<u8> {
    let name = text(&block[..100]);
    let posix = &block[257..263] == b"ustar\0";
    let prefix = if posix { text(&block[345..500]) } else { &[] };
    if prefix.is_empty() {
        name.to_vec()
    } else {
        [prefix, b"/", name].concat()
    }
}

/// PAX records (`LEN key=value\n`) that matter here.
#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
}

impl Pax {
    fn parse(mut records: &[u8]) -> io::Result<Self> {
        let mut pax = Self::default();
        while !records.is_empty() && records[0] != 0 {
            let space = records
                .iter()
                .position(|b| *b == b' ')
                .ok_or_else(|| malformed("a PAX record has no length"))?;
            let len: usize = std::str::from_utf8(&records[..space])
                .ok()
                .and_then(|n| n.parse().ok())
                .filter(|n| *n > space + 1 && *n <= records.len())
                .ok_or_else(|| malformed("a PAX record has a bad length"))?;
            let record = &records[space + 1..len];
            let record = record.strip_suffix(b"\n").unwrap_or(record);
            let eq = record
                .iter()
                .position(|b| *b == b'=')
                .ok_or_else(|| malformed("a PAX record has no '='"))?;
            let (key, value) = (&record[..eq], &record[eq + 1..]);
            match key {
                b"path" => pax.path = Some(value.to_vec()),
                b"linkpath" => pax.link = Some(value.to_vec()),
                b"size" => {
                    let size = std::str::from_utf8(value)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| malformed("a PAX size is not a number"))?;
                    pax.size = Some(size);
                }
                _ => {}
            }
            records = &records[len..];
        }
        Ok(pax)
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

impl<R: AsyncRead + Unpin> Reader<R> {
    pub(super) fn new(inner: R) -> Self {
        Self {
            inner,
            remaining: 0,
            padding: 0,
            done: false,
        }
    }

    /// Fills `block`; `false` at the end of the input before its first byte.
    async fn block(&mut self, block: &mut [u8; BLOCK]) -> io::Result<bool> {
        let mut filled = 0;
        while filled < BLOCK {
            let n = self.inner.read(&mut block[filled..]).await?;
            if n == 0 {
                return if filled == 0 {
                    Ok(false)
                } else {
                    Err(malformed("the archive ends inside a header"))
                };
            }
            filled += n;
        }
        Ok(true)
    }

    /// Reads and throws away `amount` bytes.
    async fn discard(&mut self, mut amount: u64) -> io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        while amount > 0 {
            let want = amount.min(buf.len() as u64) as usize;
            let n = self.inner.read(&mut buf[..want]).await?;
            if n == 0 {
                return Err(malformed("the archive ends inside an entry"));
            }
            amount -= n as u64;
        }
        Ok(())
    }

    /// The content of an extension entry of `size` bytes (bounded), its padding skipped.
    async fn meta(&mut self, size: u64) -> io::Result<Vec<u8>> {
        if size > MAX_META {
            return Err(malformed(format!(
                "an extension header of {size} bytes (at most {MAX_META})"
            )));
        }
        let mut content = vec![0u8; size as usize];
        self.inner.read_exact(&mut content).await.map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                malformed("the archive ends inside an extension header")
            } else {
                e
            }
        })?;
        self.discard(padding(size)).await?;
        Ok(content)
    }

    /// The next entry, after skipping what is left of the current one; `None` at the end.
    pub(super) async fn next(&mut self) -> io::Result<Option<Entry>> {
        if self.done {
            return Ok(None);
        }
        let rest = self.remaining + self.padding;
        self.remaining = 0;
        self.padding = 0;
        self.discard(rest).await?;
        let (mut long_name, mut long_link, mut pax) = (None, None, Pax::default());
        loop {
            let mut block = [0u8; BLOCK];
            if !self.block(&mut block).await? || block.iter().all(|b| *b == 0) {
                self.done = true;
                return Ok(None);
            }
            if !checksum_ok(&block)? {
                return Err(malformed("a header's checksum does not match"));
            }
            let size = number(&block[124..136])?;
            match block[156] {
                b'L' => long_name = Some(text(&self.meta(size).await?).to_vec()),
                b'K' => long_link = Some(text(&self.meta(size).await?).to_vec()),
                b'x' => pax = Pax::parse(&self.meta(size).await?)?,
                b'g' => drop(self.meta(size).await?),
                b'S' => return Err(malformed("GNU sparse entries are not accepted")),
                flag => {
                    let kind = match flag {
                        0 | b'0' | b'7' => Kind::File,
                        b'5' => Kind::Directory,
                        b'2' => Kind::Symlink,
                        b'1' => Kind::HardLink,
                        other => Kind::Other(other),
                    };
                    let size = match kind {
                        // Links carry no content whatever their size field says.
                        Kind::Symlink | Kind::HardLink => 0,
                        _ => pax.size.unwrap_or(size),
                    };
                    self.remaining = size;
                    self.padding = padding(size);
                    return Ok(Some(Entry {
                        path: long_name
                            .or(pax.path)
                            .unwrap_or_else(|| header_name(&block)),
                        link: long_link
                            .or(pax.link)
                            .unwrap_or_else(|| text(&block[157..257]).to_vec()),
                        kind,
                        size,
                    }));
                }
            }
        }
    }

    /// What is left of the input after the archive.
    pub(super) fn into_inner(self) -> R {
        self.inner
    }

    /// Reads the current entry's content into `buf`; 0 at its end.
    pub(super) async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = self.remaining.min(buf.len() as u64) as usize;
        let n = self.inner.read(&mut buf[..want]).await?;
        if n == 0 {
            return Err(malformed("the archive ends inside an entry"));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &[u8], flag: u8, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::new(flag));
        header.set_size(size);
        header.set_mode(0o644);
        let field = &mut header.as_old_mut().name;
        field[..name.len()].copy_from_slice(name);
        header.set_cksum();
        header
    }

    async fn all(archive: &[u8]) -> io::Result<Vec<(Entry, Vec<u8>)>> {
        let mut reader = Reader::new(archive);
        let mut out = Vec::new();
        while let Some(entry) = reader.next().await? {
            let mut content = Vec::new();
            let mut buf = [0u8; 7];
            loop {
                let n = reader.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                content.extend_from_slice(&buf[..n]);
            }
            out.push((entry, content));
        }
        Ok(out)
    }

    #[tokio::test]
    async fn reads_what_the_tar_crate_writes_long_names_included() {
        let mut builder = tar::Builder::new(Vec::new());
        let long = format!("deep/{}/file.txt", "d".repeat(300));
        for (path, content) in [("a.txt", &b"hello"[..]), (long.as_str(), b"x")] {
            let mut h = tar::Header::new_gnu();
            h.set_size(content.len() as u64);
            h.set_mode(0o644);
            builder.append_data(&mut h, path, content).unwrap();
        }
        let mut dir = tar::Header::new_gnu();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_size(0);
        builder
            .append_data(&mut dir, "sub/", std::io::empty())
            .unwrap();
        let archive = builder.into_inner().unwrap();
        let entries = all(&archive).await.unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].0.path, b"a.txt");
        assert_eq!(entries[0].1, b"hello");
        assert_eq!(entries[1].0.path, long.as_bytes());
        assert_eq!(entries[1].0.kind, Kind::File);
        assert_eq!(entries[2].0.kind, Kind::Directory);
    }

    #[tokio::test]
    async fn pax_path_and_size_override_the_header_and_unread_content_is_skipped() {
        fn record(key: &[u8], value: &[u8]) -> Vec<u8> {
            let body = [b" ", key, b"=", value, b"\n"].concat();
            // The length counts its own digits: two for these short records.
            [format!("{}", body.len() + 2).as_bytes(), &body].concat()
        }
        let records = [record(b"path", b"caf\xe9/name.txt"), record(b"size", b"10")].concat();
        let mut archive = header(b"././@PaxHeader", b'x', records.len() as u64)
            .as_bytes()
            .to_vec();
        archive.extend_from_slice(&records);
        archive.resize(archive.len().div_ceil(512) * 512, 0);
        archive.extend_from_slice(header(b"short", b'0', 0).as_bytes());
        archive.extend_from_slice(b"0123456789");
        archive.resize(archive.len().div_ceil(512) * 512, 0);
        archive.extend_from_slice(header(b"next", b'0', 1).as_bytes());
        archive.push(b'!');
        archive.resize(archive.len().div_ceil(512) * 512 + 1024, 0);
        let mut reader = Reader::new(&archive[..]);
        let first = reader.next().await.unwrap().unwrap();
        assert_eq!(first.path, b"caf\xe9/name.txt", "not UTF-8, kept raw");
        assert_eq!(first.size, 10);
        let second = reader.next().await.unwrap().unwrap();
        assert_eq!(second.path, b"next");
        let mut buf = [0u8; 4];
        assert_eq!(reader.read(&mut buf).await.unwrap(), 1);
        assert!(reader.next().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn hostile_archives_end_with_an_error_not_an_allocation() {
        // A GNU long name claiming 1 GiB.
        let archive = header(b"././@LongLink", b'L', 1 << 30).as_bytes().to_vec();
        let err = all(&archive).await.unwrap_err();
        assert!(err.to_string().contains("extension header"), "{err}");
        // A broken checksum.
        let mut archive = header(b"a", b'0', 0).as_bytes().to_vec();
        archive[0] = b'b';
        assert!(all(&archive).await.is_err());
        // Content cut short.
        let mut archive = header(b"a", b'0', 100).as_bytes().to_vec();
        archive.extend_from_slice(b"short");
        assert!(all(&archive).await.is_err());
        // Sparse entries.
        let archive = header(b"s", b'S', 0).as_bytes().to_vec();
        assert!(all(&archive).await.is_err());
    }

    #[test]
    fn numbers_in_octal_and_base_256() {
        assert_eq!(number(b"00000000144\0").unwrap(), 100);
        assert_eq!(number(b"     144 \0").unwrap(), 100);
        let mut big = [0u8; 12];
        big[0] = 0x80;
        big[7] = 0x0c; // 50 GiB = 0x0c_8000_0000
        big[8] = 0x80;
        assert_eq!(number(&big).unwrap(), 50 << 30);
        assert!(number(b"9\0").is_err());
    }
}
