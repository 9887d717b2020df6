//! `${VAR}` expansion in header values and connection URLs, behind a small `Env` seam so tests
//! fill it from a map, and the `Secret` type that keeps values out of logs.

use std::collections::HashMap;

/// Where `${VAR}` values come from.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// A fixed map, for tests and the demo.
#[derive(Debug, Default, Clone)]
pub struct MapEnv(pub HashMap<String, String>);

impl Env for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// A value that must never be printed, logged or exported.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The real value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Replaces each `${NAME}` with its value. Errors name the variable, never a
/// value. `$$` is a literal `$`.
pub fn expand(text: &str, env: &dyn Env) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or("unterminated ${ in value")?;
            let name = &body[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("bad variable name {name:?} in ${{…}}"));
            }
            let value = env.var(name).ok_or_else(|| format!("environment variable {name} is not set"))?;
            out.push_str(&value);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> MapEnv {
        MapEnv(HashMap::from([("TOKEN".to_string(), "s3cr3t".to_string())]))
    }

    #[test]
    fn variables_are_expanded_inside_text() {
        assert_eq!(expand("Bearer ${TOKEN}", &env()).unwrap(), "Bearer s3cr3t");
        assert_eq!(expand("plain", &env()).unwrap(), "plain");
        assert_eq!(expand("cost $$5 and $x", &env()).unwrap(), "cost $5 and $x");
    }

    #[test]
    fn a_missing_variable_is_named_without_any_value() {
        let err = expand("Bearer ${NOPE}", &env()).unwrap_err();
        assert_eq!(err, "environment variable NOPE is not set");
        assert!(expand("${TOKEN", &env()).unwrap_err().contains("unterminated"));
        assert!(expand("${A-B}", &env()).unwrap_err().contains("bad variable name"));
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let s = Secret::new("s3cr3t".into());
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(s.expose(), "s3cr3t");
    }
}
