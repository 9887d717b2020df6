//! Reads a config file and turns it into a `Config`, or every problem in it.

use std::path::Path;

use serde_saphyr::MessageFormatter;

use super::error::{ConfigError, Problem};
use super::raw::RawConfig;
use super::{Config, Env, validate};

/// Config files larger than this are certainly a mistake (a log, a binary).
const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// Loads and validates the config at `path`.
pub fn load(path: &Path, env: &dyn Env) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let problem = |message: String| ConfigError::single(&file, Problem { at: None, path: String::new(), message });
    let meta = std::fs::metadata(path).map_err(|e| problem(format!("cannot read config: {e}")))?;
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(problem(format!("config is {} bytes; the limit is {MAX_CONFIG_BYTES}", meta.len())));
    }
    let text = std::fs::read_to_string(path).map_err(|e| problem(format!("cannot read config: {e}")))?;
    parse(&text, &file, env)
}

/// Parses and validates config text; `file` only names it in errors.
pub fn parse(text: &str, file: &str, env: &dyn Env) -> Result<Config, ConfigError> {
    let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| yaml_error(file, &e))?;
    validate::config(raw, env).map_err(|problems| ConfigError { file: file.to_string(), problems })
}

fn yaml_error(file: &str, e: &serde_saphyr::Error) -> ConfigError {
    // Two of the parser's messages are written for Rust developers.
    let message = match e.without_snippet() {
        serde_saphyr::Error::Budget { .. } => "the YAML expands past the parser's limits (250,000 nodes, a \
                                              nesting depth): is an alias repeated, or a bracket left open?"
            .to_string(),
        serde_saphyr::Error::MultipleDocuments { .. } => {
            "a config is one YAML document: remove the `---` before this line and what follows it".to_string()
        }
        other => {
            let text = serde_saphyr::DefaultMessageFormatter.format_message(other).into_owned();
            // Alias expansion reports its budget as a plain message.
            match text.strip_prefix("budget breached: ") {
                Some(what) => {
                    // "Nodes { nodes: 250001 }" → "nodes 250001"
                    let inner = what.split_once('{').map_or(what, |(_, i)| i.trim_end_matches('}'));
                    format!(
                        "the YAML expands past the parser's limits (reached {}): is an alias repeated?",
                        inner.trim().replace(": ", " ").to_lowercase()
                    )
                }
                None => text,
            }
        }
    };
    let at = e.location().filter(|l| l.line() > 0).map(|l| (l.line(), l.column()));
    ConfigError::single(file, Problem { at, path: String::new(), message })
}
