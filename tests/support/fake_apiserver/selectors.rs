//! Label selectors (equality and set based) and the field selectors the real server offers for every resource.

use serde_json::Value;

/// One parsed selector: every requirement must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

impl Selector {
    /// Parses a `labelSelector` such as `app=web,tier in (a,b),!canary`.
    pub fn labels(text: &str) -> Result<Self, String> {
        let requirements = split_top_level(text).into_iter().map(|r| parse_requirement(r.trim()));
        Ok(Self { requirements: requirements.collect::<Result<_, _>>()? })
    }

    /// Parses a `fieldSelector`; like the real server, only `metadata.name` and `metadata.namespace` are served.
    pub fn fields(text: &str) -> Result<Self, String> {
        let selector = Self::labels(text)?;
        for r in &selector.requirements {
            match r {
                Requirement::Equals(k, _) | Requirement::NotEquals(k, _)
                    if k == "metadata.name" || k == "metadata.namespace" => {}
                other => return Err(format!("field label not supported: {other:?}")),
            }
        }
        Ok(selector)
    }

    pub fn matches_labels(&self, object: &Value) -> bool {
        self.requirements.iter().all(|r| r.holds(|key| object["metadata"]["labels"][key].as_str()))
    }

    pub fn matches_fields(&self, object: &Value) -> bool {
        self.requirements.iter().all(|r| {
            r.holds(|key| match key {
                "metadata.name" => object["metadata"]["name"].as_str(),
                "metadata.namespace" => object["metadata"]["namespace"].as_str(),
                _ => None,
            })
        })
    }
}

impl Requirement {
    fn holds<'a>(&self, value_of: impl Fn(&str) -> Option<&'a str>) -> bool {
        match self {
            Self::Equals(k, v) => value_of(k) == Some(v.as_str()),
            Self::NotEquals(k, v) => value_of(k) != Some(v.as_str()),
            Self::In(k, vs) => value_of(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Self::NotIn(k, vs) => value_of(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            Self::Exists(k) => value_of(k).is_some(),
            Self::DoesNotExist(k) => value_of(k).is_none(),
        }
    }
}

/// Splits on commas outside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0_i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

fn parse_requirement(text: &str) -> Result<Requirement, String> {
    let bad = || format!("unable to parse requirement: {text:?}");
    if let Some(key) = text.strip_prefix('!') {
        return valid_key(key.trim()).map(Requirement::DoesNotExist).ok_or_else(bad);
    }
    if let Some(open) = text.find('(') {
        let values = text[open..].strip_prefix('(').and_then(|v| v.strip_suffix(')')).ok_or_else(bad)?;
        let values: Vec<String> = values.split(',').map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).collect();
        let mut head = text[..open].split_whitespace();
        let (key, op) = (head.next().and_then(valid_key).ok_or_else(bad)?, head.next().ok_or_else(bad)?);
        return match op {
            "in" => Ok(Requirement::In(key, values)),
            "notin" => Ok(Requirement::NotIn(key, values)),
            _ => Err(bad()),
        };
    }
    for (op, build) in [
        ("!=", Requirement::NotEquals as fn(String, String) -> Requirement),
        ("==", Requirement::Equals),
        ("=", Requirement::Equals),
    ] {
        if let Some((key, value)) = text.split_once(op) {
            let key = valid_key(key.trim()).ok_or_else(bad)?;
            return Ok(build(key, value.trim().to_owned()));
        }
    }
    valid_key(text).map(Requirement::Exists).ok_or_else(bad)
}

fn valid_key(key: &str) -> Option<String> {
    let ok = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    ok.then(|| key.to_owned())
}
