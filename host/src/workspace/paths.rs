//! Paths inside a project or workspace, checked before they touch storage or a container: no
//! absolute paths, no `..`, nothing that could name a place outside the project.

use crate::error::{Error, Result};

/// Longest accepted path, in bytes.
const MAX_PATH: usize = 1024;

/// Longest accepted part of a path (a file or folder name), in bytes: what file systems hold.
const MAX_NAME: usize = 255;

/// `path` as a clean relative path (`a/b.txt`), or why it is refused.
pub(crate) fn check(path: &str) -> std::result::Result<String, String> {
    if path.is_empty() {
        return Err("the path is empty".into());
    }
    if path.len() > MAX_PATH {
        return Err(format!("the path is longer than {MAX_PATH} bytes"));
    }
    if path.starts_with('/') || path.starts_with('\\') {
        return Err("absolute paths are not allowed".into());
    }
    if path.contains('\0') || path.contains('\\') {
        return Err("the path holds a NUL or a backslash".into());
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => continue,
            ".." => return Err("'..' is not allowed".into()),
            part if part.len() > MAX_NAME => {
                return Err(format!(
                    "a name in the path is {} bytes, over the limit of {MAX_NAME}",
                    part.len()
                ));
            }
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err("the path names no file".into());
    }
    Ok(parts.join("/"))
}

/// [`check`] as an API error on `field`.
pub(crate) fn checked(field: &str, path: &str) -> Result<String> {
    check(path).map_err(|why| {
        Error::invalid_field(field, why).hint("use a relative path such as src/main.py")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_cleaned() {
        assert_eq!(check("a/b.txt"), Ok("a/b.txt".into()));
        assert_eq!(check("./a//b.txt"), Ok("a/b.txt".into()));
        assert_eq!(check("notes.md"), Ok("notes.md".into()));
        assert_eq!(check("a/..b"), Ok("a/..b".into()));
    }

    #[test]
    fn escapes_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/..",
            ".",
            "./",
            "a\\b",
            "a\0b",
        ] {
            assert!(check(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(check(&"a".repeat(2000)).is_err());
        assert!(check(&format!("dir/{}", "n".repeat(256))).is_err());
        assert!(check(&format!("dir/{}", "n".repeat(255))).is_ok());
    }
}
