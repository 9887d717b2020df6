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
    let message = serde_saphyr::DefaultMessageFormatter.format_message(e.without_snippet()).into_owned();
    let at = e.location().filter(|l| l.line() > 0).map(|l| (l.line(), l.column()));
    ConfigError::single(file, Problem { at, path: String::new(), message })
}
