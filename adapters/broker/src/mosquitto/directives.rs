//! The lines of a Mosquitto configuration file: `key value...`, `#`
//! comments, and `include_dir`, which reads every `*.conf` file of a
//! directory in the order of their names, as Mosquitto does.

use std::path::{Path, PathBuf};

use super::MosquittoError;

/// One `key value...` line, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Directive {
    pub(super) file: PathBuf,
    pub(super) line: usize,
    pub(super) key: String,
    /// The words after the key, split on whitespace.
    pub(super) args: Vec<String>,
    /// Everything after the key, trimmed: paths and passwords may hold spaces.
    pub(super) rest: String,
}

/// How deep `include_dir` may nest (a directory that includes itself would
/// otherwise never end).
const MAX_INCLUDE_DEPTH: usize = 8;

/// Reads the directives of `text` (from `file`), following `include_dir`.
pub(super) fn read(text: &str, file: &Path) -> Result<Vec<Directive>, MosquittoError> {
    let mut out = Vec::new();
    read_into(text, file, 0, &mut out)?;
    Ok(out)
}

fn read_into(
    text: &str,
    file: &Path,
    depth: usize,
    out: &mut Vec<Directive>,
) -> Result<(), MosquittoError> {
    for (i, raw) in text.lines().enumerate() {
        let Some(d) = parse_line(raw, file, i + 1) else {
            continue;
        };
        if d.key != "include_dir" {
            out.push(d);
            continue;
        }
        if depth >= MAX_INCLUDE_DEPTH {
            return Err(d.invalid("include_dir nested too deeply"));
        }
        for path in included_files(&d)? {
            let text = std::fs::read_to_string(&path).map_err(|source| MosquittoError::Read {
                path: path.clone(),
                source,
            })?;
            read_into(&text, &path, depth + 1, out)?;
        }
    }
    Ok(())
}

/// A line's key and words, or `None` for a blank line or a comment.
fn parse_line(raw: &str, file: &Path, line: usize) -> Option<Directive> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return None;
    }
    let (key, rest) = match trimmed.split_once(char::is_whitespace) {
        Some((k, r)) => (k, r.trim()),
        None => (trimmed, ""),
    };
    Some(Directive {
        file: file.to_owned(),
        line,
        key: key.to_string(),
        args: rest.split_whitespace().map(str::to_string).collect(),
        rest: rest.to_string(),
    })
}

/// The `*.conf` files of an `include_dir` directory, sorted by name.
fn included_files(d: &Directive) -> Result<Vec<PathBuf>, MosquittoError> {
    if d.rest.is_empty() {
        return Err(d.invalid("include_dir needs a directory"));
    }
    let dir = Path::new(&d.rest);
    let entries = std::fs::read_dir(dir).map_err(|source| MosquittoError::Read {
        path: dir.to_owned(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| MosquittoError::Read {
                path: dir.to_owned(),
                source,
            })?
            .path();
        if path.extension().is_some_and(|e| e == "conf") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

impl Directive {
    /// An error about this line.
    pub(super) fn invalid(&self, why: impl Into<String>) -> MosquittoError {
        MosquittoError::Invalid {
            file: self.file.clone(),
            line: self.line,
            key: self.key.clone(),
            why: why.into(),
        }
    }

    /// The single value of a `key value` line.
    pub(super) fn value(&self) -> Result<&str, MosquittoError> {
        match self.args.as_slice() {
            [v] => Ok(v),
            [] => Err(self.invalid("a value is missing")),
            _ => Err(self.invalid("expected one value")),
        }
    }

    /// The value as `true`/`false`.
    pub(super) fn boolean(&self) -> Result<bool, MosquittoError> {
        match self.value()? {
            "true" => Ok(true),
            "false" => Ok(false),
            v => Err(self.invalid(format!("{v:?} is not true or false"))),
        }
    }

    /// The value as a whole number.
    pub(super) fn number(&self) -> Result<i64, MosquittoError> {
        let v = self.value()?;
        v.parse()
            .map_err(|_| self.invalid(format!("{v:?} is not a whole number")))
    }

    /// The value as a whole number in `lo..=hi`.
    pub(super) fn number_in(&self, lo: i64, hi: i64) -> Result<i64, MosquittoError> {
        let n = self.number()?;
        if (lo..=hi).contains(&n) {
            Ok(n)
        } else {
            Err(self.invalid(format!("{n} is not in {lo}..={hi}")))
        }
    }

    /// The rest of the line as a non-empty string (a path, a password).
    pub(super) fn text(&self) -> Result<&str, MosquittoError> {
        if self.rest.is_empty() {
            Err(self.invalid("a value is missing"))
        } else {
            Ok(&self.rest)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_blank_lines_are_skipped_and_lines_keep_their_numbers() {
        let d = read(
            "# a comment\n\n  listener 1883 127.0.0.1\npassword_file /etc/my file\n",
            Path::new("m.conf"),
        )
        .unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].line, d[0].key.as_str()), (3, "listener"));
        assert_eq!(d[0].args, ["1883", "127.0.0.1"]);
        assert_eq!(d[1].rest, "/etc/my file");
    }

    #[test]
    fn include_dir_reads_conf_files_in_name_order() {
        let dir = std::env::temp_dir().join(format!("mosq-inc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("b.conf"), "max_keepalive 60\n").unwrap();
        std::fs::write(dir.join("a.conf"), "sys_interval 5\n").unwrap();
        std::fs::write(dir.join("notes.txt"), "not read\n").unwrap();
        let text = format!("allow_anonymous true\ninclude_dir {}\n", dir.display());
        let d = read(&text, Path::new("m.conf")).unwrap();
        let keys: Vec<_> = d.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(keys, ["allow_anonymous", "sys_interval", "max_keepalive"]);
        assert_eq!(d[1].file, dir.join("a.conf"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_directory_that_includes_itself_is_refused() {
        let dir = std::env::temp_dir().join(format!("mosq-loop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("self.conf"),
            format!("include_dir {}\n", dir.display()),
        )
        .unwrap();
        let e = read(
            &format!("include_dir {}\n", dir.display()),
            Path::new("m.conf"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("nested too deeply"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn values_are_checked() {
        let d = &read("max_qos 3\nretain_available yes\n", Path::new("m.conf")).unwrap();
        assert!(d[0]
            .number_in(0, 2)
            .unwrap_err()
            .to_string()
            .contains("m.conf:1"));
        assert!(d[1].boolean().is_err());
    }
}
