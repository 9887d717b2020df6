//! Patch mechanics: JSON merge patch (RFC 7386) and JSON patch (RFC 6902).
//!
//! `application/strategic-merge-patch+json` is applied as a merge patch: lists are replaced whole rather than merged
//! by key (`containers` by `name`), and `$patch`/`$retainKeys` directives are not understood. Patches that only touch
//! maps behave as on a real server. `application/apply-patch+yaml` (server-side apply) is refused with 415.

use serde_json::{Map, Value};

/// How a PATCH body is to be read, from its `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    Merge,
    Json,
    StrategicMerge,
}

/// Why a patch could not be applied, mapped to the real server's codes by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatchError {
    /// The body is not a patch of its kind: 400 BadRequest.
    Malformed(String),
    /// The patch is well formed but does not apply (a failed `test`, a missing path): 422.
    NotApplicable(String),
}

impl PatchKind {
    /// Reads the media type; `None` for a type the fake does not serve (415).
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        match content_type.split(';').next().unwrap_or("").trim() {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/strategic-merge-patch+json" => Some(Self::StrategicMerge),
            _ => None,
        }
    }
}

/// Applies `patch` (the raw body) to `doc`.
pub fn apply(kind: PatchKind, doc: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    let patch: Value = serde_json::from_slice(patch).map_err(|e| PatchError::Malformed(e.to_string()))?;
    let mut out = doc.clone();
    match kind {
        PatchKind::Merge | PatchKind::StrategicMerge => {
            if !patch.is_object() {
                return Err(PatchError::Malformed("a merge patch must be a JSON object".into()));
            }
            merge(&mut out, &patch);
        }
        PatchKind::Json => json_patch(&mut out, &patch)?,
    }
    Ok(out)
}

/// RFC 7386: objects merge key by key, `null` removes, anything else replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

fn json_patch(doc: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let ops = patch.as_array().ok_or_else(|| PatchError::Malformed("a JSON patch must be an array".into()))?;
    for op in ops {
        let name = op["op"].as_str().ok_or_else(|| PatchError::Malformed(format!("operation without op: {op}")))?;
        let path = str_field(op, "path")?;
        match name {
            "add" => add(doc, path, value_field(op)?)?,
            "remove" => drop(remove(doc, path)?),
            "replace" => {
                let value = value_field(op)?;
                *get_mut(doc, path)? = value;
            }
            "test" => {
                let expected = value_field(op)?;
                if *get_mut(doc, path)? != expected {
                    return Err(PatchError::NotApplicable(format!("testing value {path} failed")));
                }
            }
            "move" => {
                let from = str_field(op, "from")?;
                if path.starts_with(&format!("{from}/")) {
                    return Err(PatchError::NotApplicable(format!("cannot move {from} into its child {path}")));
                }
                let value = remove(doc, from)?;
                add(doc, path, value)?;
            }
            "copy" => {
                let value = get_mut(doc, str_field(op, "from")?)?.clone();
                add(doc, path, value)?;
            }
            other => return Err(PatchError::Malformed(format!("unexpected kind: {other}"))),
        }
    }
    Ok(())
}

fn str_field<'a>(op: &'a Value, field: &str) -> Result<&'a str, PatchError> {
    op[field].as_str().ok_or_else(|| PatchError::Malformed(format!("operation without {field}: {op}")))
}

fn value_field(op: &Value) -> Result<Value, PatchError> {
    op.get("value").cloned().ok_or_else(|| PatchError::Malformed(format!("operation without value: {op}")))
}

/// Splits `/a/b~1c` into its unescaped tokens.
fn tokens(path: &str) -> Result<Vec<String>, PatchError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let rest = path.strip_prefix('/').ok_or_else(|| PatchError::Malformed(format!("invalid path: {path}")))?;
    Ok(rest.split('/').map(|t| t.replace("~1", "/").replace("~0", "~")).collect())
}

fn missing(path: &str) -> PatchError {
    PatchError::NotApplicable(format!("doc is missing path: \"{path}\""))
}

fn get_mut<'a>(doc: &'a mut Value, path: &str) -> Result<&'a mut Value, PatchError> {
    let mut at = doc;
    for token in tokens(path)? {
        at = match at {
            Value::Object(map) => map.get_mut(&token),
            Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| missing(path))?;
    }
    Ok(at)
}

/// The container holding `path` and the last token.
fn parent<'a>(doc: &'a mut Value, path: &str) -> Result<(&'a mut Value, String), PatchError> {
    let mut tokens = tokens(path)?;
    let last = tokens.pop().ok_or_else(|| PatchError::NotApplicable("the root has no parent".into()))?;
    let parent_path: String = tokens.iter().map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1"))).collect();
    Ok((get_mut(doc, &parent_path).map_err(|_| missing(path))?, last))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), PatchError> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (container, last) = parent(doc, path)?;
    match container {
        Value::Object(map) => {
            map.insert(last, value);
        }
        Value::Array(items) if last == "-" => items.push(value),
        Value::Array(items) => {
            let i = last.parse::<usize>().ok().filter(|i| *i <= items.len()).ok_or_else(|| missing(path))?;
            items.insert(i, value);
        }
        _ => return Err(missing(path)),
    }
    Ok(())
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, PatchError> {
    let (container, last) = parent(doc, path)?;
    match container {
        Value::Object(map) => map.remove(&last).ok_or_else(|| missing(path)),
        Value::Array(items) => {
            let i = last.parse::<usize>().ok().filter(|i| *i < items.len()).ok_or_else(|| missing(path))?;
            Ok(items.remove(i))
        }
        _ => Err(missing(path)),
    }
}
