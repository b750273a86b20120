//! The preprocessor: `$VAR`/`${VAR}` expansion and `file:` paths into the files directory
//! (fetched from mesh peers when they are not here).

use ferromega_api::Args;

use crate::{ControlPlane, DomainError};

/// Expands `$NAME` and `${NAME}` with `lookup`; unknown names become empty, as in Go's os.Expand.
pub fn expand_vars(s: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some((_, '{')) => {
                chars.next();
                let mut name = String::new();
                let mut closed = false;
                for (_, c) in chars.by_ref() {
                    if c == '}' {
                        closed = true;
                        break;
                    }
                    name.push(c);
                }
                if closed {
                    out.push_str(&lookup(&name).unwrap_or_default());
                } else {
                    out.push_str("${");
                    out.push_str(&name);
                }
            }
            Some((_, c)) if c.is_ascii_alphanumeric() || c == '_' => {
                let mut name = String::new();
                while let Some((_, c)) = chars.peek().copied() {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        name.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push_str(&lookup(&name).unwrap_or_default());
            }
            _ => out.push('$'),
        }
    }
    out
}

impl ControlPlane {
    async fn preprocess_one(&self, value: &str) -> Result<String, DomainError> {
        let expanded = expand_vars(value, |name| self.env_var(name));
        if let Some(rest) = expanded.strip_prefix("file:") {
            let path = crate::ops::files::inside(self.files_dir(), rest)?;
            if !path.exists() {
                // Not here: fetch it from the mesh peers that have it (iomeshage).
                self.file_get_from_peers(rest).await?;
            }
            if !path.exists() {
                return Err(DomainError::NotFound("file not found".to_string()));
            }
            return Ok(path.to_string_lossy().into_owned());
        }
        if let Some(rest) = expanded
            .strip_prefix("http://")
            .or_else(|| expanded.strip_prefix("https://"))
        {
            return self.preprocess_url(rest);
        }
        Ok(expanded)
    }

    /// An `http(s)://host/path` argument names `<files dir>/path`, as minimega's
    /// preprocessor does once it has fetched the URL into the files directory. This
    /// server fetches nothing from the network: a file already there is used, anything
    /// else is an error naming the local path.
    fn preprocess_url(&self, rest: &str) -> Result<String, DomainError> {
        let url_path = rest.split_once('/').map(|(_, p)| p).unwrap_or_default();
        let url_path = url_path.split(['?', '#']).next().unwrap_or_default();
        let local = crate::ops::files::inside(self.files_dir(), url_path)?;
        if local.is_dir() {
            let e = format!("open {}: is a directory", local.display());
            return Err(DomainError::Invalid(e));
        }
        if local.is_file() {
            return Ok(local.to_string_lossy().into_owned());
        }
        Err(DomainError::NotFound(format!(
            "open {}: no such file or directory (downloads are not supported)",
            local.display()
        )))
    }

    /// Rewrites every string and list argument through the preprocessor.
    pub(crate) async fn preprocess(&self, args: &mut Args) -> Result<(), DomainError> {
        for v in args.strings.values_mut() {
            *v = self.preprocess_one(v).await?;
        }
        for list in args.lists.values_mut() {
            for v in list.iter_mut() {
                *v = self.preprocess_one(v).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "images").then(|| "/srv/img".to_string())
    }

    #[test]
    fn expands_dollar_and_braces() {
        assert_eq!(expand_vars("$images/fs", env), "/srv/img/fs");
        assert_eq!(expand_vars("${images}x", env), "/srv/imgx");
    }

    #[test]
    fn unknown_variables_become_empty() {
        assert_eq!(expand_vars("a$nope/b", env), "a/b");
    }

    #[test]
    fn lone_dollar_is_kept() {
        assert_eq!(expand_vars("cost $ 5", env), "cost $ 5");
    }
}
