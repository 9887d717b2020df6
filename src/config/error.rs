//! Config problems with where they are, collected before failing so a user
//! fixes a file in one pass.

use serde_saphyr::{Location, Spanned};

/// One thing wrong with a config, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line and column, when the place is known.
    pub at: Option<(u64, u64)>,
    /// Field path like `checks[2].budget`; empty for YAML syntax errors.
    pub path: String,
    pub message: String,
}

/// Everything wrong with one config file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    pub file: String,
    pub problems: Vec<Problem>,
}

impl ConfigError {
    pub fn single(file: &str, problem: Problem) -> Self {
        Self { file: file.to_string(), problems: vec![problem] }
    }

    /// The lines `check-config` prints: `FILE:LINE:COL: message` or
    /// `FILE: field.path: message`.
    pub fn lines(&self) -> Vec<String> {
        self.problems.iter().map(|p| p.render(&self.file)).collect()
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.lines().join("\n"))
    }
}

impl Problem {
    fn render(&self, file: &str) -> String {
        let what = match self.path.as_str() {
            "" => self.message.clone(),
            path => format!("{path}: {}", self.message),
        };
        match self.at {
            Some((line, col)) => format!("{file}:{line}:{col}: {what}"),
            None => format!("{file}: {what}"),
        }
    }
}

/// Collects problems during validation.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// A problem with a value whose place in the file is known.
    pub fn at<T>(&mut self, value: &Spanned<T>, path: impl Into<String>, message: impl Into<String>) {
        self.at_location(value.referenced, path, message);
    }

    pub fn at_location(&mut self, loc: Location, path: impl Into<String>, message: impl Into<String>) {
        let at = (loc.line() > 0).then(|| (loc.line(), loc.column()));
        self.0.push(Problem { at, path: path.into(), message: message.into() });
    }

    /// A problem with a field that has no place (usually: it is missing).
    pub fn field(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem { at: None, path: path.into(), message: message.into() });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
